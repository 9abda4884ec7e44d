"""The verifiers' queue: approve, edit with a reason, estimate; four eyes on every correction."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from metering.models import Reading
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.roles import Role
from tests.world import World
from verification import services
from verification.models import CheckStatus, ReadingCheck, ReadingCorrection, VerificationItem
from verification.rules import validate_readings
from verification.tests.helpers import T0, checks, lay

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("in_tenant_a")]

# Four hours of 1 kWh split 0.1 / 0.3 / 0.4 / 0.2 over spike, peak, flat, valley, then a fall.
HOURS = [
    {
        "total": 100 + h,
        "tou_spike": 10 + h * 0.1,
        "tou_peak": 30 + h * 0.3,
        "tou_flat": 40 + h * 0.4,
        "tou_valley": 20 + h * 0.2,
    }
    for h in range(4)
] + [{"total": "90.00", "tou_spike": 10, "tou_peak": 30, "tou_flat": 40, "tou_valley": 10}]


@pytest.fixture
def verifiers(world: World) -> tuple[APIClient, APIClient]:
    first = world.a.staff((Role.VERIFIER, None), username="verifier-li")
    second = world.a.staff((Role.VERIFIER, None), username="verifier-wang")
    return world.client_for(first), world.client_for(second)


def _suspect(world: World) -> VerificationItem:
    meter = world.a.meter()
    lay(meter, HOURS)
    checks(meter)
    return VerificationItem.dangerously_unscoped.get(meter=meter)


def test_bulk_approval_accepts_the_readings_with_one_audit_event(
    world: World, verifiers: tuple[APIClient, APIClient]
) -> None:
    items = [_suspect(world), _suspect(world)]
    first, _second = verifiers
    response = first.post(
        "/api/v1/verification-queue/bulk-approve/", {"ids": [i.pk for i in items]}, format="json"
    )
    assert response.json() == {"approved": 2}
    statuses = ReadingCheck.dangerously_unscoped.filter(reading__in=[i.reading_id for i in items])
    assert {c.status for c in statuses} == {CheckStatus.APPROVED}
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.READINGS_APPROVED)
    assert event.object_ids is not None
    assert sorted(event.object_ids) == sorted(i.reading_id for i in items)
    fresh = _suspect(world)
    again = first.post(
        "/api/v1/verification-queue/bulk-approve/",
        {"ids": [fresh.pk, items[0].pk]},
        format="json",
    )
    assert again.status_code == 400
    assert re.findall(r"\d+", again.json()["error"]["message"]) == [str(items[0].pk)]
    fresh.refresh_from_db()
    assert fresh.state == "open", "a refused batch approved nothing"


def test_an_edit_needs_a_reason_keeps_the_raw_reading_and_a_second_verifier(
    world: World, verifiers: tuple[APIClient, APIClient]
) -> None:
    item = _suspect(world)
    first, second = verifiers
    url = f"/api/v1/verification-queue/{item.pk}/edit/"
    assert first.post(url, {"total": "104.00", "reason": ""}, format="json").status_code == 400
    edited = first.post(url, {"total": "104.00", "reason": "表盘读错"}, format="json")
    assert edited.status_code == 201
    correction = edited.json()
    assert correction["state"] == "proposed" and correction["total"] == "104.000"
    assert Reading.dangerously_unscoped.get(pk=item.reading_id).total == Decimal("90.000")
    own = first.post(f"/api/v1/reading-corrections/{correction['id']}/approve/")
    assert own.status_code == 400 and own.json()["error"]["code"] == "four_eyes"
    approved = second.post(f"/api/v1/reading-corrections/{correction['id']}/approve/")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    item.refresh_from_db()
    assert (item.state, item.resolution) == ("resolved", "edit")
    assert (
        ReadingCheck.dangerously_unscoped.get(reading_id=item.reading_id).status
        == CheckStatus.REPLACED
    )


def test_nobody_approves_their_own_estimate_in_the_service_either(world: World) -> None:
    item = _suspect(world)
    verifier = world.a.staff((Role.VERIFIER, None))
    from tenancy.principal import Principal

    actor = Principal.for_user(verifier)
    with world.a.active():
        correction = services.estimate_reading(actor, item, "daily_average", "换表期间")
        with pytest.raises(ValidationError) as refused:
            services.approve_correction(actor, correction)
    assert refused.value.code == "four_eyes"


def test_a_daily_average_estimate_follows_the_recent_rate_and_tou_shares(world: World) -> None:
    item = _suspect(world)
    with world.a.active():
        correction = services.estimate_reading(world.a.system, item, "daily_average", "表计异常")
    # 1 kWh an hour over the last valid hours: 103.00 + 1.00 at the suspect slot, split
    # 0.1 / 0.3 / 0.4 / 0.2 by the account's recent TOU shares, adding up exactly.
    assert correction.total == Decimal("104.00")
    assert correction.tou_spike == Decimal("10.40") and correction.tou_peak == Decimal("31.20")
    assert correction.tou_flat == Decimal("41.60") and correction.tou_valley == Decimal("20.80")
    tou = correction.tou_spike + correction.tou_peak + correction.tou_flat + correction.tou_valley
    assert tou - (Decimal("10.3") + Decimal("30.9") + Decimal("41.2") + Decimal("20.6")) == 1
    assert correction.method == "daily_average" and correction.kind == "estimate"


def test_a_last_year_estimate_uses_the_same_span_a_year_earlier(world: World) -> None:
    meter = world.a.meter()
    year_ago = T0 - timedelta(days=365)
    lay(meter, [{"total": 10}, {"total": 10}, {"total": 16}], start=year_ago)
    lay(meter, [{"total": 500}, {"total": 501}, {"total": 100}])
    checks(meter)
    item = VerificationItem.dangerously_unscoped.get(meter=meter)
    with world.a.active():
        correction = services.estimate_reading(world.a.system, item, "last_year", "用去年同期")
    # The span to estimate is T0+1h (501.00, the last valid reading) to T0+2h. A year earlier
    # the same hour went from 10.00 to 16.00: 6 kWh an hour, so 501.00 + 6.00 = 507.00.
    assert correction.total == Decimal("507.00")


def test_an_estimate_for_a_missing_slot_gives_way_to_the_real_reading(world: World) -> None:
    meter = world.a.meter()
    lay(meter, [{"total": 100 + h} for h in range(4)])
    checks(meter)
    missing = T0 + timedelta(hours=5)
    with world.a.active():
        estimate = services.estimate_missing(
            world.a.system, meter, missing, "daily_average", "缺抄"
        )
    assert estimate.total == Decimal("105.00") and estimate.reading_id is None
    lay(meter, [{"total": "104.80", "taken_at": missing}])
    with world.a.active():
        summary = validate_readings(world.a.tenant, [meter.pk])
    estimate.refresh_from_db()
    assert summary.superseded_estimates == [estimate.pk]
    assert estimate.superseded_by is not None
    assert estimate.state == "superseded" and estimate.superseded_by.total == Decimal("104.800")
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.ESTIMATES_SUPERSEDED)
    assert event.object_ids == [estimate.pk]
    assert event.after == {"by_readings": [estimate.superseded_by_id]}


def test_the_queue_filters_by_site_rule_and_age(
    world: World, verifiers: tuple[APIClient, APIClient]
) -> None:
    item = _suspect(world)
    client, _ = verifiers
    listed = client.get("/api/v1/verification-queue/", {"rule": "backwards"}).json()["results"]
    assert [row["id"] for row in listed] == [item.pk]
    assert listed[0]["reading"]["total"] == "90.000"
    assert client.get("/api/v1/verification-queue/", {"rule": "spike"}).json()["results"] == []
    other_site = client.get("/api/v1/verification-queue/", {"site": world.a.sites[1].pk})
    assert other_site.json()["results"] == []
    young = client.get("/api/v1/verification-queue/", {"older_than_hours": 1})
    assert young.json()["results"] == []
    assert ReadingCorrection.dangerously_unscoped.count() == 0
