"""Numbers per tenant: gap-free ones taken inside the caller's transaction, and blocks taken
ahead of it."""

from __future__ import annotations

from typing import Any

from django.db import connection, models, transaction

from tenancy.models import Sequence, Tenant


def take_next(tenant: Tenant, name: str) -> int:
    """The next number of the tenant's sequence ``name``, starting at 1.

    One statement creates the counter row or moves it on and returns the number (an upsert:
    one round trip, so the row is locked from here). The row stays locked until the caller's
    transaction ends, so concurrent callers queue and a rolled-back caller leaves no gap.
    """
    sql, params = next_number_sql(tenant, name)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def next_number_sql(tenant: Tenant, name: str) -> tuple[str, list[Any]]:
    """``take_next``'s statement, returning the number as ``number``: a caller that writes the
    number's row in the same statement (a CTE) holds the counter's lock one round trip less.
    The same rules: inside the caller's transaction, which holds the row until it ends."""
    if not connection.in_atomic_block:
        raise RuntimeError("take_next() must run inside transaction.atomic()")
    table = Sequence._meta.db_table
    sql = (
        f"INSERT INTO {table} (tenant_id, name, next_value) VALUES (%s, %s, 2) "  # noqa: S608
        f"ON CONFLICT (tenant_id, name) DO UPDATE SET next_value = {table}.next_value + 1 "
        "RETURNING next_value - 1 AS number"
    )
    return sql, [tenant.pk, name]


def take_block(tenant: Tenant, name: str, count: int) -> range:
    """``count`` numbers of the tenant's sequence ``name`` (need not be gap-free).

    Outside a transaction the block is committed at once, so callers that take blocks before
    their own transactions never queue on the counter; unused numbers of a block, or those of
    a transaction that rolled back, are simply skipped. Inside one, the counter row stays
    locked until that transaction ends.
    """
    if count <= 0:
        return range(0)
    with transaction.atomic():
        Sequence.objects.bulk_create(
            [Sequence(tenant=tenant, name=name, next_value=1)], ignore_conflicts=True
        )
        counter = Sequence.objects.filter(tenant=tenant, name=name)
        counter.update(next_value=models.F("next_value") + count)
        end = counter.values_list("next_value", flat=True).get()
    return range(end - count, end)
