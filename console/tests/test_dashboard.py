"""The dashboards: figures from the summaries the job keeps, per role, limited to the sites of
the person's grants, with their age shown; the page's query count does not grow with the
tenant."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.models import DashboardSummary
from console.summaries import refresh_summaries
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _refresh(world: World) -> None:
    with world.a.active():
        refresh_summaries()


def test_the_job_keeps_one_summary_per_site_with_the_queue_and_meters(world: World) -> None:
    world.a.suspect_item(world.a.sites[0])
    world.a.meter(world.a.sites[1])
    _refresh(world)
    with world.a.active():
        summaries = {s.site_id: s.data for s in DashboardSummary.objects.all()}
    first, second = summaries[world.a.sites[0].pk], summaries[world.a.sites[1].pk]
    assert first["queue"]["open"] == 1
    assert first["queue"]["by_rule"]["backwards"]["count"] == 1
    assert second["queue"]["open"] == 0
    assert second["reading"]["meters"] == 1 and second["reading"]["not_read_count"] == 1


def test_a_verifier_sees_the_queue_by_rule_and_no_reading_panel(world: World) -> None:
    world.a.suspect_item(world.a.sites[0])
    world.a.line_loss(world.a.sites[0])
    _refresh(world)
    verifier = world.a.staff((Role.VERIFIER, None))
    response = _client(verifier).get("/console/")
    panels = response.context["panels"]
    assert set(panels) == {"verify"}
    assert panels["verify"]["open"] == 1
    assert [row["rule"] for row in panels["verify"]["rules"]] == ["backwards"]
    assert response.context["computed_at"] is not None


def test_a_site_manager_sees_only_the_figures_of_their_site(world: World) -> None:
    world.a.suspect_item(world.a.sites[0])
    world.a.suspect_item(world.a.sites[1])
    world.a.line_loss(world.a.sites[0])
    _refresh(world)
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[1]))
    panels = _client(manager).get("/console/").context["panels"]
    assert set(panels) == {"reading", "verify", "line_loss"}
    assert panels["verify"]["open"] == 1
    assert [site["site_id"] for site in panels["reading"]["sites"]] == [world.a.sites[1].pk]
    assert panels["line_loss"]["rows"] == []


def test_an_inspector_sees_the_latest_audit_events(world: World) -> None:
    _refresh(world)
    inspector = world.a.staff((Role.INSPECTOR, None))
    panels = _client(inspector).get("/console/").context["panels"]
    assert "audit" in panels and len(panels["audit"]) > 0


def test_a_new_tenant_gets_its_figures_computed_on_the_first_visit(
    world: World, eager_tasks: None
) -> None:
    cache.delete(f"dashboards-refresh:{world.a.tenant.pk}")  # left by an earlier test's tenant
    response = _client(world.alice).get("/console/")
    assert response.status_code == 200
    with world.a.active():
        assert DashboardSummary.objects.count() == len(world.a.sites)


def test_the_dashboard_costs_the_same_queries_with_more_meters_and_items(world: World) -> None:
    world.a.suspect_item(world.a.sites[0])
    _refresh(world)
    client = _client(world.alice)
    client.get("/console/")
    with CaptureQueriesContext(connection) as few:
        client.get("/console/")
    for _ in range(5):
        world.a.suspect_item(world.a.sites[0])
        world.a.meter(world.a.sites[1])
    _refresh(world)
    with CaptureQueriesContext(connection) as many:
        client.get("/console/")
    assert len(many) == len(few)
