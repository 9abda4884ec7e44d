"""Storing readings in bulk, exactly once per meter and slot.

Polled rounds, pushed batches and manual entries all go through ``store_readings``: one
multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` per chunk, then one query for the rows
that were already there. A row that matches the stored one is a duplicate (a retried round, a
re-pushed batch: nothing written); a row with other values for a slot already read is refused
and recorded as a meter event, never written over the first.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from metering.meter_profiles import READING_COLUMNS
from metering.models import Meter, MeterEvent, MeterEventKind, Reading
from tenancy.bulk import copy_text
from tenancy.models import Tenant

CHUNK = 500
_COLUMNS = (
    "tenant_id",
    "meter_id",
    "taken_at",
    "read_at",
    "source",
    *READING_COLUMNS,
    "relay_state",
    "extra",
    "entered_by_id",
    "created_at",
)
_COMPARED = (*READING_COLUMNS, "relay_state", "extra")


# Readings for slots before this day are refused at the door: no meter of this platform read
# anything then, and a year-1 date breaks date arithmetic further down the pipeline.
EARLIEST_READING_DAY = date(2000, 1, 1)
# How far ahead of this server's clock a slot or an answer time may be (a gateway's clock runs
# a little fast); the validation's ``future`` rule has its own, per-tenant tolerance.
CLOCK_TOLERANCE = timedelta(minutes=5)


def earliest_reading_time(tenant: Tenant) -> datetime:
    """The first moment a reading may be for: the tenant's earliest reading day (a setting,
    for a go-live that has no readings before it) or 2000-01-01, midnight in the tenant's zone."""
    day = max(EARLIEST_READING_DAY, tenant.earliest_reading_on or EARLIEST_READING_DAY)
    return datetime.combine(day, time(), tzinfo=tenant.zone)


def reading_time_errors(
    tenant: Tenant, taken_at: datetime, read_at: datetime | None = None
) -> dict[str, list[str]]:
    """Why a reading's slot or answer time is refused at the door (empty: accepted). A reading
    before its meter's installation is accepted here; validation marks it suspect."""
    earliest = earliest_reading_time(tenant)
    latest = timezone.now() + CLOCK_TOLERANCE
    errors: dict[str, list[str]] = {}
    for name, moment in (("taken_at", taken_at), ("read_at", read_at)):
        if moment is None:
            continue
        if moment < earliest:
            errors[name] = [
                _("Readings before %(day)s are not accepted.")
                % {"day": earliest.date().isoformat()}
            ]
        elif moment > latest:
            errors[name] = [_("The time is in the future.")]
    return errors


@dataclass
class ReadingRow:
    meter_id: int
    site_id: int
    gateway_id: int | None
    taken_at: datetime
    read_at: datetime
    source: str
    values: dict[str, Any]
    relay_state: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    entered_by_id: int | None = None


@dataclass
class StoreOutcome:
    status: str  # stored, duplicate, conflict
    reading_id: int | None


def reading_row(
    meter: Meter,
    taken_at: datetime,
    read_at: datetime,
    source: str,
    values: dict[str, Any],
    entered_by_id: int | None,
) -> ReadingRow:
    """A row from decoded values: reading columns apart, every other value into ``extra``."""
    columns = {name: values[name] for name in READING_COLUMNS if values.get(name) is not None}
    extra = {
        name: str(value)
        for name, value in values.items()
        if name not in READING_COLUMNS and name != "relay_state" and value is not None
    }
    return ReadingRow(
        meter_id=meter.pk,
        site_id=meter.site_id,
        gateway_id=meter.gateway_id,
        taken_at=taken_at,
        read_at=read_at,
        source=source,
        values=columns,
        relay_state=values.get("relay_state") or "",
        extra=extra,
        entered_by_id=entered_by_id,
    )


def _quantised(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value.quantize(Decimal("0.001"))
    return value


def _params(tenant_id: int, row: ReadingRow, now: datetime) -> list[Any]:
    ops = connection.ops
    return [
        tenant_id,
        row.meter_id,
        ops.adapt_datetimefield_value(row.taken_at),
        ops.adapt_datetimefield_value(row.read_at),
        row.source,
        *(
            ops.adapt_decimalfield_value(_quantised(row.values.get(name)), 16, 3)
            for name in READING_COLUMNS
        ),
        row.relay_state,
        json.dumps(row.extra, sort_keys=True),
        row.entered_by_id,
        ops.adapt_datetimefield_value(now),
    ]


def _insert_by_copy(tenant_id: int, rows: Sequence[ReadingRow]) -> dict[tuple[int, datetime], int]:
    """PostgreSQL: COPY the batch into a scratch table, then one INSERT … SELECT that skips the
    slots already read. COPY's text costs a fraction of binding every value as a parameter."""
    now = timezone.now().isoformat()
    lines = []
    for row in rows:
        values = [
            tenant_id,
            row.meter_id,
            row.taken_at,
            row.read_at,
            row.source,
            *(_quantised(row.values.get(name)) for name in READING_COLUMNS),
            row.relay_state,
            orjson.dumps(row.extra, option=orjson.OPT_SORT_KEYS).decode(),
            row.entered_by_id,
        ]
        lines.append("\t".join(map(copy_text, values)) + "\t" + now)
    table = Reading._meta.db_table
    columns = ", ".join(_COLUMNS)
    inserted: dict[tuple[int, datetime], int] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS reading_batch AS "  # noqa: S608 - fixed names
            f"SELECT {columns} FROM {table} WITH NO DATA"
        )
        cursor.execute("TRUNCATE reading_batch")
        cursor.copy_expert(
            f"COPY reading_batch ({columns}) FROM STDIN", io.StringIO("\n".join(lines) + "\n")
        )
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM reading_batch "  # noqa: S608
            "ON CONFLICT (tenant_id, meter_id, taken_at) DO NOTHING "
            "RETURNING id, meter_id, taken_at"
        )
        for reading_id, meter_id, taken_at in cursor.fetchall():
            inserted[(meter_id, taken_at)] = reading_id
    return inserted


def _insert(tenant_id: int, rows: Sequence[ReadingRow]) -> dict[tuple[int, datetime], int]:
    """Insert what is new; returns the ids of the inserted rows by (meter, slot)."""
    if connection.vendor == "postgresql":
        return _insert_by_copy(tenant_id, rows)
    table = Reading._meta.db_table
    placeholder = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    inserted: dict[tuple[int, datetime], int] = {}
    now = timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            params = [value for row in chunk for value in _params(tenant_id, row, now)]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(_COLUMNS)}) "  # noqa: S608 - fixed names
                f"VALUES {', '.join([placeholder] * len(chunk))} "
                "ON CONFLICT (tenant_id, meter_id, taken_at) DO NOTHING "
                "RETURNING id, meter_id, taken_at",
                params,
            )
            for reading_id, meter_id, taken_at in cursor.fetchall():
                inserted[(meter_id, _as_datetime(taken_at))] = reading_id
    return inserted


def _as_datetime(value: Any) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _stored_values(row: ReadingRow) -> dict[str, Any]:
    values = {name: _quantised(row.values.get(name)) for name in READING_COLUMNS}
    return {**values, "relay_state": row.relay_state, "extra": row.extra}


def _existing(
    tenant: Tenant, keys: list[tuple[int, datetime]]
) -> dict[tuple[int, datetime], Reading]:
    found: dict[tuple[int, datetime], Reading] = {}
    meter_ids = {meter_id for meter_id, _slot in keys}
    slots = {slot for _meter_id, slot in keys}
    candidates = Reading.objects.filter(
        tenant=tenant, meter_id__in=meter_ids, taken_at__in=slots
    ).only("id", "meter_id", "taken_at", *_COMPARED)
    wanted = set(keys)
    for reading in candidates:
        key = (reading.meter_id, reading.taken_at)
        if key in wanted:
            found[key] = reading
    return found


def store_readings(tenant: Tenant, rows: Sequence[ReadingRow]) -> list[StoreOutcome]:
    """Store each row once; the outcome of each, in order."""
    if not rows:
        return []
    inserted = _insert(tenant.pk, rows)
    missing = [(r.meter_id, r.taken_at) for r in rows if (r.meter_id, r.taken_at) not in inserted]
    existing = {
        key: (reading.pk, {name: getattr(reading, name) for name in _COMPARED})
        for key, reading in (_existing(tenant, missing) if missing else {}).items()
    }
    outcomes, conflicts = [], []
    stored_rows: dict[tuple[int, datetime], tuple[int, ReadingRow]] = {}
    for row in rows:
        key = (row.meter_id, row.taken_at)
        if key in inserted:
            reading_id = inserted.pop(key)
            stored_rows[key] = (reading_id, row)  # a repeat later in this batch compares to it
            outcomes.append(StoreOutcome("stored", reading_id))
            continue
        # Only a row not inserted is compared (what it offers is worked out for it alone).
        offered = _stored_values(row)
        if key in stored_rows:
            first_id, first = stored_rows[key]
            existing[key] = (first_id, _stored_values(first))
        stored_id, stored_values = existing.get(key, (None, None))
        if stored_values == offered:
            outcomes.append(StoreOutcome("duplicate", stored_id))
            continue
        outcomes.append(StoreOutcome("conflict", stored_id))
        conflicts.append(
            MeterEvent(
                tenant=tenant,
                meter_id=row.meter_id,
                gateway_id=row.gateway_id,
                site_id=row.site_id,
                kind=MeterEventKind.CONFLICTING_READING,
                slot=row.taken_at,
                detail={
                    "source": row.source,
                    "offered": {k: str(v) for k, v in offered.items() if v},
                    "stored_reading": stored_id,
                },
            )
        )
    if conflicts:
        MeterEvent.objects.bulk_create(conflicts)
    return outcomes
