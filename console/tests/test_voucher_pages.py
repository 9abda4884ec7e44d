"""The recharge card pages: an administrator generates a batch, downloads its PIN file once
(a second try is refused on the page), releases it; a cashier redeems a card and lands on the
receipt; a wrong PIN is refused without the PIN sent back; a card is found by its serial;
the collect section of the menu shows the pages each person may open."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from collection.models import Payment, Receipt, VoucherBatch, VoucherBatchState, VoucherCard
from collection.services import vouchers
from ledger.models import LedgerAccount, LedgerKind
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user: Any, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _generate(world: World, alice: Client, count: int = 2) -> tuple[VoucherBatch, list[dict]]:
    expires = (timezone.localdate() + timedelta(days=200)).isoformat()
    response = alice.post(
        "/console/voucher-batches/new/",
        {"face_value": "50.00", "count": str(count), "expires_on": expires, "note": "国庆"},
    )
    assert response.status_code == 302, response.content
    with world.a.active():
        batch = VoucherBatch.objects.get()
    detail = alice.get(response["Location"])
    assert "Download the PIN file (once)" in detail.content.decode()
    pins = alice.post(f"/console/voucher-batches/{batch.pk}/pins/")
    assert pins.status_code == 200
    assert pins["Content-Disposition"].startswith("attachment;")
    return batch, list(csv.DictReader(io.StringIO(pins.content.decode())))


def test_an_admin_generates_a_batch_downloads_its_pins_once_and_releases_it(
    world: World,
) -> None:
    alice = _client(world.alice)
    batch, rows = _generate(world, alice)
    assert len(rows) == 2
    again = alice.post(f"/console/voucher-batches/{batch.pk}/pins/", follow=True)
    page = again.content.decode()
    assert "cannot be shown again" in page
    assert "Download the PIN file (once)" not in page
    with world.a.active():
        assert AuditEvent.objects.filter(action="voucher_batch.pins_refused").count() == 1

    confirm = alice.get(f"/console/voucher-batches/{batch.pk}/release/")
    assert "2 cards × 50.00 yuan = 100.00 yuan" in confirm.content.decode()
    released = alice.post(f"/console/voucher-batches/{batch.pk}/release/")
    assert released.status_code == 302
    with world.a.active():
        assert VoucherBatch.objects.get(pk=batch.pk).state == VoucherBatchState.RELEASED
        liability = LedgerAccount.objects.get(kind=LedgerKind.VOUCHER)
        assert liability.balance == Decimal("-100.00")  # 2 × 50.00 owed to card holders
    detail = alice.get(f"/console/voucher-batches/{batch.pk}/").content.decode()
    assert "Still owed (yuan)" in detail


def test_a_cashier_redeems_a_card_and_lands_on_its_receipt(world: World) -> None:
    alice = _client(world.alice)
    batch, rows = _generate(world, alice)
    alice.post(f"/console/voucher-batches/{batch.pk}/release/")
    account = world.a.account(payment_mode="prepaid")
    bob = _client(world.bob)
    form = bob.get("/console/voucher-redemptions/new/")
    assert form.status_code == 200
    key = form.context["form"].value("idempotency_key")
    body = {"account": account.number, "serial": rows[0]["serial"], "pin": rows[0]["pin"],
            "idempotency_key": key}  # fmt: skip
    done = bob.post("/console/voucher-redemptions/new/", body)
    assert done.status_code == 302, done.content
    receipt_page = bob.get(done["Location"])
    with world.a.active():
        payment = Payment.objects.get(channel="voucher")
        receipt = Receipt.objects.get(payment=payment)
    text = receipt_page.content.decode()
    assert receipt.display_number in text
    assert f"/console/receipts/{receipt.pk}/" in text  # the receipt page, to print
    # The same form sent again (a double click) answers with the same payment.
    again = bob.post("/console/voucher-redemptions/new/", body)
    assert again["Location"] == done["Location"]
    with world.a.active():
        assert Payment.objects.count() == 1


def test_a_wrong_pin_is_refused_on_the_page_without_sending_the_pin_back(world: World) -> None:
    alice = _client(world.alice)
    batch, rows = _generate(world, alice)
    alice.post(f"/console/voucher-batches/{batch.pk}/release/")
    account = world.a.account(payment_mode="prepaid")
    bob = _client(world.bob)
    wrong = "1111 2222 3333 4444"
    response = bob.post(
        "/console/voucher-redemptions/new/",
        {"account": account.number, "serial": rows[0]["serial"], "pin": wrong,
         "idempotency_key": "k-1"},
    )  # fmt: skip
    assert response.status_code == 400
    page = response.content.decode()
    assert "The serial or the PIN is wrong: 4 tries left before this card locks" in page
    assert wrong not in page


def test_a_card_locked_by_wrong_pins_is_marked_in_the_list_with_its_unlock(world: World) -> None:
    alice = _client(world.alice)
    batch, rows = _generate(world, alice)
    alice.post(f"/console/voucher-batches/{batch.pk}/release/")
    account = world.a.account(payment_mode="prepaid")
    bob = _client(world.bob)
    for attempt in range(5):
        bob.post(
            "/console/voucher-redemptions/new/",
            {"account": account.number, "serial": rows[0]["serial"], "pin": "1111 2222 3333 4444",
             "idempotency_key": f"k-{attempt}"},
        )  # fmt: skip
    with world.a.active():
        card = VoucherCard.objects.get(serial=rows[0]["serial"].replace(" ", ""))
        until = vouchers.locked_until([card])[card.pk]
    shown = timezone.localtime(until).strftime("%H:%M")
    unlock_url = f"/console/voucher-cards/{card.pk}/unlock/"
    listed = alice.get("/console/voucher-cards/").content.decode()
    assert listed.count("Locked until") == 1  # the other card of the batch is not locked
    assert shown in listed
    assert unlock_url in listed  # an administrator unlocks it from the list
    by_cashier = bob.get("/console/voucher-cards/").content.decode()
    assert "Locked until" in by_cashier and unlock_url not in by_cashier
    chinese = _client(world.alice, "zh-hans").get("/console/voucher-cards/").content.decode()
    assert "已锁定" in chinese
    assert alice.post(unlock_url).status_code == 302
    assert "Locked until" not in alice.get("/console/voucher-cards/").content.decode()


def test_a_card_is_found_by_its_serial_as_printed(world: World) -> None:
    alice = _client(world.alice)
    _batch, rows = _generate(world, alice)
    bob = _client(world.bob)
    found = bob.get("/console/voucher-cards/", {"serial": rows[1]["serial"]})
    assert found.status_code == 200
    page = found.content.decode()
    assert rows[1]["serial"] in page
    assert rows[0]["serial"] not in page
    with world.a.active():
        card = VoucherCard.objects.get(serial=rows[1]["serial"].replace(" ", ""))
    detail = bob.get(f"/console/voucher-cards/{card.pk}/").content.decode()
    assert "Unredeemed" in detail
    assert rows[1]["pin"] not in detail
    assert "Void the card" not in detail  # a cashier does not void cards


def test_the_collect_menu_shows_each_person_the_voucher_pages_they_may_open(world: World) -> None:
    def menu(user: Any) -> dict[str, list[str]]:
        response = _client(user, "zh-hans").get("/console/")
        return {
            name: [link.label for link in links] for name, links in response.context["console_nav"]
        }

    bob, alice = menu(world.bob)["收费"], menu(world.alice)["收费"]
    assert {"充值卡缴费", "充值卡"} <= set(bob)
    assert "充值卡批次" not in bob  # batches are the administrators'
    assert {"充值卡", "充值卡批次"} <= set(alice)
    assert "充值卡缴费" not in alice  # redeeming is a cashier's
    page = _client(world.bob, "zh-hans").get("/console/voucher-redemptions/new/").content.decode()
    assert "16 位数字，在刮开涂层下。" in page


def test_a_batch_for_one_utility_says_which(world: World) -> None:
    admin = Principal.for_user(world.alice)
    with world.a.active():
        batch = vouchers.generate_batch(
            admin, face_value=Decimal("50.00"), count=2,
            expires_on=world.a.tenant.local_today() + timedelta(days=30), utility="electricity",
        )  # fmt: skip
    page = _client(world.alice, "zh-hans").get(f"/console/voucher-batches/{batch.pk}/")
    assert page.context["utility"] == "电"
