"""Staff KPIs of a period: turnaround of the verification queue by who resolved it, findings by
the person responsible and severity, corrections later found wrong, readings entered, and the
sites' reading completeness from the polling rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from inspection.kpis import staff_kpis
from inspection.models import SampleItem
from inspection.services import record_finding
from inspection.tests.scene import build_scene
from metering.models import PollRound
from tests.world import World

pytestmark = pytest.mark.django_db


def _this_month() -> tuple[datetime, datetime]:
    now = timezone.now()
    return now - timedelta(days=1), now + timedelta(days=1)


def test_turnaround_is_credited_to_whoever_resolved_the_item(world: World) -> None:
    scene = build_scene(world)
    scene.approve_suspect()
    scene.correct_suspect()
    with world.a.active():
        report = staff_kpis(None, *_this_month())
    people = {row.label: row for row in report.people}
    assert people["verifier"].resolved == 1  # approved the suspect reading
    assert people["verifier2"].resolved == 1  # approved the other's correction
    assert people["verifier"].median_hours is not None
    assert people["verifier"].median_hours >= 0
    site = next(row for row in report.sites if row.key == scene.site.pk)
    assert site.resolved == 2


def test_findings_count_by_person_and_severity_and_on_approvals_as_found_wrong(
    world: World,
) -> None:
    scene = build_scene(world)
    scene.enter_readings(1)
    scene.approve_suspect()
    sample = scene.draw(readings=10, staff_id=scene.verifier.pk)
    with world.a.active():
        (item,) = SampleItem.objects.filter(sample=sample)
        record_finding(
            scene.as_(scene.inspector), item, outcome="finding", category="wrong_approval",
            severity="critical", note="The counter did go backwards: the meter was swapped.",
        )  # fmt: skip
        report = staff_kpis(frozenset({scene.site.pk}), *_this_month())
    people = {row.label: row for row in report.people}
    assert people["verifier"].findings == {"minor": 0, "major": 0, "critical": 1}
    assert people["verifier"].found_wrong == 1
    assert people["verifier"].items_checked == 1
    assert people["reader"].entered == 1 and people["reader"].findings_total == 0
    assert report.sites[0].findings["critical"] == 1


def test_completeness_sums_the_rounds_of_the_period_for_sites_and_their_readers(
    world: World,
) -> None:
    scene = build_scene(world)
    gateway = world.a.gateway(scene.site)
    slot = datetime(2025, 2, 10, tzinfo=UTC)
    with world.a.active():
        for hour, read in enumerate([10, 8]):
            at = slot + timedelta(hours=hour)
            PollRound.objects.create(
                tenant=world.a.tenant, gateway=gateway, site=scene.site, slot=at, started_at=at,
                finished_at=at, meters_total=10, meters_read=read, requests=10,
                failed_requests=10 - read, response_ms_total=100.0,
            )  # fmt: skip
        report = staff_kpis(None, slot, slot + timedelta(days=1))
    site = next(row for row in report.sites if row.key == scene.site.pk)
    assert (site.completeness.due, site.completeness.read) == (20, 18)  # type: ignore[union-attr]
    assert site.completeness_percent == 90.0
    reader = next(row for row in report.people if row.label == "reader")
    assert reader.completeness_percent == 90.0


def test_a_site_outside_the_asked_sites_is_left_out(world: World) -> None:
    scene = build_scene(world)
    scene.approve_suspect()
    with world.a.active():
        report = staff_kpis(frozenset({world.a.sites[1].pk}), *_this_month())
    assert [row.key for row in report.sites] == [world.a.sites[1].pk]
    assert all(row.resolved == 0 for row in report.people)
