"""What holds a period back, as the objects a verifier opens to clear it."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metering.models import Meter
from tests.world import World
from verification import services
from verification.holds import CORRECTION, EARLIER_PERIOD, ITEM, Hold, earlier_period, holds_of
from verification.models import PeriodConsumption, VerificationItem
from verification.periods import compute_periods
from verification.tests.helpers import checks, lay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_tenant_a")]
CN = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 9, 1, tzinfo=CN)  # period 2026-10 of a site reading on the 1st
END = datetime(2026, 10, 1, tzinfo=CN)


def _meter_with_a_suspect_reading(world: World) -> Meter:
    account = world.a.account()
    meter = world.a.meter(account.site, account=account)
    lay(
        meter,
        [
            {"taken_at": START, "total": "100.00"},
            {"taken_at": START + timedelta(days=3), "total": "90.00"},  # backwards
            {"taken_at": END, "total": "200.00"},
        ],
    )
    checks(meter)
    return meter


def _periods(world: World, meter: Meter) -> list[PeriodConsumption]:
    compute_periods(world.a.system, meter.site, "2026-10")
    return list(PeriodConsumption.objects.filter(account=meter.account))


def test_the_period_before_january_is_december_of_the_year_before() -> None:
    assert earlier_period("2026-01") == "2025-12"
    assert earlier_period("2026-10") == "2026-09"


def test_a_suspect_reading_in_the_period_holds_it_as_its_queue_item(world: World) -> None:
    meter = _meter_with_a_suspect_reading(world)
    [period] = _periods(world, meter)
    item = VerificationItem.objects.get(meter=meter)
    assert holds_of([period]) == {period.pk: [Hold(ITEM, item.pk, meter.serial_number)]}


def test_an_edit_awaiting_approval_holds_it_as_the_correction(world: World) -> None:
    meter = _meter_with_a_suspect_reading(world)
    item = VerificationItem.objects.get(meter=meter)
    correction = services.edit_reading(
        world.a.system, item, {"total": Decimal("103")}, "digit misread"
    )
    [period] = _periods(world, meter)
    assert holds_of([period])[period.pk] == [Hold(CORRECTION, correction.pk, meter.serial_number)]


def test_an_earlier_period_still_held_back_is_named(world: World) -> None:
    meter = _meter_with_a_suspect_reading(world)
    [period] = _periods(world, meter)
    earlier = PeriodConsumption.objects.create(
        tenant=world.a.tenant, account=period.account, site=meter.site, period="2026-09",
        starts_at=START - timedelta(days=31), ends_at=START, status="held_back",
        hold_reason="reading not yet validated",
    )  # fmt: skip
    assert Hold(EARLIER_PERIOD, earlier.pk, "2026-09") in holds_of([period])[period.pk]


def test_a_computed_period_is_held_by_nothing(world: World) -> None:
    account = world.a.account()
    meter = world.a.meter(account.site, account=account)
    lay(meter, [{"taken_at": START, "total": "1.00"}, {"taken_at": END, "total": "9.00"}])
    checks(meter)
    [period] = _periods(world, meter)
    assert period.status == "computed"
    assert holds_of([period]) == {period.pk: []}


def test_the_holds_of_many_periods_take_as_many_queries_as_those_of_one(world: World) -> None:
    meters = [_meter_with_a_suspect_reading(world) for _ in range(3)]
    periods = [p for meter in meters for p in _periods(world, meter)]
    with CaptureQueriesContext(connection) as one:
        holds_of(periods[:1])
    with CaptureQueriesContext(connection) as three:
        found = holds_of(periods)
    assert len(three) == len(one)
    assert all(len(holds) == 1 for holds in found.values())
