"""Closing an account (销户) as worked examples: the final reading, the partial period's bill
prorated by days, the credit and the deposit applied, the refund or the arrears left."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from billing.prepaid import charge_account
from billing.tariffs import services as tariff_services
from collection.models import AccountClosing, ClosingState, Refund, RefundState
from collection.services.closing import (
    Payout,
    cancel_closing,
    close_account,
    finish_closing,
    preview_closing,
)
from collection.services.deposits import set_deposit_policy, take_deposit
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import approve_refund, pay_refund, request_refund
from customers.models import Account, AccountStatus
from ledger.models import JournalLine, LedgerAccount, LedgerKind
from metering.models import Meter, Reading
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import TenantWorld, unique
from verification.models import VerificationItem
from verification.rules import validate_readings
from verification.services import approve_correction, edit_reading

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Commercial electricity with monthly tiers and a fixed monthly fee: the first 200 kWh of a
# period at 0.50 yuan, above at 0.80, and 30.00 yuan a month.
MONTHLY_TIERS = {
    "energy": {
        "kind": "tiered",
        "cumulation": "month",
        "tiers": [{"up_to": "200", "price": "0.50"}, {"up_to": None, "price": "0.80"}],
    },
    "fixed_monthly_fee": "30.00",
}


def balance(account: Account, kind: str) -> Decimal:
    found = LedgerAccount.objects.filter(account=account, kind=kind).first()
    return found.balance if found else Decimal("0.00")


def closable_account(a: TenantWorld) -> tuple[Account, Meter]:
    """A commercial postpaid account (site reading day 1: period 2026-10 runs 1 September to
    1 October, 30 days) with its own tariff, a meter read 1,000.00 kWh at 00:00 on 1 September
    and the bill of period 2026-09 issued (100.00, due 25 September)."""
    account = a.account(customer_class="commercial")
    meter = a.meter(account=account, on_gateway=False)
    tariff = tariff_services.create_tariff(
        a.system, code=unique("TAR"), name="一般工商业", utility="electricity"
    )
    tariff_services.add_tariff_version(
        a.system, tariff, effective_from=date(2020, 1, 1), spec=MONTHLY_TIERS
    )
    tariff_services.assign_tariff(
        a.system, tariff, effective_from=date(2020, 1, 1), account=account
    )
    a.reading(meter, taken_at=datetime(2026, 9, 1, tzinfo=SHANGHAI), total=Decimal("1000.00"))
    validate_readings(a.tenant)
    a.issued_bill(account, "100.00", date(2026, 9, 25), period="2026-09")
    return account, meter


def test_closing_bills_the_partial_period_and_refunds_the_deposit_left_after_the_credit(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    set_deposit_policy(
        a.system, utility="electricity", customer_class="commercial", amount=Decimal("2000.00")
    )
    cashier = a.cashier_on_shift()
    # 10 September: 130.00 pays the 100.00 bill (not yet due: no late fee); 30.00 is credit.
    post_payment(
        cashier, account=account, channel="counter_cash", amount=Decimal("130.00"),
        idempotency_key=unique("k"), now=datetime(2026, 9, 10, 10, tzinfo=SHANGHAI),
    )  # fmt: skip
    take_deposit(
        cashier, account=account, channel="counter_cash", amount=Decimal("2000.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("0.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("-30.00")
    assert balance(account, LedgerKind.DEPOSIT) == Decimal("-2000.00")

    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    closing = close_account(
        manager, account, reason="客户迁出", taken_at=datetime(2026, 9, 20, 10, tzinfo=SHANGHAI),
        values={"total": Decimal("1300.00")},
    )  # fmt: skip
    assert closing.state == ClosingState.CLOSED, closing.hold_reason

    # The final bill, period 2026-10: 1 September to 20 September inclusive, 20 of the
    # period's 30 days (share 20/30); 1,300.00 − 1,000.00 = 300.000 kWh.
    #   tier 1 limit 200 × 20/30 = 133.333 kWh × 0.50 = 66.6665 → 66.67
    #   tier 2 300.000 − 133.333 = 166.667 kWh × 0.80 = 133.3336 → 133.33
    #   fixed fee 30.00 × 20/30 = 20.00
    #   total 66.67 + 133.33 + 20.00 = 220.00
    bill = closing.bill
    assert bill is not None
    assert (bill.period, bill.starts_on, bill.ends_on) == (
        "2026-10", date(2026, 9, 1), date(2026, 9, 20),
    )  # fmt: skip
    lines = [(line.quantity, line.amount) for line in bill.lines.order_by("position")]
    assert lines == [
        (Decimal("133.333"), Decimal("66.67")),
        (Decimal("166.667"), Decimal("133.33")),
        (Decimal("0.667"), Decimal("20.00")),
    ]
    assert bill.total == Decimal("220.00")

    # Settlement: the bill owes 220.00; the credit 30.00 pays 30.00 of it, the deposit the
    # other 190.00; 2,000.00 − 190.00 = 1,810.00 of deposit is refunded; nothing is owed.
    assert closing.figures == {
        "final_charge": "220.00", "bills_owed": "220.00", "wallet_owed": "0.00",
        "credit": "30.00", "deposit": "2000.00", "credit_applied": "30.00",
        "deposit_applied": "190.00", "refund_credit": "0.00", "refund_deposit": "1810.00",
        "arrears": "0.00", "refund": "1810.00",
    }  # fmt: skip
    entry = JournalLine.objects.filter(entry_id=closing.settlement_entry_id)
    assert sorted(entry.values_list("ledger_account__kind", "amount")) == [
        ("deposit", Decimal("190.00")),  # Dr deposit
        ("receivable", Decimal("-220.00")),  # Cr receivable: 30.00 credit + 190.00 deposit
        ("wallet", Decimal("30.00")),  # Dr wallet: the credit used
    ]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("0.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert balance(account, LedgerKind.DEPOSIT) == Decimal("-1810.00")

    refund = closing.refund
    assert refund is not None
    assert (refund.state, refund.from_wallet, refund.from_deposit) == (
        RefundState.REQUESTED, Decimal("0.00"), Decimal("1810.00"),
    )  # fmt: skip
    account.refresh_from_db()
    assert (account.status, account.closed_on) == (AccountStatus.CLOSED, date(2026, 9, 20))

    # The refund goes its way: approved by finance (not the closer), paid in cash.
    finance = Principal.for_user(a.staff((Role.HQ_FINANCE, None)))
    approve_refund(finance, refund)
    pay_refund(cashier, refund)
    assert balance(account, LedgerKind.DEPOSIT) == Decimal("0.00")
    assert Refund.objects.get(pk=refund.pk).state == RefundState.PAID

    # A closed account takes no payment, and is not closed twice.
    with pytest.raises(ValidationError, match="销户"):
        post_payment(
            cashier, account=account, channel="counter_cash", amount=Decimal("10.00"),
            idempotency_key=unique("k"),
        )  # fmt: skip
    with pytest.raises(PaymentConflict):
        close_account(
            manager, account, reason="again", taken_at=datetime(2026, 9, 21, tzinfo=SHANGHAI),
            values={"total": Decimal("1301.00")},
        )  # fmt: skip


def test_what_the_deposit_does_not_cover_stays_as_arrears_on_the_closed_account(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)  # the 2026-09 bill of 100.00 unpaid
    take_deposit(
        a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal("50.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    # 1 September 00:00 to 10 September 18:00: 10 days of 30 (share 1/3); 90.000 kWh.
    #   tier 1 limit 200 × 10/30 = 66.667 kWh × 0.50 = 33.3335 → 33.33
    #   tier 2 90.000 − 66.667 = 23.333 kWh × 0.80 = 18.6664 → 18.67
    #   fixed fee 30.00 × 10/30 = 10.00; total 62.00
    # Owed 100.00 + 62.00 = 162.00; the deposit pays 50.00; 112.00 stays as arrears.
    closing = close_account(
        manager, account, reason="欠费销户", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00")},
    )  # fmt: skip
    assert closing.state == ClosingState.CLOSED, closing.hold_reason
    assert closing.bill is not None and closing.bill.total == Decimal("62.00")
    assert closing.figures["deposit_applied"] == "50.00"
    assert closing.figures["arrears"] == "112.00"
    assert closing.refund is None
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("112.00")
    assert balance(account, LedgerKind.DEPOSIT) == Decimal("0.00")


def test_the_preview_shows_the_figures_and_changes_nothing(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    preview = preview_closing(
        manager, account, taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00")},
    )  # fmt: skip
    assert preview.bill is not None and preview.bill["total"] == Decimal("62.00")
    assert preview.figures["arrears"] == "162.00"  # 100.00 + 62.00, no deposit, no credit
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert not AccountClosing.objects.filter(account=account).exists()
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("100.00")


def test_a_closing_needs_a_reason(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    with pytest.raises(ValidationError) as refused:
        close_account(
            manager, account, reason=" ", taken_at=datetime(2026, 9, 10, tzinfo=SHANGHAI),
            values={"total": Decimal("1090.00")},
        )  # fmt: skip
    assert refused.value.error_dict["reason"][0].code == "required"
    assert not AccountClosing.objects.filter(account=account).exists()


def test_a_suspect_final_reading_holds_the_closing_until_a_verifier_has_corrected_it(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    # The TOU registers (10 + 20 + 30 + 40 = 100.00) do not add up to the total 1,090.00: the
    # reading is suspect, nothing is billed or settled, the closing waits with the reason.
    closing = close_account(
        manager, account, reason="客户迁出", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00"), "tou_spike": Decimal("10"),
                "tou_peak": Decimal("20"), "tou_flat": Decimal("30"), "tou_valley": Decimal("40")},
    )  # fmt: skip
    assert closing.state == ClosingState.STARTED
    assert "分时" in closing.hold_reason, closing.hold_reason  # the rule it broke
    assert closing.bill is None and closing.settlement_entry_id is None
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    # A verifier corrects it to 1,090.00 (misread), another approves; the closing resumes:
    # 90.000 kWh, billed 62.00 as in the example above.
    item = VerificationItem.objects.get(reading=closing.final_reading)
    correction = edit_reading(
        Principal.for_user(a.staff((Role.VERIFIER, None))), item,
        {"total": Decimal("1090.00")}, "抄错",
    )  # fmt: skip
    approve_correction(Principal.for_user(a.staff((Role.VERIFIER, None))), correction)
    closed = finish_closing(manager, closing)
    assert closed.state == ClosingState.CLOSED
    assert closed.bill is not None and closed.bill.total == Decimal("62.00")
    assert closed.figures["arrears"] == "162.00"  # 100.00 + 62.00
    account.refresh_from_db()
    assert account.status == AccountStatus.CLOSED
    with pytest.raises(PaymentConflict):
        finish_closing(manager, closing)


def test_closing_a_prepaid_account_charges_to_the_final_reading_and_refunds_the_balance(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    meter = a.meter(account=account, on_gateway=False)
    tariff = a.tariff("0.5000")  # flat 0.50 yuan/kWh
    tariff_services.assign_tariff(
        a.system, tariff, effective_from=date(2020, 1, 1), account=account
    )
    a.reading(meter, taken_at=datetime(2026, 9, 1, tzinfo=SHANGHAI), total=Decimal("1000.00"))
    validate_readings(a.tenant)
    cashier = a.cashier_on_shift()
    post_payment(
        cashier, account=account, channel="counter_cash", amount=Decimal("100.00"),
        idempotency_key=unique("k"),
    )  # fmt: skip
    take_deposit(
        cashier, account=account, channel="counter_cash", amount=Decimal("200.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    assert balance(account, LedgerKind.WALLET) == Decimal("-100.00")  # the prepaid balance
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    closing = close_account(
        manager, account, reason="退租", taken_at=datetime(2026, 9, 20, 10, tzinfo=SHANGHAI),
        values={"total": Decimal("1100.00")}, payout=Payout("bank_transfer", "6222000011112222"),
    )  # fmt: skip
    assert closing.state == ClosingState.CLOSED, closing.hold_reason
    # The last prepaid charge: 100.000 kWh × 0.50 = 50.00 (Dr wallet); the balance left is
    # 100.00 − 50.00 = 50.00, refunded with the whole deposit of 200.00: 250.00 by transfer.
    assert closing.bill is None and closing.prepaid_charge is not None
    assert closing.prepaid_charge.amount == Decimal("50.00")
    assert (closing.figures["refund_credit"], closing.figures["refund_deposit"]) == (
        "50.00", "200.00",
    )  # fmt: skip
    assert closing.settlement_entry_id is None  # nothing owed: nothing to apply
    refund = closing.refund
    assert refund is not None
    assert (refund.amount, refund.channel, refund.payee_bank_account) == (
        Decimal("250.00"), "bank_transfer", "6222000011112222",
    )  # fmt: skip
    approve_refund(Principal.for_user(a.staff((Role.HQ_FINANCE, None))), refund)
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert balance(account, LedgerKind.DEPOSIT) == Decimal("0.00")


def test_a_refund_awaiting_approval_is_decided_before_the_account_is_closed(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, meter = closable_account(a)
    take_deposit(
        a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal("300.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    request_refund(
        a.cashier_on_shift(), account=account, from_deposit=Decimal("100.00"), channel="cash",
        reason="多收押金",
    )  # fmt: skip
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    with pytest.raises(ValidationError) as refused:
        close_account(
            manager, account, reason="迁出", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
            values={"total": Decimal("1090.00")},
        )  # fmt: skip
    assert refused.value.error_dict["account"][0].code == "refund_pending"
    assert not AccountClosing.objects.filter(account=account).exists()
    assert not Reading.objects.filter(meter=meter, total=Decimal("1090.00")).exists()


def prepaid_account_charged_before_a_suspect_reading(
    a: TenantWorld,
) -> tuple[Account, Meter]:
    """A prepaid account at a flat 0.50 yuan/kWh: read 1,000.000 on 1 September, charged up to
    1,100.000 on 10 September (100.000 kWh × 0.50 = 50.00), then a reading of 12 September that
    went backwards (1,095.000) waits in the verification queue; the prepaid charging stops
    before it, as it should."""
    account = a.account(payment_mode="prepaid")
    meter = a.meter(account=account, on_gateway=False)
    tariff = a.tariff("0.5000")
    tariff_services.assign_tariff(
        a.system, tariff, effective_from=date(2020, 1, 1), account=account
    )
    a.reading(meter, taken_at=datetime(2026, 9, 1, tzinfo=SHANGHAI), total=Decimal("1000.00"))
    a.reading(meter, taken_at=datetime(2026, 9, 10, tzinfo=SHANGHAI), total=Decimal("1100.00"))
    validate_readings(a.tenant)
    charged = charge_account(a.system, account.pk, now=datetime(2026, 9, 11, tzinfo=SHANGHAI))
    assert charged is not None and charged.amount == Decimal("50.00")
    a.reading(meter, taken_at=datetime(2026, 9, 12, tzinfo=SHANGHAI), total=Decimal("1095.00"))
    validate_readings(a.tenant)
    assert VerificationItem.objects.filter(meter=meter).count() == 1
    return account, meter


def test_closing_a_prepaid_account_charges_from_its_last_charged_reading_to_the_final_one(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, _meter = prepaid_account_charged_before_a_suspect_reading(a)
    cashier = a.cashier_on_shift()
    post_payment(
        cashier, account=account, channel="counter_cash", amount=Decimal("100.00"),
        idempotency_key=unique("k"),
    )  # fmt: skip
    take_deposit(
        cashier, account=account, channel="counter_cash", amount=Decimal("200.00"),
        idempotency_key=unique("d"),
    )  # fmt: skip
    # Wallet: charged 50.00, paid 100.00 → 50.00 of prepaid balance (−50.00 on the ledger).
    assert balance(account, LedgerKind.WALLET) == Decimal("-50.00")
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    closing = close_account(
        manager, account, reason="退租", taken_at=datetime(2026, 9, 20, 10, tzinfo=SHANGHAI),
        values={"total": Decimal("1130.00")},
    )  # fmt: skip
    assert closing.state == ClosingState.CLOSED, closing.hold_reason
    # The last charge closed on 1,100.000 (10 September); the final reading is 1,130.000:
    #   1,130.000 − 1,100.000 = 30.000 kWh × 0.50 = 15.00, charged to the wallet (the reading
    #   of 12 September still waiting for a verifier does not stop the closing's charge).
    charge = closing.prepaid_charge
    assert charge is not None
    assert (charge.consumption["total"], charge.amount) == ("30.000", Decimal("15.00"))
    assert charge.from_taken_at == datetime(2026, 9, 10, tzinfo=SHANGHAI)
    assert charge.to_taken_at == datetime(2026, 9, 20, 10, tzinfo=SHANGHAI)
    assert charge.tariff_versions  # priced at the account's tariff version
    # Settlement: the balance 50.00 − 15.00 = 35.00 is refunded with the deposit 200.00.
    assert closing.figures["final_charge"] == "15.00"
    assert (closing.figures["refund_credit"], closing.figures["refund_deposit"]) == (
        "35.00", "200.00",
    )  # fmt: skip
    assert closing.refund is not None and closing.refund.amount == Decimal("235.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("-35.00")  # until the refund is paid
    entry = JournalLine.objects.filter(
        entry__source_type="prepaid_charge", entry__source_id=str(charge.pk)
    )
    assert sorted(entry.values_list("ledger_account__kind", "amount"))[-1] == (
        "wallet", Decimal("15.00"),
    )  # fmt: skip


def test_a_final_reading_below_the_meters_last_reading_is_refused_before_anything_is_written(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, meter = closable_account(a)  # read 1,000.00 on 1 September
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    with pytest.raises(ValidationError) as refused:
        close_account(
            manager, account, reason="迁出", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
            values={"total": Decimal("999.00")},
        )  # fmt: skip
    error = refused.value.error_dict["total"][0]
    assert error.code == "below_last_reading"
    assert "1000.000" in error.message and "2026-09-01 00:00" in error.message
    # No stuck closing, no reading of 999.00 in the verification queue.
    assert not AccountClosing.objects.filter(account=account).exists()
    assert not Reading.objects.filter(meter=meter, total=Decimal("999.00")).exists()


def test_a_closing_that_waits_is_cancelled_with_a_reason_and_the_account_may_be_closed_later(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    # TOU registers 10 + 20 + 30 + 40 = 100.00 against a total of 1,090.00: held for a verifier.
    closing = close_account(
        manager, account, reason="客户迁出", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00"), "tou_spike": Decimal("10"),
                "tou_peak": Decimal("20"), "tou_flat": Decimal("30"), "tou_valley": Decimal("40")},
    )  # fmt: skip
    assert closing.state == ClosingState.STARTED
    with pytest.raises(ValidationError) as refused:
        cancel_closing(manager, closing, reason="  ")
    assert refused.value.error_dict["reason"][0].code == "required"

    cancelled = cancel_closing(manager, closing, reason="客户不再迁出")
    assert cancelled.state == ClosingState.CANCELLED
    assert (cancelled.cancel_reason, cancelled.cancelled_by_label) == (
        "客户不再迁出", manager.label,
    )  # fmt: skip
    event = AuditEvent.objects.get(action=AuditAction.ACCOUNT_CLOSING_CANCELLED)
    assert event.after["reason"] == "客户不再迁出"
    # Nothing was posted: no final bill, the 2026-09 bill's 100.00 still owed; the account is
    # open. The final reading is kept as read, waiting with the verifiers like any suspect one.
    assert cancelled.bill is None and cancelled.settlement_entry_id is None
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("100.00")
    account.refresh_from_db()
    assert account.status == AccountStatus.ACTIVE
    assert Reading.objects.filter(pk=closing.final_reading_id, total=Decimal("1090.00")).exists()
    assert VerificationItem.objects.get(reading=closing.final_reading).state == "open"
    # Cancelled once is cancelled: not resumed, not cancelled again.
    with pytest.raises(PaymentConflict):
        finish_closing(manager, closing)
    with pytest.raises(PaymentConflict):
        cancel_closing(manager, closing, reason="again")
    # A new closing may start, with a right final reading: 90.000 kWh, billed 62.00.
    again = close_account(
        manager, account, reason="客户迁出", taken_at=datetime(2026, 9, 10, 19, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00")},
    )  # fmt: skip
    # The first final reading, still suspect, holds the new closing back, named for the person:
    assert again.state == ClosingState.STARTED
    assert "2026-09-10 18:00" in again.hold_reason, again.hold_reason
    # A verifier corrects it (the TOU registers misread), another approves; the new closing
    # settles: 1 to 10 September, 90.000 kWh, billed 62.00 as in the example above.
    item = VerificationItem.objects.get(reading=closing.final_reading)
    correction = edit_reading(
        Principal.for_user(a.staff((Role.VERIFIER, None))), item,
        {"total": Decimal("1090.00")}, "分时抄错",
    )  # fmt: skip
    approve_correction(Principal.for_user(a.staff((Role.VERIFIER, None))), correction)
    closed = finish_closing(manager, again)
    assert closed.state == ClosingState.CLOSED
    assert closed.bill is not None and closed.bill.total == Decimal("62.00")


def test_a_settled_closing_cannot_be_cancelled(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    closing = close_account(
        manager, account, reason="迁出", taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
        values={"total": Decimal("1090.00")},
    )  # fmt: skip
    assert closing.state == ClosingState.CLOSED
    with pytest.raises(PaymentConflict) as refused:
        cancel_closing(manager, closing, reason="弄错了")
    assert refused.value.code == "not_started"
    assert AccountClosing.objects.get(pk=closing.pk).state == ClosingState.CLOSED
