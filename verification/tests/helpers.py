"""Readings laid down directly (as polling would store them) for the verification tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from metering.models import Meter, Reading
from verification.models import ReadingCheck
from verification.rules import validate_readings

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def lay(meter: Meter, rows: list[dict[str, Any]], start: datetime = T0) -> list[Reading]:
    """Hourly readings from ``start``; each row gives total and any other field (or taken_at)."""
    readings = []
    for hour, row in enumerate(rows):
        fields = dict(row)
        taken_at = fields.pop("taken_at", start + timedelta(hours=hour))
        fields = {
            k: Decimal(str(v))
            if isinstance(v, int | float | str)
            and k not in ("read_at", "relay_state", "source", "extra")
            else v
            for k, v in fields.items()
        }
        readings.append(
            Reading(
                tenant_id=meter.tenant_id,
                meter=meter,
                taken_at=taken_at,
                read_at=fields.pop("read_at", taken_at),
                source="polled",
                **fields,
            )
        )
    return Reading.dangerously_unscoped.bulk_create(readings)


def checks(meter: Meter) -> list[tuple[str, list[str]]]:
    validate_readings(meter.tenant, [meter.pk])
    return [
        (check.status, check.rule_list)
        for check in ReadingCheck.dangerously_unscoped.filter(meter=meter).order_by("taken_at")
    ]
