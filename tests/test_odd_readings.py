"""Odd readings: refused at the door when their times are impossible, and never able to stop a
tenant's readings once stored (issue: one reading dated year 1 answered 500 to every later
ingest of its tenant, and made every validation of the tenant fail)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.db import DataError
from django.utils import timezone

from metering.models import Reading
from metering.tests.test_ingest import push
from tenancy.roles import Role
from tests.workers import start_worker
from tests.world import World
from verification import rules
from verification.models import ReadingCheck, VerificationItem
from verification.tasks import validate_tenant_readings

if TYPE_CHECKING:
    from metering.models import Meter
    from tests.world import TenantWorld

pytestmark = pytest.mark.django_db


def _item(serial: str, taken_at: str, total: str = "100.00", **more: Any) -> dict[str, Any]:
    return {"meter": serial, "taken_at": taken_at, "total": total, **more}


@pytest.fixture
def edge(world: World) -> str:
    _client, token = world.a.api_client((Role.METER_READER, None))
    return token


def _recent_slot(hours_ago: int) -> datetime:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours_ago)


def test_impossible_times_are_refused_per_item_and_the_rest_of_the_batch_is_kept(
    world: World, edge: str
) -> None:
    meter = world.a.meter()
    good = _recent_slot(2).isoformat()
    batch = [
        _item(meter.serial_number, "0001-01-01T00:00:00Z"),
        _item(meter.serial_number, "1999-12-31T15:59:00Z"),  # 23:59 in Shanghai, 1999
        _item(meter.serial_number, (timezone.now() + timedelta(hours=1)).isoformat()),
        _item(meter.serial_number, _recent_slot(3).isoformat(), read_at="2099-01-01T00:00:00Z"),
        _item(meter.serial_number, good),
    ]
    answer = push(edge, batch)
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["invalid"] * 4 + ["stored"]
    assert "2000-01-01" in results[0]["errors"]["taken_at"][0]
    assert "2000-01-01" in results[1]["errors"]["taken_at"][0]
    assert "future" in results[2]["errors"]["taken_at"][0]
    assert "future" in results[3]["errors"]["read_at"][0]
    assert list(
        Reading.dangerously_unscoped.filter(meter=meter).values_list("taken_at", flat=True)
    ) == [datetime.fromisoformat(good)]


def test_the_tenants_earliest_reading_day_refuses_older_slots(world: World, edge: str) -> None:
    admin = world.client_for(world.alice)
    assert (
        admin.patch(
            "/api/v1/tenants/me/", {"earliest_reading_on": "1999-06-01"}, format="json"
        ).status_code
        == 400
    )
    changed = admin.patch(
        "/api/v1/tenants/me/", {"earliest_reading_on": "2025-01-01"}, format="json"
    )
    assert changed.status_code == 200, changed.content
    meter = world.a.meter()
    answer = push(
        edge,
        [
            _item(meter.serial_number, "2024-12-31T15:45:00Z"),  # 23:45 on 31 Dec, local
            _item(meter.serial_number, "2024-12-31T16:00:00Z"),  # midnight, 1 Jan, local
        ],
    ).json()
    assert [r["status"] for r in answer["results"]] == ["invalid", "stored"]
    assert "2025-01-01" in answer["results"][0]["errors"]["taken_at"][0]


def test_a_manual_reading_dated_year_1_is_a_field_error(world: World) -> None:
    meter = world.a.meter()
    client = world.client_for(world.alice)
    response = client.post(
        "/api/v1/readings/",
        {"meter": meter.pk, "taken_at": "0001-01-01T00:00:00Z", "total": "1"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "taken_at" in response.json()["error"]["fields"]
    assert not Reading.dangerously_unscoped.filter(meter=meter).exists()


def _plant_odd_readings(tenant: TenantWorld) -> dict[str, Reading]:
    """Readings the door refuses today, stored as an older release or another path could have:
    the rows the validation must judge without failing."""
    meter = tenant.meter()
    plant = {
        "year_1": datetime(1, 1, 1, tzinfo=UTC),
        "year_9999": datetime(9999, 12, 31, tzinfo=UTC),
        "answered_in_2099": _recent_slot(5),
    }
    planted = {}
    for name, taken_at in plant.items():
        planted[name] = Reading.dangerously_unscoped.create(
            tenant=tenant.tenant,
            meter=meter,
            taken_at=taken_at,
            read_at=datetime(2099, 1, 1, tzinfo=UTC) if name == "answered_in_2099" else taken_at,
            source="pushed",
            total=Decimal("1"),
        )
    return planted


def _assert_judged(planted: dict[str, Reading], valid_meter: Meter) -> None:
    for name, reading in planted.items():
        check = ReadingCheck.dangerously_unscoped.get(reading=reading)
        assert (check.status, check.rules) == ("suspect", "implausible_time"), name
        item = VerificationItem.dangerously_unscoped.get(reading=reading)
        assert (item.rule, item.state) == ("implausible_time", "open"), name
    fresh = ReadingCheck.dangerously_unscoped.filter(meter=valid_meter)
    assert fresh.count() == 2 and {c.status for c in fresh} == {"valid"}


@pytest.mark.django_db(transaction=True)
def test_odd_readings_stored_earlier_never_stop_the_next_batch_in_process(
    world: World, edge: str, eager_tasks: None
) -> None:
    planted = _plant_odd_readings(world.a)
    meter = world.a.meter()
    for hours_ago, total in ((2, "100.00"), (1, "100.50")):
        answer = push(
            edge, [_item(meter.serial_number, _recent_slot(hours_ago).isoformat(), total)]
        )
        assert answer.status_code == 200, answer.content
        assert answer.json()["stored"] == 1
    _assert_judged(planted, meter)


@pytest.mark.postgres
@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: set REDIS_URL")
@pytest.mark.django_db(transaction=True)
def test_odd_readings_never_fail_the_tenants_validation_in_a_worker(world: World) -> None:
    planted = _plant_odd_readings(world.a)
    meter = world.a.meter()
    for hours_ago, total in ((2, "100.00"), (1, "100.50")):
        world.a.reading(meter, taken_at=_recent_slot(hours_ago), total=Decimal(total))
    queue = f"validate-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue)
    try:
        validate_tenant_readings.apply_async(kwargs={"tenant_id": world.a.tenant.pk}, queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and worker.poll() is None:
            if ReadingCheck.dangerously_unscoped.filter(tenant=world.a.tenant).count() == 5:
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert "Traceback" not in output, output
    _assert_judged(planted, meter)


def test_a_meter_the_rules_cannot_compute_is_set_aside_and_the_others_are_checked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: the database refuses the rules' statement whenever it includes one
    meter (as a value out of its range would); that meter's readings wait for a verifier as
    ``cannot_check`` and every other meter is checked as usual."""
    meters = [world.a.meter() for _ in range(5)]
    for meter in meters:
        for hours_ago in (2, 1):
            world.a.reading(meter, taken_at=_recent_slot(hours_ago), total=Decimal(10 - hours_ago))
    broken = meters[3].pk
    check_chunk = rules._check_chunk

    def refusing(tenant: Any, settings: Any, meter_ids: list[int], *args: Any) -> None:
        if broken in meter_ids:
            raise DataError("numeric field overflow")
        check_chunk(tenant, settings, meter_ids, *args)

    monkeypatch.setattr(rules, "_check_chunk", refusing)
    with world.a.active():
        summary = rules.validate_readings(world.a.tenant)
    assert (summary.checked, summary.by_rule["cannot_check"]) == (10, 2)
    for meter in meters:
        statuses = set(
            ReadingCheck.dangerously_unscoped.filter(meter=meter).values_list("status", "rules")
        )
        assert statuses == (
            {("suspect", "cannot_check")} if meter.pk == broken else {("valid", "")}
        )
    assert VerificationItem.dangerously_unscoped.filter(meter_id=broken).count() == 2
