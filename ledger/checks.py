"""The ledger check: every journal entry's lines sum to zero and every ledger account's cached
balance equals the sum of its lines. It is system code (``manage.py ledger_check`` and the test
suite run it across tenants), so it reads the ledger with the unscoped manager.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q, Sum

from ledger.models import JournalEntry, JournalLine, LedgerAccount
from tenancy.models import Tenant
from tenancy.money import round_fen

HALF_FEN = Decimal("0.005")  # sums on SQLite are floats: anything under half a fen is zero


def check_ledger(tenant: Tenant | None = None) -> list[str]:
    """Everything that is wrong with the ledger, as sentences (empty when it is sound): entries
    whose lines do not sum to zero or have fewer than two lines, and cached balances that differ
    from the sum of their lines."""
    problems = []
    lines = JournalLine.dangerously_unscoped.all()
    accounts = LedgerAccount.dangerously_unscoped.all()
    entries = JournalEntry.dangerously_unscoped.all()
    if tenant is not None:
        lines, accounts, entries = (
            lines.filter(tenant=tenant),
            accounts.filter(tenant=tenant),
            entries.filter(tenant=tenant),
        )
    unbalanced = (
        entries.annotate(line_sum=Sum("lines__amount"), line_count=Count("lines"))
        .filter(Q(line_count__lt=2) | Q(line_sum__gt=HALF_FEN) | Q(line_sum__lt=-HALF_FEN))
        .values_list("pk", "source_type", "source_id", "line_sum", "line_count")
    )
    for entry_id, source_type, source_id, line_sum, line_count in unbalanced:
        problems.append(
            f"entry {entry_id} ({source_type}:{source_id}) has {line_count} lines "
            f"summing to {line_sum or 0}"
        )
    derived = dict(
        lines.values("ledger_account_id")
        .annotate(total=Sum("amount"))
        .values_list("ledger_account_id", "total")
    )
    for pk, name, balance in accounts.values_list("pk", "name", "balance"):
        expected = round_fen(Decimal(derived.get(pk) or 0))
        balance = round_fen(Decimal(balance))
        if balance != expected:
            problems.append(
                f"ledger account {pk} ({name}): cached balance {balance}, lines sum to {expected}"
            )
    return problems
