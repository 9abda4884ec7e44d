"""Prepared statements (``tenancy.prepared``): the answers are the plain statement's, each
statement is prepared once per connection and keeps working after a rollback and a new
connection, and a connection holds no more than its cap."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from tenancy import prepared

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def _run(sql: str, params: object) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, params)  # type: ignore[arg-type]
        return list(cursor.fetchall())


def test_answers_as_the_plain_statement_with_marks_of_both_kinds_and_percent_signs() -> None:
    sql = "SELECT %s::int + %s::int, 'a%%b' LIKE 'a%%'"
    assert _run(sql, [2, 3]) == [(5, True)]
    assert _run(sql, [4, 5]) == [(9, True)]
    named = "SELECT %(a)s::int * %(b)s::int + %(a)s::int"
    assert _run(named, {"a": 3, "b": 4}) == [(15,)]
    # Several statements in one round trip: the answer is the last one's; a part without
    # parameters is sent as it is.
    several = "SELECT %s::int; SET CONSTRAINTS ALL IMMEDIATE; SELECT %s::text || %s::text"
    with transaction.atomic():
        assert _run(several, [1, "x", "y"]) == [("xy",)]


def test_a_statement_is_prepared_once_per_connection_and_outlives_a_rollback() -> None:
    sql = "SELECT %s::bigint * 2"
    before = _prepared_names()
    with transaction.atomic():
        assert _run(sql, [21]) == [(42,)]
        transaction.set_rollback(True)
    made = _prepared_names() - before
    assert len(made) == 1  # the server keeps it though the transaction rolled back
    with transaction.atomic():
        assert _run(sql, [50]) == [(100,)]
    assert _prepared_names() - before == made
    # A new connection has none: it prepares the statement again.
    connection.close()
    assert not made & _prepared_names()
    assert _run(sql, [5]) == [(10,)]
    assert made <= _prepared_names()


def test_a_failed_statement_leaves_nothing_half_prepared() -> None:
    sql = "SELECT 1 / %s::int"
    with pytest.raises(Exception, match="division by zero"), transaction.atomic():
        _run(sql, [0])
    assert _run(sql, [1]) == [(1,)]


def test_beyond_its_cap_a_connection_runs_statements_as_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection.close()
    monkeypatch.setattr(prepared, "PER_CONNECTION", 2)
    for number in range(4):
        assert _run(f"SELECT %s::int + {number}", [1]) == [(1 + number,)]
    assert len({name for name in _prepared_names() if name.startswith("bars_")}) == 2


def test_the_connection_keeps_the_first_plan() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
