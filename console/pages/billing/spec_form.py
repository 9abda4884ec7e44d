"""A tariff version's specification typed into a form per kind of tariff (flat, tiered, time of
use) that builds the JSON the API takes, with each error of ``TariffSpec.parse`` shown next to
the field it concerns.

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
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.tariffs.spec import TOU_NAMES, no_exponent_message
from console.forms import BoundField, Field, Form
from console.pages.billing.specs import (
    CUMULATIONS,
    KINDS,
    PERIOD_ROWS,
    PF_STANDARDS,
    SEASON_ROWS,
    SURCHARGE_ROWS,
    TIER_ROWS,
    TOU_LABELS,
    quantity_unit,
)
from customers.models import Utility


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
        # Shown only with the warning that the version is backdated over issued bills.
        Field(
            "confirm_backdated",
            gettext_lazy("Add the version anyway: these issued bills keep their prices"),
            kind="checkbox",
        ),
    ]


def kind_fields(kind: str, unit: str) -> list[Field]:
    """The fields of a kind's prices, quantities in ``unit`` (kWh, m³)."""
    price_label = _("Price (yuan/%(unit)s)") % {"unit": unit}
    limit_label = _("Up to (%(unit)s)") % {"unit": unit}
    fields: list[Field] = []
    if kind == "flat":
        fields.append(_price("price", price_label, required=True))
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
            fields.append(_price(f"tier_{row}_up_to", limit_label))
            fields.append(_price(f"tier_{row}_price", price_label))
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


def extra_fields(kind: str, unit: str = "kWh") -> list[Field]:
    """The charges beside the energy price, quantities in ``unit`` (kWh, m³)."""
    per_unit = {"unit": unit}
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
                _("Large households: extra %(unit)s per tier limit") % per_unit,
                help=gettext_lazy("One figure per tier limit, e.g. 1200, 1200."),
            ),
        ]
    if kind != "tou":
        fields.append(
            _price(
                "free_allowance_kwh_per_month",
                _("Free %(unit)s a month, minimum living support (低保)") % per_unit,
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
        _price("funds_per_kwh", _("Government funds and surcharges (yuan/%(unit)s)") % per_unit),
        _price("common_area_price", _("Common-area (公摊) price (yuan/%(unit)s)") % per_unit),
        _price("resale_grid_price", gettext_lazy("Resale (转供电): the grid's price (yuan/kWh)")),
        _price(
            "vat_rate",
            gettext_lazy("VAT rate (a fraction, e.g. 0.13)"),
        ),
    ]
    return fields


# Charges of electricity alone (两部制, 力调, 代理购电, 转供电): a water tariff's form leaves
# them out, unless the version it starts from has them (so a new version keeps them).
ELECTRICITY_ONLY = frozenset({
    "capacity_charge_per_kva", "demand_charge_per_kw", "power_factor_standard",
    "agency_purchase_prices", "resale_grid_price",
})  # fmt: skip


def spec_form(
    kind: str, utility: str, data: Any = None, initial: dict[str, Any] | None = None
) -> Form:
    """The form of a kind of version of a tariff of ``utility``: quantities in its unit, and
    for water without the charges of electricity alone."""
    initial = initial or {}
    unit = quantity_unit(utility)
    extras = extra_fields(kind, unit)
    if utility == Utility.WATER:
        extras = [
            spec for spec in extras if spec.name not in ELECTRICITY_ONLY or initial.get(spec.name)
        ]
    return Form([*version_fields(), *kind_fields(kind, unit), *extras], data, initial=initial)


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
        found.append(Group(_("Price"), [row("price")]))
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
    others = [bound[spec.name] for spec in extra_fields(kind) if spec.name in bound]
    found.append(Group(_("Other charges"), [[item] for item in others]))
    return found


GROUP_KEYS = ("tiers", "seasons", "schedule", "surcharges")


# A comma only between groups of three digits (1,234.5); \d takes the full-width digits an
# input method types, which Decimal reads as digits.
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?")


def amount_problem(typed: str) -> str | None:
    """What is wrong with an amount as typed, if anything: a comma anywhere but between
    thousands (``0,5`` is a decimal comma, refused rather than read as 5), an exponent
    (``1e3``), or no number at all. NaN and infinity are left to the specification."""
    if "," in typed and not _GROUPED.fullmatch(typed):
        return _("Use a point for decimals (0.5); a comma only separates thousands (1,234.5).")
    try:
        number = Decimal(typed.replace(",", ""))
    except InvalidOperation:
        return _("Enter a number, e.g. 0.4883.")
    if number.is_finite() and "e" in typed.lower():
        return capfirst(no_exponent_message()) + "."
    return None


def _blank(values: dict[str, Any], *names: str) -> bool:
    return all(str(values.get(name, "")).strip() == "" for name in names)


def spec_from_values(
    kind: str, values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, list[int]], dict[str, list[str]]]:
    """The JSON specification from what was typed, for each repeated part the form row of
    each item (``{"tier": [1, 3]}``…) to name the field of an error, and what cannot be read
    as typed (a figure that is not a number, months that are not numbers), by field. Amounts
    stay text, as the specification wants them."""
    errors: dict[str, list[str]] = {}
    rows: dict[str, Any] = {}

    def text(name: str) -> str:
        return str(values.get(name, "")).strip()

    def amount(name: str) -> str | None:
        typed = text(name)
        if typed == "":
            return None
        problem = amount_problem(typed)
        if problem:
            errors.setdefault(name, []).append(problem)
            return typed
        return str(Decimal(typed.replace(",", "")))

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
    return spec, rows, errors


_INDEXED = re.compile(r"^(?P<base>[a-z_.]+)\[(?P<index>\d+)\](?:\.(?P<rest>[a-z_]+))?")


def field_of_error(message: str, rows: dict[str, list[int]]) -> tuple[str, str]:
    """The form field a ``TariffSpec.parse`` message is about, and the message without its
    path (``("tier_2_up_to", "limits must rise")``); the group or ``__all__`` otherwise."""
    path, sep, text = message.partition(": ")
    if not sep:
        return "__all__", message
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
