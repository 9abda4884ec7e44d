"""Recharge cards (充值卡) as worked examples: generation with the PINs stored only as keyed
hashes and handed over once, release to the sellers, redemption onto open bills and onto a
prepaid wallet, wrong-PIN lockout, retries, void, expiry, and the ledger after each."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone, translation

from collection.models import (
    Channel,
    Payment,
    PaymentAttempt,
    Receipt,
    VoucherBatch,
    VoucherBatchState,
    VoucherCard,
    VoucherCardState,
    VoucherPinFile,
)
from collection.services import vouchers
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.reversal import reverse_payment
from collection.tests.test_allocation import at, balance, lines, tenant_balance
from customers.models import Account
from ledger.checks import check_ledger
from ledger.models import LedgerAccount, LedgerKind
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, unique

TODAY = date(2026, 10, 15)
NOW = at(TODAY)


def admin(world: TenantWorld) -> Principal:
    return Principal.for_user(world.staff((Role.TENANT_ADMIN, None)))


def new_batch(
    world: TenantWorld,
    *,
    by: Principal | None = None,
    face: str = "50.00",
    count: int = 4,
    expires_on: date = date(2027, 6, 30),
    release: bool = True,
    utility: str = "",
) -> tuple[VoucherBatch, dict[str, str], Principal]:
    """A batch, its PINs by serial (from the one-time file) and the admin who made it."""
    by = by or admin(world)
    batch = vouchers.generate_batch(
        by, face_value=Decimal(face), count=count, expires_on=expires_on, utility=utility,
        now=at(TODAY - timedelta(days=30)),
    )  # fmt: skip
    pin_file = vouchers.download_pins(by, batch)
    rows = list(csv.DictReader(io.StringIO(pin_file.content)))
    pins = {row["serial"].replace(" ", ""): row["pin"].replace(" ", "") for row in rows}
    if release:
        batch = vouchers.release_batch(by, batch, now=at(TODAY - timedelta(days=29)))
    return batch, pins, by


def redeem(
    world: TenantWorld,
    account: Account,
    serial: str,
    pin: str,
    *,
    by: Principal | None = None,
    key: str | None = None,
    day: date = TODAY,
) -> Payment:
    return vouchers.redeem_card(
        by or world.cashier(), account=account, serial=serial, pin=pin,
        idempotency_key=key or unique("v"), now=at(day),
    ).payment  # fmt: skip


def code_of(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return str(next(e.code for errors in error.error_dict.values() for e in errors))
    return str(error.code)


def unknown_serial(number: int) -> str:
    return vouchers.make_serial(90_000_000_000 - number)


# --- generation and the PIN file ---------------------------------------------------------------


def test_a_batch_stores_only_keyed_hashes_of_the_pins_and_hands_the_file_over_once(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    by = admin(a)
    batch = vouchers.generate_batch(
        by, face_value=Decimal("100.00"), count=3, expires_on=date(2027, 6, 30), note="春节"
    )
    cards = list(VoucherCard.objects.filter(batch=batch).order_by("serial"))
    assert [card.state for card in cards] == ["unredeemed"] * 3
    for card in cards:
        assert vouchers.serial_problem(card.serial) is None  # 12 digits, the last a check digit

    pin_file = vouchers.download_pins(by, batch)
    assert pin_file.filename == f"recharge-cards-{batch.number:06d}.csv"
    rows = list(csv.DictReader(io.StringIO(pin_file.content)))
    assert [row["serial"].replace(" ", "") for row in rows] == [card.serial for card in cards]
    assert {row["face_value"] for row in rows} == {"100.00"}
    pins = [row["pin"].replace(" ", "") for row in rows]
    assert all(len(pin) == 16 and pin.isdigit() for pin in pins)
    # The stored hash is HMAC-SHA256 under the server's key, not the PIN, and the PIN appears
    # nowhere in the database once the file is handed over.
    key = vouchers.pin_key()
    for card, pin in zip(cards, pins, strict=True):
        expected = hmac.new(key, f"{a.tenant.pk}:{card.serial}:{pin}".encode(), hashlib.sha256)
        assert card.pin_hash == expected.hexdigest()
        assert card.pin_hash != hashlib.sha256(pin.encode()).hexdigest()
    assert not VoucherPinFile.objects.filter(batch=batch).exists()
    with connection.cursor() as cursor:
        for table in ("collection_vouchercard", "collection_voucherbatch", "tenancy_auditevent"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            dump = repr(cursor.fetchall())
            assert not any(pin in dump for pin in pins), table

    with pytest.raises(PaymentConflict) as second:
        vouchers.download_pins(by, batch)
    assert second.value.code == "pins_downloaded"
    assert "无法再次显示" in second.value.messages[0]  # cannot be shown again
    events = AuditEvent.objects.filter(object_id=str(batch.pk), action__startswith="voucher")
    actions = events.values_list("action", flat=True)
    assert sorted(actions) == [
        "voucher_batch.generated", "voucher_batch.pins_downloaded", "voucher_batch.pins_refused"
    ]  # fmt: skip


def test_only_the_admin_who_generated_a_batch_downloads_its_pins(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    creator = admin(a)
    batch = vouchers.generate_batch(
        creator, face_value=Decimal("20.00"), count=1, expires_on=date(2027, 6, 30)
    )
    with pytest.raises(PermissionDenied):
        vouchers.download_pins(admin(a), batch)
    assert AuditEvent.objects.filter(action="voucher_batch.pins_refused").count() == 1
    assert VoucherPinFile.objects.filter(batch=batch).exists()  # still there for its creator
    vouchers.void_batch(creator, batch, "印制前作废", now=NOW)
    assert not VoucherPinFile.objects.filter(batch=batch).exists()  # destroyed unread
    with pytest.raises(PaymentConflict) as void:
        vouchers.download_pins(creator, batch)
    assert void.value.code == "batch_void"


def test_ten_thousand_cards_generate_in_seconds_in_one_transaction(
    in_tenant_a: TenantWorld,
) -> None:
    started = time.monotonic()
    batch = vouchers.generate_batch(
        admin(in_tenant_a), face_value=Decimal("50.00"), count=10_000,
        expires_on=date(2027, 6, 30),
    )  # fmt: skip
    elapsed = time.monotonic() - started
    print(f"10,000 cards generated in {elapsed:.2f} s")
    assert VoucherCard.objects.filter(batch=batch).count() == 10_000
    assert len(set(VoucherCard.objects.filter(batch=batch).values_list("serial", flat=True))) == (
        10_000
    )
    assert elapsed < 30


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("count", 0, "out_of_range"),
        ("count", 10_001, "out_of_range"),
        ("face_value", Decimal("0.50"), "out_of_range"),
        ("expires_on", date(2020, 1, 1), "in_past"),
    ],
)
def test_a_batch_out_of_bounds_is_refused_and_nothing_is_written(
    in_tenant_a: TenantWorld, field: str, value: object, code: str
) -> None:
    values: dict[str, object] = {
        "face_value": Decimal("50.00"), "count": 2, "expires_on": date(2027, 6, 30)
    }  # fmt: skip
    values[field] = value
    with pytest.raises(ValidationError) as refused:
        vouchers.generate_batch(admin(in_tenant_a), **values)  # type: ignore[arg-type]
    assert code_of(refused.value) == code
    assert not VoucherBatch.objects.exists()
    assert not VoucherCard.objects.exists()


# --- release and redemption --------------------------------------------------------------------


def test_release_books_the_cards_as_owed_to_the_customers_who_will_redeem_them(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    batch, _pins, by = new_batch(a, release=False)
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("0.00")  # printed cards owe nothing
    vouchers.release_batch(by, batch, now=NOW)
    # 4 cards × 50.00 = 200.00: Dr sellers' clearing 200.00, Cr voucher liability 200.00.
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("-200.00")
    clearing = LedgerAccount.objects.get(kind=LedgerKind.CLEARING, holder="voucher_sales")
    assert clearing.balance == Decimal("200.00")
    with pytest.raises(PaymentConflict):
        vouchers.release_batch(by, batch, now=NOW)
    assert check_ledger(a.tenant) == []


def test_a_card_redeemed_pays_the_oldest_bill_late_fee_first_like_any_payment(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()  # residential, postpaid
    bill = a.issued_bill(account, "100.00", date(2026, 9, 15))
    _batch, pins, _by = new_batch(a)  # 4 × 50.00 released: liability 200.00
    serial = sorted(pins)[0]
    payment = redeem(a, account, serial, pins[serial])
    # 2026-10-15: the bill is 30 days late, 100.00 × 1‰ × 30 = 3.00; the card's 50.00 pays the
    # fee 3.00 and 47.00 of the principal.
    assert payment.channel == Channel.VOUCHER
    assert (payment.amount, payment.late_fees, payment.principal, payment.surplus) == (
        Decimal("50.00"), Decimal("3.00"), Decimal("47.00"), Decimal("0.00")
    )  # fmt: skip
    assert payment.external_reference == serial
    assert lines(payment) == [
        ("late_fees", "-3.00", f"bill:{bill.pk}"),
        ("receivable", "-47.00", f"bill:{bill.pk}"),
        ("voucher", "50.00", ""),
    ]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("53.00")  # 100.00 − 47.00
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("-150.00")  # 200.00 − 50.00 owed
    assert Receipt.objects.filter(payment=payment).exists()
    card = VoucherCard.objects.get(serial=serial)
    assert (card.state, card.payment_id) == (VoucherCardState.REDEEMED, payment.pk)
    assert AuditEvent.objects.filter(action="voucher_card.redeemed", object_id=str(card.pk))
    assert check_ledger(a.tenant) == []


def test_a_card_redeemed_onto_a_prepaid_account_tops_up_its_wallet(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    _batch, pins, _by = new_batch(a, face="100.00", count=1)
    [(serial, pin)] = pins.items()
    payment = redeem(a, account, f"{serial[:4]} {serial[4:8]}-{serial[8:]}", pin)  # as typed
    # No bills: the 100.00 goes to the wallet. Dr voucher liability 100.00, Cr wallet 100.00.
    assert lines(payment) == [("voucher", "100.00", ""), ("wallet", "-100.00", "surplus")]
    assert balance(account, LedgerKind.WALLET) == Decimal("-100.00")  # the customer's 100.00
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("0.00")
    assert check_ledger(a.tenant) == []


def test_a_retry_answers_the_first_redemption_and_a_second_redemption_is_refused(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    _batch, pins, _by = new_batch(a, count=2)
    first_serial, second_serial = sorted(pins)
    cashier = a.cashier()
    first = redeem(a, account, first_serial, pins[first_serial], by=cashier, key="k1")
    again = vouchers.redeem_card(
        cashier, account=account, serial=first_serial, pin=pins[first_serial],
        idempotency_key="k1", now=NOW,
    )  # fmt: skip
    assert (again.payment.pk, again.created) == (first.pk, False)
    with pytest.raises(PaymentConflict) as redeemed:
        redeem(a, account, first_serial, pins[first_serial], by=cashier, key="k2")
    assert redeemed.value.code == "card_redeemed"
    with pytest.raises(PaymentConflict) as reused:
        redeem(a, account, second_serial, pins[second_serial], by=cashier, key="k1")
    assert reused.value.code == "idempotency_conflict"
    assert Payment.objects.count() == 1
    assert balance(account, LedgerKind.WALLET) == Decimal("-50.00")
    codes = set(PaymentAttempt.objects.values_list("code", flat=True))
    assert codes == {"card_redeemed", "idempotency_conflict"}
    assert check_ledger(a.tenant) == []


def test_a_voucher_is_still_refused_when_posted_as_a_payment(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    with pytest.raises(ValidationError) as refused:
        post_payment(
            a.cashier(), account=a.account(), channel=Channel.VOUCHER, amount=Decimal("50.00"),
            idempotency_key="x",
        )  # fmt: skip
    assert code_of(refused.value) == "channel_not_allowed"


@pytest.mark.parametrize(
    ("setup", "code"),
    [("void", "card_void"), ("expired", "card_expired"), ("unreleased", "not_released")],
)
def test_void_expired_and_unreleased_cards_are_refused_with_their_code(
    in_tenant_a: TenantWorld, setup: str, code: str
) -> None:
    a = in_tenant_a
    expires_on = TODAY - timedelta(days=1) if setup == "expired" else date(2027, 6, 30)
    _batch, pins, by = new_batch(a, release=setup != "unreleased", expires_on=expires_on)
    serial = sorted(pins)[0]
    if setup == "void":
        vouchers.void_card(by, VoucherCard.objects.get(serial=serial), "丢失", now=NOW)
    with pytest.raises(ValidationError) as refused:
        redeem(a, a.account(), serial, pins[serial])
    assert code_of(refused.value) == code
    assert not Payment.objects.exists()


def test_a_card_for_water_does_not_top_up_an_electricity_account(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    _batch, pins, _by = new_batch(a, utility="water", count=1)
    [(serial, pin)] = pins.items()
    with pytest.raises(ValidationError) as refused:
        redeem(a, a.account(), serial, pin)  # electricity by default
    assert code_of(refused.value) == "wrong_utility"


# --- brute force ---------------------------------------------------------------------------


def test_five_wrong_pins_lock_a_card_until_an_admin_unlocks_it(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    _batch, pins, by = new_batch(a, count=1)
    [(serial, pin)] = pins.items()
    wrong = f"{(int(pin) + 1) % 10**16:016d}"
    cashier = a.cashier()
    messages = []
    for _ in range(5):
        with pytest.raises(vouchers.WrongPin) as refused, translation.override("en"):
            redeem(a, account, serial, wrong, by=cashier)
        assert code_of(refused.value) == "wrong_pin"
        messages.append((refused.value.tries_left, refused.value.messages[0]))
    # The cashier is told how many tries are left before the card locks: 4, 3, 2, 1, then none.
    assert [left for left, _message in messages] == [4, 3, 2, 1, 0]
    assert messages[2][1] == (
        "The serial or the PIN is wrong: 2 tries left before this card locks for up to an hour."
    )
    assert messages[3][1].endswith(": 1 try left before this card locks for up to an hour.")
    assert "now locked" in messages[4][1]
    # A serial that does not exist answers exactly as a wrong PIN does (its first try).
    with pytest.raises(ValidationError) as unknown, translation.override("en"):
        redeem(a, account, unknown_serial(1), wrong, by=cashier)
    assert (code_of(unknown.value), unknown.value.messages[0]) == ("wrong_pin", messages[0][1])
    # Locked: even the right PIN is refused now, until an hour after the fifth wrong PIN.
    card = VoucherCard.objects.get(serial=serial)
    assert vouchers.locked_until([card], now=NOW) == {card.pk: NOW + timedelta(hours=1)}
    with pytest.raises(ValidationError) as locked, translation.override("en"):
        redeem(a, account, serial, pin, by=cashier)
    assert code_of(locked.value) == "card_locked"
    unlocks = timezone.localtime(NOW + timedelta(hours=1), a.tenant.zone).strftime("%H:%M")
    assert f"locked until {unlocks}" in locked.value.messages[0]
    attempts = PaymentAttempt.objects.filter(channel=Channel.VOUCHER)
    assert sorted(attempts.values_list("code", flat=True)) == ["card_locked"] + ["wrong_pin"] * 6
    assert not any(pin in attempt.external_reference for attempt in attempts)

    card = vouchers.unlock_card(by, card, now=NOW)
    assert vouchers.locked_until([card], now=NOW) == {}
    payment = redeem(a, account, serial, pin, by=cashier)
    assert payment.amount == Decimal("50.00")
    assert check_ledger(a.tenant) == []


def test_twenty_wrong_pins_in_an_hour_stop_one_cashier_sweeping_serials(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    _batch, pins, _by = new_batch(a, count=1)
    [(serial, pin)] = pins.items()
    sweeper = a.cashier()
    for number in range(20):
        with pytest.raises(ValidationError):
            redeem(a, account, unknown_serial(number), "1234567890123456", by=sweeper)
    with pytest.raises(ValidationError) as stopped:
        redeem(a, account, serial, pin, by=sweeper)
    assert code_of(stopped.value) == "too_many_wrong_pins"
    # Another cashier is not stopped, and an hour later neither is the first.
    redeem(a, account, serial, pin, by=a.cashier())
    assert Payment.objects.count() == 1


# --- void, reversal, expiry --------------------------------------------------------------------


def test_voiding_a_card_and_then_its_batch_reverses_what_is_left_of_the_liability(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    batch, pins, by = new_batch(a)  # 4 × 50.00: liability 200.00
    first, second, *_rest = sorted(pins)
    redeem(a, account, first, pins[first])  # liability 150.00
    vouchers.void_card(by, VoucherCard.objects.get(serial=second), "被盗", now=NOW)
    # Dr liability 50.00, Cr sellers' clearing 50.00: 100.00 left owed, clearing 150.00.
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("-100.00")
    vouchers.void_batch(by, batch, "整批丢失", now=NOW)
    # The 2 cards left: Dr liability 100.00, Cr clearing 100.00. The redeemed card stays so.
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("0.00")
    clearing = LedgerAccount.objects.get(kind=LedgerKind.CLEARING, holder="voucher_sales")
    assert clearing.balance == Decimal("50.00")  # 200.00 − 50.00 − 100.00: the card sold
    states = dict(VoucherCard.objects.values_list("serial", "state"))
    assert sorted(states.values()) == ["redeemed", "void", "void", "void"]
    with pytest.raises(PaymentConflict):
        vouchers.void_card(by, VoucherCard.objects.get(serial=first), "x", now=NOW)
    assert VoucherBatch.objects.get(pk=batch.pk).state == VoucherBatchState.VOID
    assert AuditEvent.objects.filter(action="voucher_batch.voided").count() == 1
    assert check_ledger(a.tenant) == []


def test_a_reversed_redemption_makes_the_card_redeemable_again(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    _batch, pins, _by = new_batch(a, count=1)
    [(serial, pin)] = pins.items()
    payment = redeem(a, account, serial, pin)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, a.sites[0])))
    reverse_payment(manager, payment, "充错户号", now=NOW)
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("-50.00")  # owed again
    assert VoucherCard.objects.get(serial=serial).state == VoucherCardState.UNREDEEMED
    other = a.account(payment_mode="prepaid")
    redeem(a, other, serial, pin)
    assert balance(other, LedgerKind.WALLET) == Decimal("-50.00")
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("0.00")
    assert check_ledger(a.tenant) == []


def test_expiry_takes_what_is_left_of_a_released_batch_to_income_once(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    last_day = TODAY + timedelta(days=10)
    _batch, pins, by = new_batch(a, face="20.00", count=3, expires_on=last_day)
    first, second, third = sorted(pins)
    redeem(a, account, first, pins[first])
    vouchers.void_card(by, VoucherCard.objects.get(serial=second), "损坏", now=NOW)
    # Liability: 60.00 − 20.00 redeemed − 20.00 voided = 20.00, the third card.
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("-20.00")
    system = Principal.system(a.tenant, "recharge card expiry")
    assert vouchers.expire_cards(system, today=last_day).cards == 0  # its last day: still good
    summary = vouchers.expire_cards(system, today=last_day + timedelta(days=1))
    assert (summary.batches, summary.cards, summary.amount) == (1, 1, Decimal("20.00"))
    # Dr voucher liability 20.00, Cr income from expired cards 20.00.
    assert tenant_balance(LedgerKind.VOUCHER) == Decimal("0.00")
    income = LedgerAccount.objects.get(kind=LedgerKind.REVENUE, component="expired_vouchers")
    assert income.balance == Decimal("-20.00")
    again = vouchers.expire_cards(system, today=last_day + timedelta(days=1))
    assert again.cards == 0
    assert income.__class__.objects.get(pk=income.pk).balance == Decimal("-20.00")
    assert VoucherCard.objects.get(serial=third).state == VoucherCardState.EXPIRED
    with pytest.raises(ValidationError) as refused:
        redeem(a, account, third, pins[third], day=last_day + timedelta(days=1))
    assert code_of(refused.value) == "card_expired"
    assert check_ledger(a.tenant) == []
