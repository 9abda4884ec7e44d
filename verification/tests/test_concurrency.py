"""Validations that run at once (each polling shard's commit starts one for its tenant, beside
the five-minute sweep) check every reading exactly once and raise nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.concurrency import run_together
from tests.world import World
from verification.models import ReadingCheck, VerificationItem
from verification.rules import validate_readings
from verification.tests.helpers import lay

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_six_validations_at_once_check_every_reading_once_and_queue_each_suspect_once(
    world: World,
) -> None:
    with world.a.active():
        meters = [world.a.meter(on_gateway=False) for _ in range(12)]
        for number, meter in enumerate(meters):
            # every third meter's counter falls once (backwards: suspect) and goes on from there
            drop = 100 if number % 3 == 0 else 0
            totals = [100 + hour * 2 - (drop if hour >= 20 else 0) for hour in range(40)]
            lay(meter, [{"total": Decimal(total)} for total in totals])
    readings = 12 * 40

    summaries, errors = run_together(
        6, lambda _index: validate_readings(world.a.tenant), world.a.tenant
    )

    assert not errors, errors
    assert sum(summary.checked for summary in summaries) == readings
    with world.a.active():
        assert ReadingCheck.objects.count() == readings
        assert ReadingCheck.objects.values("reading").distinct().count() == readings
        suspect = ReadingCheck.objects.filter(status="suspect").count()
        assert suspect == 4
        assert VerificationItem.objects.count() == suspect
