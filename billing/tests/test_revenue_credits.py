"""Issuing shards that create the tenant's revenue and VAT ledger accounts at the same moment
take them in one order, so they queue instead of deadlocking (two shards whose first bills
post their components in opposite orders deadlocked a two-worker run)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.db import transaction

from billing.runs.drafting import RevenueCredits
from ledger.models import LedgerAccount, LedgerKind
from tests.concurrency import run_together
from tests.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_shards_creating_the_revenue_accounts_in_opposite_orders_both_post(
    world: World,
) -> None:
    postings = [
        {"energy": ["100.00", "13.00"], "capacity": ["50.00", "6.50"]},
        {"capacity": ["50.00", "6.50"], "energy": ["100.00", "13.00"]},
    ]

    def issue_shard(index: int) -> list[tuple[int, Decimal]]:
        with transaction.atomic():
            credits = RevenueCredits(world.a.tenant)
            credits.add("electricity", postings[index])
            lines = credits.lines()
            time.sleep(0.5)  # hold the new rows' locks, as a chunk of bills does
        return lines

    results, errors = run_together(2, issue_shard, world.a.tenant)
    assert not errors, errors
    assert results[0] == results[1]
    with world.a.active():
        revenue = LedgerAccount.objects.filter(kind=LedgerKind.REVENUE)
        assert sorted(revenue.values_list("component", flat=True)) == ["capacity", "energy"]
        assert LedgerAccount.objects.filter(kind=LedgerKind.VAT_PAYABLE).count() == 1
