"""Each validation rule fires on its case and stays quiet on the near miss."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metering import services as metering_services
from tests.world import World
from verification.models import VerificationItem
from verification.tests.helpers import T0, checks, lay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_tenant_a")]


def test_a_real_wrap_is_consumption_and_a_fall_is_backwards(world: World) -> None:
    wrapping = world.a.meter(wrap_value=Decimal("999999.99"))
    lay(wrapping, [{"total": "995000.00"}, {"total": "4000.00"}])
    assert checks(wrapping)[1] == ("valid", ["wrap"])
    near_miss = world.a.meter(wrap_value=Decimal("999999.99"))
    lay(near_miss, [{"total": "985000.00"}, {"total": "4000.00"}])
    assert checks(near_miss)[1] == ("suspect", ["backwards"])
    falling = world.a.meter()
    lay(falling, [{"total": "500.00"}, {"total": "400.00"}])
    assert checks(falling)[1] == ("suspect", ["backwards"])


def test_a_wrap_counts_the_steps_through_zero(world: World) -> None:
    meter = world.a.meter(wrap_value=Decimal("999999.99"))
    lay(meter, [{"total": "999999.50"}, {"total": "0.40"}])
    checks(meter)
    from verification.models import ReadingCheck

    # 999,999.50 → 999,999.99 is 0.49, the roll to 0.00 one more step, then 0.40: 0.90.
    assert ReadingCheck.dangerously_unscoped.filter(meter=meter).order_by("taken_at")[
        1
    ].consumption == Decimal("0.900")


@pytest.mark.parametrize("last,rules", [("30.00", []), ("30.01", ["spike"])])
def test_a_spike_is_over_five_times_the_meters_hourly_rate(
    world: World, last: str, rules: list[str]
) -> None:
    meter = world.a.meter()
    # Ten hours at 2 kWh an hour, then 10 kWh (exactly 5x: quiet) or 10.01 kWh (a spike).
    totals = [{"total": 2 * hour} for hour in range(11)] + [{"total": last}]
    lay(meter, totals)
    status, fired = checks(meter)[-1]
    assert fired == rules and status == ("suspect" if rules else "valid")


def test_a_small_consumption_is_never_a_spike(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "0.10"}, {"total": "0.11"}, {"total": "0.12"}, {"total": "4.00"}])
    assert checks(meter)[-1] == ("valid", [])  # 3.88 kWh is under the 5 kWh floor


@pytest.mark.parametrize("power,rules", [("0.50", ["zero_with_power"]), ("0.05", [])])
def test_no_consumption_while_power_flows_is_suspect(
    world: World, power: str, rules: list[str]
) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "10.00"}, {"total": "10.00", "power": power}])
    assert checks(meter)[1][1] == rules


@pytest.mark.parametrize("valley,rules", [("4.05", []), ("4.06", ["tou_mismatch"])])
def test_the_time_of_use_registers_must_add_up(world: World, valley: str, rules: list[str]) -> None:
    meter = world.a.meter()
    tou = {"tou_spike": "1.00", "tou_peak": "3.00", "tou_flat": "2.00"}
    lay(meter, [{"total": "10.00", **tou, "tou_valley": valley}])
    assert checks(meter)[0][1] == rules


def test_future_duplicate_and_out_of_order_timestamps(world: World) -> None:
    now = timezone.now().replace(microsecond=0)
    meter = world.a.meter()
    lay(
        meter,
        [
            {"total": "1.00", "taken_at": now - timedelta(hours=3)},
            {
                "total": "2.00",
                "taken_at": now - timedelta(hours=2),
                "read_at": now - timedelta(hours=3),
            },
            {
                "total": "3.00",
                "taken_at": now - timedelta(hours=1),
                "read_at": now - timedelta(hours=4),
            },
            {"total": "4.00", "taken_at": now + timedelta(minutes=4)},
            {"total": "5.00", "taken_at": now + timedelta(minutes=30)},
        ],
    )
    results = checks(meter)
    assert results[1] == ("suspect", ["duplicate"])
    assert results[2] == ("suspect", ["out_of_order"])
    assert results[3] == ("valid", [])
    assert results[4] == ("suspect", ["future"])


@pytest.mark.parametrize("hours,rules", [(49, ["gap"]), (47, [])])
def test_a_reading_after_a_long_silence_is_noted_but_not_held(
    world: World, hours: int, rules: list[str]
) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "1.00"}, {"total": "40.00", "taken_at": T0 + timedelta(hours=hours)}])
    assert checks(meter)[1] == ("valid", rules)


def test_readings_across_a_meter_replacement(world: World) -> None:
    old = world.a.meter()
    lay(old, [{"total": "100.00"}, {"total": "101.00"}])
    with world.a.active():
        replacement = metering_services.replace_meter(
            world.a.system,
            old,
            new_serial_number="REPL-1",
            replaced_at=T0 + timedelta(hours=2),
            final_reading={"total": Decimal("102.00")},
            first_reading={"total": Decimal("0.00")},
            reason="故障",
        )
    new = replacement.new_meter
    lay(old, [{"total": "103.00", "taken_at": T0 + timedelta(hours=3)}])
    lay(new, [{"total": "0.50", "taken_at": T0 + timedelta(hours=1)}])
    assert checks(old)[-1] == ("suspect", ["after_removal"])
    assert checks(new)[0] == ("suspect", ["before_installation"])


def test_suspect_readings_wait_in_the_queue_with_their_first_rule(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "500.00"}, {"total": "400.00", "tou_spike": "1"}])
    checks(meter)
    item = VerificationItem.dangerously_unscoped.get(meter=meter)
    assert (item.rule, item.state, item.site_id) == ("backwards", "open", meter.site_id)
    assert item.rules.startswith("backwards")


def test_validating_again_checks_nothing_twice(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "1"}, {"total": "2"}])
    checks(meter)
    lay(meter, [{"total": "3", "taken_at": T0 + timedelta(hours=2)}])
    assert len(checks(meter)) == 3
    from verification.models import ReadingCheck

    assert ReadingCheck.dangerously_unscoped.filter(meter=meter).count() == 3
    assert (
        ReadingCheck.dangerously_unscoped.filter(meter=meter).order_by("taken_at")[2].consumption
        == 1
    )


def test_meters_validated_in_several_chunks_are_queued_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from verification import rules as validation

    monkeypatch.setattr(validation, "METERS_PER_CHUNK", 1)
    meters = [world.a.meter(), world.a.meter()]
    for meter in meters:
        lay(meter, [{"total": "500.00"}, {"total": "400.00"}])
    summary = validation.validate_readings(world.a.tenant)
    assert summary.suspect == 2
    assert VerificationItem.dangerously_unscoped.filter(meter__in=meters).count() == 2
