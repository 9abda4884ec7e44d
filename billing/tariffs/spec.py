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
from typing import Any, Literal, overload

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
WATER_LABELS = {"energy": ("水费", "Water"), "tier": ("第{n}阶梯水费", "Tier {n} water")}


class TariffSpecError(ValidationError):
    pass


class PricingError(ValueError):
    """The account cannot be priced as it stands (the reason is shown where it is held back)."""


# --- the specification ---------------------------------------------------------------------


LARGEST = Decimal(1_000_000_000)  # kWh limits and prices stay far inside Decimal's precision
FINEST = Decimal("0.000001")  # a unit price has at most six decimals (the bill line's column)


@overload
def _decimal(data: dict[str, Any], key: str, path: str, *, required: Literal[True]) -> Decimal: ...
@overload
def _decimal(
    data: dict[str, Any], key: str, path: str, *, required: bool = False
) -> Decimal | None: ...
def _decimal(
    data: dict[str, Any], key: str, path: str, *, required: bool = False
) -> Decimal | None:
    value = data.get(key)
    if value is None:
        if required:
            raise TariffSpecError(f"{path}{key}: " + _("required"))
        return None
    if isinstance(value, float | bool) or not isinstance(value, str | int):
        raise TariffSpecError(f"{path}{key}: " + _('give amounts as strings, e.g. "0.4883"'))
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise TariffSpecError(
            f"{path}{key}: " + _("not a number: %(value)s") % {"value": repr(value)}
        ) from exc
    if not number.is_finite() or number < 0:
        raise TariffSpecError(f"{path}{key}: " + _("must be zero or more"))
    if number > LARGEST or number != number.quantize(FINEST):
        raise TariffSpecError(
            f"{path}{key}: "
            + _("at most %(largest)s with 6 decimals") % {"largest": f"{LARGEST:,}"}
        )
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
        if not isinstance(data, dict):
            raise TariffSpecError(_("the specification must be a JSON object"))
        known = {
            "energy", "large_household", "free_allowance_kwh_per_month", "fixed_monthly_fee",
            "capacity_charge_per_kva", "demand_charge_per_kw", "power_factor_standard",
            "agency_purchase_prices", "funds_per_kwh", "common_area_price",
            "resale_grid_price", "vat_rate",
        }  # fmt: skip
        if unknown := set(data) - known:
            raise TariffSpecError(
                _("unknown fields: %(fields)s") % {"fields": ", ".join(sorted(unknown))}
            )
        energy = data.get("energy")
        if not isinstance(energy, dict):
            raise TariffSpecError("energy: " + _("required, an object with a kind"))
        kind = energy.get("kind")
        fields: dict[str, Any] = {"kind": kind}
        if kind == "flat":
            fields["price"] = _decimal(energy, "price", "energy.", required=True)
        elif kind == "tiered":
            fields["cumulation"] = _cumulation(energy, "energy.")
            fields["tiers"] = _tiers(energy.get("tiers"), "price", "energy.tiers")
        elif kind == "tou":
            fields["seasons"] = _seasons(energy.get("seasons"))
            fields["schedule"] = _schedule(energy.get("schedule", []))
            surcharges = energy.get("tier_surcharges")
            if surcharges is not None:
                if not isinstance(surcharges, dict):
                    raise TariffSpecError("energy.tier_surcharges: " + _("an object"))
                fields["cumulation"] = _cumulation(surcharges, "energy.tier_surcharges.")
                fields["tiers"] = _tiers(
                    surcharges.get("tiers"), "surcharge", "energy.tier_surcharges.tiers"
                )
        else:
            raise TariffSpecError("energy.kind: " + _("one of flat, tiered, tou"))
        if kind == "tou" and data.get("free_allowance_kwh_per_month") is not None:
            raise TariffSpecError(
                "free_allowance_kwh_per_month: "
                + _(
                    "not with time-of-use prices (the meter splits kWh into registers; a free "
                    "allowance has no register)"
                )
            )
        large = data.get("large_household")
        if large is not None:
            if not fields.get("tiers"):
                raise TariffSpecError(
                    "large_household: " + _("only a tariff with tiers has limits")
                )
            members = large.get("min_members") if isinstance(large, dict) else None
            extra = large.get("extra") if isinstance(large, dict) else None
            if not isinstance(members, int) or members < 2:
                raise TariffSpecError(
                    "large_household.min_members: " + _("a whole number of 2 or more")
                )
            if not isinstance(extra, list) or len(extra) != len(fields["tiers"]) - 1:
                raise TariffSpecError(
                    "large_household.extra: " + _("one extra kWh figure per tier limit")
                )
            fields["large_household_min"] = members
            fields["large_household_extra"] = tuple(
                _decimal({"x": value}, "x", f"large_household.extra[{i}].", required=True)
                for i, value in enumerate(extra)
            )
        for key, name in (
            ("free_allowance_kwh_per_month", "free_allowance"),
            ("fixed_monthly_fee", "fixed_monthly_fee"),
            ("funds_per_kwh", "funds_per_kwh"),
        ):
            if (value := _decimal(data, key, "")) is not None:
                fields[name] = value
        for key, name in (
            ("capacity_charge_per_kva", "capacity_per_kva"),
            ("demand_charge_per_kw", "demand_per_kw"),
            ("common_area_price", "common_area_price"),
            ("resale_grid_price", "resale_grid_price"),
            ("vat_rate", "vat_rate"),
        ):
            fields[name] = _decimal(data, key, "")
        if fields["capacity_per_kva"] is not None and fields["demand_per_kw"] is not None:
            raise TariffSpecError(_("a two-part tariff charges by capacity or by demand, not both"))
        if fields["vat_rate"] is not None and fields["vat_rate"] >= 1:
            raise TariffSpecError("vat_rate: " + _('a fraction, e.g. "0.13"'))
        standard = _decimal(data, "power_factor_standard", "")
        if standard is not None and standard not in PF_STANDARDS:
            raise TariffSpecError("power_factor_standard: " + _("one of 0.90, 0.85, 0.80"))
        fields["power_factor_standard"] = standard
        prices = data.get("agency_purchase_prices")
        if prices is not None and not isinstance(prices, dict):
            raise TariffSpecError("agency_purchase_prices: " + _("an object of YYYY-MM: price"))
        fields["agency_prices"] = None if prices is None else {}
        for month, _price in (prices or {}).items():
            if not isinstance(month, str) or not _MONTH.fullmatch(month):
                raise TariffSpecError(
                    f"agency_purchase_prices.{month}: " + _("not a month from 2000-01 to 2099-12")
                )
            fields["agency_prices"][month] = _decimal(
                prices,  # type: ignore[arg-type]  # not None inside this loop
                month,
                "agency_purchase_prices.",
                required=True,
            )
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
                _(
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


def _cumulation(data: dict[str, Any], path: str) -> str:
    value = data.get("cumulation", "year")
    if value not in ("year", "month"):
        raise TariffSpecError(f"{path}cumulation: " + _("year or month"))
    return value


def _tiers(raw: Any, price_key: str, path: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise TariffSpecError(f"{path}: " + _("at least two tiers"))
    tiers: list[Tier] = []
    previous = Decimal(0)
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise TariffSpecError(f"{path}[{i}]: " + _("an object"))
        limit = _decimal(item, "up_to", f"{path}[{i}].")
        last = i == len(raw) - 1
        if last and limit is not None:
            raise TariffSpecError(f"{path}[{i}].up_to: " + _("the last tier has no limit (null)"))
        if not last and (limit is None or limit <= previous):
            raise TariffSpecError(f"{path}[{i}].up_to: " + _("limits must rise"))
        price = _decimal(item, price_key, f"{path}[{i}].", required=True)
        if tiers and price < tiers[-1].price:
            # 阶梯价: each tier costs at least what the one below it does.
            raise TariffSpecError(
                f"{path}[{i}].{price_key}: " + _("lower than the tier below; tier prices rise")
            )
        tiers.append(Tier(limit, price))
        previous = limit or previous
    return tuple(tiers)


def _seasons(raw: Any) -> tuple[Season, ...]:
    if not isinstance(raw, list) or not raw:
        raise TariffSpecError("energy.seasons: " + _("at least one season"))
    seasons: list[Season] = []
    covered: set[int] = set()
    for i, item in enumerate(raw):
        path = f"energy.seasons[{i}]."
        months = item.get("months") if isinstance(item, dict) else None
        if not isinstance(months, list) or not all(
            isinstance(m, int) and 1 <= m <= 12 for m in months
        ):
            raise TariffSpecError(f"{path}months: " + _("a list of months 1–12"))
        if covered & set(months):
            raise TariffSpecError(f"{path}months: " + _("a month is in two seasons"))
        covered |= set(months)
        prices = item.get("prices")
        if not isinstance(prices, dict) or set(prices) != set(TOU_NAMES):
            raise TariffSpecError(f"{path}prices: " + _("spike, peak, flat and valley"))
        seasons.append(
            Season(
                str(item.get("name", f"season {i + 1}")),
                frozenset(months),
                {n: _decimal(prices, n, f"{path}prices.", required=True) for n in TOU_NAMES},
            )
        )
    if covered != set(range(1, 13)):
        raise TariffSpecError(
            "energy.seasons: "
            + _("months %(months)s have no season")
            % {"months": sorted(set(range(1, 13)) - covered)}
        )
    return tuple(seasons)


def _schedule(raw: Any) -> tuple[dict[str, str], ...]:
    if not isinstance(raw, list):
        raise TariffSpecError("energy.schedule: " + _("a list of {from, to, register}"))
    periods = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or item.get("register") not in TOU_NAMES
            or not all(_is_clock(item.get(key)) for key in ("from", "to"))
        ):
            raise TariffSpecError(
                f"energy.schedule[{i}]: "
                + _("from and to as HH:MM, register one of %(names)s") % {"names": TOU_NAMES}
            )
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
