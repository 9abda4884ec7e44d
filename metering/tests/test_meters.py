"""The meter registry: CSV import, replacement, manual readings, health and completeness."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from rest_framework.test import APIClient

from metering.models import Meter, MeterEvent, MeterReplacement, Reading
from tenancy.models import AuditEvent
from tests.world import World

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse

pytestmark = pytest.mark.django_db


def _import(client: APIClient, text: str) -> _MonkeyPatchedResponse:
    return client.post("/api/v1/meters/import/", text, content_type="text/csv")


def test_a_csv_file_imports_all_its_meters(world: World) -> None:
    gateway = world.a.gateway()
    site = world.a.sites[0]
    account = world.a.account()
    text = (
        "serial_number,profile,site,gateway,unit_id,account,ct_ratio\n"
        f"A1001,DDSY1352,{site.code},{gateway.name},1,{account.number},\n"
        f"A1002,DTSY1352,{site.code},{gateway.name},2,,40\n"
    )
    response = _import(world.client_for(world.alice), text)
    assert response.status_code == 201 and response.json()["imported"] == 2
    meters = Meter.dangerously_unscoped.filter(serial_number__in=["A1001", "A1002"]).order_by(
        "serial_number"
    )
    assert [m.unit_id for m in meters] == [1, 2]
    assert meters[0].premise_id == account.premise_id and str(meters[1].ct_ratio) == "40.00"
    event = AuditEvent.dangerously_unscoped.get(action="meter.imported")
    assert event.object_ids is not None
    assert sorted(event.object_ids) == sorted(m.pk for m in meters)


def test_a_csv_file_with_bad_rows_imports_nothing_and_names_every_bad_line(world: World) -> None:
    gateway = world.a.gateway()
    world.a.meter(serial_number="TAKEN")
    code = world.a.sites[0].code
    text = (
        "serial_number,profile,site,gateway,unit_id\n"
        f"B1,DDSY1352,{code},{gateway.name},1\n"
        f"B2,NOPE,{code},,\n"
        f"TAKEN,DDSY1352,{code},,\n"
        f"B4,DDSY1352,{code},{gateway.name},1\n"
        f"B5,DDSY1352,ZZZ,,\n"
        f"B6,DDSY1352,{code},{gateway.name},300\n"
    )
    response = _import(world.client_for(world.alice), text)
    assert response.status_code == 400
    rows = response.json()["error"]["fields"]["rows"]
    lines = sorted({int(re.search(r"\d+", row).group()) for row in rows})  # type: ignore[union-attr]
    assert lines == [3, 4, 5, 6, 7]
    assert not Meter.dangerously_unscoped.filter(serial_number__startswith="B").exists()


FORMULA = "=cmd|' /C calc'!A0"  # what a spreadsheet would run when the registry is exported


def test_a_csv_file_with_a_formula_for_a_serial_number_imports_nothing(world: World) -> None:
    code = world.a.sites[0].code
    text = f'serial_number,profile,site\nC-1.a_2,DDSY1352,{code}\n"{FORMULA}",DDSY1352,{code}\n'
    response = _import(world.client_for(world.alice), text)
    assert response.status_code == 400
    (row,) = response.json()["error"]["fields"]["rows"]
    assert "3" in row and "serial_number" in row
    assert not Meter.dangerously_unscoped.filter(serial_number="C-1.a_2").exists()


@pytest.mark.parametrize("serial", [FORMULA, "A 1", "米表1", "A1;B2"])
def test_a_meter_registered_through_the_api_has_a_plain_serial_number(
    world: World, serial: str
) -> None:
    response = world.client_for(world.alice).post(
        "/api/v1/meters/",
        {"serial_number": serial, "profile": "DDSY1352", "site": world.a.sites[0].pk},
        format="json",
    )
    assert response.status_code == 400
    assert "serial_number" in response.json()["error"]["fields"]
    assert not Meter.dangerously_unscoped.filter(serial_number=serial).exists()


def test_a_replacement_meter_has_a_plain_serial_number(world: World) -> None:
    old = world.a.meter()
    response = world.client_for(world.alice).post(
        f"/api/v1/meters/{old.pk}/replace/",
        {
            "new_serial_number": FORMULA,
            "replaced_at": "2026-10-15T10:00:00+08:00",
            "final_reading": {"total": "812.34"},
            "first_reading": {"total": "0.00"},
            "reason": "表计烧毁",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "new_serial_number" in response.json()["error"]["fields"]
    old.refresh_from_db()
    assert old.status == "active"


def test_a_replacement_joins_the_old_meter_and_the_new(world: World) -> None:
    old = world.a.meter(account=world.a.account())
    world.a.reading(old, total="500.00")
    response = world.client_for(world.alice).post(
        f"/api/v1/meters/{old.pk}/replace/",
        {
            "new_serial_number": "NEW-1",
            "replaced_at": "2026-10-15T10:00:00+08:00",
            "final_reading": {"total": "812.34"},
            "first_reading": {"total": "0.00"},
            "reason": "表计烧毁",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    old.refresh_from_db()
    new = Meter.dangerously_unscoped.get(serial_number="NEW-1")
    assert old.status == "removed" and str(old.removed_on) == "2026-10-15"
    assert (new.gateway_id, new.unit_id, new.account_id) == (
        old.gateway_id,
        old.unit_id,
        old.account_id,
    )
    link = MeterReplacement.dangerously_unscoped.get(old_meter=old)
    assert link.new_meter == new
    assert str(link.old_final_reading.total) == "812.340" and link.new_first_reading.total == 0
    assert link.old_final_reading.taken_at == link.new_first_reading.taken_at


def test_a_manual_reading_for_a_slot_already_read_with_other_values_is_409(world: World) -> None:
    meter = world.a.meter()
    client = world.client_for(world.alice)
    body = {"meter": meter.pk, "taken_at": "2026-11-01T00:00:00Z", "total": "100.00"}
    assert client.post("/api/v1/readings/", body, format="json").status_code == 201
    assert client.post("/api/v1/readings/", body, format="json").status_code == 201
    response = client.post("/api/v1/readings/", {**body, "total": "101.00"}, format="json")
    assert response.status_code == 409
    assert Reading.dangerously_unscoped.filter(meter=meter).count() == 1
    assert MeterEvent.dangerously_unscoped.filter(meter=meter, kind="conflicting_reading").exists()
    for method in ("put", "patch", "delete"):
        reading = Reading.dangerously_unscoped.get(meter=meter)
        assert getattr(client, method)(f"/api/v1/readings/{reading.pk}/", {}).status_code == 405


def test_a_unit_id_answers_for_one_meter_per_gateway(world: World) -> None:
    first = world.a.meter()
    response = world.client_for(world.alice).post(
        "/api/v1/meters/",
        {
            "serial_number": "X2",
            "profile": "DDSY1352",
            "site": first.site_id,
            "gateway": first.gateway_id,
            "unit_id": first.unit_id,
        },
        format="json",
    )
    assert response.status_code == 400 and "unit_id" in response.json()["error"]["fields"]
