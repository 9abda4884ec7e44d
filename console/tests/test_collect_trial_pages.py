"""What a user trial of the collect pages found, each as the person met it: amounts typed as
"1e2" or "-1", a bank account "abc", a card serial "abc", searches that blamed a check digit
for a number that was no account number, labels that said the wrong thing, and forms offered
where the action could not be done."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from collection.models import Deposit, Refund, Shift, VoucherBatch, VoucherCardState
from collection.services.shifts import close_shift
from console.demo import DEMO_STAFF
from customers.identifiers import make_account_number
from metering.models import Meter
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user: Any, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _errors(response: Any, name: str) -> str:
    return " ".join(response.context["form"].errors.get(name, []))


@pytest.fixture
def bob_on_shift(world: World) -> None:
    """bob takes money at the counter of site A1 in his open shift."""
    world.a.on_shift(world.bob, world.a.sites[0])


# --- amounts: the payments' parsing everywhere, "-1" out of range --------------------------------


@pytest.mark.usefixtures("bob_on_shift")
def test_a_negative_counter_amount_gets_the_range_message(world: World) -> None:
    account = world.a.account()
    response = _client(world.bob).post(
        reverse("console:counter-account", args=[account.pk]),
        {"channel": "counter_cash", "amount": "-1", "idempotency_key": "k-1", "post": "1"},
    )
    assert response.status_code == 400
    message = _errors(response, "amount")
    assert "An amount is from 0.01" in message and "1e3" not in message


@pytest.mark.usefixtures("bob_on_shift")
def test_a_negative_cash_count_at_close_gets_the_range_message(world: World) -> None:
    response = _client(world.bob).post(
        "/console/my-shift/", {"counted_cash": "-1", "counted_card": "1e2"}
    )
    assert response.status_code == 400
    message = _errors(response, "counted_cash")
    assert "An amount is from 0.00" in message and "1e3" not in message
    assert "not 1e3" in _errors(response, "counted_card")


def test_a_negative_hand_over_on_the_page_gets_the_range_message(world: World) -> None:
    a = world.a
    a.cash_on_hand(a.cashier_principal(world.bob), a.sites[0], "300.00")
    response = _client(world.bob).post(
        "/console/cash-handovers/new/",
        {"site": a.sites[0].pk, "amount": "-1", "bank": "icbc", "slip_reference": "S-1"},
    )
    assert response.status_code == 400
    message = _errors(response, "amount")
    assert "An amount is from 0.01" in message and "1e3" not in message


def test_a_hand_over_dated_before_the_shift_closed_is_refused_beside_the_day(world: World) -> None:
    a = world.a
    a.cash_on_hand(a.cashier_principal(world.bob), a.sites[0], "300.00")
    response = _client(world.bob).post(
        "/console/cash-handovers/new/",
        {"site": a.sites[0].pk, "amount": "300.00", "bank": "icbc", "slip_reference": "S-1",
         "handed_on": "2020-01-01"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "cannot have been handed to the bank before" in _errors(response, "handed_on")


def test_a_batch_of_face_value_1e2_or_valid_for_a_century_is_refused_on_the_form(
    world: World,
) -> None:
    alice = _client(world.alice)
    expires = (timezone.localdate() + timedelta(days=200)).isoformat()
    exponent = alice.post(
        "/console/voucher-batches/new/",
        {"face_value": "1e2", "count": "2", "expires_on": expires},
    )
    assert exponent.status_code == 400
    assert "not 1e3" in _errors(exponent, "face_value")
    century = alice.post(
        "/console/voucher-batches/new/",
        {"face_value": "100.00", "count": "2", "expires_on": "2126-01-01"},
    )
    assert century.status_code == 400
    assert "at most 5 years" in _errors(century, "expires_on")
    with world.a.active():
        assert not VoucherBatch.objects.exists()


# --- refunds --------------------------------------------------------------------------------------


def _refund_body(account_number: str, **change: str) -> dict[str, str]:
    return {"account": account_number, "from_deposit": "100.00", "channel": "bank_transfer",
            "payee_bank_account": "6222 0200 1234 5678", "payee_bank": "工商银行",
            "reason": "押金多收", **change}  # fmt: skip


def test_a_transfer_refund_to_abc_is_refused_beside_the_bank_account(world: World) -> None:
    deposit = world.a.deposit()
    client = _client(world.bob)
    refused = client.post(
        "/console/refunds/", _refund_body(deposit.account.number, payee_bank_account="abc")
    )
    assert refused.status_code == 400
    assert "12 to 30 digits" in _errors(refused, "payee_bank_account")
    done = client.post("/console/refunds/", _refund_body(deposit.account.number))
    assert done.status_code == 302
    with world.a.active():
        assert Refund.objects.get().payee_bank_account == "6222020012345678"


def test_a_refund_amount_is_read_as_a_payment_is(world: World) -> None:
    deposit = world.a.deposit()
    response = _client(world.bob).post(
        "/console/refunds/",
        _refund_body(deposit.account.number, from_deposit="1e2", channel="cash"),
    )
    assert response.status_code == 400
    assert "not 1e3" in _errors(response, "from_deposit")


def test_a_refund_with_no_amount_says_so_without_a_field_name(world: World) -> None:
    deposit = world.a.deposit()
    response = _client(world.bob).post(
        "/console/refunds/",
        _refund_body(deposit.account.number, from_deposit="", channel="cash"),
    )
    assert response.status_code == 400
    assert response.context["form"].non_field_errors == ["A refund is of at least 0.01 yuan."]
    assert "amount:" not in response.content.decode()


@pytest.mark.usefixtures("bob_on_shift")
def test_the_refund_steps_say_requested_and_paid_in_refund_words(world: World) -> None:
    refund = world.a.refund(state="approved")
    client = _client(world.bob, "zh-hans")
    assert client.post(f"/console/refunds/{refund.pk}/", {"do": "pay"}).status_code == 302
    page = client.get(f"/console/refunds/{refund.pk}/").content.decode()
    assert "申请:" in page and "付款:" in page
    assert "下发时间" not in page and "实收" not in page


# --- recharge cards -------------------------------------------------------------------------------


def test_a_card_serial_or_pin_of_the_wrong_shape_says_what_is_expected(world: World) -> None:
    account = world.a.account(payment_mode="prepaid")
    bob = _client(world.bob)
    form = bob.get("/console/voucher-redemptions/new/").content.decode()
    assert 'title="12 digits, as printed on the card."' in form
    assert 'title="16 digits, under the scratch panel."' in form
    response = bob.post(
        "/console/voucher-redemptions/new/",
        {"account": account.number, "serial": "abc", "pin": "12345", "idempotency_key": "k-1"},
    )
    assert response.status_code == 400
    assert "A card serial is 12 digits" in _errors(response, "serial")
    assert "A PIN is 16 digits" in _errors(response, "pin")


def test_a_batch_offers_its_release_only_once_the_pins_are_downloaded(world: World) -> None:
    batch = world.a.voucher_batch(
        by=Principal.for_user(world.alice), release=False, pins_downloaded=False
    )
    alice = _client(world.alice)
    page = alice.get(f"/console/voucher-batches/{batch.pk}/").content.decode()
    assert "Release for sale…" not in page
    assert "once its PIN file has been downloaded" in page
    confirm = alice.get(f"/console/voucher-batches/{batch.pk}/release/", follow=True)
    assert "once its PIN file has been downloaded" in confirm.content.decode()
    refused = alice.post(f"/console/voucher-batches/{batch.pk}/release/")
    assert refused.status_code == 400
    assert "PIN file before releasing it" in refused.content.decode()
    alice.post(f"/console/voucher-batches/{batch.pk}/pins/")
    page = alice.get(f"/console/voucher-batches/{batch.pk}/").content.decode()
    assert "Release for sale…" in page


def test_the_void_page_of_a_void_card_says_why_instead_of_asking_for_a_reason(
    world: World,
) -> None:
    card = world.a.voucher_card()
    alice = _client(world.alice)
    assert alice.post(f"/console/voucher-cards/{card.pk}/void/", {"reason": "丢失"}).status_code
    with world.a.active():
        card.refresh_from_db()
        assert card.state == VoucherCardState.VOID
    again = alice.get(f"/console/voucher-cards/{card.pk}/void/", follow=True)
    page = again.content.decode()
    assert "Only an unredeemed card is voided" in page
    assert 'name="reason"' not in page


# --- the counter's search -------------------------------------------------------------------------


@pytest.mark.usefixtures("bob_on_shift")
def test_what_could_be_a_serial_or_part_of_a_number_is_not_found_rather_than_mistyped(
    world: World,
) -> None:
    a = world.a
    account = a.account()
    elsewhere = a.meter(a.sites[1])  # bob's grant is for all sites; carol's only for A2
    with a.active():
        Meter.objects.filter(pk=elsewhere.pk).update(serial_number="1502000123")
    cashier_a = _client(a.staff((Role.CASHIER, a.sites[0])))
    for query in ("1502000", account.number[:-1], "1502000123"):
        response = cashier_a.get("/console/counter/", {"q": query})
        assert response.status_code == 200
        html = response.content.decode()
        assert "The check digit of" not in html, query
        assert "No account found among the accounts of your sites." in html
        assert "full account number with its check digit" in html
    full = make_account_number(987654321)
    mistyped = full[:-1] + str((int(full[-1]) + 1) % 10)
    html = cashier_a.get("/console/counter/", {"q": mistyped}).content.decode()
    assert "The check digit of" in html


# --- deposits -------------------------------------------------------------------------------------


def test_the_deposits_page_blames_the_check_digit_of_a_mistyped_number(world: World) -> None:
    account = world.a.account()
    mistyped = account.number[:-1] + str((int(account.number[-1]) + 1) % 10)
    page = _client(world.bob).get("/console/deposits/", {"account": mistyped}).content.decode()
    assert "The check digit of" in page and "No such account." not in page


@pytest.mark.usefixtures("bob_on_shift")
def test_an_empty_deposit_amount_is_missing_not_out_of_range(world: World) -> None:
    account = world.a.account()
    response = _client(world.bob).post(
        "/console/deposits/",
        {"account": account.number, "channel": "counter_cash", "amount": "",
         "idempotency_key": "k-1"},
    )  # fmt: skip
    assert response.status_code == 400
    assert _errors(response, "amount") == "Enter the amount."


def test_without_an_open_shift_the_deposit_form_is_replaced_by_the_way_to_open_one(
    world: World,
) -> None:
    account = world.a.account()
    page = _client(world.bob).get("/console/deposits/", {"account": account.number})
    html = page.content.decode()
    assert "You have no open shift" in html and "/console/my-shift/" in html
    assert "Take the deposit" not in html


@pytest.mark.usefixtures("bob_on_shift")
def test_a_card_deposits_receipt_shows_its_slip_and_the_lists_say_deposit_receipt(
    world: World,
) -> None:
    account = world.a.account()
    client = _client(world.bob, "zh-hans")
    taken = client.post(
        "/console/deposits/",
        {"account": account.number, "channel": "counter_card", "amount": "500.00",
         "external_reference": "POS-778899", "idempotency_key": "k-1"},
    )  # fmt: skip
    assert taken.status_code == 302, taken.content
    with world.a.active():
        deposit = Deposit.objects.get()
    receipt = client.get(f"/console/deposits/{deposit.pk}/receipt/").content.decode()
    assert "POS-778899" in receipt
    for listed in (
        client.get("/console/deposits/"),
        client.get("/console/deposits/", {"account": account.number}),
    ):
        html = listed.content.decode()
        assert "押金收据" in html and "收费收据" not in html


# --- the shift's decision -------------------------------------------------------------------------


def test_a_supervisor_is_told_why_they_may_not_decide_on_their_own_shift(world: World) -> None:
    a = world.a
    both = a.staff((Role.CASHIER, a.sites[0]), (Role.SITE_MANAGER, a.sites[0]))
    principal = Principal.for_user(both)
    shift = a.shift(a.sites[0], by=principal)
    with a.active():
        close_shift(principal, shift, counted_cash=Decimal("95.00"), counted_card=Decimal("0"))
        assert Shift.objects.get(pk=shift.pk).state == "pending"
    own = _client(both).get(f"/console/shifts/{shift.pk}/").content.decode()
    assert "Nobody approves a difference of their own shift or count." in own
    assert "Record the decision" not in own
    other = a.staff((Role.SITE_MANAGER, a.sites[0]))
    assert (
        "Record the decision" in _client(other).get(f"/console/shifts/{shift.pk}/").content.decode()
    )


def test_the_demo_staff_are_named_without_their_role_which_pages_add() -> None:
    """ "收费员: 收费员 周强" and "库存现金 收费员 收费员 周强" came from names holding the role."""
    with translation.override("zh-hans"):
        for staff in DEMO_STAFF:
            assert str(Role(staff.role).label) not in staff.display_name, staff
