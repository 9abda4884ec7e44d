"""Tariffs priced by hand: each example writes out its arithmetic, so a reader can check the
expected amounts with a pencil. Prices are VAT-inclusive; each line rounds half-up to 0.01."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from billing.tariffs.examples import (
    BEIJING_RESIDENTIAL,
    TOU_COMMERCIAL,
    TOU_SEASONS,
    TOU_WITH_SURCHARGES,
)
from billing.tariffs.pricing import (
    AccountFacts,
    Assignment,
    Priced,
    Segment,
    Usage,
    Version,
    price,
    split_days,
    tariff_segments,
)
from billing.tariffs.spec import (
    PricingError,
    TariffSpec,
    TariffSpecError,
    power_factor_rate,
)

BEIJING = BEIJING_RESIDENTIAL  # 0.4883 / 0.5383 / 0.7883, limits 2,880 and 4,800 a year
SEASONS = TOU_SEASONS
TOU = TOU_COMMERCIAL
TOU_SURCHARGED = TOU_WITH_SURCHARGES  # + 0.05 above 2,880 kWh a year, + 0.30 above 4,800
VAT = D("0.13")
OCTOBER = (date(2026, 9, 25), date(2026, 10, 25))  # 30 days


@pytest.fixture
def english() -> Iterator[None]:
    """The specification's messages are read in English here (they are translated too)."""
    with translation.override("en"):
        yield


def household(**changes: Any) -> AccountFacts:
    facts = {
        "utility": "electricity",
        "household_size": 3,
        "minimum_living_support": False,
        "contracted_kva": None,
        "opened_on": date(2020, 1, 1),
    }
    return AccountFacts(**{**facts, **changes})


def priced(
    spec: dict,
    usage: Usage,
    *,
    facts: AccountFacts | None = None,
    span: tuple[date, date] = OCTOBER,
    ytd: dict[int, D] | None = None,
    period: str = "2026-10",
) -> Priced:
    segment = Segment(span[0], span[1], TariffSpec.parse(spec))
    return price(
        facts or household(), [segment], usage, period=period, vat_rate=VAT, year_to_date=ytd
    )


def amounts(result: Priced) -> list[tuple[str, D, D]]:
    return [(line.label, line.quantity, line.amount) for line in result.lines]


def test_tiers_crossed_inside_a_month() -> None:
    # 2,800 kWh used this year; 200 more: 80 stay in tier 1, 120 go to tier 2.
    # 80 × 0.4883 = 39.064 → 39.06; 120 × 0.5383 = 64.596 → 64.60; total 103.66.
    result = priced(BEIJING, Usage(D("200")), ytd={2026: D("2800")})
    assert amounts(result) == [
        ("第1档电量电费", D("80"), D("39.06")),
        ("第2档电量电费", D("120"), D("64.60")),
    ]
    assert result.total == D("103.66")
    # Tax inside each line: 39.06 − 39.06/1.13 = 4.4936 → 4.49; 64.60 − 64.60/1.13 = 7.4319
    # → 7.43.
    assert [line.tax for line in result.lines] == [D("4.49"), D("7.43")]
    assert result.tax == D("11.92")
    assert result.annual_quantities == {"2026": D("200")}


def test_a_limit_belongs_to_the_lower_tier() -> None:
    # 2,780 used + 100 = exactly 2,880: all of it tier 1 (100 × 0.4883 = 48.83).
    result = priced(BEIJING, Usage(D("100")), ytd={2026: D("2780")})
    assert amounts(result) == [("第1档电量电费", D("100"), D("48.83"))]


def test_two_tiers_crossed_at_once() -> None:
    # 4,700 used; 200 more: 100 in tier 2 (53.83), 100 in tier 3 (78.83).
    result = priced(BEIJING, Usage(D("200")), ytd={2026: D("4700")})
    assert amounts(result) == [
        ("第2档电量电费", D("100"), D("53.83")),
        ("第3档电量电费", D("100"), D("78.83")),
    ]


def test_a_year_boundary_resets_annual_tiers() -> None:
    # Period 25 Dec 2026 – 25 Jan 2027: 31 days, 7 in 2026 and 24 in 2027. 310 kWh shared by
    # days: 310 × 7/31 = 70 in 2026, 240 in 2027.
    # 2026 (2,870 used): 10 × 0.4883 = 4.883 → 4.88 and 60 × 0.5383 = 32.298 → 32.30.
    # 2027 starts from zero: 240 × 0.4883 = 117.192 → 117.19. Total 154.37.
    result = priced(
        BEIJING,
        Usage(D("310")),
        span=(date(2026, 12, 25), date(2027, 1, 25)),
        ytd={2026: D("2870")},
        period="2027-01",
    )
    assert amounts(result) == [
        ("第1档电量电费", D("10"), D("4.88")),
        ("第2档电量电费", D("60"), D("32.30")),
        ("第1档电量电费", D("240"), D("117.19")),
    ]
    assert result.total == D("154.37")
    assert result.annual_quantities == {"2026": D("70"), "2027": D("240")}


def test_large_households_get_larger_limits() -> None:
    # Five people: limits 2,880 + 1,200 = 4,080. 2,900 used + 100 stay in tier 1: 48.83.
    result = priced(BEIJING, Usage(D("100")), facts=household(household_size=5),
                    ytd={2026: D("2900")})  # fmt: skip
    assert amounts(result) == [("第1档电量电费", D("100"), D("48.83"))]


def test_minimum_living_support_households_get_10_free_kwh_a_month() -> None:
    # 100 kWh in a full period: 10 free (0.00), 90 × 0.4883 = 43.947 → 43.95.
    result = priced(BEIJING, Usage(D("100")), facts=household(minimum_living_support=True))
    assert amounts(result) == [
        ("低保免费电量", D("10.000"), D("0.00")),
        ("第1档电量电费", D("90.000"), D("43.95")),
    ]


def test_tier_limits_prorate_by_days_for_an_account_opened_mid_year() -> None:
    # Opened 1 July 2026: 184 of 365 days. Tier 1 ends at 2,880 × 184/365 = 1,451.836 kWh.
    # 1,400 used + 100: 51.836 × 0.4883 = 25.3115 → 25.31; 48.164 × 0.5383 = 25.9267 → 25.93.
    result = priced(BEIJING, Usage(D("100")), facts=household(opened_on=date(2026, 7, 1)),
                    ytd={2026: D("1400")})  # fmt: skip
    assert amounts(result) == [
        ("第1档电量电费", D("51.836"), D("25.31")),
        ("第2档电量电费", D("48.164"), D("25.93")),
    ]


def test_time_of_use_is_priced_from_the_four_registers_by_season() -> None:
    # October is "other": 10 × 1.1 = 11.00; 50 × 0.85 = 42.50; 80 × 0.55 = 44.00;
    # 60 × 0.28 = 16.80; total 114.30.
    registers = {"tou_spike": D(10), "tou_peak": D(50), "tou_flat": D(80), "tou_valley": D(60)}
    result = priced(TOU, Usage(D("200"), registers))
    assert amounts(result) == [
        ("尖峰电费", D(10), D("11.00")),
        ("高峰电费", D(50), D("42.50")),
        ("平段电费", D(80), D("44.00")),
        ("低谷电费", D(60), D("16.80")),
    ]
    assert result.total == D("114.30")
    # The same registers in August are summer: 12.00 + 45.00 + 48.00 + 18.00 = 123.00.
    august = priced(TOU, Usage(D("200"), registers), span=(date(2026, 8, 1), date(2026, 8, 31)))
    assert august.total == D("123.00")


def test_a_tier_surcharge_adds_on_top_of_time_of_use() -> None:
    # TOU as above for 20/60/70/50: 22.00 + 51.00 + 38.50 + 14.00 = 125.50. 2,850 used this
    # year, so 30 kWh stay in tier 1 (no surcharge) and 170 enter tier 2: 170 × 0.05 = 8.50.
    registers = {"tou_spike": D(20), "tou_peak": D(60), "tou_flat": D(70), "tou_valley": D(50)}
    result = priced(TOU_SURCHARGED, Usage(D("200"), registers), ytd={2026: D("2850")})
    assert amounts(result)[-1] == ("第2档阶梯加价", D("170"), D("8.50"))
    assert result.total == D("134.00")


def test_two_part_tariff_with_capacity_charge_agency_price_funds_and_power_factor() -> None:
    # 50,000 kWh at 0.35 distribution = 17,500.00; agency purchase 50,000 × 0.4123 = 20,615.00;
    # funds 50,000 × 0.029 = 1,450.00; capacity 400 kVA × 30 = 12,000.00.
    # cos φ = 50,000 / √(50,000² + 30,000²) = 0.8575 → 0.86: 4 steps under 0.90 → +2 % of
    # (17,500 + 20,615 + 12,000) = 50,115.00 × 0.02 = 1,002.30. Total 52,567.30.
    spec = {
        "energy": {"kind": "flat", "price": "0.35"},
        "agency_purchase_prices": {"2026-10": "0.4123"},
        "funds_per_kwh": "0.029",
        "capacity_charge_per_kva": "30",
        "power_factor_standard": "0.90",
    }
    result = priced(spec, Usage(D("50000"), reactive=D("30000")),
                    facts=household(contracted_kva=D("400")))  # fmt: skip
    assert [(line.component, line.amount) for line in result.lines] == [
        ("energy", D("17500.00")),
        ("agency_purchase", D("20615.00")),
        ("funds", D("1450.00")),
        ("capacity", D("12000.00")),
        ("power_factor", D("1002.30")),
    ]
    assert result.total == D("52567.30")


def test_demand_charge_by_recorded_maximum_demand() -> None:
    # 310 kW × 40 = 12,400.00; 1,000 kWh × 0.6 = 600.00; total 13,000.00.
    spec = {"energy": {"kind": "flat", "price": "0.6"}, "demand_charge_per_kw": "40"}
    result = priced(spec, Usage(D("1000"), max_demand=D("310")))
    assert result.total == D("13000.00")
    with pytest.raises(PricingError, match="最大需量"):
        priced(spec, Usage(D("1000")))


def test_a_missing_agency_price_holds_the_account_back_with_the_reason() -> None:
    spec = {"energy": {"kind": "flat", "price": "0.35"}, "agency_purchase_prices": {}}
    with pytest.raises(PricingError, match="代理购电"):
        priced(spec, Usage(D("10")))


def test_vat_parts_for_electricity_and_water() -> None:
    # 100 kWh × 0.50 = 50.00, tax 50.00 − 50.00/1.13 = 5.7522 → 5.75.
    result = priced({"energy": {"kind": "flat", "price": "0.50"}}, Usage(D("100")))
    assert (result.total, result.tax) == (D("50.00"), D("5.75"))
    # Water at 9 %: 20 m³ × 4.00 = 80.00, tax 80.00 − 80.00/1.09 = 6.6055 → 6.61.
    water = price(
        household(utility="water"),
        [Segment(*OCTOBER, TariffSpec.parse({"energy": {"kind": "flat", "price": "4.00"}}))],
        Usage(D("20")),
        period="2026-10",
        vat_rate=D("0.09"),
    )
    assert (water.lines[0].label, water.lines[0].unit) == ("水费", "m³")
    assert (water.total, water.tax) == (D("80.00"), D("6.61"))


def test_common_area_share_is_a_line_of_its_own_at_the_base_price() -> None:
    # 80 kWh of the stairwell's 300 (by floor area 80 of 300 m²) at tier 1's 0.4883:
    # 39.064 → 39.06.
    result = priced(BEIJING, Usage(D("100"), common_area=D("80")), ytd={2026: D("0")})
    assert amounts(result)[-1] == ("公摊电费", D("80"), D("39.06"))


def test_a_tariff_change_inside_a_period_splits_it_by_days() -> None:
    # 0.50 until 10 October, 0.60 from then: 15 and 15 days of 30; 300 kWh → 150 each.
    # 150 × 0.50 = 75.00; 150 × 0.60 = 90.00; total 165.00.
    old = TariffSpec.parse({"energy": {"kind": "flat", "price": "0.50"}})
    new = TariffSpec.parse({"energy": {"kind": "flat", "price": "0.60"}})
    versions = [Version(1, 7, date(2026, 1, 1), old), Version(2, 7, date(2026, 10, 10), new)]
    assignments = [Assignment(7, None, "residential", date(2026, 1, 1), None)]
    segments = tariff_segments(1, "residential", *OCTOBER, assignments, versions)
    assert [(s.starts_on, s.ends_on) for s in segments] == [
        (date(2026, 9, 25), date(2026, 10, 10)),
        (date(2026, 10, 10), date(2026, 10, 25)),
    ]
    result = price(household(), segments, Usage(D("300")), period="2026-10", vat_rate=VAT)
    assert [line.amount for line in result.lines] == [D("75.00"), D("90.00")]


def test_an_account_assignment_wins_over_its_class() -> None:
    flat = TariffSpec.parse({"energy": {"kind": "flat", "price": "0.50"}})
    own = TariffSpec.parse({"energy": {"kind": "flat", "price": "0.70"}})
    versions = [Version(1, 1, date(2020, 1, 1), flat), Version(2, 2, date(2020, 1, 1), own)]
    assignments = [
        Assignment(1, None, "residential", date(2020, 1, 1), None),
        Assignment(2, 42, "", date(2026, 10, 1), None),
    ]
    segments = tariff_segments(42, "residential", *OCTOBER, assignments, versions)
    assert [(s.starts_on, s.version_id) for s in segments] == [
        (date(2026, 9, 25), 1),
        (date(2026, 10, 1), 2),
    ]
    with pytest.raises(PricingError, match="没有适用的价格"):
        tariff_segments(43, "commercial", *OCTOBER, assignments, versions)


@pytest.mark.usefixtures("english")
def test_resold_grid_power_above_the_grid_price_is_refused() -> None:
    with pytest.raises(TariffSpecError, match="转供电"):
        TariffSpec.parse({"energy": {"kind": "flat", "price": "0.65"}, "resale_grid_price": "0.60"})
    # Funds count too: 0.58 + 0.03 = 0.61 > 0.60.
    with pytest.raises(TariffSpecError, match=r"0\.61 yuan"):
        TariffSpec.parse(
            {"energy": {"kind": "flat", "price": "0.58"}, "funds_per_kwh": "0.03",
             "resale_grid_price": "0.60"}
        )  # fmt: skip
    TariffSpec.parse({"energy": {"kind": "flat", "price": "0.60"}, "resale_grid_price": "0.60"})


@pytest.mark.usefixtures("english")
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"energy": {"kind": "flat", "price": 0.5}}, "as strings"),
        ({"energy": {"kind": "flat"}}, "energy.price: required"),
        ({"energy": {"kind": "steps"}}, "energy.kind"),
        ({"energy": {"kind": "tiered", "tiers": [{"up_to": "10", "price": "1"}]}}, "two tiers"),
        (
            {"energy": {"kind": "tiered", "tiers": [{"up_to": "10", "price": "1"},
                                                   {"up_to": "5", "price": "1"}]}},
            "last tier has no limit",
        ),
        ({"energy": {"kind": "tou", "seasons": SEASONS[:1]}}, "have no season"),
        ({**TOU, "free_allowance_kwh_per_month": "10"}, "not with time-of-use"),
        ({"energy": {"kind": "flat", "price": "1"}, "power_factor_standard": "0.75"}, "0.90"),
        ({"energy": {"kind": "flat", "price": "1"}, "colour": "red"}, "unknown fields: colour"),
        ({"energy": {"kind": "flat", "price": "1e99"}}, "without an exponent"),
        ({"energy": {"kind": "flat", "price": "0.1234567"}}, "6 decimals"),
    ],
)  # fmt: skip
def test_a_bad_specification_names_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(TariffSpecError, match=message):
        TariffSpec.parse(spec)


@pytest.mark.usefixtures("english")
def test_every_independent_mistake_of_a_specification_is_named_at_once() -> None:
    spec = {
        "energy": {
            "kind": "tiered",
            "tiers": [
                {"up_to": "2880", "price": "0.4883"},
                {"up_to": "2000", "price": "0.5383"},
                {"up_to": None, "price": 0.7883},
            ],
        },
        "fixed_monthly_fee": "-5",
        "power_factor_standard": "0.75",
        "agency_purchase_prices": {"2026-13": "0.41", "2026-10": "abc"},
    }
    with pytest.raises(TariffSpecError) as caught:
        TariffSpec.parse(spec)
    assert caught.value.messages == [
        "energy.tiers[1].up_to: limits must rise",
        'energy.tiers[2].price: give amounts as strings, e.g. "0.4883"',
        "fixed_monthly_fee: must be zero or more",
        "power_factor_standard: one of 0.90, 0.85, 0.80",
        "agency_purchase_prices.2026-13: not a month from 2000-01 to 2099-12",
        "agency_purchase_prices.2026-10: not a number: 'abc'",
    ]


@pytest.mark.usefixtures("english")
def test_each_season_and_schedule_entry_is_checked_on_its_own() -> None:
    seasons = [
        {"name": "summer", "months": [7, 8], "prices": {"spike": "1.2", "peak": "0.9",
                                                        "flat": "0.6", "valley": "x"}},
        {"name": "rest", "months": [1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 8],
         "prices": {"spike": "1.1", "peak": "0.8", "flat": "0.55", "valley": "0.28"}},
    ]  # fmt: skip
    schedule = [
        {"from": "08:00", "to": "11:00", "register": "peak"},
        {"from": "8am", "to": "12:00", "register": "peak"},
        {"from": "12:00", "to": "14:00", "register": "midday"},
    ]
    with pytest.raises(TariffSpecError) as caught:
        TariffSpec.parse({"energy": {"kind": "tou", "seasons": seasons, "schedule": schedule}})
    assert [message.split(": ")[0] for message in caught.value.messages] == [
        "energy.seasons[0].prices.valley",
        "energy.seasons[1].months",
        "energy.schedule[1]",
        "energy.schedule[2]",
    ]


@pytest.mark.usefixtures("english")
def test_a_missing_energy_part_stops_its_own_checks_but_not_the_others() -> None:
    with pytest.raises(TariffSpecError) as caught:
        TariffSpec.parse({"fixed_monthly_fee": "abc", "large_household": {"min_members": 1}})
    assert caught.value.messages == [
        "energy: required, an object with a kind",
        "large_household.min_members: a whole number of 2 or more",
        "large_household.extra: one extra kWh figure per tier limit",
        "fixed_monthly_fee: not a number: 'abc'",
    ]


@pytest.mark.parametrize(
    ("pf", "standard", "rate"),
    [
        ("0.90", "0.90", "0"),
        ("0.92", "0.90", "-0.0030"),
        ("0.97", "0.90", "-0.0075"),
        ("0.85", "0.90", "0.025"),
        ("0.70", "0.90", "0.10"),
        ("0.65", "0.90", "0.15"),
        ("0.64", "0.90", "0.17"),
        ("0.90", "0.85", "-0.005"),
        ("0.93", "0.85", "-0.0095"),
        ("0.95", "0.85", "-0.011"),
        ("0.80", "0.85", "0.025"),
        ("0.91", "0.80", "-0.0115"),
        ("0.95", "0.80", "-0.013"),
    ],
)
def test_power_factor_adjustment_follows_the_national_table(
    pf: str, standard: str, rate: str
) -> None:
    assert power_factor_rate(D(pf), D(standard)) == D(rate)


# --- properties ------------------------------------------------------------------------------

KINDS = {
    "flat": {"energy": {"kind": "flat", "price": "0.5283"}, "fixed_monthly_fee": "5"},
    "tiered": BEIJING,
    "tou": TOU_SURCHARGED,
}
quantities = st.decimals(min_value=0, max_value=20000, places=3, allow_nan=False)


@given(
    kind=st.sampled_from(sorted(KINDS)),
    total=quantities,
    ytd=st.decimals(min_value=0, max_value=6000, places=0),
    cut=st.integers(min_value=1, max_value=29),
    shares=st.lists(st.integers(min_value=0, max_value=100), min_size=4, max_size=4),
)
def test_splitting_a_period_anywhere_changes_the_total_by_at_most_a_fen_a_line(
    kind: str, total: D, ytd: D, cut: int, shares: list[int]
) -> None:
    spec = TariffSpec.parse(KINDS[kind])
    registers = dict(
        zip(("tou_spike", "tou_peak", "tou_flat", "tou_valley"),
            split_days(total, [s + 1 for s in shares]), strict=True)
    )  # fmt: skip
    usage = Usage(total, registers)
    whole = price(household(), [Segment(*OCTOBER, spec, 1)], usage, period="2026-10",
                  vat_rate=VAT, year_to_date={2026: ytd})  # fmt: skip
    middle = date(2026, 9, 25 + cut) if cut < 6 else date(2026, 10, cut - 5)
    halves = [Segment(OCTOBER[0], middle, spec, 1), Segment(middle, OCTOBER[1], spec, 2)]
    split = price(household(), halves, usage, period="2026-10", vat_rate=VAT,
                  year_to_date={2026: ytd})  # fmt: skip
    assert abs(split.total - whole.total) <= D("0.01") * len(split.lines)
    assert sum(line.quantity for line in split.lines if line.unit == "kWh") == sum(
        line.quantity for line in whole.lines if line.unit == "kWh"
    )


@given(
    first=quantities,
    second=quantities,
    ytd=st.decimals(min_value=0, max_value=6000, places=0),
)
def test_two_periods_in_a_row_cost_what_one_period_of_both_would(
    first: D, second: D, ytd: D
) -> None:
    spec = TariffSpec.parse(BEIJING)
    september = (date(2026, 8, 25), date(2026, 9, 25))
    one = priced(BEIJING, Usage(first), span=september, ytd={2026: ytd}, period="2026-09")
    two = priced(BEIJING, Usage(second), ytd={2026: ytd + one.annual_quantities["2026"]})
    both = price(
        household(),
        [Segment(september[0], OCTOBER[1], spec)],
        Usage(first + second),
        period="2026-10",
        vat_rate=VAT,
        year_to_date={2026: ytd},
    )
    lines = len(one.lines) + len(two.lines)
    assert abs(one.total + two.total - both.total) <= D("0.01") * lines


@pytest.mark.usefixtures("english")
def test_a_tier_cheaper_than_the_one_below_is_refused_on_its_price() -> None:
    spec = {
        "energy": {
            "kind": "tiered",
            "tiers": [{"up_to": "2880", "price": "0.6000"}, {"up_to": None, "price": "0.5383"}],
        }
    }
    with pytest.raises(TariffSpecError, match=r"energy\.tiers\[1\]\.price: lower than the tier"):
        TariffSpec.parse(spec)
