"""What the read stage reports: a gateway's health over a window, completeness by site and by
gateway for a slot, and the meters a slot or a span did not read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from metering import reports
from metering.models import Gateway, Meter, PollRound
from tenancy.models import Site
from tests.world import World

pytestmark = pytest.mark.django_db
SLOT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _round(world: World, gateway: Gateway, slot: datetime, total: int, read: int) -> None:
    PollRound.objects.create(
        tenant=world.a.tenant,
        gateway=gateway,
        site=gateway.site,
        slot=slot,
        started_at=slot,
        finished_at=slot + timedelta(seconds=2),
        meters_total=total,
        meters_read=read,
        requests=total + 1,
        failed_requests=total - read + 1,
        response_ms_total=50.0 * read,
    )


def test_health_sums_the_rounds_of_the_window_only(world: World) -> None:
    gateway = world.a.gateway()
    with world.a.active():
        _round(world, gateway, SLOT, total=4, read=3)
        _round(world, gateway, SLOT - timedelta(minutes=15), total=4, read=4)
        _round(world, gateway, SLOT - timedelta(days=2), total=4, read=0)
        annotated = reports.with_health(
            Gateway.objects.filter(pk=gateway.pk), SLOT - timedelta(hours=1)
        )
        health = reports.health_of(annotated.get())
    assert health.rounds == 2
    assert health.success_rate == 0.875 and health.state == "bad"  # under nine in ten
    assert health.request_success_rate == 0.7  # 7 of 10 requests answered
    assert health.mean_response_ms == 50.0
    assert health.last_success_at == SLOT + timedelta(seconds=2)


def test_a_gateway_without_rounds_has_no_health_figures(world: World) -> None:
    gateway = world.a.gateway()
    with world.a.active():
        annotated = reports.with_health(Gateway.objects.filter(pk=gateway.pk), SLOT).get()
    health = reports.health_of(annotated)
    assert (health.rounds, health.success_rate, health.state) == (0, None, "unknown")


def test_completeness_counts_active_meters_read_for_the_slot_by_site_and_gateway(
    world: World,
) -> None:
    read, missed = world.a.meter(), world.a.meter()
    world.a.meter(status="faulty")
    world.a.reading(read, taken_at=SLOT)
    world.a.reading(missed, taken_at=SLOT - timedelta(minutes=15))
    with world.a.active():
        (site,) = reports.completeness_by_site(Site.objects.filter(pk=world.a.sites[0].pk), SLOT)
        gateways = Gateway.objects.filter(pk__in=[read.gateway_id, missed.gateway_id])
        by_gateway = {row.key: row for row in reports.completeness_by_gateway(gateways, SLOT)}
        unread = reports.not_read_for_slot(Meter.objects.filter(status="active"), SLOT)
        assert list(unread) == [missed]
    assert (site.meters, site.read, site.missing, site.completeness) == (2, 1, 1, 0.5)
    assert read.gateway is not None and missed.gateway is not None
    assert by_gateway[read.gateway.pk].completeness == 1.0
    assert by_gateway[missed.gateway.pk].missing == 1


def test_not_read_since_leaves_out_meters_read_in_the_span(world: World) -> None:
    fresh, stale, never = world.a.meter(), world.a.meter(), world.a.meter()
    world.a.reading(fresh, taken_at=timezone.now() - timedelta(hours=1))
    world.a.reading(stale, taken_at=timezone.now() - timedelta(days=2))
    with world.a.active():
        mine = Meter.objects.filter(pk__in=[fresh.pk, stale.pk, never.pk])
        day = set(reports.not_read_since(mine, timezone.now() - timedelta(days=1)))
        ever = set(reports.not_read_since(mine, None))
    assert day == {stale, never}
    assert ever == {never}


def test_the_chosen_slot_is_the_slot_a_moment_falls_in_or_the_last_finished(
    world: World,
) -> None:
    tenant = world.a.tenant
    assert reports.chosen_slot(tenant, SLOT + timedelta(minutes=7)) == SLOT
    now = datetime(2026, 11, 24, 4, 20, tzinfo=UTC)
    assert reports.last_finished_slot(tenant, now) == SLOT
