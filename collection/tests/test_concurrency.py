"""Payments under real concurrency on PostgreSQL: threads with connections of their own,
released together.

- parallel payments on one account lose nothing: every bill paid exactly, the rest credited,
  balances re-derivable;
- parallel payments on many accounts, some rolled back by their callers after posting, leave
  receipts 1…n with no gap and no duplicate; the receipt counter's lock is held from the
  number to the commit only (measured and printed);
- parallel payments of one bank (one API client: one clearing account) on four accounts with
  late fees (one late-fee revenue account), whose shared rows are locked and moved only with
  the receipt: no deadlock, no lost update, every balance equal to its lines;
- 20 parallel retries of one idempotency key post once;
- a reversal racing another reversal of the same payment: one wins, one is a conflict.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from collection.models import Payment, PaymentAllocation, PaymentReversal, Receipt
from collection.services import payments
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.reversal import reverse_payment
from ledger.checks import check_ledger
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from ledger.services import tenant_ledger_account
from tenancy.context import use_tenant
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.concurrency import run_together
from tests.world import World, unique

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_payments_on_one_account_lose_no_update(world: World) -> None:
    a = world.a
    account = a.account()
    due = timezone.localdate() + timedelta(days=20)
    bills = [a.issued_bill(account, "50.00", due) for _ in range(10)]  # 500.00 owed
    cashier = a.cashier()  # one cashier, on one shift
    a.on_shift(cashier, account.site)

    def pay(_index: int) -> int:
        return post_payment(
            cashier, account=account, channel="counter_cash", amount=Decimal("40.00"),
            idempotency_key=unique("k"),
        ).payment.pk  # fmt: skip

    paid, errors = run_together(16, pay, a.tenant)
    assert not errors, errors
    with use_tenant(a.tenant):
        assert len(set(paid)) == 16
        for bill in bills:
            allocated = PaymentAllocation.objects.filter(bill=bill).aggregate(s=Sum("principal"))
            assert allocated["s"] == Decimal("50.00"), bill.pk  # each paid exactly once
        payments = Payment.objects.filter(account=account)
        totals = payments.aggregate(principal=Sum("principal"), surplus=Sum("surplus"))
        assert totals == {"principal": Decimal("500.00"), "surplus": Decimal("140.00")}
        ledger = {row.kind: row.balance for row in LedgerAccount.objects.filter(account=account)}
        assert ledger == {"receivable": Decimal("0.00"), "wallet": Decimal("-140.00")}
        cash = LedgerAccount.objects.get(kind=LedgerKind.CASH)
        assert cash.balance == Decimal("640.00")  # 16 × 40.00, one cash account
        numbers = sorted(Receipt.objects.values_list("number", flat=True))
        assert numbers == list(range(1, 17))
    assert check_ledger(a.tenant) == []


class LockClock:
    """Times the receipt counter's lock: from the moment the number is taken (the counter row
    locked: the receipt's statement returned) to the end of the payment's commit."""

    def __init__(self) -> None:
        self.held: list[float] = []
        self._lock = threading.Lock()

    def wrap(self, issue_receipt: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            number = issue_receipt(*args, **kwargs)
            locked = time.perf_counter()

            def committed() -> None:
                with self._lock:
                    self.held.append(time.perf_counter() - locked)

            transaction.on_commit(committed)
            return number

        return timed


@pytest.fixture
def lock_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[LockClock]:
    clock = LockClock()
    monkeypatch.setattr(payments, "issue_receipt", clock.wrap(payments.issue_receipt))
    yield clock


def test_parallel_receipts_have_no_gap_and_no_duplicate_across_rollbacks(
    world: World, lock_clock: LockClock
) -> None:
    a = world.a
    accounts = [a.account() for _ in range(24)]
    cashiers = [a.cashier() for _ in range(4)]
    for cashier in cashiers:
        a.on_shift(cashier, a.sites[0])

    class CallerFailed(Exception):
        pass

    def pay(index: int) -> int | None:
        def post() -> int:
            return post_payment(
                cashiers[index % 4], account=accounts[index], channel="counter_cash",
                amount=Decimal("10.00"), idempotency_key=unique("k"),
            ).payment.pk  # fmt: skip

        if index % 3 != 0:
            return post()
        try:
            with transaction.atomic():  # the caller's transaction fails after the payment
                post()
                raise CallerFailed
        except CallerFailed:
            return None

    paid, errors = run_together(24, pay, a.tenant)
    assert not errors, errors
    with use_tenant(a.tenant):
        kept = [pk for pk in paid if pk is not None]
        assert len(kept) == 16
        assert Payment.objects.count() == 16
        numbers = list(Receipt.objects.order_by("number").values_list("number", flat=True))
        assert numbers == list(range(1, 17))
        assert set(Receipt.objects.values_list("payment_id", flat=True)) == set(kept)
    assert check_ledger(a.tenant) == []
    held = sorted(lock_clock.held)
    assert len(held) == 16
    median, worst = statistics.median(held) * 1000, held[-1] * 1000
    print(f"\nreceipt counter lock held: median {median:.2f} ms, max {worst:.2f} ms")
    assert median < 100, "the receipt counter's lock is held far longer than its commit"


def test_parallel_payments_of_one_bank_share_its_clearing_account_and_lose_nothing(
    world: World,
) -> None:
    a = world.a
    accounts = [a.account() for _ in range(4)]
    overdue = timezone.localdate() - timedelta(days=10)
    for account in accounts:
        a.issued_bill(account, "100.00", overdue, period="2026-09")
    client, _token = a.api_client((Role.CASHIER, None))
    bank = Principal.for_api_client(client)

    def pay(index: int) -> int:
        return post_payment(
            bank, account=accounts[index % 4], channel="bank_collection",
            amount=Decimal("30.00"), idempotency_key=unique("k"),
        ).payment.pk  # fmt: skip

    paid, errors = run_together(16, pay, a.tenant)
    assert not errors, errors
    assert len(set(paid)) == 16
    with use_tenant(a.tenant):
        # Each account: four payments of 30.00 = 120.00 against 100.00 owed and 10 days at 1‰
        # a day = 1.00 of late fee: 1.00 late fee, 100.00 principal, 19.00 on the wallet.
        for account in accounts:
            rows = LedgerAccount.objects.filter(account=account)
            ledger = {row.kind: row.balance for row in rows}
            assert ledger == {"receivable": Decimal("0.00"), "wallet": Decimal("-19.00")}
        clearing = LedgerAccount.objects.get(kind=LedgerKind.CLEARING)
        assert clearing.balance == Decimal("480.00")  # 16 × 30.00, one clearing account
        late_fees = LedgerAccount.objects.get(kind=LedgerKind.LATE_FEES)
        assert late_fees.balance == Decimal("-4.00")  # 4 × 1.00 of revenue (a credit)
        numbers = sorted(Receipt.objects.values_list("number", flat=True))
        assert numbers == list(range(1, 17))
    assert check_ledger(a.tenant) == []


def test_twenty_parallel_retries_of_one_key_post_once(world: World) -> None:
    a = world.a
    account = a.account()
    a.issued_bill(account, "30.00", timezone.localdate() + timedelta(days=5))
    client, _token = a.api_client((Role.CASHIER, None))
    bank = Principal.for_api_client(client)

    def retry(_index: int) -> tuple[int, bool]:
        result = post_payment(
            bank, account=account, channel="bank_collection", amount=Decimal("30.00"),
            idempotency_key="ICBC-20261129-000001", external_reference="000001",
        )  # fmt: skip
        return result.payment.pk, result.created

    results, errors = run_together(20, retry, a.tenant)
    assert not errors, errors
    assert len({pk for pk, _created in results}) == 1
    assert sum(created for _pk, created in results) == 1
    with use_tenant(a.tenant):
        assert Payment.objects.count() == 1
        assert JournalEntry.objects.filter(source_type="payment").count() == 1
        assert Receipt.objects.count() == 1
        receivable = LedgerAccount.objects.get(account=account, kind=LedgerKind.RECEIVABLE)
        assert receivable.balance == Decimal("0.00")
    assert check_ledger(a.tenant) == []


def test_two_reversals_of_one_payment_race_and_one_wins(world: World) -> None:
    a = world.a
    payment = a.payment()
    finance = [Principal.for_user(a.staff((Role.HQ_FINANCE, None))) for _ in range(2)]

    def reverse(index: int) -> int:
        return reverse_payment(finance[index], payment, "重复缴费").pk

    done, errors = run_together(2, reverse, a.tenant)
    assert len(done) == 1
    assert len(errors) == 1 and isinstance(errors[0], PaymentConflict)
    with use_tenant(a.tenant):
        assert PaymentReversal.objects.count() == 1
        assert JournalEntry.objects.filter(source_type="payment_reversal").count() == 1
    assert check_ledger(a.tenant) == []


def test_a_cash_account_used_first_by_parallel_payments_is_created_once(world: World) -> None:
    a = world.a

    def first_use(_index: int) -> int:
        return tenant_ledger_account(a.tenant, LedgerKind.CASH, holder="user:424242").pk

    made, errors = run_together(8, first_use, a.tenant)
    assert not errors and len(set(made)) == 1
    with use_tenant(a.tenant):
        assert LedgerAccount.objects.filter(kind=LedgerKind.CASH, holder="user:424242").count() == 1
