"""Drawing a sample: reproducible from its seed, limited to the site, period and staff member
asked for, each item naming who answers for it, audited; bad input refused by field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from billing.models import BillRun
from inspection.models import InspectionSample, ItemKind, Responsibility, SampleItem
from inspection.services import draw_sample
from inspection.tests.scene import PERIOD, build_scene
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tests.world import World

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_english")]


@pytest.fixture
def _english() -> Iterator[None]:
    """The services' messages are read in English here (they are translated too)."""
    with translation.override("en"):
        yield


def _items(world: World, sample_id: int) -> list[SampleItem]:
    with world.a.active():
        return list(SampleItem.objects.filter(sample_id=sample_id).order_by("position"))


def test_the_same_seed_draws_the_same_readings_and_the_seed_and_ids_are_kept(
    world: World,
) -> None:
    scene = build_scene(world)
    for _meter in range(4):
        scene.enter_readings(6)
    first = scene.draw(readings=5, seed=1234)
    again = scene.draw(readings=5, seed=1234)
    first_ids = [item.reading_id for item in _items(world, first.pk)]
    assert len(first_ids) == 5 and len(set(first_ids)) == 5
    assert [item.reading_id for item in _items(world, again.pk)] == first_ids
    assert first.seed == 1234 and first.size == 5
    with world.a.active():
        event = AuditEvent.objects.get(action="inspection.sample_drawn", object_id=str(first.pk))
    assert event.after["seed"] == 1234 and event.after["readings"] == first_ids


def test_only_readings_of_the_site_and_period_are_drawn(world: World) -> None:
    scene = build_scene(world)
    inside = scene.enter_readings(3)
    other_site_meter = world.a.meter(world.a.sites[1])
    world.a.reading(other_site_meter, taken_at=inside[0].taken_at)
    sample = scene.draw(readings=20)
    assert {item.reading_id for item in _items(world, sample.pk)} <= {r.pk for r in inside}
    assert sample.size >= 1


def test_each_reading_names_who_answers_for_it(world: World) -> None:
    scene = build_scene(world)
    scene.enter_readings(1)
    scene.approve_suspect()
    scene.correct_suspect()
    sample = scene.draw(readings=50, seed=7)
    by_reading = {item.reading_id: item for item in _items(world, sample.pk)}
    entered = by_reading[scene.entered[0].pk]  # the meter's only reading: always drawn
    assert (entered.responsibility, entered.responsible_id) == (
        Responsibility.ENTERED,
        scene.reader.pk,
    )
    staff_sample = scene.draw(readings=50, staff_id=scene.verifier.pk)
    items = _items(world, staff_sample.pk)
    assert scene.approved is not None
    approved = next(item for item in items if item.reading_id == scene.approved.pk)
    assert (approved.responsibility, approved.responsible_id, approved.responsible_label) == (
        Responsibility.APPROVED,
        scene.verifier.pk,
        "verifier",
    )


def test_a_corrected_reading_is_answered_for_by_whoever_approved_the_correction(
    world: World,
) -> None:
    scene = build_scene(world)
    correction = scene.correct_suspect()
    sample = scene.draw(readings=10, staff_id=scene.second_verifier.pk)
    (item,) = _items(world, sample.pk)
    assert item.reading_id == correction.reading_id
    assert item.correction_id == correction.pk
    assert (item.responsibility, item.responsible_id) == (
        Responsibility.CORRECTED,
        scene.second_verifier.pk,
    )


def test_a_staff_members_sample_holds_only_what_they_did(world: World) -> None:
    scene = build_scene(world)
    mine = scene.enter_readings(4)
    scene.approve_suspect()
    sample = scene.draw(readings=10, staff_id=scene.reader.pk)
    assert {item.reading_id for item in _items(world, sample.pk)} == {r.pk for r in mine}
    assert sample.staff_label == "reader"


def test_bills_of_runs_a_person_approved_are_drawn_with_the_approver_responsible(
    world: World,
) -> None:
    scene = build_scene(world)
    bill = scene.issued_bill()
    other_bill = scene.issued_bill()  # approved by another verifier
    with world.a.active():
        assert bill.run_id is not None
        run = BillRun.objects.get(pk=bill.run_id)
        assert run.approved_by_id is not None
        sample = draw_sample(
            scene.as_(scene.inspector), scene.site, bill.period, readings=0, bills=5,
            staff_id=run.approved_by_id,
        )  # fmt: skip
    (item,) = _items(world, sample.pk)
    assert (item.kind, item.bill_id) == (ItemKind.BILL, bill.pk) != (ItemKind.BILL, other_bill.pk)
    assert item.responsibility == Responsibility.BILL_RUN_APPROVED
    assert item.responsible_id == run.approved_by_id


def test_bad_counts_a_bad_period_and_an_unknown_staff_member_are_refused_by_field(
    world: World,
) -> None:
    scene = build_scene(world)
    with pytest.raises(ValidationError) as counts:
        scene.draw(readings=101, bills=-1)
    assert set(counts.value.message_dict) == {"readings", "bills"}
    with pytest.raises(ValidationError) as nothing:
        scene.draw(readings=0, bills=0)
    assert "readings" in nothing.value.message_dict
    with world.a.active(), pytest.raises(ValidationError) as period:
        draw_sample(scene.as_(scene.inspector), scene.site, "2025-13", readings=1, bills=0)
    assert "period" in period.value.message_dict
    with pytest.raises(ValidationError) as staff:
        scene.draw(readings=1, staff_id=world.mallory.pk)
    assert "staff" in staff.value.message_dict


def test_a_period_not_over_yet_is_refused_and_nothing_is_written(world: World) -> None:
    scene = build_scene(world)
    today = timezone.localdate()
    running = f"{today.replace(day=1) + timedelta(days=32):%Y-%m}"  # ends on next month's 1st
    meter = world.a.meter(scene.site)
    world.a.reading(meter, taken_at=timezone.now().replace(second=0, microsecond=0, minute=0))
    with world.a.active(), pytest.raises(ValidationError) as refused:
        draw_sample(scene.as_(scene.inspector), scene.site, running, readings=3, bills=0)
    assert "period" in refused.value.message_dict
    with world.a.active():
        assert not InspectionSample.objects.exists()


def test_a_period_with_nothing_to_sample_is_refused_and_nothing_is_written(world: World) -> None:
    scene = build_scene(world)
    with pytest.raises(ValidationError, match="Nothing to sample"):
        scene.draw(readings=5)
    with world.a.active():
        assert not AuditEvent.objects.filter(action="inspection.sample_drawn").exists()


def test_an_inspector_of_another_site_cannot_draw_a_sample_of_this_one(world: World) -> None:
    scene = build_scene(world)
    scene.enter_readings(2)
    with world.a.active(), pytest.raises(ValidationError) as refused:
        draw_sample(Principal.for_user(world.carol), scene.site, PERIOD, readings=1, bills=0)
    assert "site" in refused.value.message_dict
