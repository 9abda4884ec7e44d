"""Reading completeness of a period by site, summed from the polling rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metering.models import PollRound
from metering.services import completeness_by_site
from tests.world import World

pytestmark = pytest.mark.django_db

START = datetime(2025, 2, 1, tzinfo=UTC)


def _round(world: World, site_index: int, slot: datetime, due: int, read: int) -> None:
    site = world.a.sites[site_index]
    gateway = world.a.gateway(site)
    with world.a.active():
        PollRound.objects.create(
            tenant=world.a.tenant, gateway=gateway, site=site, slot=slot, started_at=slot,
            finished_at=slot, meters_total=due, meters_read=read, requests=due,
            failed_requests=due - read, response_ms_total=1.0,
        )  # fmt: skip


def test_each_site_sums_the_reads_due_and_answered_of_the_rounds_in_the_period(
    world: World,
) -> None:
    _round(world, 0, START, 10, 10)
    _round(world, 0, START + timedelta(days=3), 10, 5)
    _round(world, 1, START, 4, 1)
    _round(world, 0, START + timedelta(days=40), 10, 0)  # after the period
    with world.a.active():
        found = completeness_by_site(None, START, START + timedelta(days=28))
        only_first = completeness_by_site([world.a.sites[0].pk], START, START + timedelta(days=28))
    first, second = world.a.sites[0].pk, world.a.sites[1].pk
    assert (found[first].due, found[first].read, found[first].ratio) == (20, 15, 0.75)
    assert (found[second].due, found[second].read) == (4, 1)
    assert list(only_first) == [first]


def test_a_site_with_no_rounds_has_no_figure(world: World) -> None:
    with world.a.active():
        assert completeness_by_site(None, START, START + timedelta(days=1)) == {}
