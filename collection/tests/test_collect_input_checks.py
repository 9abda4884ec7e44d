"""What a user trial typed into the collect stage and got accepted or answered badly: a refund's
bank account "abc", a recharge card batch of face value "1e2" or valid until 2126, a batch
released before anyone has its PINs, cash handed to the bank years before the shift that took
it closed, and "-1" answered as a typing error instead of an amount out of range."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from collection.models import CashHandover, Refund, VoucherBatch, VoucherBatchState
from collection.services import vouchers
from collection.services.errors import PaymentConflict
from collection.services.refunds import request_refund
from collection.services.shifts import hand_over_cash
from tests.world import World, unique

pytestmark = pytest.mark.django_db

D = Decimal
REFUNDS = "/api/v1/refunds/"
BATCHES = "/api/v1/voucher-batches/"
RANGE = "An amount is from"


def _english(world: World, user: object) -> APIClient:
    """An API client of ``user`` that asks for English (the tenant's default is Chinese)."""
    client = world.client_for(user)  # type: ignore[arg-type]
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def _fields(response: object) -> dict[str, list[str]]:
    return response.json()["error"]["fields"]  # type: ignore[attr-defined]


# --- 1. the refund's bank account ---------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["abc", "6222 0000 111", "62220000111", "6222-0000-1111-2222", "1" * 31]
)
def test_a_transfer_refund_to_something_that_is_no_bank_account_is_refused(
    world: World, typed: str
) -> None:
    deposit = world.a.deposit()
    with world.a.active(), pytest.raises(ValidationError) as refused:
        request_refund(
            world.a.cashier(), account=deposit.account, from_deposit=D("100.00"),
            channel="bank_transfer", reason="押金多收", payee_bank_account=typed,
        )  # fmt: skip
    [error] = refused.value.error_dict["payee_bank_account"]
    assert error.code == "invalid_bank_account"
    assert "12 至 30 位数字" in error.messages[0]  # the tenant's language
    with world.a.active():
        assert not Refund.objects.exists()


def test_a_bank_account_typed_in_groups_is_stored_as_its_digits(world: World) -> None:
    deposit = world.a.deposit()
    with world.a.active():
        refund = request_refund(
            world.a.cashier(), account=deposit.account, from_deposit=D("100.00"),
            channel="bank_transfer", reason="押金多收",
            payee_bank_account=" 6222 0200 1234 5678 901 ",
        )  # fmt: skip
        assert Refund.objects.get(pk=refund.pk).payee_bank_account == "6222020012345678901"


def test_the_api_refuses_a_bank_account_of_letters_naming_the_field(world: World) -> None:
    deposit = world.a.deposit()
    response = _english(world, world.bob).post(
        REFUNDS,
        {"account": deposit.account.number, "from_deposit": "100.00", "channel": "bank_transfer",
         "reason": "押金多收", "payee_bank_account": "abc"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert "12 to 30 digits" in " ".join(_fields(response)["payee_bank_account"])


def test_the_api_reads_refund_amounts_as_payments_do(world: World) -> None:
    deposit = world.a.deposit()
    response = _english(world, world.bob).post(
        REFUNDS,
        {"account": deposit.account.number, "from_deposit": "1e2", "channel": "cash",
         "reason": "押金多收"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert "not 1e3" in " ".join(_fields(response)["from_deposit"])


# --- 2. recharge card batches ---------------------------------------------------------------------


def _batch_body(**change: str) -> dict[str, object]:
    expires = (timezone.localdate() + timedelta(days=365)).isoformat()
    return {"face_value": "50.00", "count": 2, "expires_on": expires, **change}


def test_a_face_value_in_exponent_notation_is_refused_like_a_payment(world: World) -> None:
    response = _english(world, world.alice).post(
        BATCHES, _batch_body(face_value="1e2"), format="json"
    )
    assert response.status_code == 400, response.content
    assert "not 1e3" in " ".join(_fields(response)["face_value"])
    with world.a.active():
        assert not VoucherBatch.objects.exists()


def test_a_batch_valid_for_a_century_is_refused_with_the_last_day_allowed(world: World) -> None:
    response = _english(world, world.alice).post(
        BATCHES, _batch_body(expires_on="2126-01-01"), format="json"
    )
    assert response.status_code == 400, response.content
    latest = vouchers.latest_expiry(world.a.tenant.local_today())
    message = " ".join(_fields(response)["expires_on"])
    assert "at most 5 years" in message and latest.isoformat() in message
    five_years = _english(world, world.alice).post(
        BATCHES, _batch_body(expires_on=latest.isoformat()), format="json"
    )
    assert five_years.status_code == 201, five_years.content


def test_a_batch_is_not_released_before_its_pin_file_is_downloaded(world: World) -> None:
    alice = _english(world, world.alice)
    created = alice.post(BATCHES, _batch_body(), format="json")
    batch_id = created.json()["id"]
    early = alice.post(f"{BATCHES}{batch_id}/release/")
    assert early.status_code == 409, early.content
    assert early.json()["error"]["code"] == "pins_not_downloaded"
    assert "Download the batch's PIN file" in early.json()["error"]["message"]
    with world.a.active():
        assert VoucherBatch.objects.get(pk=batch_id).state == VoucherBatchState.GENERATED
    assert alice.post(f"{BATCHES}{batch_id}/pins/").status_code == 200
    assert alice.post(f"{BATCHES}{batch_id}/release/").status_code == 200


def test_the_service_refuses_to_release_a_batch_whose_pins_nobody_has(world: World) -> None:
    batch = world.a.voucher_batch(release=False)
    with world.a.active(), pytest.raises(PaymentConflict) as refused:
        vouchers.release_batch(world.a.system, batch)
    assert refused.value.code == "pins_not_downloaded"


# --- 3. the hand-over's day -----------------------------------------------------------------------


def test_cash_is_not_handed_to_the_bank_before_the_shift_that_took_it_closed(
    world: World,
) -> None:
    a = world.a
    cashier = a.cashier()
    assert cashier.user is not None
    a.cash_on_hand(cashier, a.sites[0], "300.00")
    today = a.tenant.local_today()
    with a.active():
        for day in (date(2020, 1, 1), today - timedelta(days=1)):
            with pytest.raises(ValidationError) as refused:
                hand_over_cash(
                    cashier, cashier=cashier.user, site=a.sites[0], amount=D("300.00"),
                    bank="icbc", slip_reference=unique("S-"), handed_on=day,
                )  # fmt: skip
            [error] = refused.value.error_dict["handed_on"]
            assert error.code == "before_close"
            assert today.isoformat() in error.messages[0]
        assert not CashHandover.objects.exists()
        handover, created = hand_over_cash(
            cashier, cashier=cashier.user, site=a.sites[0], amount=D("300.00"), bank="icbc",
            slip_reference=unique("S-"), handed_on=today,
        )  # fmt: skip
        assert created and handover.handed_on == today


def test_the_api_refuses_a_hand_over_dated_before_the_close(world: World) -> None:
    a = world.a
    a.cash_on_hand(a.cashier_principal(world.bob), a.sites[0], "300.00")
    response = _english(world, world.bob).post(
        "/api/v1/cash-handovers/",
        {"site": a.sites[0].pk, "amount": "300.00", "bank": "icbc", "slip_reference": "S-1",
         "handed_on": "2020-01-01"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert "cannot have been handed" in " ".join(_fields(response)["handed_on"])


# --- 4. a negative amount is out of range, not mistyped ------------------------------------------


def test_a_negative_payment_amount_gets_the_range_message(world: World) -> None:
    response = _english(world, world.bob).post(
        "/api/v1/payments/",
        {"account": world.a.account().number, "channel": "counter_cash", "amount": "-1",
         "idempotency_key": unique("k")},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    message = " ".join(_fields(response)["amount"])
    assert RANGE in message and "1e3" not in message


def test_a_negative_hand_over_gets_the_range_message(world: World) -> None:
    a = world.a
    response = _english(world, world.bob).post(
        "/api/v1/cash-handovers/",
        {"site": a.sites[0].pk, "amount": "-1", "bank": "icbc", "slip_reference": "S-2"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 400, response.content
    message = " ".join(_fields(response)["amount"])
    assert RANGE in message and "1e3" not in message
