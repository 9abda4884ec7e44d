"""Period consumption, worked by hand: wraps, replacements, CT ratios, missing readings."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering import services as metering_services
from metering.models import Meter
from tenancy.roles import Role
from tests.world import World
from verification import services
from verification.effective import Effective, MeterReadings
from verification.models import LineLoss, PeriodConsumption
from verification.periods import compute_periods, meter_consumption, period_bounds
from verification.tests.helpers import checks, lay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_tenant_a")]
CN = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, tzinfo=CN)  # period 2026-10 of a site reading on the 1st
END = datetime(2026, 10, 1, tzinfo=CN)
TOU = ("tou_spike", "tou_peak", "tou_flat", "tou_valley")


def _account_meter(world: World, **fields: Any) -> Meter:
    account = world.a.account(fields.pop("site", None))
    return world.a.meter(account.site, account=account, **fields)


def _period(world: World, meter: Meter) -> PeriodConsumption:
    with world.a.active():
        compute_periods(world.a.system, meter.site, "2026-10")
    return PeriodConsumption.dangerously_unscoped.get(account=meter.account, period="2026-10")


def test_the_period_runs_between_the_reading_days_at_midnight_china_time(world: World) -> None:
    site = world.a.sites[0]
    assert period_bounds(site, "2026-10") == (START, END)
    site.reading_day = 25
    assert period_bounds(site, "2026-01") == (
        datetime(2025, 12, 25, tzinfo=CN),
        datetime(2026, 1, 25, tzinfo=CN),
    )


def test_a_plain_period_with_time_of_use(world: World) -> None:
    meter = _account_meter(world)
    lay(
        meter,
        [
            {
                "taken_at": START,
                "total": "100.00",
                "tou_spike": 10,
                "tou_peak": 30,
                "tou_flat": 40,
                "tou_valley": 20,
            },
            {
                "taken_at": END,
                "total": "250.00",
                "tou_spike": 25,
                "tou_peak": 75,
                "tou_flat": 100,
                "tou_valley": 50,
            },
        ],
    )
    checks(meter)
    period = _period(world, meter)
    assert period.status == "computed" and not period.estimated
    assert period.total == Decimal("150.000")
    assert [getattr(period, name) for name in TOU] == [15, 45, 60, 30]


def test_a_wrap_inside_the_period(world: World) -> None:
    meter = _account_meter(world, wrap_value=Decimal("99999.99"))
    lay(meter, [{"taken_at": START, "total": "99900.00"}, {"taken_at": END, "total": "50.00"}])
    checks(meter)
    # 99,900.00 up to 99,999.99 is 99.99, one step to 0.00, then 50.00: 150.00.
    assert _period(world, meter).total == Decimal("150.000")


def test_a_ct_ratio_of_40_multiplies_the_register(world: World) -> None:
    meter = _account_meter(world, ct_ratio=Decimal(40))
    lay(meter, [{"taken_at": START, "total": "10.00"}, {"taken_at": END, "total": "12.50"}])
    checks(meter)
    assert _period(world, meter).total == Decimal("100.000")  # 2.50 kWh × 40


def test_a_meter_replaced_mid_period_is_joined(world: World) -> None:
    old = _account_meter(world)
    lay(old, [{"taken_at": START, "total": "1000.00"}])
    with world.a.active():
        replacement = metering_services.replace_meter(
            world.a.system,
            old,
            new_serial_number="MID-1",
            replaced_at=START + timedelta(days=15),
            final_reading={"total": Decimal("1100.00")},
            first_reading={"total": Decimal("0.00")},
            reason="表计故障",
        )
    new = replacement.new_meter
    lay(new, [{"taken_at": END, "total": "60.00"}])
    checks(old)
    checks(new)
    period = _period(world, old)
    # Old meter 1,000.00 → 1,100.00 (100.00), new meter 0.00 → 60.00 (60.00): 160.00.
    assert period.total == Decimal("160.000")
    assert [opening["meter"] for opening in period.opening] == [old.pk, new.pk]


def test_a_missing_closing_reading_is_interpolated_and_marked(world: World) -> None:
    meter = _account_meter(world)
    lay(
        meter,
        [
            {"taken_at": START, "total": "100.00"},
            {"taken_at": END - timedelta(hours=2), "total": "500.00"},
            {"taken_at": END + timedelta(hours=30), "total": "560.00"},
        ],
    )
    checks(meter)
    period = _period(world, meter)
    # Nothing within 24 h after 00:00: between 500.00 (2 h before) and 560.00 (30 h after),
    # 2/32 of the 60.00: 503.75, so 403.75 for the period, estimated.
    assert period.total == Decimal("403.750") and period.estimated
    assert period.closing[0]["source"] == "interpolated"


def test_a_suspect_reading_holds_the_account_back(world: World) -> None:
    meter = _account_meter(world)
    lay(
        meter,
        [
            {"taken_at": START, "total": "100.00"},
            {"taken_at": START + timedelta(days=3), "total": "90.00"},
            {"taken_at": END, "total": "200.00"},
        ],
    )
    checks(meter)
    period = _period(world, meter)
    assert period.status == "held_back" and period.total is None
    # Said as a verifier looks for it: the meter's serial and the slot in China time.
    assert period.hold_reason == f"可疑读数：表计 {meter.serial_number}，2026-09-04 00:00"


def test_no_reading_after_the_close_waits_for_an_approved_estimate(world: World) -> None:
    meter = _account_meter(world)
    lay(meter, [{"taken_at": START + timedelta(hours=h), "total": 100 + h} for h in range(3)])
    lay(meter, [{"taken_at": END - timedelta(hours=h), "total": 820 - h} for h in (2, 1)])
    checks(meter)
    period = _period(world, meter)
    assert period.status == "held_back" and "请以更正方式估算该读数" in period.hold_reason
    missing = f"表计 {meter.serial_number}：2026-10-01 00:00 之后没有可结束本期的读数"
    assert missing in period.hold_reason
    first = world.a.staff((Role.VERIFIER, None))
    second = world.a.staff((Role.VERIFIER, None))
    from tenancy.principal import Principal

    with world.a.active():
        estimate = services.estimate_missing(
            Principal.for_user(first), meter, END, "daily_average", "月末未抄到"
        )
        services.approve_correction(Principal.for_user(second), estimate)
    period = _period(world, meter)
    assert period.status == "computed" and period.estimated
    assert period.total == estimate.total - Decimal("100.00")


def test_a_missing_opening_reading_is_named_as_the_opening(world: World) -> None:
    meter = _account_meter(world)
    # The first reading comes two days after the period opened: past the closing window.
    lay(
        meter,
        [{"taken_at": START + timedelta(days=2, hours=h), "total": 100 + h} for h in range(3)],
    )
    lay(meter, [{"taken_at": END + timedelta(hours=h), "total": 800 + h} for h in range(2)])
    checks(meter)
    period = _period(world, meter)
    assert period.status == "held_back"
    missing = f"表计 {meter.serial_number}：2026-09-01 00:00 之前没有可开始本期的读数"
    assert missing in period.hold_reason


def test_recomputing_a_period_gives_the_same_rows(world: World) -> None:
    meter = _account_meter(world)
    lay(meter, [{"taken_at": START, "total": "1.00"}, {"taken_at": END, "total": "9.00"}])
    checks(meter)
    first = _period(world, meter)
    second = _period(world, meter)
    assert first.pk == second.pk and first.total == second.total == Decimal("8.000")
    assert PeriodConsumption.dangerously_unscoped.filter(account=meter.account).count() == 1


def test_line_loss_of_a_transformer_area(world: World) -> None:
    site = world.a.sites[0]
    area = world.a.transformer_area(site)
    with world.a.active():
        master = world.a.meter(site, master_of=area)
    lay(master, [{"taken_at": START, "total": "1000.00"}, {"taken_at": END, "total": "2000.00"}])
    checks(master)
    for used in ("400.00", "500.00"):
        premise = world.a.premise(site, transformer_area=area)
        account = world.a.account(site, premise=premise)
        meter = world.a.meter(site, account=account)
        lay(meter, [{"taken_at": START, "total": "0.00"}, {"taken_at": END, "total": used}])
        checks(meter)
    with world.a.active():
        compute_periods(world.a.system, site, "2026-10")
    loss = LineLoss.dangerously_unscoped.get(transformer_area=area, period="2026-10")
    # The master measured 1,000 kWh, the customers 900: 100 kWh lost, 10 % > 8 % expected.
    assert (loss.master_consumption, loss.customers_consumption) == (1000, 900)
    assert loss.loss == 100 and loss.loss_rate == Decimal("0.1000") and loss.flagged
    manager = world.a.staff((Role.SITE_MANAGER, site))
    listed = world.client_for(manager).get("/api/v1/line-losses/", {"flagged": True}).json()
    assert [row["transformer_area"] for row in listed["results"]] == [area.pk]


readings = st.lists(
    st.tuples(st.integers(min_value=1, max_value=72), st.integers(min_value=0, max_value=500)),
    min_size=4,
    max_size=40,
)


@given(steps=readings, cuts=st.lists(st.integers(1, 2000), min_size=3, max_size=3, unique=True))
def test_splitting_readings_across_periods_never_loses_or_doubles(
    steps: list[tuple[int, int]], cuts: list[int]
) -> None:
    """However the readings fall and wherever the boundaries are, the periods add up to the
    whole span: each boundary closes one period and opens the next with the same value."""
    meter = Meter(pk=1, profile="DDSY1352", ct_ratio=Decimal(1), pt_ratio=Decimal(1))
    at, total, effective = datetime(2026, 1, 1, tzinfo=CN), Decimal("99000.00"), []
    meter.wrap_value = Decimal("99999.99")
    for hours, hundredths in steps:
        at += timedelta(hours=hours)
        total = (total + Decimal(hundredths) / 100) % Decimal("100000.00")
        effective.append(Effective(1, at, {"total": total}, "reading"))
    first, last = effective[0].taken_at, effective[-1].taken_at
    span = (last - first).total_seconds() / 3600
    bounds = [first] + [first + timedelta(hours=span * c / 2001) for c in sorted(cuts)] + [last]
    found = {1: MeterReadings(effective)}
    window = timedelta(hours=24)
    parts = [
        meter_consumption([meter], found, {}, a, b, window).values["total"]
        for a, b in itertools.pairwise(bounds)
    ]
    whole = meter_consumption([meter], found, {}, bounds[0], bounds[-1], window).values["total"]
    assert sum(parts) == whole  # type: ignore[arg-type]


def test_a_meter_installed_during_the_period_opens_on_its_first_reading(world: World) -> None:
    """A new account between reading days: its meter, installed on 10 September, opens the
    period on its first reading (there is none at the period's start to look for)."""
    meter = _account_meter(world, installed_on=START.date() + timedelta(days=9))
    lay(
        meter,
        [
            {"taken_at": START + timedelta(days=9, hours=10), "total": "0.00"},
            {"taken_at": END, "total": "75.50"},
        ],
    )
    checks(meter)
    period = _period(world, meter)
    assert (period.status, period.total) == ("computed", Decimal("75.500"))
