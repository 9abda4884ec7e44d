"""Refunds and closings under real concurrency on PostgreSQL: parallel requests for one
account's credit never promise more than it holds; parallel approvals of one refund post once;
payments racing a closing land before it or are refused."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from collection.models import AccountClosing, ClosingState, Refund, RefundState
from collection.services.closing import close_account
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import approve_refund, request_refund
from collection.tests.test_closing import SHANGHAI, closable_account
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from tenancy.context import use_tenant
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.concurrency import run_together
from tests.world import World, unique

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_parallel_refund_requests_never_promise_more_than_the_credit(world: World) -> None:
    a = world.a
    account = a.account()
    cashier = a.cashier_on_shift()
    with use_tenant(a.tenant):
        post_payment(
            cashier, account=account, channel="counter_cash", amount=Decimal("100.00"),
            idempotency_key=unique("k"),
        )  # fmt: skip

    # Eight clerks each ask for 30.00 of the 100.00 credit: three fit (90.00), five are refused.
    def ask(_index: int) -> int:
        return request_refund(
            cashier, account=account, from_wallet=Decimal("30.00"), channel="cash",
            reason="退款",
        ).pk  # fmt: skip

    made, errors = run_together(8, ask, a.tenant)
    assert len(made) == 3
    assert len(errors) == 5 and all(isinstance(e, ValidationError) for e in errors)
    finance = Principal.for_user(a.staff((Role.HQ_FINANCE, None)))

    def approve(index: int) -> int:
        return approve_refund(finance, Refund.dangerously_unscoped.get(pk=made[index % 3])).pk

    approved, conflicts = run_together(6, approve, a.tenant)
    assert sorted(set(approved)) == sorted(made)
    assert len(conflicts) == 3 and all(isinstance(e, PaymentConflict) for e in conflicts)
    with use_tenant(a.tenant):
        assert Refund.objects.filter(state=RefundState.APPROVED).count() == 3
        assert JournalEntry.objects.filter(source_type="refund_approval").count() == 3
        wallet = LedgerAccount.objects.get(account=account, kind=LedgerKind.WALLET)
        assert wallet.balance == Decimal("-10.00")  # −100.00 + 3 × 30.00


def test_payments_racing_a_closing_land_before_it_or_are_refused(world: World) -> None:
    """Four cashiers take 50.00 each while a manager closes the account: each payment either
    lands before the settlement (and is counted in it) or is refused as closed; the closed
    account's balances are exactly the settlement's arrears and credit left."""
    a = world.a
    with use_tenant(a.tenant):
        account, _meter = closable_account(a)
    manager = Principal.for_user(a.staff((Role.SITE_MANAGER, None)))
    cashiers = [a.cashier_on_shift() for _ in range(4)]

    def work(index: int) -> object:
        if index == 4:
            return close_account(
                manager, account, reason="迁出",
                taken_at=datetime(2026, 9, 10, 18, tzinfo=SHANGHAI),
                values={"total": Decimal("1090.00")},
            )  # fmt: skip
        return post_payment(
            cashiers[index], account=account, channel="counter_cash", amount=Decimal("50.00"),
            idempotency_key=unique("k"),
        ).payment  # fmt: skip

    done, errors = run_together(5, work, a.tenant)
    assert all(
        isinstance(e, ValidationError) and e.error_dict["account"][0].code == "closed_account"
        for e in errors
    ), errors
    [closing] = [item for item in done if isinstance(item, AccountClosing)]
    paid = [item for item in done if not isinstance(item, AccountClosing)]
    assert len(paid) + len(errors) == 4
    with use_tenant(a.tenant):
        assert closing.state == ClosingState.CLOSED
        # Each payment landed before the closing. The settlement is posted only when there is
        # credit or deposit to apply: when the payments that landed only paid the bill, there
        # is none, and the closing's own time says it came after them.
        assert closing.closed_at is not None
        assert all(payment.received_at < closing.closed_at for payment in paid)
        if closing.settlement_entry_id is not None:
            assert all(payment.entry_id < closing.settlement_entry_id for payment in paid)
        balances = dict(
            LedgerAccount.objects.filter(account=account).values_list("kind", "balance")
        )
    # What is owed stays on the receivable; the credit left waits in the wallet for its refund.
    refund_credit = Decimal(closing.figures["refund_credit"])
    assert balances[LedgerKind.RECEIVABLE] == Decimal(closing.figures["arrears"])
    assert balances.get(LedgerKind.WALLET, Decimal(0)) == -refund_credit
    if refund_credit:
        with use_tenant(a.tenant):
            refund = Refund.objects.get(pk=closing.refund_id or 0)
        assert refund.from_wallet == refund_credit
