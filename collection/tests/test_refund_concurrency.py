"""Refunds under real concurrency on PostgreSQL: parallel requests for one account's credit
never promise more than it holds; parallel approvals of one refund post once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from collection.models import Refund, RefundState
from collection.services.errors import PaymentConflict
from collection.services.payments import post_payment
from collection.services.refunds import approve_refund, request_refund
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
    cashier = a.cashier()
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
