"""Tariff specifications for people: a stored specification rendered readably (tiers with their
bounds, time-of-use prices by season and period, two-part charges), and a form per kind of
tariff (flat, tiered, time of use) that builds the JSON the API takes, with each error of
``TariffSpec.parse`` shown next to the field it concerns.

The specification itself is checked only by ``billing.tariffs.spec`` (through the service that
stores a version); the form only turns what was typed into that JSON and maps the paths of its
errors (``energy.tiers[1].up_to``) back to the fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.tariffs.spec import TOU_NAMES, TariffSpec, TariffSpecError
from console.forms import BoundField, Field, Form
from console.lists import display

KINDS: dict[str, Promise] = {
    "flat": gettext_lazy("Flat rate"),
    "tiered": gettext_lazy("Tiered (阶梯)"),
    "tou": gettext_lazy("Time of use (峰谷)"),
}
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


def describe_spec(raw: Any) -> Described:
    """A stored specification, read: what each tier, season, period and charge costs."""
    try:
        spec = TariffSpec.parse(raw)
    except TariffSpecError as exc:  # stored before a rule was added: show what is there
        return Described("", "", unreadable="; ".join(exc.messages))
    described = Described(spec.kind, str(KINDS.get(spec.kind, spec.kind)))
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
            "Households of %(members)s or more people: each tier limit raised by %(extra)s kWh"
        ) % {
            "members": spec.large_household_min,
            "extra": " / ".join(_number(extra) for extra in spec.large_household_extra),
        }
    described.charges = _charges(spec)
    described.agency_prices = sorted(
        (month, _number(price)) for month, price in (spec.agency_prices or {}).items()
    )
    return described


def _charges(spec: TariffSpec) -> list[tuple[str, str]]:
    charges: list[tuple[str, str]] = []

    def add(label: str, value: Decimal | None, unit: str) -> None:
        if value:
            charges.append((label, f"{_number(value)} {unit}"))

    add(_("Free allowance, minimum living support (低保)"), spec.free_allowance, _("kWh a month"))
    add(_("Fixed monthly fee"), spec.fixed_monthly_fee, _("yuan a month"))
    add(_("Capacity charge (两部制)"), spec.capacity_per_kva, _("yuan per kVA a month"))
    add(_("Demand charge (两部制)"), spec.demand_per_kw, _("yuan per kW a month"))
    if spec.power_factor_standard is not None:
        charges.append(
            (_("Power factor adjustment (力调) against"), str(spec.power_factor_standard))
        )
    add(_("Government funds and surcharges"), spec.funds_per_kwh, _("yuan/kWh"))
    add(_("Common-area (公摊) price"), spec.common_area_price, _("yuan/kWh"))
    add(_("Resale (转供电) capped at the grid price"), spec.resale_grid_price, _("yuan/kWh"))
    if spec.vat_rate is not None:
        charges.append((_("VAT rate"), f"{spec.vat_rate * 100:.2f} %"))
    return charges


# --- the form per kind ----------------------------------------------------------------------


def _price(name: str, label: Promise | str, required: bool = False) -> Field:
    return Field(name, label, kind="text", required=required, help="")


def version_fields() -> list[Field]:
    return [
        Field("effective_from", gettext_lazy("Effective from"), kind="date", required=True),
        Field(
            "note",
            gettext_lazy("Note"),
            help=gettext_lazy("Why this version, e.g. the price notice."),
        ),
    ]


def kind_fields(kind: str) -> list[Field]:
    fields: list[Field] = []
    if kind == "flat":
        fields.append(_price("price", gettext_lazy("Price (yuan/kWh)"), required=True))
    elif kind == "tiered":
        fields.append(
            Field(
                "cumulation",
                gettext_lazy("Tier limits count"),
                kind="select",
                required=True,
                choices=CUMULATIONS,
            )
        )
        for row in range(1, TIER_ROWS + 1):
            fields.append(_price(f"tier_{row}_up_to", gettext_lazy("Up to (kWh)")))
            fields.append(_price(f"tier_{row}_price", gettext_lazy("Price (yuan/kWh)")))
    else:
        for row in range(1, SEASON_ROWS + 1):
            fields.append(Field(f"season_{row}_name", gettext_lazy("Name")))
            fields.append(Field(f"season_{row}_months", gettext_lazy("Months (e.g. 7, 8)")))
            for name in TOU_NAMES:
                fields.append(_price(f"season_{row}_{name}", TOU_LABELS[name]))
        for row in range(1, PERIOD_ROWS + 1):
            fields.append(Field(f"period_{row}_from", gettext_lazy("From (HH:MM)")))
            fields.append(Field(f"period_{row}_to", gettext_lazy("To (HH:MM)")))
            fields.append(
                Field(
                    f"period_{row}_register",
                    gettext_lazy("Register"),
                    kind="select",
                    choices=list(TOU_LABELS.items()),
                )
            )
        fields.append(
            Field(
                "surcharge_cumulation",
                gettext_lazy("Tier surcharges count"),
                kind="select",
                choices=CUMULATIONS,
                help=gettext_lazy("Leave empty for no tier surcharges."),
            )
        )
        for row in range(1, SURCHARGE_ROWS + 1):
            fields.append(_price(f"surcharge_{row}_up_to", gettext_lazy("Up to (kWh)")))
            fields.append(
                _price(f"surcharge_{row}_surcharge", gettext_lazy("Surcharge (yuan/kWh)"))
            )
    return fields


def extra_fields(kind: str) -> list[Field]:
    fields = []
    if kind in ("tiered", "tou"):
        fields += [
            Field(
                "large_household_min_members",
                gettext_lazy("Large households (一户多人口): from how many people"),
                kind="number",
            ),
            Field(
                "large_household_extra",
                gettext_lazy("Large households: extra kWh per tier limit"),
                help=gettext_lazy("One figure per tier limit, e.g. 1200, 1200."),
            ),
        ]
    if kind != "tou":
        fields.append(
            _price(
                "free_allowance_kwh_per_month",
                gettext_lazy("Free kWh a month, minimum living support (低保)"),
            )
        )
    fields += [
        _price("fixed_monthly_fee", gettext_lazy("Fixed monthly fee (yuan)")),
        _price("capacity_charge_per_kva", gettext_lazy("Capacity charge (yuan per kVA a month)")),
        _price("demand_charge_per_kw", gettext_lazy("Demand charge (yuan per kW a month)")),
        Field(
            "power_factor_standard",
            gettext_lazy("Power factor standard (力调)"),
            kind="select",
            choices=PF_STANDARDS,
        ),
        Field(
            "agency_purchase_prices",
            gettext_lazy("Agency purchase prices (代理购电)"),
            kind="textarea",
            help=gettext_lazy(
                "One month a line: YYYY-MM and the price in yuan/kWh, e.g. 2026-10 0.4123."
            ),
        ),
        _price("funds_per_kwh", gettext_lazy("Government funds and surcharges (yuan/kWh)")),
        _price("common_area_price", gettext_lazy("Common-area (公摊) price (yuan/kWh)")),
        _price("resale_grid_price", gettext_lazy("Resale (转供电): the grid's price (yuan/kWh)")),
        _price(
            "vat_rate",
            gettext_lazy("VAT rate (a fraction, e.g. 0.13)"),
        ),
    ]
    return fields


def spec_form(kind: str, data: Any = None, initial: dict[str, Any] | None = None) -> Form:
    return Form(
        [*version_fields(), *kind_fields(kind), *extra_fields(kind)], data, initial=initial or {}
    )


@dataclass
class Group:
    """A fieldset of the form: its legend, its rows of fields, and errors about it as a whole."""

    legend: str
    rows: list[list[BoundField]]
    errors: list[str] = field(default_factory=list)
    hint: str = ""


def groups(form: Form, kind: str) -> list[Group]:
    """The form's fields in fieldsets, the repeated rows (tiers, seasons, periods) each a row."""
    bound = {item.field.name: item for item in form.bound}

    def row(*names: str) -> list[BoundField]:
        return [bound[name] for name in names if name in bound]

    def rows(prefix: str, count: int, names: tuple[str, ...]) -> list[list[BoundField]]:
        return [row(*(f"{prefix}_{n}_{name}" for name in names)) for n in range(1, count + 1)]

    found = [Group(_("Version"), [row("effective_from"), row("note")])]
    if kind == "flat":
        found.append(Group(_("Energy price"), [row("price")]))
    elif kind == "tiered":
        found.append(
            Group(
                _("Tiers (阶梯)"),
                [row("cumulation"), *rows("tier", TIER_ROWS, ("up_to", "price"))],
                form.errors.get("tiers", []),
                _(
                    "A limit belongs to the lower tier; leave the last tier's limit "
                    "empty. Empty rows are left out."
                ),
            )
        )
    else:
        found.append(
            Group(
                _("Seasons and their prices (yuan/kWh)"),
                rows("season", SEASON_ROWS, ("name", "months", *TOU_NAMES)),
                form.errors.get("seasons", []),
                _("Every month of the year in one season; empty rows are left out."),
            )
        )
        found.append(
            Group(
                _("Hours of the day (meter schedule)"),
                rows("period", PERIOD_ROWS, ("from", "to", "register")),
                form.errors.get("schedule", []),
                _(
                    "The meter sorts energy into its registers by this schedule; "
                    "bills are priced from the register readings."
                ),
            )
        )
        found.append(
            Group(
                _("Tier surcharges on top (阶梯 + 峰谷)"),
                [
                    row("surcharge_cumulation"),
                    *rows("surcharge", SURCHARGE_ROWS, ("up_to", "surcharge")),
                ],
                form.errors.get("surcharges", []),
            )
        )
    others = [bound[spec.name] for spec in extra_fields(kind)]
    found.append(Group(_("Other charges"), [[item] for item in others]))
    return found


GROUP_KEYS = ("tiers", "seasons", "schedule", "surcharges")


class SpecInputError(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _blank(values: dict[str, Any], *names: str) -> bool:
    return all(str(values.get(name, "")).strip() == "" for name in names)


def spec_from_values(
    kind: str, values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The JSON specification from what was typed, and for each repeated part the form row of
    each item (``{"tier": [1, 3]}``…) to name the field of an error. Amounts stay text, as the
    specification wants them; a figure that is not a number is refused here, all at once."""
    errors: dict[str, list[str]] = {}
    rows: dict[str, Any] = {}

    def text(name: str) -> str:
        return str(values.get(name, "")).strip()

    def amount(name: str) -> str | None:
        value = text(name).replace(",", "")
        if value == "":
            return None
        try:
            Decimal(value)
        except InvalidOperation:
            errors.setdefault(name, []).append(_("Enter a number, e.g. 0.4883."))
        return value

    def tiers(prefix: str, count: int, price_key: str, path_key: str) -> list[dict[str, Any]]:
        made = []
        rows[path_key] = []
        for n in range(1, count + 1):
            up_to, price = f"{prefix}_{n}_up_to", f"{prefix}_{n}_{price_key}"
            if _blank(values, up_to, price):
                continue
            rows[path_key].append(n)
            made.append({"up_to": amount(up_to), price_key: amount(price)})
        return made

    energy: dict[str, Any] = {"kind": kind}
    if kind == "flat":
        energy["price"] = amount("price")
    elif kind == "tiered":
        energy["cumulation"] = text("cumulation") or "year"
        energy["tiers"] = tiers("tier", TIER_ROWS, "price", "tiers")
    else:
        seasons = []
        rows["seasons"] = []
        for n in range(1, SEASON_ROWS + 1):
            names = [f"season_{n}_{part}" for part in ("name", "months", *TOU_NAMES)]
            if _blank(values, *names):
                continue
            rows["seasons"].append(n)
            months: list[Any] = []
            for part in re.split(r"[\s,，、]+", text(f"season_{n}_months")):
                if not part:
                    continue
                if not part.isascii() or not part.isdigit():
                    errors.setdefault(f"season_{n}_months", []).append(
                        _("Months as whole numbers 1–12, e.g. 7, 8.")
                    )
                    break
                months.append(int(part))
            season: dict[str, Any] = {
                "months": months,
                "prices": {name: amount(f"season_{n}_{name}") for name in TOU_NAMES},
            }
            if text(f"season_{n}_name"):
                season["name"] = text(f"season_{n}_name")
            seasons.append(season)
        energy["seasons"] = seasons
        schedule = []
        rows["schedule"] = []
        for n in range(1, PERIOD_ROWS + 1):
            names = [f"period_{n}_{part}" for part in ("from", "to", "register")]
            if _blank(values, *names):
                continue
            rows["schedule"].append(n)
            schedule.append(
                {part: text(f"period_{n}_{part}") for part in ("from", "to", "register")}
            )
        energy["schedule"] = schedule
        if text("surcharge_cumulation"):
            energy["tier_surcharges"] = {
                "cumulation": text("surcharge_cumulation"),
                "tiers": tiers("surcharge", SURCHARGE_ROWS, "surcharge", "surcharges"),
            }
    spec: dict[str, Any] = {"energy": energy}
    members, extra = text("large_household_min_members"), text("large_household_extra")
    if members or extra:
        large: dict[str, Any] = {"extra": [p for p in re.split(r"[\s,，、]+", extra) if p]}
        try:
            large["min_members"] = int(members)
        except ValueError:
            errors.setdefault("large_household_min_members", []).append(
                _("A whole number of people, e.g. 5.")
            )
        spec["large_household"] = large
    for name in (
        "free_allowance_kwh_per_month",
        "fixed_monthly_fee",
        "capacity_charge_per_kva",
        "demand_charge_per_kw",
        "funds_per_kwh",
        "common_area_price",
        "resale_grid_price",
        "vat_rate",
    ):
        if (value := amount(name)) is not None:
            spec[name] = value
    if text("power_factor_standard"):
        spec["power_factor_standard"] = text("power_factor_standard")
    if text("agency_purchase_prices"):
        prices: dict[str, str] = {}
        for line in text("agency_purchase_prices").splitlines():
            parts = [p for p in re.split(r"[\s,，=:：]+", line.strip()) if p]
            if not parts:
                continue
            if len(parts) != 2:
                errors.setdefault("agency_purchase_prices", []).append(
                    _("“%(line)s”: a month and a price, e.g. 2026-10 0.4123.") % {"line": line}
                )
                continue
            prices[parts[0]] = parts[1]
        spec["agency_purchase_prices"] = prices
    if errors:
        raise SpecInputError(errors)
    return spec, rows


_INDEXED = re.compile(r"^(?P<base>[a-z_.]+)\[(?P<index>\d+)\](?:\.(?P<rest>[a-z_]+))?")


def field_of_error(message: str, rows: dict[str, list[int]]) -> tuple[str, str]:
    """The form field a ``TariffSpec.parse`` message is about, and the message without its
    path (``("tier_2_up_to", "limits must rise")``); the group or ``__all__`` otherwise."""
    path, sep, text = message.partition(": ")
    if not sep:
        if message.startswith("a two-part tariff"):
            return "demand_charge_per_kw", message
        return "__all__", message
    if path.startswith("resale"):
        return "resale_grid_price", text
    indexed = _INDEXED.match(path)
    if indexed:
        base, index, rest = indexed["base"], int(indexed["index"]), indexed["rest"] or ""
        targets = {
            "energy.tiers": ("tiers", "tier"),
            "energy.tier_surcharges.tiers": ("surcharges", "surcharge"),
            "energy.seasons": ("seasons", "season"),
            "energy.schedule": ("schedule", "period"),
        }
        if base in targets:
            group, prefix = targets[base]
            numbers = rows.get(group, [])
            if index < len(numbers):
                part = rest or ("from" if prefix == "period" else "")
                if prefix == "season" and rest == "prices":
                    tail = path.rsplit(".", 1)[-1]
                    part = tail if tail in TOU_NAMES else "spike"
                if part:
                    return f"{prefix}_{numbers[index]}_{part}", text
            return group, text
        if base == "large_household.extra":
            return "large_household_extra", text
    simple = {
        "energy.price": "price",
        "energy.cumulation": "cumulation",
        "energy.tiers": "tiers",
        "energy.seasons": "seasons",
        "energy.schedule": "schedule",
        "energy.tier_surcharges": "surcharges",
        "energy.tier_surcharges.cumulation": "surcharge_cumulation",
        "energy.tier_surcharges.tiers": "surcharges",
        "large_household": "large_household_min_members",
        "large_household.min_members": "large_household_min_members",
        "large_household.extra": "large_household_extra",
    }
    if path in simple:
        return simple[path], text
    top = path.split(".", 1)[0]
    if top in {spec.name for spec in extra_fields("tiered") + extra_fields("tou")}:
        return top, text
    return "__all__", message


def values_from_spec(raw: Any) -> tuple[str, dict[str, Any]]:
    """A stored specification as the form's initial values (a new version starts from the
    one in force), and its kind."""
    if not isinstance(raw, dict) or not isinstance(raw.get("energy"), dict):
        return "flat", {}
    energy = raw["energy"]
    kind = energy.get("kind") if energy.get("kind") in KINDS else "flat"
    values: dict[str, Any] = {}
    if kind == "flat":
        values["price"] = energy.get("price", "")
    elif kind == "tiered":
        values["cumulation"] = energy.get("cumulation", "year")
        for n, tier in enumerate(energy.get("tiers", [])[:TIER_ROWS], start=1):
            values[f"tier_{n}_up_to"] = tier.get("up_to") or ""
            values[f"tier_{n}_price"] = tier.get("price", "")
    else:
        for n, season in enumerate(energy.get("seasons", [])[:SEASON_ROWS], start=1):
            values[f"season_{n}_name"] = season.get("name", "")
            values[f"season_{n}_months"] = ", ".join(str(m) for m in season.get("months", []))
            for name in TOU_NAMES:
                values[f"season_{n}_{name}"] = season.get("prices", {}).get(name, "")
        for n, period in enumerate(energy.get("schedule", [])[:PERIOD_ROWS], start=1):
            for part in ("from", "to", "register"):
                values[f"period_{n}_{part}"] = period.get(part, "")
        surcharges = energy.get("tier_surcharges")
        if isinstance(surcharges, dict):
            values["surcharge_cumulation"] = surcharges.get("cumulation", "year")
            for n, tier in enumerate(surcharges.get("tiers", [])[:SURCHARGE_ROWS], start=1):
                values[f"surcharge_{n}_up_to"] = tier.get("up_to") or ""
                values[f"surcharge_{n}_surcharge"] = tier.get("surcharge", "")
    large = raw.get("large_household")
    if isinstance(large, dict):
        values["large_household_min_members"] = large.get("min_members", "")
        values["large_household_extra"] = ", ".join(str(x) for x in large.get("extra", []))
    for name in (
        "free_allowance_kwh_per_month",
        "fixed_monthly_fee",
        "capacity_charge_per_kva",
        "demand_charge_per_kw",
        "funds_per_kwh",
        "common_area_price",
        "resale_grid_price",
        "vat_rate",
        "power_factor_standard",
    ):
        if raw.get(name) is not None:
            values[name] = raw[name]
    prices = raw.get("agency_purchase_prices")
    if isinstance(prices, dict):
        values["agency_purchase_prices"] = "\n".join(f"{m} {p}" for m, p in sorted(prices.items()))
    return kind, values
