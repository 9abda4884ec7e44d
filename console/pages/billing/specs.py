"""Tariff specifications for people: a stored specification read out (tiers with their bounds,
time-of-use prices by season and period, two-part charges). The form that writes one is
``console.pages.billing.spec_form``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.tariffs.spec import TOU_NAMES, TariffSpec, TariffSpecError
from console.lists import display
from customers.models import Utility

KINDS: dict[str, Promise] = {
    "flat": gettext_lazy("Flat rate"),
    "tiered": gettext_lazy("Tiered (阶梯)"),
    "tou": gettext_lazy("Time of use (峰谷)"),
}


def kinds_for(utility: str) -> dict[str, Promise]:
    """The kinds of tariff a utility's versions are written in: time of use is priced from a
    meter's TOU registers, which only electricity meters have."""
    if utility == Utility.WATER:
        return {kind: label for kind, label in KINDS.items() if kind != "tou"}
    return KINDS


def quantity_unit(utility: str) -> str:
    """What a tariff's quantities are counted in, as people read it (千瓦时, 立方米)."""
    return _("m³") if utility == Utility.WATER else _("kWh")


TOU_LABELS: dict[str, Promise] = {
    "spike": gettext_lazy("Spike (尖)"),
    "peak": gettext_lazy("Peak (峰)"),
    "flat": gettext_lazy("Flat (平)"),
    "valley": gettext_lazy("Valley (谷)"),
}
CUMULATIONS = [("year", gettext_lazy("Over the year")), ("month", gettext_lazy("Each month"))]
PF_STANDARDS = [("0.90", "0.90"), ("0.85", "0.85"), ("0.80", "0.80")]

TIER_ROWS = 5
SEASON_ROWS = 4
PERIOD_ROWS = 8
SURCHARGE_ROWS = 5

# --- reading a specification ------------------------------------------------------------------


@dataclass
class TierRow:
    number: int
    above: str
    up_to: str | None
    price: str


@dataclass
class Described:
    """A specification as the tariff page shows it."""

    kind: str
    kind_label: str
    utility: str = Utility.ELECTRICITY
    unit: str = ""
    cumulation: str = ""
    price: str = ""
    tiers: list[TierRow] = field(default_factory=list)
    large_household: str = ""
    seasons: list[dict[str, Any]] = field(default_factory=list)
    schedule: list[dict[str, str]] = field(default_factory=list)
    surcharge_cumulation: str = ""
    surcharges: list[TierRow] = field(default_factory=list)
    charges: list[tuple[str, str]] = field(default_factory=list)
    agency_prices: list[tuple[str, str]] = field(default_factory=list)
    unreadable: str = ""


def _number(value: Decimal | None) -> str:
    if value is None:
        return ""
    return display(value.quantize(Decimal(1)) if value == value.to_integral() else value)


def _tier_rows(tiers: Any) -> list[TierRow]:
    rows = []
    previous = Decimal(0)
    for number, tier in enumerate(tiers, start=1):
        rows.append(
            TierRow(number, _number(previous), _number(tier.up_to) or None, _number(tier.price))
        )
        previous = tier.up_to or previous
    return rows


def _cumulation_label(value: str | None) -> str:
    return str(dict(CUMULATIONS).get(value or "year", value or ""))


def describe_spec(raw: Any, utility: str = Utility.ELECTRICITY) -> Described:
    """A stored specification, read: what each tier, season, period and charge costs, in the
    utility's unit (kWh or m³)."""
    unit = quantity_unit(utility)
    try:
        spec = TariffSpec.parse(raw)
    except TariffSpecError as exc:  # stored before a rule was added: show what is there
        return Described("", "", utility, unit, unreadable="; ".join(exc.messages))
    described = Described(spec.kind, str(KINDS.get(spec.kind, spec.kind)), utility, unit)
    if spec.kind == "flat":
        described.price = _number(spec.price)
    elif spec.kind == "tiered":
        described.cumulation = _cumulation_label(spec.cumulation)
        described.tiers = _tier_rows(spec.tiers)
    else:
        described.seasons = [
            {
                "name": season.name,
                "months": ", ".join(str(month) for month in sorted(season.months)),
                "prices": [_number(season.prices[name]) for name in TOU_NAMES],
            }
            for season in spec.seasons
        ]
        described.schedule = [
            {
                "from": period["from"],
                "to": period["to"],
                "register": str(TOU_LABELS[period["register"]]),
            }
            for period in spec.schedule
        ]
        if spec.tiers:
            described.surcharge_cumulation = _cumulation_label(spec.cumulation)
            described.surcharges = _tier_rows(spec.tiers)
    if spec.large_household_min:
        described.large_household = _(
            "Households of %(members)s or more people: each tier limit raised by %(extra)s %(unit)s"
        ) % {
            "members": spec.large_household_min,
            "extra": " / ".join(_number(extra) for extra in spec.large_household_extra),
            "unit": unit,
        }
    described.charges = _charges(spec, unit)
    described.agency_prices = sorted(
        (month, _number(price)) for month, price in (spec.agency_prices or {}).items()
    )
    return described


def _charges(spec: TariffSpec, unit: str) -> list[tuple[str, str]]:
    charges: list[tuple[str, str]] = []

    def add(label: str, value: Decimal | None, per: str) -> None:
        if value:
            charges.append((label, f"{_number(value)} {per}"))

    per_unit = _("yuan/%(unit)s") % {"unit": unit}
    add(
        _("Free allowance, minimum living support (低保)"),
        spec.free_allowance,
        _("%(unit)s a month") % {"unit": unit},
    )
    add(_("Fixed monthly fee"), spec.fixed_monthly_fee, _("yuan a month"))
    add(_("Capacity charge (两部制)"), spec.capacity_per_kva, _("yuan per kVA a month"))
    add(_("Demand charge (两部制)"), spec.demand_per_kw, _("yuan per kW a month"))
    if spec.power_factor_standard is not None:
        charges.append(
            (_("Power factor adjustment (力调) against"), str(spec.power_factor_standard))
        )
    add(_("Government funds and surcharges"), spec.funds_per_kwh, per_unit)
    add(_("Common-area (公摊) price"), spec.common_area_price, per_unit)
    add(_("Resale (转供电) capped at the grid price"), spec.resale_grid_price, _("yuan/kWh"))
    if spec.vat_rate is not None:
        charges.append((_("VAT rate"), f"{spec.vat_rate * 100:.2f} %"))
    return charges
