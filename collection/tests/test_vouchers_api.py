"""The recharge card endpoints: a batch generated, its PIN file handed over once, released;
cards listed without PINs; a card redeemed at the counter (a retry answers the first, a wrong
PIN and an unknown serial answer alike); a batch voided; the daily expiry task; and the other
tenant (mallory) and another site's cashier (carol) seeing and touching nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from collection.models import Payment, PaymentAttempt, VoucherBatch, VoucherCard
from collection.services import vouchers
from collection.tasks import expire_vouchers_due
from ledger.models import LedgerAccount, LedgerKind
from tenancy.models import AuditEvent
from tests.world import World, unique

pytestmark = pytest.mark.django_db

BATCHES = "/api/v1/voucher-batches/"
CARDS = "/api/v1/voucher-cards/"
REDEEM = "/api/v1/voucher-redemptions/"


def _released(world: World, count: int = 2) -> tuple[int, list[dict[str, str]]]:
    """A batch generated, its PINs downloaded and released by alice, through the API."""
    alice = world.client_for(world.alice)
    last_day = (timezone.localdate() + timedelta(days=90)).isoformat()
    made = alice.post(
        BATCHES, {"face_value": "30.00", "count": count, "expires_on": last_day}, format="json"
    )
    assert made.status_code == 201, made.content
    batch_id = made.json()["id"]
    assert made.json()["pins_available"] is True
    pins = alice.post(f"{BATCHES}{batch_id}/pins/")
    assert pins.status_code == 200
    assert pins["Content-Type"].startswith("text/csv")
    assert pins["Cache-Control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(pins.content.decode())))
    released = alice.post(f"{BATCHES}{batch_id}/release/")
    assert released.status_code == 200, released.content
    return batch_id, rows


def _redemption(account_number: str, row: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {
        "account": account_number,
        "serial": row["serial"],
        "pin": row["pin"],
        "idempotency_key": unique("till-"),
        **fields,
    }


def test_a_batch_is_generated_its_pins_handed_over_once_and_released(world: World) -> None:
    batch_id, rows = _released(world, count=3)
    alice = world.client_for(world.alice)
    second = alice.post(f"{BATCHES}{batch_id}/pins/")
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "pins_downloaded"
    detail = alice.get(f"{BATCHES}{batch_id}/").json()
    assert detail["state"] == "released"
    assert detail["cards"] == {"unredeemed": 3, "redeemed": 0, "void": 0, "expired": 0}
    assert detail["outstanding"] == "90.00"  # 3 × 30.00
    assert detail["pins_available"] is False
    listed = world.client_for(world.bob).get(CARDS, {"batch": batch_id}).json()["results"]
    assert len(listed) == 3
    assert all("pin" not in card and "pin_hash" not in card for card in listed)
    assert {card["serial"] for card in listed} == {row["serial"].replace(" ", "") for row in rows}


def test_a_cashier_redeems_a_card_and_a_retry_answers_the_first_payment(world: World) -> None:
    _batch_id, rows = _released(world)
    account = world.a.account(payment_mode="prepaid")
    bob = world.client_for(world.bob)
    request = _redemption(account.number, rows[0])
    first = bob.post(REDEEM, request, format="json")
    assert first.status_code == 201, first.content
    paid = first.json()
    assert (paid["channel"], paid["amount"], paid["surplus"]) == ("voucher", "30.00", "30.00")
    assert paid["receipt"]["number"]
    retry = bob.post(REDEEM, request, format="json")
    assert (retry.status_code, retry.json()["id"]) == (200, paid["id"])
    listed = bob.get(REDEEM).json()["results"]
    assert [(row["id"], row["external_reference"]) for row in listed] == [
        (paid["id"], rows[0]["serial"].replace(" ", ""))
    ]
    again = bob.post(REDEEM, _redemption(account.number, rows[0]), format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "card_redeemed"
    with world.a.active():
        wallet = LedgerAccount.objects.get(account=account, kind=LedgerKind.WALLET)
        assert wallet.balance == Decimal("-30.00")
        assert LedgerAccount.objects.get(kind=LedgerKind.VOUCHER).balance == Decimal("-30.00")


def test_a_wrong_pin_and_an_unknown_serial_answer_alike_and_are_recorded(world: World) -> None:
    _batch_id, rows = _released(world)
    account = world.a.account(payment_mode="prepaid")
    bob = world.client_for(world.bob)
    wrong = bob.post(
        REDEEM, _redemption(account.number, rows[0], pin="0000000000000000"), format="json"
    )
    unknown = bob.post(
        REDEEM,
        _redemption(account.number, {"serial": vouchers.make_serial(77_777), "pin": "1" * 16}),
        format="json",
    )
    assert wrong.status_code == unknown.status_code == 400
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "wrong_pin"
    # the tries the serial has left before it locks, for the till's program and its cashier
    assert wrong.json()["error"]["tries_left"] == 4
    assert "还可再试 4 次" in wrong.json()["error"]["message"]  # 4 tries left, in Chinese
    with world.a.active():
        codes = list(PaymentAttempt.objects.values_list("code", flat=True))
        assert codes == ["wrong_pin", "wrong_pin"]
        assert not any("0000000000000000" in repr(a.__dict__) for a in PaymentAttempt.objects.all())


def test_a_card_locked_by_wrong_pins_says_so_and_until_when(world: World) -> None:
    _batch_id, rows = _released(world)
    account = world.a.account(payment_mode="prepaid")
    bob = world.client_for(world.bob)
    answers = [
        bob.post(REDEEM, _redemption(account.number, rows[0], pin="0" * 16), format="json")
        for _ in range(5)
    ]
    assert [answer.json()["error"]["tries_left"] for answer in answers] == [4, 3, 2, 1, 0]
    locked = bob.post(REDEEM, _redemption(account.number, rows[0]), format="json")
    assert (locked.status_code, locked.json()["error"]["code"]) == (400, "card_locked")
    assert "tries_left" not in locked.json()["error"]
    serial = rows[0]["serial"].replace(" ", "")
    [card] = bob.get(CARDS, {"serial": serial}).json()["results"]
    assert card["locked"] is True and card["locked_until"] is not None
    [other] = bob.get(CARDS, {"serial": rows[1]["serial"].replace(" ", "")}).json()["results"]
    assert (other["locked"], other["locked_until"]) == (False, None)


def test_a_typo_in_the_serial_is_caught_by_its_check_digit(world: World) -> None:
    _batch_id, rows = _released(world)
    serial = rows[0]["serial"].replace(" ", "")
    typo = serial[:-1] + str((int(serial[-1]) + 1) % 10)
    response = world.client_for(world.bob).post(
        REDEEM, _redemption(world.a.account().number, rows[0], serial=typo), format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_serial"


def test_voiding_a_batch_leaves_nothing_to_redeem(world: World) -> None:
    batch_id, rows = _released(world)
    alice = world.client_for(world.alice)
    assert alice.post(f"{BATCHES}{batch_id}/void/", {}, format="json").status_code == 400
    voided = alice.post(f"{BATCHES}{batch_id}/void/", {"reason": "运输途中丢失"}, format="json")
    assert voided.status_code == 200
    assert voided.json()["cards"]["void"] == 2
    assert voided.json()["outstanding"] == "0.00"
    refused = world.client_for(world.bob).post(
        REDEEM, _redemption(world.a.account().number, rows[0]), format="json"
    )
    assert refused.json()["error"]["code"] == "card_void"
    with world.a.active():
        assert LedgerAccount.objects.get(kind=LedgerKind.VOUCHER).balance == Decimal("0.00")


def test_the_daily_task_expires_cards_past_their_last_day(world: World, eager_tasks: None) -> None:
    _batch_id, _rows = _released(world)
    with world.a.active():
        VoucherBatch.objects.update(expires_on=timezone.localdate() - timedelta(days=1))
    assert expire_vouchers_due() >= 1
    with world.a.active():
        assert set(VoucherCard.objects.values_list("state", flat=True)) == {"expired"}
        assert LedgerAccount.objects.get(kind=LedgerKind.VOUCHER).balance == Decimal("0.00")
        income = LedgerAccount.objects.get(kind=LedgerKind.REVENUE, component="expired_vouchers")
        assert income.balance == Decimal("-60.00")  # 2 × 30.00 taken to income
        assert AuditEvent.objects.filter(action="voucher_card.expired").count() == 1


def test_mallory_and_carol_see_and_touch_nothing(world: World) -> None:
    batch_id, rows = _released(world)
    mallory = world.client_for(world.mallory)
    assert mallory.get(f"{BATCHES}{batch_id}/").status_code == 404
    assert mallory.post(f"{BATCHES}{batch_id}/pins/").status_code == 404
    assert mallory.post(f"{BATCHES}{batch_id}/void/", {"reason": "x"}).status_code == 404
    assert mallory.get(CARDS).json()["results"] == []
    # Mallory's cashier naming A's account and card: no such account in B.
    b_cashier = world.b.staff(("cashier", None))
    stolen = world.client_for(b_cashier).post(
        REDEEM, _redemption(world.a.account().number, rows[0]), format="json"
    )
    assert stolen.status_code == 400
    # Carol holds every role for site A2 only: an account of A1 is not hers to top up.
    on_a1 = world.a.account(world.a.sites[0])
    response = world.client_for(world.carol).post(
        REDEEM, _redemption(on_a1.number, rows[0]), format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["account"]
    with world.a.active():
        assert not Payment.objects.exists()
        assert VoucherBatch.objects.get(pk=batch_id).state == "released"
