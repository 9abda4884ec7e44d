"""Set-based writes for runs over many rows (bill runs, ledger postings): ids allocated up front
in one query, rows written with COPY on PostgreSQL (a fraction of the cost of binding every
value) and one multi-row INSERT per batch on SQLite. Callers run inside a transaction."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection, models
from django.db.models.functions import Cast

from tenancy import prepared

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SQLITE_BATCH = 500


def allocate_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` fresh primary keys of ``model``. On SQLite the transaction holds the write lock
    from its start (immediate mode), so max(id) + 1 … cannot be taken twice."""
    if count <= 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, pk, count],
            )
            return [row[0] for row in cursor.fetchall()]
        if not connection.in_atomic_block:
            raise RuntimeError("allocate_ids needs a transaction on SQLite")
        cursor.execute(f"SELECT coalesce(max({pk}), 0) FROM {table}")  # noqa: S608 - model names
        first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))


class AnyOf(models.Lookup):
    """``field__any=ids``: the field is one of many values. On PostgreSQL one array parameter
    (``= ANY(%s)``): Django prepares each value of an ``__in`` list on its own, which costs a
    bill run more than the query it builds. Elsewhere a plain ``IN``."""

    lookup_name = "any"

    def get_prep_lookup(self) -> Any:
        return list(self.rhs)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)
        if not self.rhs:
            return "1 = 0", tuple(lhs_params)
        marks = ", ".join(["%s"] * len(self.rhs))
        return f"{lhs} IN ({marks})", (*lhs_params, *self.rhs)


models.Field.register_lookup(AnyOf)
models.ForeignObject.register_lookup(AnyOf)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _copy_str(value: str) -> str:
    # Tabs, newlines and carriage returns are not printable: the common string is tested in C
    # and returned as it is (str.translate costs five times as much, on every string).
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_COPY_ESCAPES)


def _copy_json(value: Any) -> str:
    # orjson: a fifth of json.dumps's time, and jsonb stores the same value.
    text = orjson.dumps(value, default=_json_default).decode()
    return text.translate(_COPY_ESCAPES) if "\\" in text else text


# By exact type: a bill run formats some 200,000 values a chunk, and one dictionary lookup
# costs less than a chain of type tests (``isinstance(v, datetime | date)`` builds the union
# each time). Subclasses (a str enum) fall through to the tests below.
_COPY_FORMATS: dict[type, Callable[[Any], str]] = {
    int: str,
    Decimal: str,
    str: _copy_str,
    type(None): lambda _value: "\\N",
    bool: lambda value: "t" if value else "f",
    datetime: datetime.isoformat,
    date: date.isoformat,
    dict: _copy_json,
    list: _copy_json,
}


def copy_text(value: Any) -> str:
    """A value as PostgreSQL's COPY text format reads it."""
    format_value = _COPY_FORMATS.get(type(value))
    if format_value is not None:
        return format_value(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return _copy_str(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return _copy_json(value)
    return str(value).translate(_COPY_ESCAPES)


class JSONText(Cast):
    """A JSON column read as its text, for ``loads_json``: Django decodes each value with the
    standard library's json, a third of the time of reading bills' small JSON columns in bulk."""

    def __init__(self, field: str) -> None:
        super().__init__(field, output_field=models.TextField())


def loads_json(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (tuples in the order of ``fields``, attribute names) into ``model``'s
    table; returns how many."""
    meta = model._meta
    model_fields = [meta.get_field(name) for name in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in model_fields)  # type: ignore[arg-type, union-attr]
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(map(copy_text, row)))
                buffer.write("\n")
                count += 1
            buffer.seek(0)
            with connection.wrap_database_errors:  # COPY bypasses Django's error translation
                cursor.copy_expert(f"COPY {meta.db_table} ({columns}) FROM STDIN", buffer)
            return count
        placeholder = "(" + ", ".join(["%s"] * len(model_fields)) + ")"
        batch: list[Any] = []
        pending = 0

        def flush() -> None:
            cursor.execute(
                f"INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608 - model names
                f"VALUES {', '.join([placeholder] * pending)}",
                batch,
            )

        for row in rows:
            batch.extend(
                field.get_db_prep_save(value, connection)  # type: ignore[union-attr]
                for field, value in zip(model_fields, row, strict=True)
            )
            pending += 1
            count += 1
            if pending == _SQLITE_BATCH:
                flush()
                batch, pending = [], 0
        if pending:
            flush()
    return count


def id_clusters(ids: Sequence[int], gap: int = 10_000) -> list[list[int]]:
    """Sorted ids cut where two neighbours are more than ``gap`` apart. An UPDATE … FROM
    (VALUES …) bounded to one cluster's id range reads that range by index; unbounded, a
    table that grew since it was last analysed is scanned whole by a hash join, every batch."""
    clusters: list[list[int]] = []
    for key in sorted(ids):
        if clusters and key - clusters[-1][-1] <= gap:
            clusters[-1].append(key)
        else:
            clusters.append([key])
    return clusters


def insert_together(
    parts: Sequence[tuple[type[models.Model], Sequence[str], Sequence[Sequence[Any]]]],
) -> None:
    """Insert a few rows into a few tables (``(model, fields, rows)`` each, as ``insert_rows``
    takes them) in one statement on PostgreSQL: each part an ``INSERT … VALUES`` of a CTE,
    so a posting's handful of rows cost one round trip, where COPY costs two a table. Plain
    values only (no JSON). Foreign keys between the parts are checked at the commit (Django's
    are deferred), so their order does not matter. Elsewhere one ``insert_rows`` a part."""
    parts = [part for part in parts if part[2]]
    if connection.vendor != "postgresql":
        for model, fields, rows in parts:
            insert_rows(model, fields, rows)
        return
    if not parts:
        return
    shape = tuple((model, tuple(fields), len(rows)) for model, fields, rows in parts)
    sql = _together_sql.get(shape)
    if sql is None:
        statements = [_insert_sql(model, fields, count) for model, fields, count in shape]
        *first, last = statements
        ctes = ", ".join(f"part{index} AS ({sql})" for index, sql in enumerate(first))
        sql = _together_sql[shape] = f"WITH {ctes} {last}" if ctes else last
    params = [value for _model, _fields, rows in parts for row in rows for value in row]
    with connection.cursor() as cursor:
        prepared.execute(cursor, sql, params)


# insert_together's statements by their tables, columns and rows: a posting's few shapes
_together_sql: dict[tuple[tuple[type[models.Model], tuple[str, ...], int], ...], str] = {}


def _insert_sql(model: type[models.Model], fields: Sequence[str], rows: int) -> str:
    meta = model._meta
    columns = ", ".join(
        connection.ops.quote_name(meta.get_field(name).column)  # type: ignore[union-attr, arg-type]
        for name in fields
    )
    row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608 - model names
        f"VALUES {', '.join([row_marks] * rows)}"
    )
