"""How a payment is allocated: to the account's oldest open items first, each item's late fee
before its principal, the rest to the wallet.

An account's **open items** are its issued bills and re-bills (a re-bill is a bill of its own,
with its own due date) and its go-live arrears. An item's open principal is its total, less the
credit notes issued against it, less what payments allocated to it (a reversal's negative rows
give that back). Items are taken oldest first: by due date (the go-live arrears, which have
none, before every bill), then by id. Each item's late fee as of the payment's business day
(``collection.late_fees``; the go-live arrears carry none here) is taken before its principal.

The money allocated is the payment's amount plus the account's **credit**: credit sitting on the
receivable (a credited bill that had been paid, negative go-live arrears) and, for a postpaid
account, the credit on account held in its wallet. Cash is used first, then receivable credit,
then wallet credit, so a payment either uses credit or leaves a surplus, never both. The
surplus goes to the wallet: a prepaid account's balance, or a postpaid account's credit on
account. A prepaid account's wallet is its balance for consumption, never taken for bills.

The plan is a pure function (``plan_allocation``) of the open items, the amount and the credit;
``account_position`` reads them for one account (its ledger rows locked by the caller when it
posts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection

from billing.models import Bill, BillKind, BillState, OpeningBalance
from collection.late_fees import OverdueHistory, late_fee_owed
from collection.models import PaymentAllocation
from customers.models import Account, CustomerClass, PaymentMode
from ledger.models import LedgerAccount, LedgerKind
from tenancy import prepared
from tenancy.money import ZERO


@dataclass(frozen=True)
class OpenItem:
    """One open item of an account: a bill (or re-bill), or the go-live arrears."""

    bill_id: int | None
    opening_id: int | None
    number: str
    period: str
    due_date: date | None
    total: Decimal  # what the item asked for, less its credit notes
    principal: Decimal  # still open
    late_fee: Decimal  # owed on the day asked about
    late_fee_paid: Decimal

    @property
    def reference(self) -> str:
        return f"bill:{self.bill_id}" if self.bill_id is not None else f"opening:{self.opening_id}"

    @property
    def order(self) -> tuple[date, int, int]:
        return (self.due_date or date.min, 0 if self.opening_id else 1, self.bill_id or 0)


@dataclass(frozen=True)
class AccountPosition:
    """An account's open items (oldest first) and credit on a day."""

    items: list[OpenItem]
    receivable: Decimal  # the receivable's balance (debit positive)
    wallet: Decimal  # the wallet's balance (negative: credit)
    receivable_credit: Decimal
    wallet_credit: Decimal  # usable for bills (a postpaid account's credit on account)

    @property
    def principal(self) -> Decimal:
        return sum((item.principal for item in self.items), ZERO)

    @property
    def late_fees(self) -> Decimal:
        return sum((item.late_fee for item in self.items), ZERO)

    @property
    def credit(self) -> Decimal:
        return self.receivable_credit + self.wallet_credit

    @property
    def wallet_owed(self) -> Decimal:
        """What the wallet is owed: a prepaid balance below zero, or on a postpaid account the
        credit a later payment used that a reversal has taken back."""
        return max(self.wallet, ZERO)

    @property
    def amount_due(self) -> Decimal:
        """What settles every open item today, after the credit, and what the wallet is owed
        (a payment's surplus goes there)."""
        return max(self.principal + self.late_fees - self.credit, ZERO) + self.wallet_owed


@dataclass(frozen=True)
class Allocated:
    item: OpenItem
    late_fee: Decimal
    principal: Decimal


@dataclass(frozen=True)
class AllocationPlan:
    allocations: list[Allocated]
    receivable_credit_used: Decimal
    wallet_credit_used: Decimal
    surplus: Decimal

    @property
    def principal(self) -> Decimal:
        return sum((part.principal for part in self.allocations), ZERO)

    @property
    def late_fees(self) -> Decimal:
        return sum((part.late_fee for part in self.allocations), ZERO)

    @property
    def credit_used(self) -> Decimal:
        return self.receivable_credit_used + self.wallet_credit_used


def plan_allocation(
    items: Sequence[OpenItem],
    amount: Decimal,
    receivable_credit: Decimal = ZERO,
    wallet_credit: Decimal = ZERO,
) -> AllocationPlan:
    """Allocate ``amount`` and the credit to ``items`` (oldest first): each item's late fee,
    then its principal, until the money runs out; cash first, then receivable credit, then
    wallet credit; what is left of the amount is the surplus."""
    pool = amount + receivable_credit + wallet_credit
    allocations = []
    for item in sorted(items, key=lambda item: item.order):
        if pool <= 0:
            break
        fee = min(pool, item.late_fee)
        pool -= fee
        principal = min(pool, item.principal)
        pool -= principal
        if fee or principal:
            allocations.append(Allocated(item, fee, principal))
    allocated = sum((part.late_fee + part.principal for part in allocations), ZERO)
    beyond_cash = max(allocated - amount, ZERO)
    receivable_used = min(receivable_credit, beyond_cash)
    return AllocationPlan(
        allocations,
        receivable_credit_used=receivable_used,
        wallet_credit_used=beyond_cash - receivable_used,
        surplus=max(amount - allocated, ZERO),
    )


def account_position(
    account: Account, receivable: Decimal, wallet: Decimal, on: date
) -> AccountPosition:
    """The account's open items with their late fees as of ``on``, and its credit, given the
    balances of its receivable and wallet (read by the caller, under the lock when posting).
    One statement on PostgreSQL (``_open_rows``): the account's issued bills and credit notes,
    its allocations (with their payments' days), its go-live arrears."""
    bills, allocated, arrears = _open_rows(account)
    reductions: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for _pk, kind, corrects_id, _number, _period, total, issue_date, _due in bills:
        if kind == BillKind.CREDIT_NOTE and corrects_id is not None and issue_date is not None:
            reductions[corrects_id].append((issue_date, -total))
    paid = _allocated(allocated)
    residential = account.customer_class == CustomerClass.RESIDENTIAL
    items = []
    for pk, kind, _corrects, number, period, total, _issued, due_date in bills:
        if kind == BillKind.CREDIT_NOTE:
            continue
        credited = sum((amount for _day, amount in reductions[pk]), ZERO)
        principal_paid, fee_paid, standing = paid.get(("bill", pk), (ZERO, ZERO, []))
        principal = total - credited - principal_paid
        if principal <= 0:
            continue
        fee = ZERO
        if due_date is not None:
            history = OverdueHistory(
                residential, int(period[:4]), due_date, total, (*reductions[pk], *standing)
            )
            fee = late_fee_owed(history, on, fee_paid)
        items.append(
            OpenItem(pk, None, number, period, due_date, total - credited, principal, fee, fee_paid)
        )
    for pk, amount, tier_year in arrears:
        principal_paid, _fee, _standing = paid.get(("opening", pk), (ZERO, ZERO, []))
        if amount - principal_paid > 0:
            items.append(
                OpenItem(
                    None, pk, "", str(tier_year), None, amount, amount - principal_paid, ZERO, ZERO
                )
            )
    items.sort(key=lambda item: item.order)
    open_principal = sum((item.principal for item in items), ZERO)
    receivable_credit = max(open_principal - receivable, ZERO)
    wallet_credit = ZERO
    if account.payment_mode == PaymentMode.POSTPAID:
        wallet_credit = max(-wallet, ZERO)
    return AccountPosition(items, receivable, wallet, receivable_credit, wallet_credit)


def account_due(account: Account, on: date) -> AccountPosition:
    """What the account owes on ``on``: its open items with their late fees, and its credit
    (read only: an account with no ledger rows yet owes nothing beyond its items)."""
    balances = dict(
        LedgerAccount.objects.filter(
            account=account, kind__in=[LedgerKind.RECEIVABLE, LedgerKind.WALLET]
        ).values_list("kind", "balance")
    )
    return account_position(
        account,
        balances.get(LedgerKind.RECEIVABLE, ZERO),
        balances.get(LedgerKind.WALLET, ZERO),
        on,
    )


Row = tuple[Any, ...]

# The account's open-item rows in one round trip: each part as a JSON array of rows (amounts as
# text, so they come back as exact decimals; dates as ISO text).
_OPEN_ROWS_SQL = """
SELECT
  (SELECT json_agg(json_build_array(id, kind, corrects_id, number, period, total::text,
                                    issue_date, due_date))
     FROM billing_bill WHERE tenant_id = %(tenant)s AND account_id = %(account)s
      AND state = 'issued'),
  (SELECT json_agg(json_build_array(a.bill_id, a.opening_id, a.payment_id, a.reversal_id,
                                    a.principal::text, a.late_fee::text, p.paid_on))
     FROM collection_paymentallocation a JOIN collection_payment p ON p.id = a.payment_id
    WHERE a.tenant_id = %(tenant)s AND a.account_id = %(account)s),
  (SELECT json_agg(json_build_array(id, arrears::text, tier_year))
     FROM billing_openingbalance WHERE tenant_id = %(tenant)s AND account_id = %(account)s
      AND arrears > 0 AND entry_id IS NOT NULL)
"""


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _open_rows(account: Account) -> tuple[list[Row], list[Row], list[Row]]:
    """The account's issued bills (pk, kind, corrects_id, number, period, total, issue_date,
    due_date), its allocations (bill_id, opening_id, payment_id, reversal_id, principal,
    late_fee, the payment's day) and its go-live arrears (pk, arrears, tier_year)."""
    if connection.vendor != "postgresql":
        bills = Bill.objects.filter(account=account, state=BillState.ISSUED).values_list(
            "pk", "kind", "corrects_id", "number", "period", "total", "issue_date", "due_date"
        )
        allocations = PaymentAllocation.objects.filter(account=account).values_list(
            "bill_id", "opening_id", "payment_id", "reversal_id", "principal", "late_fee",
            "payment__paid_on",
        )  # fmt: skip
        arrears = OpeningBalance.objects.filter(
            account=account, arrears__gt=0, entry__isnull=False
        ).values_list("pk", "arrears", "tier_year")
        return list(bills), list(allocations), list(arrears)
    with connection.cursor() as cursor:
        prepared.execute(
            cursor, _OPEN_ROWS_SQL, {"tenant": account.tenant_id, "account": account.pk}
        )
        bill_rows, allocation_rows, arrears_rows = cursor.fetchone()
    return (
        [
            (pk, kind, corrects, number, period, Decimal(total), _day(issued), _day(due))
            for pk, kind, corrects, number, period, total, issued, due in bill_rows or []
        ],
        [
            (bill, opening, payment, reversal, Decimal(principal), Decimal(fee), _day(paid_on))
            for bill, opening, payment, reversal, principal, fee, paid_on in allocation_rows or []
        ],
        [(pk, Decimal(amount), tier_year) for pk, amount, tier_year in arrears_rows or []],
    )


def _allocated(
    rows: list[Row],
) -> dict[tuple[str, int], tuple[Decimal, Decimal, list[tuple[date, Decimal]]]]:
    """Per item: principal and late fee allocated (net of reversals), and the principal each
    standing (not reversed) payment paid, by its business day: the late fee's history."""
    reversed_payments = {row[2] for row in rows if row[3] is not None}
    totals: dict[tuple[str, int], tuple[Decimal, Decimal, list[tuple[date, Decimal]]]] = {}
    for bill_id, opening_id, payment_id, _reversal, principal, fee, paid_on in rows:
        key = ("bill", bill_id) if bill_id is not None else ("opening", opening_id)
        principal_sum, fee_sum, history = totals.get(key, (ZERO, ZERO, []))
        if payment_id not in reversed_payments and principal:
            history = [*history, (paid_on, principal)]
        totals[key] = (principal_sum + principal, fee_sum + fee, history)
    return totals
