"""The demo's past: daily readings of every demo meter up to yesterday, last month's period
computed and billed (one bill flagged for review), a few suspect readings in the queue, and
the dashboards' figures, so the console is alive from the first page.

The readings lead up to where the simulator's meters start (the simulator draws its counters
from a fixed seed, and ``build_gateways`` makes the same meters without serving them), so the
live readings the demo polls every minute carry on from the history without going backwards.
Seeding is skipped once the demo has a bill run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import BillRun
from billing.runs.order import period_of, shift
from billing.runs.services import approve_bill_run, open_bill_run, price_bill_run
from console.summaries import refresh_summaries
from gateway_bridge.simulator import SimulatedMeter, build_gateways
from metering.models import Meter, ReadingSource
from metering.readings import reading_row, store_readings
from tenancy.models import Site, User
from tenancy.principal import Principal
from verification.periods import compute_periods, period_bounds
from verification.rules import validate_readings

SHARES = (Decimal("0.05"), Decimal("0.30"), Decimal("0.40"), Decimal("0.25"))  # spike…valley
TOU = ("tou_spike", "tou_peak", "tou_flat", "tou_valley")
LOAD_FACTOR = Decimal("0.45")  # the simulator's load shape, averaged over a day
BILLED_PERIODS = 3  # the last three periods are billed
HISTORY_DAYS_BEFORE = 5  # days of readings before the first billed period starts
MASTER_OVERHEAD = Decimal("1.06")  # a transformer area's master meter: 6 % line loss


@dataclass
class Series:
    meter: Meter
    start: list[Decimal]  # the simulator's counters, kWh, spike…valley
    daily: Decimal  # kWh a day
    quiet: tuple[date, date] | None = None  # days with no consumption (a vacant flat)
    parts: list[Series] | None = None  # a master meter: its area's customers' meters


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _simulated(base_port: int, meters_per_gateway: int, profiles: list[str]) -> dict:
    gateways = build_gateways(2, meters_per_gateway, base_port=base_port, profiles=profiles)
    return {(g.port, unit): m for g in gateways for unit, m in g.meters.items()}


def _start(meter: SimulatedMeter) -> list[Decimal]:
    return [Decimal(value) / meter.resolution for value in meter.tou]


def _series(
    meters: list[Meter], simulated: dict, first_day: date, today: date
) -> dict[int, Series]:
    days = Decimal((today - first_day).days + 1)
    found: dict[int, Series] = {}
    for meter in meters:
        sim = simulated[(meter.gateway.port, meter.unit_id)]  # type: ignore[union-attr]
        start = _start(sim)
        natural = Decimal(str(round(sim.base_kw, 3))) * 24 * LOAD_FACTOR
        found[meter.pk] = Series(meter, start, min(natural, sum(start) / (days * 2)))
    # A master meter measures its area's customers and the line loss on top.
    for meter in meters:
        if meter.master_of_id is None:
            continue
        customers = [
            s
            for s in found.values()
            if s.meter.premise_id
            and s.meter.master_of_id is None
            and s.meter.premise.transformer_area_id == meter.master_of_id  # type: ignore[union-attr]
        ]
        wanted = sum((s.daily for s in customers), Decimal(0)) * MASTER_OVERHEAD
        master = found[meter.pk]
        room = sum(master.start) / (days * 2)
        if wanted > room:  # keep the whole area below where the simulator starts
            factor = room / wanted
            for series in customers:
                series.daily *= factor
        master.parts = customers
    return found


def _used_after(series: Series, day: date, today: date) -> Decimal:
    """What the meter counted from ``day`` to today (a master: its customers and the loss)."""
    if series.parts is not None:
        parts = sum((_used_after(part, day, today) for part in series.parts), Decimal(0))
        return parts * (MASTER_OVERHEAD + Decimal(series.meter.pk % 5) / 100)
    used = Decimal(0)
    cursor = day
    while cursor < today:
        quiet = series.quiet and series.quiet[0] <= cursor < series.quiet[1]
        used += Decimal(0) if quiet else series.daily * _weather(cursor, series.meter.pk)
        cursor += timedelta(days=1)
    return used


def _weather(day: date, seed: int) -> Decimal:
    """A day's use against the meter's mean: warmer and colder spells, weekends."""
    swing = 0.25 * math.sin(day.toordinal() / 9 + seed) + (0.1 if day.weekday() >= 5 else 0)
    return Decimal(str(round(1 + swing, 3)))


def _values(series: Series, day: date, today: date) -> dict[str, Decimal]:
    used_after = _used_after(series, day, today)
    registers = {
        name: (start - used_after * share).quantize(Decimal("0.01"))
        for name, start, share in zip(TOU, series.start, SHARES, strict=True)
    }
    total = sum(registers.values(), Decimal(0))
    # The simulator's reactive energy is 3/10 of the total (a power factor of about 0.96).
    reactive = (total * 3 / 10).quantize(Decimal("0.01"))
    return {"total": total, **registers, "reactive_energy": reactive}


def seed_history(system: Principal, base_port: int, meters_per_gateway: int,
                 profiles: list[str]) -> None:  # fmt: skip
    if BillRun.objects.exists():
        return
    today = timezone.localdate()
    sites = list(Site.objects.order_by("code"))
    last_periods = {site.pk: shift(period_of(site, today), -1) for site in sites}
    bounds = {site.pk: period_bounds(site, last_periods[site.pk]) for site in sites}
    first_billed = [
        period_bounds(site, shift(last_periods[site.pk], 1 - BILLED_PERIODS))[0] for site in sites
    ]
    first_day = min(first_billed).date() - timedelta(days=HISTORY_DAYS_BEFORE)
    meters = list(Meter.objects.filter(gateway__isnull=False).select_related("gateway", "premise"))
    series = _series(meters, _simulated(base_port, meters_per_gateway, profiles), first_day, today)
    _quiet_flat(series, bounds)
    rows = []
    for one in series.values():
        day = first_day
        while day < today:
            taken_at = _local_midnight(day)
            values = _values(one, day, today)
            rows.append(reading_row(
                one.meter, taken_at, taken_at + timedelta(seconds=20), ReadingSource.POLLED,
                values, None,
            ))  # fmt: skip
            day += timedelta(days=1)
    rows.extend(_suspects(series, bounds, today))
    assert system.tenant is not None
    store_readings(system.tenant, rows)
    validate_readings(system.tenant)
    _bill_last_month(system, sites, last_periods)
    refresh_summaries()


def _quiet_flat(series: dict[int, Series], bounds: dict) -> None:
    """The second account of the first site used nothing last month (a vacant flat): its bill
    is zero, which the bill checks flag for review."""
    accounts = sorted(
        (s for s in series.values() if s.meter.account_id and s.meter.unit_id == 2),
        key=lambda s: s.meter.pk,
    )
    if accounts:
        quiet = accounts[0]
        start, end = bounds[quiet.meter.site_id]
        quiet.quiet = (start.date() - timedelta(days=1), end.date() + timedelta(days=1))


def _suspects(series: dict[int, Series], bounds: dict, today: date) -> list:
    """Readings after last month's periods the checks will hold for a verifier: counters that
    went backwards, and time-of-use registers that do not add up to the total."""
    after = max(end for _start, end in bounds.values()).date() + timedelta(days=1)
    planted = []
    customers = sorted((s for s in series.values() if s.meter.account_id), key=lambda s: s.meter.pk)
    for index, one in enumerate(customers[2:5]):
        day = after + timedelta(days=index % 2)
        if day >= today:
            continue
        taken_at = _local_midnight(day) + timedelta(hours=12)
        values = _values(one, day, today)
        if index == 1:
            values["tou_flat"] += Decimal("30")  # the registers no longer add up
        else:
            values = {name: value - Decimal("5") for name, value in values.items()}
        planted.append(reading_row(
            one.meter, taken_at, taken_at + timedelta(seconds=20), ReadingSource.POLLED,
            values, None,
        ))  # fmt: skip
    return planted


def _bill_last_month(system: Principal, sites: list[Site], periods: dict[int, str]) -> None:
    verifier = User.objects.filter(username="demo-verifier").first()
    for site in sites:
        for back in range(BILLED_PERIODS - 1, -1, -1):
            period = shift(periods[site.pk], -back)
            compute_periods(system, site, period)
            run = open_bill_run(system, site, period)
            price_bill_run(system, run.pk)
            if verifier is not None:
                approve_bill_run(Principal.for_user(verifier), run.pk)
