"""Pricing an account's usage with tariff versions: periods split by days where a version,
a year (annual tiers) or a season changes, tiers continued from the year's (or month's) count,
every line rounded half-up to the fen with its VAT part; and which versions apply to an
account on which days. The specification itself is ``billing.tariffs.spec``."""

from __future__ import annotations

import calendar
import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cached_property

from django.utils.translation import gettext as _

from billing.tariffs.spec import (
    KWH,
    LABELS,
    PF_STEP,
    TOU_NAMES,
    TOU_REGISTERS,
    WATER_LABELS,
    PricingError,
    TariffSpec,
    power_factor_rate,
)
from tenancy.money import round_fen, tax_part

# --- pricing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountFacts:
    utility: str
    household_size: int
    minimum_living_support: bool
    contracted_kva: Decimal | None
    opened_on: date


@dataclass(frozen=True)
class Segment:
    """Days ``starts_on`` ≤ d < ``ends_on`` priced by one tariff version."""

    starts_on: date
    ends_on: date
    spec: TariffSpec
    version_id: int | None = None

    @property
    def days(self) -> int:
        return (self.ends_on - self.starts_on).days


@dataclass
class PricedLine:
    component: str
    label: str
    label_en: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    tax_rate: Decimal
    tax: Decimal
    starts_on: date
    ends_on: date


@dataclass
class Priced:
    lines: list[PricedLine]
    annual_quantities: dict[str, Decimal]
    monthly_quantities: dict[str, Decimal] = field(default_factory=dict)
    # The tariff versions that priced the days, in their order: a bill keeps them, so a version
    # added later from a day they priced can tell which issued bills keep the old prices.
    tariff_versions: list[int] = field(default_factory=list)

    # Summed once: a run reads them several times a bill, and the lines are final once priced.
    @cached_property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @cached_property
    def tax(self) -> Decimal:
        return sum((line.tax for line in self.lines), Decimal("0.00"))


@dataclass(frozen=True)
class Usage:
    """What is priced: total and TOU register deltas (CT/PT applied), reactive energy and
    maximum demand where recorded, and the account's share of a common area."""

    total: Decimal
    tou: Mapping[str, Decimal | None] = field(default_factory=dict)
    reactive: Decimal | None = None
    max_demand: Decimal | None = None
    common_area: Decimal = Decimal(0)


def split_days(quantity: Decimal, days: Sequence[int]) -> list[Decimal]:
    """Share a quantity by days to 0.001, the last part taking the remainder (sums exactly)."""
    whole = sum(days)
    parts = [(quantity * d / whole).quantize(KWH, ROUND_HALF_UP) for d in days[:-1]]
    return [*parts, quantity - sum(parts, Decimal(0))]


def _cut(segments: Sequence[Segment], every_month: bool = False) -> list[Segment]:
    """Cut segments where annual tiers reset (1 January) and where a TOU season changes (and,
    for prepaid charges, at every month, whose tiers and allowance start again): all fall on
    the first of a month, so only those days are looked at."""
    result = []
    for segment in segments:
        spec, start = segment.spec, segment.starts_on
        if every_month or spec.annual or spec.kind == "tou":
            month = date(start.year, start.month, 1)
            while True:
                month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
                if month >= segment.ends_on:
                    break
                new_year = spec.annual and month.month == 1
                new_season = spec.kind == "tou" and spec.season_for(month.month) is not (
                    spec.season_for(month.month - 1 or 12)
                )
                if every_month or new_year or new_season:
                    result.append(replace(segment, starts_on=start, ends_on=month))
                    start = month
        result.append(replace(segment, starts_on=start))
    return result


def _year_days(year: int) -> int:
    return 366 if calendar.isleap(year) else 365


def tier_limits(spec: TariffSpec, facts: AccountFacts, year: int) -> list[Decimal | None]:
    """Tier limits for the account: larger for big households, prorated by days for an account
    opened during the year (annual tiers)."""
    limits = [tier.up_to for tier in spec.tiers]
    if spec.large_household_min and facts.household_size >= spec.large_household_min:
        limits = [
            limit + extra if limit is not None else None
            for limit, extra in zip(limits, (*spec.large_household_extra, Decimal(0)), strict=True)
        ]
    if spec.annual and facts.opened_on > date(year, 1, 1):
        active = (date(year + 1, 1, 1) - facts.opened_on).days
        share = Decimal(max(active, 0)) / _year_days(year)
        limits = [
            (limit * share).quantize(KWH, ROUND_HALF_UP) if limit is not None else None
            for limit in limits
        ]
    return limits


def _through_tiers(
    position: Decimal, quantity: Decimal, limits: Sequence[Decimal | None]
) -> list[tuple[int, Decimal]]:
    """(tier number from 1, kWh) of ``quantity`` consumed from cumulative ``position``."""
    parts, lower = [], Decimal(0)
    for n, upper in enumerate(limits, start=1):
        top = position + quantity if upper is None else min(position + quantity, upper)
        bottom = max(position, lower)
        if top > bottom:
            parts.append((n, top - bottom))
        if upper is not None:
            lower = upper
    return parts


class _Builder:
    def __init__(self, facts: AccountFacts, vat_rate: Decimal) -> None:
        self.facts = facts
        self.vat_rate = vat_rate
        self.lines: list[PricedLine] = []
        labels = dict(LABELS)
        if facts.utility == "water":
            labels.update(WATER_LABELS)
        self.labels = labels

    def add(
        self,
        component: str,
        segment: Segment,
        quantity: Decimal,
        unit_price: Decimal,
        *,
        unit: str = "kWh",
        label_key: str | None = None,
        n: int | None = None,
        amount: Decimal | None = None,
    ) -> None:
        if amount is None:
            amount = round_fen(quantity * unit_price)
        if quantity == 0 and amount == 0 and component != "free_allowance":
            return
        zh, en = self.labels[label_key or component]
        rate = segment.spec.vat_rate if segment.spec.vat_rate is not None else self.vat_rate
        if self.facts.utility == "water" and unit == "kWh":
            unit = "m³"
        self.lines.append(
            PricedLine(
                component,
                zh.format(n=n),
                en.format(n=n),
                quantity,
                unit,
                unit_price,
                amount,
                rate,
                tax_part(amount, rate),
                segment.starts_on,
                segment.ends_on - timedelta(days=1),
            )
        )


def price(
    facts: AccountFacts,
    segments: Sequence[Segment],
    usage: Usage,
    *,
    period: str,
    vat_rate: Decimal,
    year_to_date: dict[int, Decimal] | None = None,
    month_to_date: dict[str, Decimal] | None = None,
    period_days: int | None = None,
) -> Priced:
    """Price one account's usage over consecutive segments (the tariff versions that apply).

    ``year_to_date`` holds the kWh already counted towards annual tiers in each calendar year
    before this usage. For a bill, monthly tier limits and monthly fees apply per billing
    period and prorate by days when a period is split. For a prepaid charge (a few hours of
    usage), ``month_to_date`` holds the kWh charged earlier in each month ("YYYY-MM"): monthly
    tiers and the free allowance continue from it, and the monthly charges (fixed fee,
    capacity, demand, power factor, common area) are left to the monthly statement.

    ``period_days`` is the length of a full period when the usage covers fewer days (the final
    bill of an account closed mid-period, ``billing.bills.final``): monthly tier limits, the
    free allowance and the monthly charges are then shared by the days priced over it, not
    over the days priced (which would charge a whole month for a few days).
    """
    mtd = dict(month_to_date or {})
    if not segments:
        raise PricingError(_("no tariff applies to the account in the period"))
    for earlier, later in itertools.pairwise(segments):
        if earlier.ends_on != later.starts_on:
            raise PricingError(
                _("no tariff applies from %(start)s to %(end)s")
                % {"start": earlier.ends_on, "end": later.starts_on}
            )
    recurring = month_to_date is None
    parts = _cut(segments, every_month=not recurring)
    days = [part.days for part in parts]
    period_days = period_days or sum(days)
    totals = split_days(usage.total, days)
    tou: dict[str, list[Decimal]] = {}
    if any(part.spec.kind == "tou" for part in parts):
        for name, register in TOU_REGISTERS.items():
            value = usage.tou.get(register)
            if value is None:
                raise PricingError(
                    _("the tariff prices time of use but no TOU registers were read")
                )
            tou[name] = split_days(value, days)
    builder = _Builder(facts, vat_rate)
    ytd = dict(year_to_date or {})
    annual: dict[str, Decimal] = {}
    monthly: dict[str, Decimal] = {}
    for index, part in enumerate(parts):
        spec = part.spec
        quantity = totals[index]
        share = Decimal(part.days) / period_days
        year = part.starts_on.year
        # Annual tiers continue from the year's count; monthly limits are the period's, shared
        # by days among its segments, each segment starting from zero.
        month = f"{part.starts_on:%Y-%m}"
        if spec.annual:
            position = ytd.get(year, Decimal(0))
        else:
            position = Decimal(0) if recurring else mtd.get(month, Decimal(0))
        free = Decimal(0)
        if facts.minimum_living_support and spec.free_allowance:
            if recurring:
                allowance = (spec.free_allowance * share).quantize(KWH, ROUND_HALF_UP)
            else:
                allowance = max(Decimal(0), spec.free_allowance - mtd.get(month, Decimal(0)))
            free = min(quantity, allowance)
            if free or recurring:
                builder.add("free_allowance", part, free, Decimal(0))
        if spec.kind == "flat":
            builder.add("energy", part, quantity - free, spec.price or Decimal(0))
        elif spec.kind == "tou":
            season = spec.season_for(part.starts_on.month)
            for name in TOU_NAMES:
                register = TOU_REGISTERS[name]
                builder.add(register, part, tou[name][index], season.prices[name])
        if spec.tiers:
            limits = tier_limits(spec, facts, year)
            if not spec.annual and recurring:
                limits = [
                    (limit * share).quantize(KWH, ROUND_HALF_UP) if limit is not None else None
                    for limit in limits
                ]
            for n, kwh in _through_tiers(position + free, quantity - free, limits):
                tier_price = spec.tiers[n - 1].price
                if spec.kind == "tiered":
                    builder.add("energy", part, kwh, tier_price, label_key="tier", n=n)
                elif tier_price:
                    builder.add("tier_surcharge", part, kwh, tier_price, n=n)
            if spec.annual:
                ytd[year] = position + quantity
                annual[str(year)] = annual.get(str(year), Decimal(0)) + quantity
        monthly[month] = monthly.get(month, Decimal(0)) + quantity
        mtd[month] = mtd.get(month, Decimal(0)) + quantity
        if spec.agency_prices is not None:
            agency = spec.agency_prices.get(period)
            if agency is None:
                raise PricingError(
                    _("no agency purchase price (代理购电) for %(period)s") % {"period": period}
                )
            builder.add("agency_purchase", part, quantity, agency)
        if spec.funds_per_kwh:
            builder.add("funds", part, quantity, spec.funds_per_kwh)
        if not recurring:
            continue
        if spec.fixed_monthly_fee:
            months = share.quantize(KWH, ROUND_HALF_UP)
            builder.add(
                "fixed_fee",
                part,
                months,
                spec.fixed_monthly_fee,
                unit="month",
                amount=round_fen(spec.fixed_monthly_fee * share),
            )
        if spec.capacity_per_kva is not None:
            if not facts.contracted_kva:
                raise PricingError(_("a capacity charge needs the account's contracted kVA"))
            builder.add(
                "capacity",
                part,
                facts.contracted_kva,
                spec.capacity_per_kva,
                unit="kVA",
                amount=round_fen(facts.contracted_kva * spec.capacity_per_kva * share),
            )
        if spec.demand_per_kw is not None:
            if usage.max_demand is None:
                raise PricingError(_("a demand charge needs the recorded maximum demand"))
            builder.add(
                "demand",
                part,
                usage.max_demand,
                spec.demand_per_kw,
                unit="kW",
                amount=round_fen(usage.max_demand * spec.demand_per_kw * share),
            )
    last = parts[-1]
    if recurring and last.spec.power_factor_standard is not None and usage.reactive is not None:
        _power_factor_line(builder, last, usage)
    if recurring and usage.common_area:
        builder.add("common_area", last, usage.common_area, last.spec.base_price())
    versions = [segment.version_id for segment in segments if segment.version_id is not None]
    return Priced(builder.lines, annual, monthly, list(dict.fromkeys(versions)))


def _power_factor_line(builder: _Builder, segment: Segment, usage: Usage) -> None:
    apparent = (usage.total**2 + usage.reactive**2).sqrt()  # type: ignore[operator]
    if apparent == 0:
        return
    pf = (usage.total / apparent).quantize(PF_STEP, ROUND_HALF_UP)
    rate = power_factor_rate(pf, segment.spec.power_factor_standard)  # type: ignore[arg-type]
    base_components = {"energy", "tou_spike", "tou_peak", "tou_flat", "tou_valley",
                       "tier_surcharge", "agency_purchase", "capacity", "demand"}  # fmt: skip
    base = sum(
        (line.amount for line in builder.lines if line.component in base_components), Decimal(0)
    )
    amount = round_fen(base * rate)
    if amount:
        first = min(line.starts_on for line in builder.lines)
        builder.add(
            "power_factor",
            replace(segment, starts_on=first),
            pf,
            rate,
            unit="cosφ",
            amount=amount,
        )


# --- which versions apply -------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    tariff_id: int
    account_id: int | None
    customer_class: str
    effective_from: date
    effective_to: date | None
    sites: tuple[int, ...] = ()  # a class's assignment limited to sites (none: every site)
    utility: str = ""  # the tariff's (a class's assignment applies to that utility's accounts)


@dataclass(frozen=True)
class Version:
    version_id: int
    tariff_id: int
    effective_from: date
    spec: TariffSpec


class Versions:
    """A tenant's tariff versions as pricing looks them up: by tariff in date order, and the
    dates they take effect, sorted. Built once a run (not once an account)."""

    def __init__(self, versions: Iterable[Version]) -> None:
        ordered = sorted(versions, key=lambda v: v.effective_from)
        self.by_tariff: dict[int, list[Version]] = {}
        for version in ordered:
            self.by_tariff.setdefault(version.tariff_id, []).append(version)
        self.dates = sorted({version.effective_from for version in ordered})

    def effective_between(self, first: date, last: date) -> list[date]:
        """The dates a version takes effect, ``first`` ≤ d ≤ ``last``."""
        return self.dates[bisect_left(self.dates, first) : bisect_right(self.dates, last)]


def tariff_segments(
    account_id: int,
    customer_class: str,
    starts_on: date,
    ends_on: date,
    assignments: Sequence[Assignment],
    versions: Sequence[Version] | Versions,
) -> list[Segment]:
    """The versions that price an account's days ``starts_on`` ≤ d < ``ends_on``: its own
    assignment where one covers the day, else its class's limited to its site (the caller
    passes only those of the account's site), else its class's for every site; within a
    tariff, the latest version effective on the day. Consecutive days under one version form
    one segment."""
    table = versions if isinstance(versions, Versions) else Versions(versions)
    own = [a for a in assignments if a.account_id == account_id]
    by_class = [
        a for a in assignments if a.account_id is None and a.customer_class == customer_class
    ]
    by_site_class = [a for a in by_class if a.sites]
    by_class = [a for a in by_class if not a.sites]
    latest_first = [
        sorted(candidates, key=lambda a: a.effective_from, reverse=True)
        for candidates in (own, by_site_class, by_class)
    ]

    def version_on(day: date) -> Version | None:
        for candidates in latest_first:
            for assignment in candidates:
                if assignment.effective_from <= day and (
                    assignment.effective_to is None or day < assignment.effective_to
                ):
                    found = None
                    for version in table.by_tariff.get(assignment.tariff_id, []):
                        if version.effective_from <= day:
                            found = version
                    return found
        return None

    boundaries = {starts_on, ends_on, *table.effective_between(starts_on, ends_on)}
    for a in (*own, *by_site_class, *by_class):
        boundaries.update(d for d in (a.effective_from, a.effective_to) if d)
    points = sorted(d for d in boundaries if starts_on <= d <= ends_on)
    segments: list[Segment] = []
    for left, right in itertools.pairwise(points):
        version = version_on(left)
        if version is None:
            raise PricingError(_("no tariff applies to the account on %(day)s") % {"day": left})
        if segments and segments[-1].version_id == version.version_id:
            segments[-1] = replace(segments[-1], ends_on=right)
        else:
            segments.append(Segment(left, right, version.spec, version.version_id))
    return segments
