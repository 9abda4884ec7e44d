"""The ledger core: worked postings, idempotency, and the database refusing what the service
refuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from ledger.checks import check_ledger
from ledger.models import JournalEntry, JournalLine, LedgerAccount, LedgerKind
from ledger.services import (
    EntrySpec,
    PostingConflict,
    PostingError,
    apply_balances,
    balances_sql,
    customer_ledger_accounts,
    post_entries,
    post_entry,
    tenant_ledger_account,
)
from tests.concurrency import run_together
from tests.world import World

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def _bill_accounts(world: World) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    tenant = world.a.tenant
    account = world.a.account()
    receivable_id = customer_ledger_accounts(tenant, LedgerKind.RECEIVABLE, [account.pk])[
        account.pk
    ]
    return (
        LedgerAccount.dangerously_unscoped.get(pk=receivable_id),
        tenant_ledger_account(
            tenant, LedgerKind.REVENUE, utility="electricity", component="energy"
        ),
        tenant_ledger_account(tenant, LedgerKind.VAT_PAYABLE, utility="electricity"),
    )


def _post_bill(
    world: World,
    accounts: tuple[LedgerAccount, LedgerAccount, LedgerAccount],
    source_id: str = "1",
    total: str = "113.00",
) -> JournalEntry:
    receivable, revenue, vat = accounts
    gross = Decimal(total)
    tax = (gross - gross / Decimal("1.13")).quantize(Decimal("0.01"))
    return post_entry(
        world.a.system,
        source_type="bill",
        source_id=source_id,
        lines=[(receivable, gross), (revenue, -(gross - tax)), (vat, -tax)],
        memo="bill",
    )


def test_a_bill_of_113_yuan_owes_113_and_books_100_revenue_and_13_vat(world: World) -> None:
    accounts = _bill_accounts(world)
    entry = _post_bill(world, accounts)
    receivable, revenue, vat = (LedgerAccount.dangerously_unscoped.get(pk=a.pk) for a in accounts)
    assert receivable.balance == Decimal("113.00")
    assert revenue.balance == Decimal("-100.00")
    assert vat.balance == Decimal("-13.00")
    assert sorted(
        JournalLine.dangerously_unscoped.filter(entry=entry).values_list("amount", flat=True)
    ) == [
        Decimal("-100.00"),
        Decimal("-13.00"),
        Decimal("113.00"),
    ]
    assert check_ledger(world.a.tenant) == []


def test_a_retried_posting_returns_the_first_entry_and_moves_nothing_twice(world: World) -> None:
    accounts = _bill_accounts(world)
    first = _post_bill(world, accounts)
    again = _post_bill(world, accounts)
    assert again.pk == first.pk
    assert JournalEntry.dangerously_unscoped.filter(source_type="bill", source_id="1").count() == 1
    assert LedgerAccount.dangerously_unscoped.get(pk=accounts[0].pk).balance == Decimal("113.00")


def test_a_retry_with_other_lines_is_refused(world: World) -> None:
    accounts = _bill_accounts(world)
    _post_bill(world, accounts)
    with pytest.raises(PostingConflict):
        _post_bill(world, accounts, total="226.00")
    assert LedgerAccount.dangerously_unscoped.get(pk=accounts[0].pk).balance == Decimal("113.00")


@pytest.mark.parametrize(
    ("amounts", "problem"),
    [
        (["10.00", "-9.99"], "sum to 0.01"),
        (["10.00"], "at least two lines"),
        (["10.00", "0", "-10.00"], "zero"),
        (["10.001", "-10.001"], "two decimals"),
    ],
)
def test_lines_that_are_not_a_balanced_movement_of_money_are_refused(
    world: World, amounts: list[str], problem: str
) -> None:
    receivable, revenue, vat = _bill_accounts(world)
    targets = [receivable, revenue, vat]
    with pytest.raises((PostingError, ValueError), match=problem):
        post_entry(
            world.a.system,
            source_type="test",
            source_id="x",
            lines=[(targets[i], Decimal(a)) for i, a in enumerate(amounts)],
        )
    assert not JournalEntry.dangerously_unscoped.exists()


def test_a_float_amount_is_refused(world: World) -> None:
    receivable, revenue, _vat = _bill_accounts(world)
    with pytest.raises(TypeError):
        post_entry(
            world.a.system,
            source_type="test",
            source_id="x",
            lines=[(receivable, 0.1), (revenue, -0.1)],  # type: ignore[list-item]
        )


def test_another_tenants_ledger_account_cannot_be_posted_to(world: World) -> None:
    receivable, _revenue, _vat = _bill_accounts(world)
    foreign = tenant_ledger_account(world.b.tenant, LedgerKind.REVENUE, utility="electricity")
    with pytest.raises(PostingError, match="unknown ledger accounts"):
        post_entry(
            world.a.system,
            source_type="test",
            source_id="x",
            lines=[(receivable, Decimal("5.00")), (foreign, Decimal("-5.00"))],
        )
    assert LedgerAccount.dangerously_unscoped.get(pk=foreign.pk).balance == 0


def test_ledger_check_passes_a_sound_ledger_and_fails_a_stale_cached_balance(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = _bill_accounts(world)
    _post_bill(world, accounts)
    call_command("ledger_check", "--tenant", world.a.tenant.slug)
    assert "ledger ok" in capsys.readouterr().out
    LedgerAccount.dangerously_unscoped.filter(pk=accounts[0].pk).update(balance=Decimal("112.99"))
    with pytest.raises(CommandError, match="1 problems"):
        call_command("ledger_check")
    assert "cached balance 112.99, lines sum to 113.00" in capsys.readouterr().err
    LedgerAccount.dangerously_unscoped.filter(pk=accounts[0].pk).update(balance=Decimal("113.00"))


@pytest.mark.postgres
def test_the_database_refuses_an_entry_whose_lines_do_not_sum_to_zero(world: World) -> None:
    receivable, revenue, _vat = _bill_accounts(world)
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        entry = JournalEntry.dangerously_unscoped.create(
            tenant=world.a.tenant,
            source_type="raw",
            source_id="1",
            digest="-",
            booked_on="2026-10-01",
            actor_kind="system",
            actor_label="raw SQL",
        )
        JournalLine.dangerously_unscoped.create(
            tenant=world.a.tenant, entry=entry, ledger_account=receivable, amount="10.00"
        )
        JournalLine.dangerously_unscoped.create(
            tenant=world.a.tenant, entry=entry, ledger_account=revenue, amount="-9.00"
        )
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not JournalEntry.dangerously_unscoped.filter(source_type="raw").exists()


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_delete_a_line_or_add_one_later(world: World) -> None:
    accounts = _bill_accounts(world)
    entry = _post_bill(world, accounts)
    line = JournalLine.dangerously_unscoped.filter(entry=entry).first()
    assert line is not None
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalLine.dangerously_unscoped.filter(pk=line.pk).update(amount="1.00")
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalLine.dangerously_unscoped.filter(pk=line.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalEntry.dangerously_unscoped.filter(pk=entry.pk).delete()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_lines_cannot_be_added_to_an_entry_posted_in_an_earlier_transaction(world: World) -> None:
    accounts = _bill_accounts(world)
    entry = _post_bill(world, accounts)
    with pytest.raises(DatabaseError, match="while it is posted"), transaction.atomic():
        JournalLine.dangerously_unscoped.bulk_create(
            [
                JournalLine(tenant=world.a.tenant, entry=entry, ledger_account=a, amount=amount)
                for a, amount in ((accounts[0], Decimal("5.00")), (accounts[1], Decimal("-5.00")))
            ]
        )
    assert JournalLine.dangerously_unscoped.filter(entry=entry).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_posting_post_it_once(world: World) -> None:
    accounts = _bill_accounts(world)
    entries, errors = run_together(
        6, lambda _i: _post_bill(world, accounts, source_id="same").pk, world.a.tenant
    )
    assert not errors
    assert len(set(entries)) == 1
    assert LedgerAccount.dangerously_unscoped.get(pk=accounts[0].pk).balance == Decimal("113.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_postings_to_one_account_lose_no_update(world: World) -> None:
    accounts = _bill_accounts(world)

    def post_five(index: int) -> None:
        for n in range(5):
            _post_bill(world, accounts, source_id=f"{index}-{n}")

    _results, errors = run_together(8, post_five, world.a.tenant)
    assert not errors
    assert (
        LedgerAccount.dangerously_unscoped.get(pk=accounts[0].pk).balance == Decimal("113.00") * 40
    )
    assert check_ledger(world.a.tenant) == []


def _bill_spec(
    accounts: tuple[LedgerAccount, LedgerAccount, LedgerAccount], source_id: str
) -> EntrySpec:
    receivable, revenue, vat = accounts
    # 113.00 gross: 100.00 revenue, 13.00 VAT.
    lines = [(receivable.pk, Decimal("113.00")), (revenue.pk, Decimal("-100.00")),
             (vat.pk, Decimal("-13.00"))]  # fmt: skip
    return EntrySpec("bill", source_id, lines, date(2026, 11, 1), memo="bill")


def _balances(*accounts: LedgerAccount) -> list[Decimal]:
    return [LedgerAccount.dangerously_unscoped.get(pk=row.pk).balance for row in accounts]


def test_a_deferred_balance_step_moves_the_balances_where_the_caller_takes_it(
    world: World,
) -> None:
    accounts = _bill_accounts(world)
    receivable, revenue, vat = accounts
    with transaction.atomic():
        movements: dict[int, Decimal] = {}
        post_entries(world.a.system, [_bill_spec(accounts, "1")], defer_balances=movements)
        post_entries(world.a.system, [_bill_spec(accounts, "2")], defer_balances=movements)
        # Two bills of 113.00: the movements add up per account; nothing moved yet.
        assert movements == {
            receivable.pk: Decimal("226.00"), revenue.pk: Decimal("-200.00"),
            vat.pk: Decimal("-26.00"),
        }  # fmt: skip
        assert _balances(receivable, revenue, vat) == [Decimal("0.00")] * 3
        # A retry of a posted source moves nothing, deferred or not.
        post_entries(world.a.system, [_bill_spec(accounts, "1")], defer_balances=movements)
        assert movements[receivable.pk] == Decimal("226.00")
        apply_balances(world.a.tenant, movements)
        assert _balances(receivable, revenue, vat) == [
            Decimal("226.00"), Decimal("-200.00"), Decimal("-26.00")
        ]  # fmt: skip
    assert check_ledger(world.a.tenant) == []


@pytest.mark.django_db(transaction=True)
def test_deferring_the_balance_step_needs_the_callers_transaction(world: World) -> None:
    accounts = _bill_accounts(world)
    with pytest.raises(PostingError, match="caller's transaction"):
        # Outside a transaction the step could never be taken before a commit.
        post_entries(world.a.system, [_bill_spec(accounts, "1")], defer_balances={})
    assert not JournalEntry.objects.filter(source_type="bill", source_id="1").exists()


def test_a_deferred_posting_to_another_tenants_account_is_refused_when_applied(
    world: World,
) -> None:
    receivable, _revenue, _vat = _bill_accounts(world)
    foreign = tenant_ledger_account(world.b.tenant, LedgerKind.REVENUE, utility="electricity")
    spec = EntrySpec(
        "test", "x", [(receivable.pk, Decimal("5.00")), (foreign.pk, Decimal("-5.00"))],
        date(2026, 11, 1),
    )  # fmt: skip
    with pytest.raises(PostingError, match="unknown ledger accounts"), transaction.atomic():
        movements: dict[int, Decimal] = {}
        post_entries(world.a.system, [spec], defer_balances=movements)
        apply_balances(world.a.tenant, movements)
    assert not JournalEntry.objects.filter(source_type="test").exists()
    assert _balances(receivable, foreign) == [Decimal("0.00"), Decimal("0.00")]


@pytest.mark.postgres
def test_the_balance_step_as_sql_moves_the_tenants_rows_and_refuses_anothers(
    world: World,
) -> None:
    accounts = _bill_accounts(world)
    receivable, revenue, vat = accounts
    foreign = tenant_ledger_account(world.b.tenant, LedgerKind.REVENUE, utility="electricity")

    def send(movements: dict[int, Decimal]) -> None:
        step = balances_sql(world.a.tenant, movements)
        with connection.cursor() as cursor:
            cursor.execute(f"{step.sql} SELECT {step.check}", [*step.params, *step.check_params])
            step.verify(cursor.fetchone()[0])

    with transaction.atomic():
        movements: dict[int, Decimal] = {}
        post_entries(world.a.system, [_bill_spec(accounts, "1")], defer_balances=movements)
        send(movements)
    assert _balances(receivable, revenue, vat) == [
        Decimal("113.00"), Decimal("-100.00"), Decimal("-13.00")
    ]  # fmt: skip
    with pytest.raises(PostingError, match="unknown ledger accounts"), transaction.atomic():
        send({receivable.pk: Decimal("5.00"), foreign.pk: Decimal("-5.00")})
    # Rolled back with the caller's transaction; the other tenant's row was never touched.
    assert _balances(receivable, foreign) == [Decimal("113.00"), Decimal("0.00")]
    assert check_ledger(world.a.tenant) == []
