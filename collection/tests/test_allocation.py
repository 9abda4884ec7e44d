"""Allocation as worked examples: the open bills, the payment, the allocations, the journal
lines and the balances after, written out so they can be checked by hand; and the allocation
plan's invariants for any open items, amount and credit."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from billing.models import BillingSettings
from billing.opening import import_opening
from collection.models import Payment, PaymentAllocation
from collection.services.allocation import OpenItem, account_due, plan_allocation
from collection.services.payments import post_payment
from customers.models import Account
from ledger.models import JournalLine, LedgerAccount, LedgerKind
from tenancy.principal import Principal
from tests.world import TenantWorld, unique

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


def pay(
    world: TenantWorld, account: Account, amount: str, day: date, by: Principal | None = None
) -> Payment:
    cashier = by or world.cashier()
    world.on_shift(cashier, account.site)
    return post_payment(
        cashier,
        account=account,
        channel="counter_cash",
        amount=Decimal(amount),
        idempotency_key=unique("k"),
        now=at(day),
    ).payment


def lines(payment: Payment) -> list[tuple[str, str, str]]:
    """The payment's journal lines as (ledger kind, amount, reference)."""
    rows = JournalLine.objects.filter(entry_id=payment.entry_id).values_list(
        "ledger_account__kind", "amount", "reference"
    )
    return sorted((kind, str(amount), reference) for kind, amount, reference in rows)


def allocations(payment: Payment) -> list[tuple[int | None, str, str]]:
    rows = PaymentAllocation.objects.filter(payment=payment, reversal__isnull=True)
    return [(row.bill_id, str(row.late_fee), str(row.principal)) for row in rows.order_by("pk")]


def balance(account: Account, kind: str) -> Decimal:
    found = LedgerAccount.objects.filter(account=account, kind=kind).first()
    return found.balance if found else Decimal("0.00")


def tenant_balance(kind: str) -> Decimal:
    return sum(
        (row.balance for row in LedgerAccount.objects.filter(kind=kind, account=None)),
        Decimal("0.00"),
    )


def test_two_bills_the_oldest_with_its_late_fee_first_then_the_surplus_to_credit(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()  # residential, postpaid
    b1 = a.issued_bill(account, "100.00", date(2026, 9, 15), period="2026-08")
    b2 = a.issued_bill(account, "80.00", date(2026, 10, 15), period="2026-09")
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("180.00")

    # 2026-10-15, 150.00 in cash. B1 is 30 days late (09-16 … 10-15): 100.00 × 1‰ × 30 = 3.00;
    # B2 is due today: no fee. B1 fee 3.00 + principal 100.00, then B2 principal 47.00.
    first = pay(a, account, "150.00", date(2026, 10, 15))
    assert allocations(first) == [(b1.pk, "3.00", "100.00"), (b2.pk, "0.00", "47.00")]
    assert lines(first) == [
        ("cash", "150.00", ""),
        ("late_fees", "-3.00", f"bill:{b1.pk}"),
        ("receivable", "-100.00", f"bill:{b1.pk}"),
        ("receivable", "-47.00", f"bill:{b2.pk}"),
    ]
    assert (first.principal, first.late_fees, first.surplus) == (
        Decimal("147.00"),
        Decimal("3.00"),
        Decimal("0.00"),
    )
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("33.00")  # 180.00 − 147.00

    # 2026-10-25, 40.00. B2's 33.00 is 10 days late: 33.00 × 1‰ × 10 = 0.33, raised to the
    # 1-yuan minimum: fee 1.00 + principal 33.00; the 6.00 left is credit on account.
    second = pay(a, account, "40.00", date(2026, 10, 25))
    assert allocations(second) == [(b2.pk, "1.00", "33.00")]
    assert lines(second) == [
        ("cash", "40.00", ""),
        ("late_fees", "-1.00", f"bill:{b2.pk}"),
        ("receivable", "-33.00", f"bill:{b2.pk}"),
        ("wallet", "-6.00", "surplus"),
    ]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("0.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("-6.00")
    assert tenant_balance(LedgerKind.LATE_FEES) == Decimal("-4.00")
    assert tenant_balance(LedgerKind.CASH) == Decimal("190.00")

    # 2026-11-01 a new bill of 50.00 (due 11-30) and 44.00 paid: 44.00 cash + the 6.00 credit
    # pay it; the credit is taken from the wallet.
    b3 = a.issued_bill(account, "50.00", date(2026, 11, 30), period="2026-10")
    due = account_due(account, date(2026, 11, 1))
    assert (due.principal, due.credit, due.amount_due) == (
        Decimal("50.00"),
        Decimal("6.00"),
        Decimal("44.00"),
    )
    third = pay(a, account, "44.00", date(2026, 11, 1))
    assert allocations(third) == [(b3.pk, "0.00", "50.00")]
    assert lines(third) == [
        ("cash", "44.00", ""),
        ("receivable", "-50.00", f"bill:{b3.pk}"),
        ("wallet", "6.00", "credit"),
    ]
    assert third.credit_used == Decimal("6.00") and third.surplus == Decimal("0.00")
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("0.00")
    assert balance(account, LedgerKind.WALLET) == Decimal("0.00")
    assert account_due(account, date(2026, 11, 1)).items == []


def test_a_late_fee_is_paid_before_any_principal_even_in_part(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account()
    bill = a.issued_bill(account, "100.00", date(2026, 9, 15))
    # 30 days late: fee 3.00. 2.00 pays 2.00 of the fee and nothing of the principal.
    small = pay(a, account, "2.00", date(2026, 10, 15))
    assert allocations(small) == [(bill.pk, "2.00", "0.00")]
    # The same day, 50.00: the fee's last 1.00, then 49.00 of principal.
    rest = pay(a, account, "50.00", date(2026, 10, 15))
    assert allocations(rest) == [(bill.pk, "1.00", "49.00")]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("51.00")


def test_a_business_bill_late_across_the_year_end_pays_2_then_3_per_mille(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account(customer_class="commercial")
    bill = a.issued_bill(account, "1000.00", date(2026, 12, 20), period="2026-11")
    # Paid 2027-01-10: 11 days of 2026 × 2‰ × 1000.00 = 22.00; 10 days of 2027 × 3‰ = 30.00.
    payment = pay(a, account, "1052.00", date(2027, 1, 10))
    assert allocations(payment) == [(bill.pk, "52.00", "1000.00")]
    assert payment.surplus == Decimal("0.00")


def test_credit_from_a_paid_bill_that_was_credited_pays_its_re_bill(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()
    bill = a.issued_bill(account, "100.00", date(2026, 12, 15))
    pay(a, account, "100.00", date(2026, 11, 20))
    # The bill is credited (its reading was wrong) and re-billed at 80.00: the receivable
    # holds 100.00 − 100.00 − 100.00 + 80.00 = −20.00, the 100.00 paid is credit.
    a.credit_note(bill, date(2026, 11, 25))
    rebill = a.issued_bill(account, "80.00", date(2026, 12, 20))
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("-20.00")
    due = account_due(account, date(2026, 11, 26))
    assert [item.bill_id for item in due.items] == [rebill.pk]
    assert (due.principal, due.credit, due.amount_due) == (
        Decimal("80.00"),
        Decimal("100.00"),
        Decimal("0.00"),
    )
    # 10.00 paid: the re-bill's 80.00 is paid by it and 70.00 of the credit (Dr receivable).
    payment = pay(a, account, "10.00", date(2026, 11, 26))
    assert allocations(payment) == [(rebill.pk, "0.00", "80.00")]
    assert lines(payment) == [
        ("cash", "10.00", ""),
        ("receivable", "-80.00", f"bill:{rebill.pk}"),
        ("receivable", "70.00", "credit"),
    ]
    # −20.00 − 80.00 + 70.00 = −30.00: the customer has 30.00 of credit left.
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("-30.00")
    assert account_due(account, date(2026, 11, 26)).credit == Decimal("30.00")


def test_a_prepaid_top_up_goes_to_the_wallet(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    payment = pay(a, account, "200.00", date(2026, 11, 2))  # a Monday: the bank is open
    assert allocations(payment) == []
    assert lines(payment) == [("cash", "200.00", ""), ("wallet", "-200.00", "surplus")]
    assert balance(account, LedgerKind.WALLET) == Decimal("-200.00")  # 200.00 of balance


def test_a_prepaid_wallet_is_never_taken_for_an_old_bill(in_tenant_a: TenantWorld) -> None:
    a = in_tenant_a
    account = a.account(payment_mode="prepaid")
    pay(a, account, "50.00", date(2026, 11, 2))
    bill = a.issued_bill(account, "30.00", date(2026, 12, 1))  # from its postpaid days
    # 10.00 paid: 10.00 of the bill; the 50.00 balance stays for consumption.
    payment = pay(a, account, "10.00", date(2026, 11, 3))
    assert allocations(payment) == [(bill.pk, "0.00", "10.00")]
    assert balance(account, LedgerKind.WALLET) == Decimal("-50.00")
    assert account_due(account, date(2026, 11, 3)).amount_due == Decimal("20.00")


def test_arrears_from_go_live_come_first_then_bills_by_due_date_then_id(
    in_tenant_a: TenantWorld,
) -> None:
    a = in_tenant_a
    account = a.account()
    settings = BillingSettings.stored_for_tenant(a.tenant)
    settings.go_live_on = date(2026, 1, 1)
    settings.save(update_fields=["go_live_on"])
    import_opening(a.system, a.tenant, [{"account": account.number, "arrears": "20.00"}])
    later = a.issued_bill(account, "40.00", date(2026, 12, 20))
    first = a.issued_bill(account, "30.00", date(2026, 12, 10))
    second = a.issued_bill(account, "30.00", date(2026, 12, 10))
    # 95.00: the go-live arrears 20.00, the bill due 12-10 with the lower id 30.00, the other
    # 30.00, then 15.00 of the bill due 12-20.
    payment = pay(a, account, "95.00", date(2026, 11, 20))
    rows = PaymentAllocation.objects.filter(payment=payment).order_by("pk")
    assert [(row.opening_id is not None, row.bill_id, str(row.principal)) for row in rows] == [
        (True, None, "20.00"),
        (False, first.pk, "30.00"),
        (False, second.pk, "30.00"),
        (False, later.pk, "15.00"),
    ]
    assert balance(account, LedgerKind.RECEIVABLE) == Decimal("25.00")  # 120.00 − 95.00


# --- the plan's invariants -------------------------------------------------------------------

money = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("500"), places=2)


@st.composite
def open_items(draw: st.DrawFn) -> list[OpenItem]:
    count = draw(st.integers(min_value=0, max_value=6))
    items = []
    for index in range(count):
        principal = draw(money.filter(lambda value: value > 0))
        due = draw(st.one_of(st.none(), st.dates(date(2025, 1, 1), date(2026, 12, 31))))
        fee = draw(money) if due else Decimal("0.00")
        item = OpenItem(index + 1, None, "", "", due, principal, principal, fee, Decimal(0))
        items.append(item)
    return items


@given(open_items(), money.filter(lambda value: value > 0), money, money)
def test_the_plan_pays_oldest_first_fee_before_principal_and_balances(
    items: list[OpenItem], amount: Decimal, receivable_credit: Decimal, wallet_credit: Decimal
) -> None:
    plan = plan_allocation(items, amount, receivable_credit, wallet_credit)
    allocated = plan.principal + plan.late_fees
    assert amount + plan.credit_used == allocated + plan.surplus
    assert allocated <= amount + receivable_credit + wallet_credit
    assert plan.receivable_credit_used <= receivable_credit
    assert plan.wallet_credit_used <= wallet_credit
    assert not (plan.credit_used and plan.surplus), "credit used and a surplus left"
    paid = {part.item.bill_id: part for part in plan.allocations}
    ordered = sorted(items, key=lambda item: item.order)
    for position, item in enumerate(ordered):
        part = paid.get(item.bill_id)
        fee = part.late_fee if part else Decimal(0)
        principal = part.principal if part else Decimal(0)
        assert 0 <= fee <= item.late_fee and 0 <= principal <= item.principal
        if principal:
            assert fee == item.late_fee, "principal paid before the late fee"
        settled = fee == item.late_fee and principal == item.principal
        if not settled:
            assert all(other.bill_id not in paid for other in ordered[position + 1 :])
    if plan.surplus:
        assert all(
            paid.get(item.bill_id)
            and paid[item.bill_id].principal == item.principal
            and paid[item.bill_id].late_fee == item.late_fee
            for item in items
        )
