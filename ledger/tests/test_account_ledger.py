"""An account's balances and latest lines, as the console's account page shows them: a worked
example of a bill of 113.00, a payment of 50.00 and a prepaid top-up of 30.00."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.models import LedgerKind
from ledger.services import (
    account_ledger,
    customer_ledger_accounts,
    post_entry,
    tenant_ledger_account,
)
from tests.world import World

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def test_an_account_with_no_postings_owes_nothing(world: World) -> None:
    ledger = account_ledger(world.a.account())
    assert (ledger.receivable, ledger.wallet, ledger.lines) == (
        Decimal("0.00"),
        Decimal("0.00"),
        [],
    )
    assert ledger.net_owed == 0


def test_the_balances_and_lines_of_a_billed_paid_and_topped_up_account(world: World) -> None:
    tenant, system = world.a.tenant, world.a.system
    account = world.a.account()
    other = world.a.account()
    receivable = customer_ledger_accounts(tenant, LedgerKind.RECEIVABLE, [account.pk, other.pk])
    wallet = customer_ledger_accounts(tenant, LedgerKind.WALLET, [account.pk])[account.pk]
    revenue = tenant_ledger_account(tenant, LedgerKind.REVENUE, utility="electricity")
    cash = tenant_ledger_account(tenant, LedgerKind.CLEARING, name="cash")
    post_entry(
        system,
        source_type="bill",
        source_id="1",
        lines=[(receivable[account.pk], Decimal("113.00")), (revenue, Decimal("-113.00"))],
    )
    post_entry(
        system,
        source_type="bill",
        source_id="2",
        lines=[(receivable[other.pk], Decimal("7.00")), (revenue, Decimal("-7.00"))],
    )
    post_entry(
        system,
        source_type="payment",
        source_id="1",
        lines=[(cash, Decimal("50.00")), (receivable[account.pk], Decimal("-50.00"))],
    )
    post_entry(
        system,
        source_type="topup",
        source_id="1",
        lines=[(cash, Decimal("30.00")), (wallet, Decimal("-30.00"))],
    )

    ledger = account_ledger(account)

    # Owes 113.00 - 50.00 = 63.00; has 30.00 of prepaid credit; 33.00 net.
    assert ledger.receivable == Decimal("63.00")
    assert ledger.prepaid_credit == Decimal("30.00")
    assert ledger.net_owed == Decimal("33.00")
    assert [(line.entry.source_type, line.amount) for line in ledger.lines] == [
        ("topup", Decimal("-30.00")),
        ("payment", Decimal("-50.00")),
        ("bill", Decimal("113.00")),
    ]


def test_only_the_latest_lines_are_read(world: World) -> None:
    account = world.a.account()
    receivable = customer_ledger_accounts(world.a.tenant, LedgerKind.RECEIVABLE, [account.pk])
    revenue = tenant_ledger_account(world.a.tenant, LedgerKind.REVENUE, utility="electricity")
    for number in range(5):
        post_entry(
            world.a.system,
            source_type="bill",
            source_id=str(number),
            lines=[(receivable[account.pk], Decimal("1.00")), (revenue, Decimal("-1.00"))],
        )
    ledger = account_ledger(account, latest=3)
    assert [line.entry.source_id for line in ledger.lines] == ["4", "3", "2"]
    assert ledger.receivable == Decimal("5.00")
