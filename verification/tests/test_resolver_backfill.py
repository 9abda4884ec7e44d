"""The data migration that records who resolved the queue items resolved before items kept it:
read from the audit trail as the staff KPIs used to match it (a correction's approval event, or
the ``reading.approved`` event listing the item), on rows as the old services left them."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps

from tenancy.models import User
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World
from verification.models import ItemState, VerificationItem
from verification.rules import validate_readings
from verification.services import (
    approve_correction,
    approve_readings,
    edit_reading,
    reject_correction,
)

pytestmark = pytest.mark.django_db
FEBRUARY = datetime(2025, 2, 10, tzinfo=UTC)

backfill = importlib.import_module("verification.migrations.0007_item_resolver").backfill_resolvers


def _suspect(world: World, start: datetime) -> VerificationItem:
    """A meter whose fifth hourly reading went backwards, validated: one open item."""
    meter = world.a.meter(world.a.sites[0])
    for hour, total in enumerate(["100", "101", "102", "103", "90"]):
        world.a.reading(meter, taken_at=start + timedelta(hours=hour), total=Decimal(total))
    with world.a.active():
        validate_readings(world.a.tenant, [meter.pk])
        return VerificationItem.objects.get(meter=meter)


def _verifier(world: World, username: str) -> tuple[User, Principal]:
    user = world.a.staff((Role.VERIFIER, None), username=username)
    return user, Principal.for_user(user)


def _as_the_old_services_left_them() -> None:
    """Items resolved before the fields existed: the label only."""
    VerificationItem.dangerously_unscoped.update(resolved_by_kind="", resolved_by_id=None)


def _resolvers() -> dict[int, tuple[str, int | None, str]]:
    return {
        pk: (kind, actor_id, label)
        for pk, kind, actor_id, label in VerificationItem.dangerously_unscoped.values_list(
            "pk", "resolved_by_kind", "resolved_by_id", "resolved_by_label"
        )
    }


def test_the_migration_credits_approvals_bulk_approvals_and_approved_corrections(
    world: World,
) -> None:
    _first, verifier = _verifier(world, "verifier")
    second_user, second = _verifier(world, "verifier2")
    third_user, third = _verifier(world, "verifier3")
    single, bulk_1, bulk_2, edited, sent_back, waiting, untouched = (
        _suspect(world, FEBRUARY + timedelta(days=day)) for day in range(7)
    )
    bulk = [bulk_1, bulk_2]
    with world.a.active():
        approve_readings(verifier, [single])
        approve_readings(second, bulk)
        correction = edit_reading(verifier, edited, {"total": Decimal("104")}, "digit misread")
        approve_correction(third, correction)
        rejected = edit_reading(verifier, sent_back, {"total": Decimal("104")}, "digit misread")
        reject_correction(second, rejected, "the reading was right")
        approve_readings(third, [sent_back])  # then approved as it was
        edit_reading(verifier, waiting, {"total": Decimal("104")}, "digit misread")
    expected = _resolvers()
    _as_the_old_services_left_them()

    with world.a.active():
        backfill(apps, None)

    found = _resolvers()
    assert found == expected
    assert found[edited.pk] == ("staff", third_user.pk, "verifier3")
    assert {found[item.pk][1] for item in bulk} == {second_user.pk}
    assert found[sent_back.pk] == ("staff", third_user.pk, "verifier3")
    assert found[waiting.pk] == ("", None, "") and found[untouched.pk] == ("", None, "")
    states = dict(VerificationItem.dangerously_unscoped.values_list("pk", "state"))
    assert states[waiting.pk] == ItemState.AWAITING_APPROVAL


def test_an_item_no_audit_event_names_keeps_its_label_alone_and_a_second_pass_changes_nothing(
    world: World,
) -> None:
    user, verifier = _verifier(world, "verifier")
    item = _suspect(world, FEBRUARY)
    with world.a.active():
        approve_readings(verifier, [item])
    _as_the_old_services_left_them()
    other = _suspect(world, FEBRUARY + timedelta(days=1))
    VerificationItem.dangerously_unscoped.filter(pk=other.pk).update(
        state=ItemState.RESOLVED, resolution="approved", resolved_by_label="imported"
    )
    with world.a.active():
        backfill(apps, None)
        first = _resolvers()
        backfill(apps, None)
    assert _resolvers() == first
    assert first[item.pk] == ("staff", user.pk, "verifier")
    assert first[other.pk] == ("", None, "imported")
