"""Staff KPIs of a period: turnaround of the verification queue by who resolved it (as the item
records it), findings by the person responsible and severity, corrections later found wrong,
readings entered, and the sites' reading completeness from the polling rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inspection.kpis import staff_kpis
from inspection.models import SampleItem
from inspection.services import record_finding
from inspection.tests.scene import FEBRUARY, build_scene
from metering.models import PollRound
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World
from verification.models import VerificationItem
from verification.services import approve_correction, approve_readings, edit_reading

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


# --- who resolved a queue item: read from the item, not matched from the audit trail ----------


def _resolved_at(item: VerificationItem, arrived: datetime, resolved: datetime) -> None:
    """Place an item's arrival and resolution in time (the audit trail keeps its own times)."""
    VerificationItem.dangerously_unscoped.filter(pk=item.pk).update(
        created_at=arrived, resolved_at=resolved
    )


def test_an_approval_a_bulk_approval_and_a_second_persons_correction_credit_their_verifiers(
    world: World,
) -> None:
    scene = build_scene(world)
    third = world.a.staff((Role.VERIFIER, None), username="verifier3")
    start = FEBRUARY + timedelta(days=6)
    single = scene.suspect(start)
    bulk = [scene.suspect(start + timedelta(days=day)) for day in (1, 2)]
    edited = scene.suspect(start + timedelta(days=3))
    with world.a.active():
        approve_readings(scene.as_(scene.verifier), [single])
        approve_readings(scene.as_(scene.second_verifier), bulk)
        correction = edit_reading(
            scene.as_(scene.verifier), edited, {"total": Decimal("104")}, "digit misread"
        )
        approve_correction(Principal.for_user(third), correction)
        report = staff_kpis(None, *_this_month())
    people = {row.key: row for row in report.people}
    assert people[scene.verifier.pk].resolved == 1  # the edit is the second person's
    assert people[scene.second_verifier.pk].resolved == 2
    assert people[third.pk].resolved == 1 and people[third.pk].label == "verifier3"
    with world.a.active():
        stored = VerificationItem.objects.get(pk=edited.pk)
    assert (stored.resolved_by_kind, stored.resolved_by_id, stored.resolved_by_label) == (
        "staff", third.pk, "verifier3",
    )  # fmt: skip


def test_an_approval_a_minute_before_the_period_counts_in_the_period_before_it(
    world: World,
) -> None:
    """At the old margin's edge: one item approved a minute before the period starts, another
    that arrived inside it and was approved in it. Each counts in its own period, credited to
    its verifier by id (renamed since: the current name is shown), whenever the audit trail
    recorded the approvals."""
    scene = build_scene(world)
    before, inside = scene.suspect(FEBRUARY), scene.suspect(FEBRUARY + timedelta(days=1))
    with world.a.active():
        approve_readings(scene.as_(scene.verifier), [before])
        approve_readings(scene.as_(scene.second_verifier), [inside])
    since = datetime(2025, 3, 1, tzinfo=UTC)
    until = datetime(2025, 4, 1, tzinfo=UTC)
    _resolved_at(before, since - timedelta(hours=3), since - timedelta(minutes=1))
    _resolved_at(inside, since + timedelta(seconds=30), since + timedelta(hours=2, seconds=30))
    scene.second_verifier.display_name = "Wang Fang"
    scene.second_verifier.save(update_fields=["display_name"])
    with world.a.active():
        march = staff_kpis(None, since, until)
        february = staff_kpis(None, since - timedelta(days=28), since)
    assert [(row.key, row.label, row.resolved) for row in march.people if row.resolved] == [
        (scene.second_verifier.pk, "Wang Fang", 1)
    ]
    credited = next(row for row in march.people if row.key == scene.second_verifier.pk)
    assert credited.median_hours == 2.0
    assert [(row.key, row.resolved) for row in february.people if row.resolved] == [
        (scene.verifier.pk, 1)
    ]


def test_the_kpis_cost_the_same_queries_for_one_resolved_item_as_for_many(world: World) -> None:
    scene = build_scene(world)
    scene.approve_suspect()

    def queries() -> int:
        with world.a.active(), CaptureQueriesContext(connection) as captured:
            staff_kpis(None, *_this_month())
        return len(captured.captured_queries)

    one = queries()
    for day in range(4):
        verifier = world.a.staff((Role.VERIFIER, None), username=f"extra{day}")
        item = scene.suspect(FEBRUARY + timedelta(days=10 + day))
        with world.a.active():
            approve_readings(Principal.for_user(verifier), [item])
    scene.correct_suspect()
    assert queries() == one
