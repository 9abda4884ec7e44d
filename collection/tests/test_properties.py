"""Property-based sequences of bills, credit notes, payments, recharge card redemptions,
reversals and refunds of credit (hypothesis, the shared profile): whatever the order and
amounts, every invariant of the books holds after every step.

- every journal entry sums to zero and every cached balance is its lines' sum (the ledger check);
- a payment never allocates more than an item's open principal and late fee on its day, nor more
  than its amount and the credit it used; its parts add up (amount + credit = principal + fees
  + surplus);
- the receivable is re-derivable from the documents: bills and credit notes, less the principal
  allocated, plus the receivable credit used;
- a reversed payment's allocations net to zero, and it is reversed once;
- receipts run 1…n without a gap, one per payment;
- a refund of credit is accepted exactly when it is within what may be refunded, and refunds
  payable holds exactly the refunds approved and not yet paid;
- the voucher liability is re-derivable from the cards: face value × the released cards not
  redeemed (a reversed redemption makes its card redeemable again).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import QuerySet, Sum
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from billing.models import Bill, BillKind, BillState
from collection.models import (
    CollectionPolicy,
    Payment,
    PaymentAllocation,
    PaymentReversal,
    Receipt,
    Refund,
    RefundState,
    VoucherCard,
    VoucherCardState,
)
from collection.services import vouchers
from collection.services.allocation import AccountPosition, account_due
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import (
    account_refundable,
    approve_refund,
    pay_refund,
    request_refund,
)
from collection.services.reversal import reverse_payment
from customers.models import Account
from ledger.checks import check_ledger
from ledger.models import JournalLine, LedgerAccount, LedgerKind
from tenancy.context import use_tenant
from tenancy.money import round_fen
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import build_world, unique

START = date(2026, 3, 1)
ZONE = ZoneInfo("Asia/Shanghai")
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("400"), places=2)
operations = st.one_of(
    st.tuples(st.just("bill"), st.integers(0, 2), amounts, st.integers(-40, 40)),
    st.tuples(st.just("pay"), st.integers(0, 2), amounts, st.integers(0, 20)),
    st.tuples(st.just("reverse"), st.integers(0, 9), st.just(Decimal(0)), st.integers(0, 3)),
    st.tuples(st.just("credit"), st.integers(0, 9), st.just(Decimal(0)), st.integers(0, 3)),
    st.tuples(st.just("refund"), st.integers(0, 2), amounts, st.integers(0, 1)),
    st.tuples(st.just("redeem"), st.integers(0, 2), st.just(Decimal(0)), st.integers(0, 20)),
)
CARD_FACE = Decimal("60.00")


def _sum(queryset: QuerySet[Any], field: str) -> Decimal:
    """A column's sum in fen (SQLite sums decimals as floats)."""
    total = queryset.aggregate(total=Sum(field))["total"]
    return round_fen(Decimal(total or 0))


class BooksStayBalanced(HypothesisTestCase):
    def setUp(self) -> None:
        self.world = build_world()
        a = self.world.a
        self.accounts = [
            a.account(),  # residential, postpaid
            a.account(customer_class="commercial"),
            a.account(payment_mode="prepaid"),
        ]
        self.finance = Principal.for_user(a.staff((Role.HQ_FINANCE, None)))
        # Steps fall on weekends too: the holiday cash rule has tests of its own.
        CollectionPolicy.objects.create(
            tenant=a.tenant, holiday_cash_approval=False, holiday_cash_cap=Decimal("99999999.99")
        )
        admin = Principal.for_user(a.staff((Role.TENANT_ADMIN, None)))
        issued = datetime(START.year, START.month, START.day, 9, tzinfo=ZONE) - timedelta(days=1)
        with use_tenant(a.tenant):
            batch = vouchers.generate_batch(
                admin, face_value=CARD_FACE, count=12, expires_on=START + timedelta(days=365),
                now=issued,
            )  # fmt: skip
            rows = vouchers.download_pins(admin, batch).content.splitlines()[1:]
            vouchers.release_batch(admin, batch, now=issued)
        self.cards = [tuple(part.replace(" ", "") for part in row.split(",")[1:3]) for row in rows]

    @given(st.lists(operations, min_size=1, max_size=12))
    def test_every_invariant_holds_after_every_step(
        self, steps: list[tuple[str, int, Decimal, int]]
    ) -> None:
        a = self.world.a
        cashier = a.cashier()
        a.on_shift(cashier, a.sites[0])
        today = START
        bills: list[Bill] = []
        payments: list[Payment] = []
        with use_tenant(a.tenant):
            for kind, index, amount, days in steps:
                today += timedelta(days=days if kind == "pay" else 0)
                if kind == "bill":
                    account = self.accounts[index]
                    due = today + timedelta(days=days)
                    bills.append(a.issued_bill(account, str(amount), due, period=f"{due:%Y-%m}"))
                elif kind == "pay":
                    account = self.accounts[index]
                    before = account_due(account, today)
                    payment = post_payment(
                        cashier, account=account, channel="counter_cash", amount=amount,
                        idempotency_key=unique("k"), now=datetime(
                            today.year, today.month, today.day, 12, tzinfo=ZONE
                        ),
                    ).payment  # fmt: skip
                    payments.append(payment)
                    self._allocated_within(payment, before)
                elif kind == "redeem" and self.cards:
                    account = self.accounts[index]
                    before = account_due(account, today)
                    serial, pin = self.cards.pop()
                    payment = vouchers.redeem_card(
                        cashier, account=account, serial=serial, pin=pin,
                        idempotency_key=unique("v"), now=datetime(
                            today.year, today.month, today.day, 12, tzinfo=ZONE
                        ),
                    ).payment  # fmt: skip
                    assert payment.amount == CARD_FACE
                    payments.append(payment)
                    self._allocated_within(payment, before)
                elif kind == "reverse" and payments:
                    payment = payments[index % len(payments)]
                    done = PaymentReversal.objects.filter(payment=payment).exists()
                    try:
                        reverse_payment(self.finance, payment, "冲正")
                        assert not done
                    except PaymentConflict:
                        assert done
                elif kind == "credit" and bills:
                    bill = bills[index % len(bills)]
                    credited = Bill.objects.filter(corrects=bill, kind=BillKind.CREDIT_NOTE)
                    if not credited.exists():
                        a.credit_note(bill, today)
                elif kind == "refund":
                    self._refund(cashier, self.accounts[index], amount, pay=bool(days))
                self._books_hold()

    def _refund(self, cashier: Principal, account: Account, amount: Decimal, *, pay: bool) -> None:
        """Ask for ``amount`` of the account's credit back: accepted exactly when within what
        may be refunded; then approved by finance and, when ``pay``, paid in cash."""
        refundable = account_refundable(account).credit
        try:
            refund = request_refund(
                cashier, account=account, from_wallet=amount, channel="cash", reason="退款"
            )
        except ValidationError:
            assert amount > refundable
            return
        assert amount <= refundable
        approve_refund(self.finance, refund)
        if pay:
            pay_refund(cashier, refund)

    def _allocated_within(self, payment: Payment, before: AccountPosition) -> None:
        items = {item.reference: item for item in before.items}
        parts = PaymentAllocation.objects.filter(payment=payment, reversal__isnull=True)
        for part in parts:
            item = items[f"bill:{part.bill_id}"]
            assert Decimal(0) <= part.principal <= item.principal
            assert Decimal(0) <= part.late_fee <= item.late_fee
        allocated = _sum(parts, "principal") + _sum(parts, "late_fee")
        assert allocated == payment.principal + payment.late_fees
        assert allocated <= payment.amount + before.credit
        assert payment.amount + payment.credit_used == allocated + payment.surplus

    def _books_hold(self) -> None:
        assert check_ledger(self.world.a.tenant) == []
        for account in self.accounts:
            self._receivable_rederived(account)
        for payment in Payment.objects.reversed():
            rows = PaymentAllocation.objects.filter(payment=payment)
            assert _sum(rows, "principal") == _sum(rows, "late_fee") == 0
        assert PaymentReversal.objects.count() == Payment.objects.reversed().count()
        approved = _sum(Refund.objects.filter(state=RefundState.APPROVED), "amount")
        payable = LedgerAccount.objects.filter(kind=LedgerKind.REFUNDS_PAYABLE, account=None)
        assert _sum(payable, "balance") == -approved
        numbers = list(Receipt.objects.order_by("number").values_list("number", flat=True))
        assert numbers == list(range(1, Payment.objects.count() + 1))
        unredeemed = VoucherCard.objects.filter(state=VoucherCardState.UNREDEEMED).count()
        liability = _sum(LedgerAccount.objects.filter(kind=LedgerKind.VOUCHER), "balance")
        assert liability == -CARD_FACE * unredeemed

    def _receivable_rederived(self, account: Account) -> None:
        receivable = LedgerAccount.objects.filter(account=account, kind=LedgerKind.RECEIVABLE)
        balance = _sum(receivable, "balance")
        documents = _sum(Bill.objects.filter(account=account, state=BillState.ISSUED), "total")
        paid = _sum(PaymentAllocation.objects.filter(account=account), "principal")
        credit_used = _sum(
            JournalLine.objects.filter(ledger_account__in=receivable, reference="credit"), "amount"
        )
        assert balance == documents - paid + credit_used
