"""Tariffs as Chinese utilities use them: the specification of a tariff version (pricing it is
``billing.tariffs.pricing``).

A tariff version's specification is JSON (``TariffSpec.parse`` checks it and names the field
at fault). Its parts, each optional unless the kind needs it:

- ``energy``: ``{"kind": "flat", "price": …}``; ``{"kind": "tiered", "cumulation": "year" |
  "month", "tiers": [{"up_to": "2880", "price": "0.4883"}, …, {"up_to": null, …}]}`` (阶梯:
  a limit belongs to the lower tier); or ``{"kind": "tou", "seasons": [{"name", "months",
  "prices": {"spike", "peak", "flat", "valley"}}], "schedule": [{"from": "08:00", "to":
  "11:00", "register": "peak"}, …], "tier_surcharges": {"cumulation", "tiers": [{"up_to",
  "surcharge"}]}}`` (峰谷 priced from the four TOU register deltas; the hours-of-day schedule
  is data for meter programming, estimates and the portal; tier surcharges add on top);
- ``large_household``: ``{"min_members": 5, "extra": ["1200", "1200"]}`` raises the tier
  limits for households of that size (一户多人口);
- ``free_allowance_kwh_per_month``: free kWh a month for households on minimum living support
  (低保); they count towards the tiers like any other kWh;
- ``fixed_monthly_fee``; ``capacity_charge_per_kva`` (两部制 by contracted kVA) or
  ``demand_charge_per_kw`` (by recorded maximum demand); ``power_factor_standard`` (0.90, 0.85
  or 0.80: 力调电费 by the national adjustment table, on the basic and energy charges);
- ``agency_purchase_prices``: {"2026-10": "0.4123"} per kWh (代理购电, published monthly);
  ``funds_per_kwh`` (政府性基金及附加); ``common_area_price`` (公摊, default: the energy base
  price); ``resale_grid_price``: the grid's price for power resold by a landlord (转供电): no
  per-kWh price of the tariff may exceed it; ``vat_rate`` overrides the tenant's rate.

Prices are VAT-inclusive; every line is rounded half-up to 0.01 yuan and shows its tax part.
A period that a tariff change, a year end (annual tiers) or a season change (TOU) crosses is
split by days; quantities are shared by days to 0.001 kWh with the last part taking the
remainder, so nothing is lost or doubled. Annual tier limits prorate by days for an account
that opened during the year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

KWH = Decimal("0.001")
_MONTH = re.compile(r"20[0-9]{2}-(0[1-9]|1[0-2])")  # [0-9]: \d takes full-width digits
TOU_NAMES = ("spike", "peak", "flat", "valley")
TOU_REGISTERS = {name: f"tou_{name}" for name in TOU_NAMES}

LABELS = {
    "energy": ("电度电费", "Energy"),
    "tier": ("第{n}档电量电费", "Tier {n} energy"),
    "tou_spike": ("尖峰电费", "Spike energy"),
    "tou_peak": ("高峰电费", "Peak energy"),
    "tou_flat": ("平段电费", "Flat energy"),
    "tou_valley": ("低谷电费", "Valley energy"),
    "tier_surcharge": ("第{n}档阶梯加价", "Tier {n} surcharge"),
    "free_allowance": ("低保免费电量", "Free allowance (minimum living support)"),
    "agency_purchase": ("代理购电费", "Agency purchase"),
    "funds": ("政府性基金及附加", "Government funds and surcharges"),
    "fixed_fee": ("基本服务费", "Fixed monthly fee"),
    "capacity": ("基本电费(按容量)", "Capacity charge"),
    "demand": ("基本电费(按需量)", "Demand charge"),
    "power_factor": ("力调电费", "Power factor adjustment"),
    "common_area": ("公摊电费", "Common-area share"),
}
WATER_LABELS = {
    "energy": ("水费", "Water"),
    "tier": ("第{n}阶梯水费", "Tier {n} water"),
    "free_allowance": ("低保免费水量", "Free allowance (minimum living support)"),
    "common_area": ("公摊水费", "Common-area share"),
}


class TariffSpecError(ValidationError):
    """Every problem of a specification found in one pass, each message led by its path
    (``energy.tiers[1].up_to: limits must rise``): a clerk fixes them all in one go."""


class PricingError(ValueError):
    """The account cannot be priced as it stands (the reason is shown where it is held back)."""


# --- the specification ---------------------------------------------------------------------


LARGEST = Decimal(1_000_000_000)  # kWh limits and prices stay far inside Decimal's precision
FINEST = Decimal("0.000001")  # a unit price has at most six decimals (the bill line's column)


class _Problems:
    """The problems of one specification, collected part by part. A part that is wrong as a
    whole (``energy`` not an object, ``tiers`` not a list) stops the checks below it; the
    parts beside it are still checked."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}" if path else message)

    def __len__(self) -> int:
        return len(self.messages)


def no_exponent_message() -> str:
    """Why ``1e3`` is refused as an amount, in the API and the console alike: an amount is
    written out as on a price notice."""
    return _("write the amount out in full, without an exponent: 1000, not 1e3")


def _decimal(
    data: dict[str, Any], key: str, path: str, problems: _Problems, *, required: bool = False
) -> Decimal | None:
    """The amount at ``data[key]``; ``None`` when it is absent or wrong (a problem is added
    when it is wrong, or absent and required)."""
    value = data.get(key)
    where = f"{path}{key}"
    if value is None:
        if required:
            problems.add(where, _("required"))
        return None
    if isinstance(value, float | bool) or not isinstance(value, str | int):
        problems.add(where, _('give amounts as strings, e.g. "0.4883"'))
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        problems.add(where, _("not a number: %(value)s") % {"value": repr(value)})
        return None
    if isinstance(value, str) and number.is_finite() and "e" in value.lower():
        problems.add(where, no_exponent_message())
        return None
    if not number.is_finite() or number < 0:
        problems.add(where, _("must be zero or more"))
        return None
    if number > LARGEST or number != number.quantize(FINEST):
        problems.add(where, _("at most %(largest)s with 6 decimals") % {"largest": f"{LARGEST:,}"})
        return None
    return number


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    price: Decimal


@dataclass(frozen=True)
class Season:
    name: str
    months: frozenset[int]
    prices: dict[str, Decimal]


KNOWN_FIELDS = frozenset({
    "energy", "large_household", "free_allowance_kwh_per_month", "fixed_monthly_fee",
    "capacity_charge_per_kva", "demand_charge_per_kw", "power_factor_standard",
    "agency_purchase_prices", "funds_per_kwh", "common_area_price", "resale_grid_price",
    "vat_rate",
})  # fmt: skip


@dataclass(frozen=True)
class TariffSpec:
    kind: str
    price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    cumulation: str | None = None
    seasons: tuple[Season, ...] = ()
    schedule: tuple[dict[str, str], ...] = ()
    large_household_min: int | None = None
    large_household_extra: tuple[Decimal, ...] = ()
    free_allowance: Decimal = Decimal(0)
    fixed_monthly_fee: Decimal = Decimal(0)
    capacity_per_kva: Decimal | None = None
    demand_per_kw: Decimal | None = None
    power_factor_standard: Decimal | None = None
    agency_prices: dict[str, Decimal] | None = None
    funds_per_kwh: Decimal = Decimal(0)
    common_area_price: Decimal | None = None
    resale_grid_price: Decimal | None = None
    vat_rate: Decimal | None = None

    @classmethod
    def parse(cls, data: Any) -> TariffSpec:
        """The specification of ``data``, or ``TariffSpecError`` naming every problem."""
        if not isinstance(data, dict):
            raise TariffSpecError(_("the specification must be a JSON object"))
        problems = _Problems()
        if unknown := set(data) - KNOWN_FIELDS:
            problems.add(
                "", _("unknown fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))}
            )
        fields: dict[str, Any] = _energy(data.get("energy"), problems)
        kind = fields.get("kind")
        if kind == "tou" and data.get("free_allowance_kwh_per_month") is not None:
            problems.add(
                "free_allowance_kwh_per_month",
                _(
                    "not with time-of-use prices (the meter splits kWh into registers; a free "
                    "allowance has no register)"
                ),
            )
        fields.update(_large_household(data.get("large_household"), fields, problems))
        for key, name in (
            ("free_allowance_kwh_per_month", "free_allowance"),
            ("fixed_monthly_fee", "fixed_monthly_fee"),
            ("funds_per_kwh", "funds_per_kwh"),
        ):
            if (value := _decimal(data, key, "", problems)) is not None:
                fields[name] = value
        for key, name in (
            ("capacity_charge_per_kva", "capacity_per_kva"),
            ("demand_charge_per_kw", "demand_per_kw"),
            ("common_area_price", "common_area_price"),
            ("resale_grid_price", "resale_grid_price"),
            ("vat_rate", "vat_rate"),
        ):
            fields[name] = _decimal(data, key, "", problems)
        if fields["capacity_per_kva"] is not None and fields["demand_per_kw"] is not None:
            problems.add(
                "demand_charge_per_kw",
                _("a two-part tariff charges by capacity or by demand, not both"),
            )
        if fields["vat_rate"] is not None and fields["vat_rate"] >= 1:
            problems.add("vat_rate", _('a fraction, e.g. "0.13"'))
        standard = _decimal(data, "power_factor_standard", "", problems)
        if standard is not None and standard not in PF_STANDARDS:
            problems.add("power_factor_standard", _("one of 0.90, 0.85, 0.80"))
        fields["power_factor_standard"] = standard
        fields["agency_prices"] = _agency_prices(data.get("agency_purchase_prices"), problems)
        if problems:
            raise TariffSpecError(problems.messages)
        spec = cls(**fields)
        spec._check_resale()
        return spec

    def _check_resale(self) -> None:
        """转供电: a landlord reselling grid power may not charge above the grid's price."""
        if self.resale_grid_price is None:
            return
        extras = self.funds_per_kwh + max((self.agency_prices or {}).values(), default=Decimal(0))
        top_surcharge = max((tier.price for tier in self.tiers), default=Decimal(0))
        if self.kind == "flat":
            assert self.price is not None  # a flat specification always has its price
            highest = self.price
        elif self.kind == "tiered":
            highest = max(tier.price for tier in self.tiers)
            top_surcharge = Decimal(0)
        else:
            highest = max(p for season in self.seasons for p in season.prices.values())
        per_kwh = highest + top_surcharge + extras
        if per_kwh > self.resale_grid_price:
            raise TariffSpecError(
                "resale_grid_price: "
                + _(
                    "resale (转供电): a price of %(price)s yuan/kWh is above the grid price of "
                    "%(grid)s; resold power may not be marked up"
                )
                % {"price": per_kwh, "grid": self.resale_grid_price}
            )

    @property
    def annual(self) -> bool:
        return self.cumulation == "year"

    def base_price(self) -> Decimal:
        """The price common-area (公摊) kWh are charged at when the tariff names none."""
        if self.common_area_price is not None:
            return self.common_area_price
        if self.kind == "flat":
            return self.price or Decimal(0)
        if self.kind == "tiered":
            return self.tiers[0].price
        return self.seasons[0].prices["flat"]

    def season_for(self, month: int) -> Season:
        for season in self.seasons:
            if month in season.months:
                return season
        raise PricingError(f"the tariff has no season for month {month}")  # parse prevents it


def _energy(energy: Any, problems: _Problems) -> dict[str, Any]:
    """The fields of the ``energy`` part: its kind and prices (none when it is not an object
    with a known kind: nothing below it can be checked)."""
    if not isinstance(energy, dict):
        problems.add("energy", _("required, an object with a kind"))
        return {}
    kind = energy.get("kind")
    fields: dict[str, Any] = {"kind": kind}
    if kind == "flat":
        fields["price"] = _decimal(energy, "price", "energy.", problems, required=True)
    elif kind == "tiered":
        fields["cumulation"] = _cumulation(energy, "energy.", problems)
        fields["tiers"] = _tiers(energy.get("tiers"), "price", "energy.tiers", problems)
    elif kind == "tou":
        fields["seasons"] = _seasons(energy.get("seasons"), problems)
        fields["schedule"] = _schedule(energy.get("schedule", []), problems)
        surcharges = energy.get("tier_surcharges")
        if isinstance(surcharges, dict):
            fields["cumulation"] = _cumulation(surcharges, "energy.tier_surcharges.", problems)
            fields["tiers"] = _tiers(
                surcharges.get("tiers"), "surcharge", "energy.tier_surcharges.tiers", problems
            )
        elif surcharges is not None:
            problems.add("energy.tier_surcharges", _("an object"))
            fields["tiers"] = None  # surcharge tiers there are, but not readable
    else:
        problems.add("energy.kind", _("one of flat, tiered, tou"))
        return {}
    return fields


def _large_household(large: Any, energy: dict[str, Any], problems: _Problems) -> dict[str, Any]:
    """一户多人口: from how many members, and the kWh each tier limit grows by."""
    if large is None:
        return {}
    has_tiers = energy.get("kind") == "tiered" or (
        energy.get("kind") == "tou" and "tiers" in energy
    )
    if energy and not has_tiers:
        problems.add("large_household", _("only a tariff with tiers has limits"))
        return {}
    members = large.get("min_members") if isinstance(large, dict) else None
    extra = large.get("extra") if isinstance(large, dict) else None
    if not isinstance(members, int) or members < 2:
        problems.add("large_household.min_members", _("a whole number of 2 or more"))
    tiers = energy.get("tiers")
    # With the tiers wrong, their number is unknown: only the figures themselves are checked.
    limits = None if tiers is None else len(tiers) - 1
    if not isinstance(extra, list) or (limits is not None and len(extra) != limits):
        problems.add("large_household.extra", _("one extra kWh figure per tier limit"))
        return {}
    figures = [
        _decimal({"x": value}, "x", f"large_household.extra[{i}].", problems, required=True)
        for i, value in enumerate(extra)
    ]
    return {"large_household_min": members, "large_household_extra": tuple(figures)}


def _agency_prices(prices: Any, problems: _Problems) -> dict[str, Decimal | None] | None:
    """代理购电: the published price of each month."""
    if prices is None:
        return None
    if not isinstance(prices, dict):
        problems.add("agency_purchase_prices", _("an object of YYYY-MM: price"))
        return None
    found: dict[str, Decimal | None] = {}
    for month in prices:
        if not isinstance(month, str) or not _MONTH.fullmatch(month):
            problems.add(
                f"agency_purchase_prices.{month}", _("not a month from 2000-01 to 2099-12")
            )
            continue
        found[month] = _decimal(prices, month, "agency_purchase_prices.", problems, required=True)
    return found


def _cumulation(data: dict[str, Any], path: str, problems: _Problems) -> str | None:
    value = data.get("cumulation", "year")
    if value not in ("year", "month"):
        problems.add(f"{path}cumulation", _("year or month"))
        return None
    return value


def _tiers(raw: Any, price_key: str, path: str, problems: _Problems) -> tuple[Tier, ...] | None:
    """The tiers, each checked on its own: a limit rises above the last good limit before it
    and a price is at least the last good price before it (a wrong figure is named once).
    ``None`` when any tier is wrong."""
    if not isinstance(raw, list) or len(raw) < 2:
        problems.add(path, _("at least two tiers"))
        return None
    tiers: list[Tier] = []
    previous_limit = Decimal(0)
    previous_price: Decimal | None = None
    before_all = len(problems)
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.add(where, _("an object"))
            continue
        before = len(problems)
        limit = _decimal(item, "up_to", f"{where}.", problems)
        limit_read = len(problems) == before
        last = i == len(raw) - 1
        if last and limit is not None:
            problems.add(f"{where}.up_to", _("the last tier has no limit (null)"))
        elif not last and limit_read and (limit is None or limit <= previous_limit):
            problems.add(f"{where}.up_to", _("limits must rise"))
        price = _decimal(item, price_key, f"{where}.", problems, required=True)
        if price is not None and previous_price is not None and price < previous_price:
            # 阶梯价: each tier costs at least what the one below it does.
            problems.add(f"{where}.{price_key}", _("lower than the tier below; tier prices rise"))
        if limit is not None:
            previous_limit = max(previous_limit, limit)
        if price is not None:
            previous_price = price
            tiers.append(Tier(limit, price))
    return tuple(tiers) if len(problems) == before_all else None


def _seasons(raw: Any, problems: _Problems) -> tuple[Season, ...] | None:
    """The seasons, each checked on its own; whether every month has one is asked only once
    every season's months are readable."""
    if not isinstance(raw, list) or not raw:
        problems.add("energy.seasons", _("at least one season"))
        return None
    seasons: list[Season] = []
    covered: set[int] = set()
    months_readable = True
    for i, item in enumerate(raw):
        path = f"energy.seasons[{i}]."
        months = item.get("months") if isinstance(item, dict) else None
        if not isinstance(months, list) or not all(
            isinstance(m, int) and 1 <= m <= 12 for m in months
        ):
            problems.add(f"{path}months", _("a list of months 1–12"))
            months_readable = False
            months = []
        elif covered & set(months):
            problems.add(f"{path}months", _("a month is in two seasons"))
        covered |= set(months)
        prices = item.get("prices") if isinstance(item, dict) else None
        if not isinstance(prices, dict) or set(prices) != set(TOU_NAMES):
            problems.add(f"{path}prices", _("spike, peak, flat and valley"))
            continue
        read = {
            n: _decimal(prices, n, f"{path}prices.", problems, required=True) for n in TOU_NAMES
        }
        good = {name: price for name, price in read.items() if price is not None}
        if len(good) == len(TOU_NAMES):
            seasons.append(
                Season(str(item.get("name", f"season {i + 1}")), frozenset(months), good)
            )
    if months_readable and covered != set(range(1, 13)):
        problems.add(
            "energy.seasons",
            _("months %(months)s have no season") % {"months": sorted(set(range(1, 13)) - covered)},
        )
    return tuple(seasons)


def _schedule(raw: Any, problems: _Problems) -> tuple[dict[str, str], ...] | None:
    if not isinstance(raw, list):
        problems.add("energy.schedule", _("a list of {from, to, register}"))
        return None
    periods = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or item.get("register") not in TOU_NAMES
            or not all(_is_clock(item.get(key)) for key in ("from", "to"))
        ):
            problems.add(
                f"energy.schedule[{i}]",
                _("from and to as HH:MM, register one of %(names)s") % {"names": TOU_NAMES},
            )
            continue
        periods.append({key: item[key] for key in ("from", "to", "register", "months")
                        if key in item})  # fmt: skip
    return tuple(periods)


def _is_clock(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        return False
    hours, minutes = value[:2], value[3:]
    return hours.isdigit() and minutes.isdigit() and int(hours) <= 24 and int(minutes) < 60


# --- the power factor adjustment (功率因数调整电费办法) ----------------------------------------

PF_STANDARDS = {Decimal("0.90"), Decimal("0.85"), Decimal("0.80")}
PF_STEP = Decimal("0.01")


def power_factor_rate(pf: Decimal, standard: Decimal) -> Decimal:
    """The adjustment as a fraction of the basic and energy charges (negative: a reduction),
    from the national table: below the standard +0.5 % per 0.01 for 20 steps, then +1 % per
    0.01 for 5 steps, then +2 % per 0.01; above it a reduction that grows to a cap (0.90:
    0.15 % per 0.01 to 0.75 % from 0.95; 0.85: 0.1 % per 0.01 to 0.90, then 0.15 %, 1.1 % from
    0.94; 0.80: 0.1 % per 0.01 to 0.90, then 0.15 %, 1.3 % from 0.92)."""
    pf = pf.quantize(PF_STEP, ROUND_HALF_UP)
    steps_below = int((standard - pf) / PF_STEP)
    if steps_below > 0:
        if steps_below <= 20:
            return Decimal("0.005") * steps_below
        if steps_below <= 25:
            return Decimal("0.10") + Decimal("0.01") * (steps_below - 20)
        return Decimal("0.15") + Decimal("0.02") * (steps_below - 25)
    steps_above = int((pf - standard) / PF_STEP)
    if standard == Decimal("0.90"):
        return -min(Decimal("0.0015") * steps_above, Decimal("0.0075"))
    cap = Decimal("0.011") if standard == Decimal("0.85") else Decimal("0.013")
    to_090 = int((Decimal("0.90") - standard) / PF_STEP)
    if steps_above <= to_090:
        return -Decimal("0.001") * steps_above
    reduction = Decimal("0.001") * to_090 + Decimal("0.0015") * (steps_above - to_090)
    top = Decimal("0.94") if standard == Decimal("0.85") else Decimal("0.92")
    return -cap if pf >= top else -reduction
