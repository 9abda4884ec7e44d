"""A reading is judged against its meter's previous reading however long ago that was, and a
reading stored late (for an earlier slot) has the reading after it judged again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from metering.models import Meter
from tests.world import World
from verification.models import ItemState, ReadingCheck, VerificationItem
from verification.services import approve_readings
from verification.tests.helpers import T0, checks, lay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_tenant_a")]


@pytest.fixture(autouse=True)
def polled_every_minute(world: World) -> None:
    """As in the demo: a one-minute interval, so six hours are 360 slots."""
    world.a.tenant.reading_interval_minutes = 1
    world.a.tenant.save(update_fields=["reading_interval_minutes"])


def check_of(total: str, meter: Meter) -> ReadingCheck:
    """The check of the meter's reading showing this total."""
    return ReadingCheck.dangerously_unscoped.get(meter=meter, reading__total=Decimal(total))


def test_a_wrong_manual_reading_six_hours_after_the_last_one_goes_backwards(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "42548.20"}])
    checks(meter)
    world.a.reading(meter, taken_at=T0 + timedelta(hours=6), total=Decimal("100"))
    assert checks(meter)[-1] == ("suspect", ["backwards"])


def test_a_reading_after_a_month_of_silence_counts_the_consumption_since_the_last_one(
    world: World,
) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "500.00"}])
    checks(meter)
    lay(meter, [{"total": "740.00", "taken_at": T0 + timedelta(days=30)}])
    assert checks(meter)[-1] == ("valid", ["gap"])
    assert check_of("740.00", meter).consumption == Decimal("240.000")


def test_a_spike_after_hours_without_readings_is_still_a_spike(world: World) -> None:
    meter = world.a.meter()
    # Ten hours at 2 kWh an hour, checked; then, ten hours later, 101 kWh more: 10.1 an hour.
    lay(meter, [{"total": 2 * hour} for hour in range(11)])
    checks(meter)
    lay(meter, [{"total": "121.00", "taken_at": T0 + timedelta(hours=20)}])
    assert checks(meter)[-1] == ("suspect", ["spike"])


def test_a_wrong_reading_stored_late_turns_the_next_reading_suspect(world: World) -> None:
    meter = world.a.meter()
    # 10:00 and 12:00 arrived and checked valid; 11:00 is read by hand later, wrongly.
    lay(meter, [{"total": "100.00"}, {"total": "103.00", "taken_at": T0 + timedelta(hours=2)}])
    assert [status for status, _rules in checks(meter)] == ["valid", "valid"]
    world.a.reading(meter, taken_at=T0 + timedelta(hours=1), total=Decimal("130.00"))
    assert checks(meter)[1:] == [("valid", []), ("suspect", ["backwards"])]
    following = check_of("103.00", meter)
    assert following.previous_reading.total == Decimal("130.000")  # type: ignore[union-attr]
    item = VerificationItem.dangerously_unscoped.get(reading_id=following.reading_id)
    assert (item.state, item.rule) == (ItemState.OPEN, "backwards")


def test_a_right_reading_stored_late_splits_the_next_readings_consumption(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "100.00"}, {"total": "103.00", "taken_at": T0 + timedelta(hours=2)}])
    checks(meter)
    assert check_of("103.00", meter).consumption == Decimal("3.000")
    world.a.reading(meter, taken_at=T0 + timedelta(hours=1), total=Decimal("101.00"))
    assert checks(meter) == [("valid", [])] * 3
    assert check_of("103.00", meter).consumption == Decimal("2.000")


def test_a_late_reading_takes_over_the_suspicion_of_the_next_one(world: World) -> None:
    """12:00 looked backwards against 10:00; the 11:00 reading stored late shows the fall
    happened before 11:00, so the open item moves from 12:00 to 11:00."""
    meter = world.a.meter()
    lay(meter, [{"total": "500.00"}, {"total": "400.00", "taken_at": T0 + timedelta(hours=2)}])
    assert checks(meter)[-1] == ("suspect", ["backwards"])
    world.a.reading(meter, taken_at=T0 + timedelta(hours=1), total=Decimal("390.00"))
    assert checks(meter) == [("valid", []), ("suspect", ["backwards"]), ("valid", [])]
    item = VerificationItem.dangerously_unscoped.get(meter=meter)
    assert (item.reading.total, item.state) == (Decimal("390.000"), ItemState.OPEN)


def test_a_verifiers_approval_of_the_next_reading_stands(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": "500.00"}, {"total": "400.00", "taken_at": T0 + timedelta(hours=2)}])
    checks(meter)
    item = VerificationItem.dangerously_unscoped.get(meter=meter)
    approve_readings(world.a.system, [item])
    world.a.reading(meter, taken_at=T0 + timedelta(hours=1), total=Decimal("450.00"))
    assert checks(meter)[-1] == ("approved", ["backwards"])


def test_a_reading_before_the_meter_was_installed_is_suspect(world: World) -> None:
    meter = world.a.meter(installed_on=date(2026, 1, 1))
    world.a.reading(meter, taken_at=datetime(2025, 6, 1, tzinfo=UTC), total=Decimal("10"))
    # Midnight of the installation day in Shanghai is 16:00 UTC the day before: in time.
    world.a.reading(meter, taken_at=datetime(2025, 12, 31, 16, tzinfo=UTC), total=Decimal("11"))
    assert checks(meter) == [("suspect", ["before_installation"]), ("valid", ["gap"])]
