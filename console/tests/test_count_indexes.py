"""The counts behind the period page and reading completeness are answered from indexes.

On the 100,000-account bench (``bench.pages``) the period page of a site spent 560 ms reading
every bill and period row of the site to count them, and a slot's completeness read the whole
readings table. These tests ask PostgreSQL for its plan with sequential scans priced out (on a
tiny table it would rightly prefer one; for the slot, nested loops too, as with many meters)
and check that an index answers: an index-only scan for the period figures, ``reading_slot``
for a slot's readings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import Bill
from console.pages.verification.periods import _figures
from metering import reports
from metering.models import Reading
from tenancy.models import Site
from tests.world import World
from verification.models import PeriodConsumption

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SLOT = datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def _plans(
    queries: list[dict[str, str]], *, nested_loops: bool = True, index_only: bool = False
) -> list[str]:
    plans = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if index_only:  # an index that holds the columns must answer alone, whichever it is
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        if not nested_loops:  # as with many meters: not one look-up a meter
            cursor.execute("SET LOCAL enable_nestloop = off")
        for query in queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def test_the_period_figures_are_counted_from_the_indexes_alone(world: World) -> None:
    site = world.a.sites[0]
    period = world.a.period(site)
    bill = world.a.bill(site)
    with world.a.active():
        Bill.objects.filter(pk=bill.pk).update(period=period.period)
        with CaptureQueriesContext(connection) as counted:
            figures = _figures(site, period.period)
        plans = _plans(counted.captured_queries, index_only=True)
    with world.a.active():  # the bill's own period may be the same month (world's counter)
        computed = PeriodConsumption.objects.filter(site=site, period=period.period).count()
    assert figures == {"computed": computed, "held_back": 0, "estimated": 0, "billed": 1}
    assert len(plans) == 2
    periods_plan, bills_plan = plans
    assert "Index Only Scan" in periods_plan, periods_plan
    # Accounts billed, credit notes netted out: the site-period index holds all it reads.
    assert "Index Only Scan using bill_site_period" in bills_plan, bills_plan


def test_a_slots_readings_are_found_by_the_reading_slot_index(world: World) -> None:
    site = world.a.sites[0]
    read, unread = world.a.meter(site), world.a.meter(site)
    world.a.reading(read, taken_at=SLOT)
    with world.a.active():
        Reading.objects.bulk_create(  # the history of a meter: other slots
            Reading(
                tenant=world.a.tenant,
                meter=unread,
                taken_at=SLOT - timedelta(minutes=15 * back),
                read_at=SLOT,
                total=Decimal("1000.00"),
            )
            for back in range(1, 3000)
        )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE metering_reading")
        sites = Site.objects.filter(pk=site.pk)
        with CaptureQueriesContext(connection) as counted:
            (row,) = reports.completeness_by_site(sites, SLOT)
        plans = _plans(counted.captured_queries, nested_loops=False)
    assert (row.meters, row.read, row.missing) == (2, 1, 1)
    reading_plans = [plan for plan in plans if "metering_reading" in plan]
    assert reading_plans and all("reading_slot" in plan for plan in reading_plans), plans
