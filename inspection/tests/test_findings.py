"""Recording a finding on an item and its acknowledgement by the person responsible: the
sample's progress, four eyes, one finding per item, audited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from inspection.models import Finding, FindingState, InspectionSample, SampleItem, SampleState
from inspection.services import acknowledge_finding, record_finding
from inspection.tests.scene import Scene, build_scene
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tests.world import World

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_english")]


@pytest.fixture
def _english() -> Iterator[None]:
    """The services' messages are read in English here (they are translated too)."""
    with translation.override("en"):
        yield


def _sample_of_readings(scene: Scene, count: int) -> tuple[InspectionSample, list[SampleItem]]:
    scene.enter_readings(count)
    sample = scene.draw(readings=count, staff_id=scene.reader.pk)
    with scene.a.active():
        return sample, list(SampleItem.objects.filter(sample=sample).order_by("position"))


def test_a_finding_goes_to_the_reader_who_entered_the_reading_and_is_audited(
    world: World,
) -> None:
    scene = build_scene(world)
    sample, items = _sample_of_readings(scene, 2)
    with world.a.active():
        finding = record_finding(
            scene.as_(scene.inspector), items[0], outcome="finding", category="misread",
            severity="major", note="The display shows 1 031, not 1 013.",
        )  # fmt: skip
        sample.refresh_from_db()
        event = AuditEvent.objects.get(action="inspection.finding_recorded")
    assert (finding.responsible_id, finding.state) == (scene.reader.pk, FindingState.OPEN)
    assert (sample.checked, sample.findings, sample.state) == (1, 1, SampleState.OPEN)
    assert event.object_id == str(finding.pk) and event.actor_id == scene.inspector.pk
    assert event.after["severity"] == "major" and event.after["responsible_label"] == "reader"


def test_the_sample_is_completed_when_every_item_is_checked(world: World) -> None:
    scene = build_scene(world)
    sample, items = _sample_of_readings(scene, 2)
    with world.a.active():
        for item in items:
            record_finding(scene.as_(scene.inspector), item, outcome="ok", severity="major")
        sample.refresh_from_db()
        oks = list(Finding.objects.filter(sample=sample).values_list("state", "severity"))
    assert (sample.checked, sample.findings, sample.state) == (2, 0, SampleState.COMPLETED)
    assert oks == [(FindingState.CLOSED, ""), (FindingState.CLOSED, "")]


def test_a_finding_needs_a_category_a_severity_and_a_note(world: World) -> None:
    scene = build_scene(world)
    _sample, items = _sample_of_readings(scene, 1)
    with world.a.active(), pytest.raises(ValidationError) as refused:
        record_finding(scene.as_(scene.inspector), items[0], outcome="finding", note=" ")
    assert set(refused.value.message_dict) == {"category", "severity", "note"}
    with world.a.active():
        assert not Finding.objects.exists()


def test_an_item_is_checked_once(world: World) -> None:
    scene = build_scene(world)
    _sample, items = _sample_of_readings(scene, 1)
    with world.a.active():
        record_finding(scene.as_(scene.inspector), items[0], outcome="ok")
        with pytest.raises(ValidationError, match="checked already"):
            record_finding(scene.as_(world.alice), items[0], outcome="ok")


def test_nobody_inspects_their_own_work(world: World) -> None:
    scene = build_scene(world)
    _sample, items = _sample_of_readings(scene, 1)
    with world.a.active(), pytest.raises(ValidationError, match="four eyes"):
        record_finding(scene.as_(scene.reader), items[0], outcome="ok")


def test_the_person_responsible_acknowledges_the_finding_with_a_response(world: World) -> None:
    scene = build_scene(world)
    _sample, items = _sample_of_readings(scene, 1)
    with world.a.active():
        finding = record_finding(
            scene.as_(scene.inspector), items[0], outcome="finding", category="misread",
            severity="minor", note="Typed 13 for 31.",
        )  # fmt: skip
        with pytest.raises(ValidationError, match="addressed to"):
            acknowledge_finding(Principal.for_user(world.alice), finding, "")
        acknowledged = acknowledge_finding(scene.as_(scene.reader), finding, " Re-read it. ")
        with pytest.raises(ValidationError, match="not awaiting"):
            acknowledge_finding(scene.as_(scene.reader), finding, "")
        event = AuditEvent.objects.get(action="inspection.finding_acknowledged")
    assert acknowledged.state == FindingState.ACKNOWLEDGED
    assert acknowledged.response == "Re-read it."
    assert event.actor_id == scene.reader.pk
