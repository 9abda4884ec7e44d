"""Effective readings: what verification lets through, slot by slot.

For each meter and slot the effective reading is the approved correction (edit or estimate) if
there is one, otherwise the raw reading when its check is valid or a verifier approved it.
Suspect readings and corrections still awaiting a second verifier are *pending*: they hold an
account back instead of being guessed around.

Consumption between two effective readings handles counter wraps, CT and PT ratios, and meter
replacements (the old meter up to its final reading, the new one from its first).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from metering.meter_profiles import TOU_REGISTERS, get_profile
from metering.models import Meter, MeterReplacement, Reading
from tenancy.context import get_current_tenant
from verification.models import CheckStatus, CorrectionState, ReadingCheck, ReadingCorrection

REGISTERS = ("total", *TOU_REGISTERS)


@dataclass(frozen=True)
class Effective:
    meter_id: int
    taken_at: datetime
    values: dict[str, Decimal | None]
    source: str  # reading, edit, estimate, interpolated
    reading_id: int | None = None
    correction_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated(self) -> bool:
        return self.source in ("estimate", "interpolated")

    def describe(self) -> dict[str, Any]:
        return {
            "meter": self.meter_id,
            "taken_at": self.taken_at.isoformat(),
            "source": self.source,
            "reading": self.reading_id,
            "correction": self.correction_id,
            **{name: str(value) for name, value in self.values.items() if value is not None},
        }


@dataclass
class MeterReadings:
    """A meter's effective readings in a window, sorted, and what is still pending there."""

    effective: list[Effective] = field(default_factory=list)
    pending: list[tuple[datetime, str]] = field(default_factory=list)


def modulus(meter: Meter) -> Decimal:
    """Where the meter's counters roll over: its wrap plus one counter step."""
    profile = get_profile(meter.profile)
    total = profile.value("total")
    step = total.scale if total is not None else Decimal("0.01")
    return (meter.wrap_value if meter.wrap_value is not None else profile.wrap) + step


def _pending(what: str, meter_id: int, taken_at: datetime, serials: dict[int, str]) -> str:
    """Why an account waits, as a verifier finds it: the meter's serial and the slot's time in
    the tenant's zone."""
    zone = get_current_tenant().zone
    return _("%(what)s: meter %(serial)s at %(time)s") % {
        "what": what,
        "serial": serials.get(meter_id, meter_id),
        "time": f"{taken_at.astimezone(zone):%Y-%m-%d %H:%M}",
    }


def effective_readings(
    meter_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, MeterReadings]:
    """Effective readings and pending items of the meters with ``start <= slot <= end``."""
    meter_ids = list(meter_ids)
    found: dict[int, MeterReadings] = defaultdict(MeterReadings)
    serials = dict(Meter.objects.filter(pk__in=meter_ids).values_list("pk", "serial_number"))
    corrections = {
        (c.meter_id, c.taken_at): c
        for c in ReadingCorrection.objects.filter(
            meter_id__in=meter_ids,
            taken_at__gte=start,
            taken_at__lte=end,
            state__in=[CorrectionState.PROPOSED, CorrectionState.APPROVED],
        )
    }
    statuses = dict(
        ReadingCheck.objects.filter(
            meter_id__in=meter_ids, taken_at__gte=start, taken_at__lte=end
        ).values_list("reading_id", "status")
    )
    readings = Reading.objects.filter(
        meter_id__in=meter_ids, taken_at__gte=start, taken_at__lte=end
    ).only("id", "meter_id", "taken_at", "extra", *REGISTERS)
    for reading in readings:
        status = statuses.get(reading.pk)
        key = (reading.meter_id, reading.taken_at)
        if key in corrections:
            continue  # the correction speaks for this slot
        if status in (CheckStatus.VALID, CheckStatus.APPROVED):
            found[reading.meter_id].effective.append(
                Effective(
                    reading.meter_id,
                    reading.taken_at,
                    {name: getattr(reading, name) for name in REGISTERS},
                    "reading",
                    reading_id=reading.pk,
                    extra=reading.extra,
                )
            )
        elif status == CheckStatus.SUSPECT:
            found[reading.meter_id].pending.append(
                (reading.taken_at, _pending(_("suspect reading"), reading.meter_id,
                                            reading.taken_at, serials))
            )  # fmt: skip
        elif status is None:
            found[reading.meter_id].pending.append(
                (reading.taken_at, _pending(_("reading not yet validated"), reading.meter_id,
                                            reading.taken_at, serials))
            )  # fmt: skip
    for (meter_id, taken_at), correction in corrections.items():
        if correction.state == CorrectionState.PROPOSED:
            found[meter_id].pending.append(
                (taken_at, _pending(_("correction awaiting approval"), meter_id, taken_at,
                                    serials))
            )  # fmt: skip
            continue
        found[meter_id].effective.append(
            Effective(
                meter_id,
                taken_at,
                {name: getattr(correction, name) for name in REGISTERS},
                correction.kind,
                reading_id=correction.reading_id,
                correction_id=correction.pk,
            )
        )
    for meter_readings in found.values():
        meter_readings.effective.sort(key=lambda effective: effective.taken_at)
    return found


def register_delta(later: Decimal | None, earlier: Decimal | None, wrap: Decimal) -> Decimal | None:
    if later is None or earlier is None:
        return None
    delta = later - earlier
    return delta if delta >= 0 else delta + wrap


def delta(meter: Meter, opening: Effective, closing: Effective) -> dict[str, Decimal | None]:
    """Consumption per register between two effective readings of one meter, CT and PT
    applied."""
    wrap = modulus(meter)
    factor = meter.ct_ratio * meter.pt_ratio
    result = {}
    for name in REGISTERS:
        raw = register_delta(closing.values.get(name), opening.values.get(name), wrap)
        result[name] = raw * factor if raw is not None else None
    return result


def add(total: dict[str, Decimal | None], part: dict[str, Decimal | None]) -> dict:
    return (
        {
            name: (total.get(name) or Decimal(0)) + part[name]  # type: ignore[operator]
            if part.get(name) is not None
            else None
            for name in REGISTERS
        }
        if total
        else dict(part)
    )


def consumption_between(first: Effective, last: Effective) -> dict[str, Decimal | None]:
    """Consumption between two validated readings of an account, with wraps, CT and PT ratios
    and any meter replacements in between joined (old meter to its final reading, new meter
    from its first)."""
    meters = {m.pk: m for m in Meter.objects.filter(pk__in={first.meter_id, last.meter_id})}
    if first.meter_id == last.meter_id:
        return delta(meters[first.meter_id], first, last)
    total: dict[str, Decimal | None] = {}
    current, start = first.meter_id, first
    while current != last.meter_id:
        swap = (
            MeterReplacement.objects.select_related(
                "old_meter", "new_meter", "old_final_reading", "new_first_reading"
            )
            .filter(old_meter_id=current)
            .first()
        )
        if swap is None:
            raise ValueError(f"meter {current} was not replaced on the way to {last.meter_id}")
        total = add(
            total, delta(swap.old_meter, start, reading_as_effective(swap.old_final_reading))
        )
        current, start = swap.new_meter_id, reading_as_effective(swap.new_first_reading)
        meters.setdefault(current, swap.new_meter)
    return add(total, delta(meters[current], start, last))


def reading_as_effective(reading: Reading) -> Effective:
    return Effective(
        reading.meter_id,
        reading.taken_at,
        {name: getattr(reading, name) for name in REGISTERS},
        "reading",
        reading_id=reading.pk,
        extra=reading.extra,
    )


def interpolate(meter: Meter, before: Effective, after: Effective, at: datetime) -> Effective:
    """The registers at ``at``, linear in time between the readings around it (wrap-aware)."""
    span = (after.taken_at - before.taken_at).total_seconds()
    share = Decimal((at - before.taken_at).total_seconds()) / Decimal(span)
    wrap = modulus(meter)
    values: dict[str, Decimal | None] = {}
    for name in REGISTERS:
        step = register_delta(after.values.get(name), before.values.get(name), wrap)
        if step is None:
            values[name] = None
            continue
        # a step is None unless both readings have the register
        value = before.values[name] + (step * share).quantize(Decimal("0.01"))  # type: ignore[operator]
        values[name] = value - wrap if value >= wrap else value
    return Effective(meter.pk, at, values, "interpolated")
