"""Edge gateways push readings: idempotent, one result per item, valid items kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client

from metering.models import MeterEvent, Reading
from tenancy.roles import Role
from tests.world import World

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

pytestmark = pytest.mark.django_db
URL = "/api/v1/readings/ingest/"


def push(token: str, readings: list[Any]) -> _MonkeyPatchedWSGIResponse:
    """An edge gateway's push, asking for the messages in English."""
    return Client().post(
        URL,
        {"readings": readings},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_ACCEPT_LANGUAGE="en",
    )


def _item(
    serial: str, total: str = "1523.45", slot: str = "2026-11-24T04:00:00Z", **extra: Any
) -> dict[str, Any]:
    return {
        "meter": serial,
        "taken_at": slot,
        "total": total,
        "tou_spike": "100.00",
        "tou_peak": "500.00",
        "tou_flat": "600.00",
        "tou_valley": "323.45",
        "relay_state": "closed",
        **extra,
    }


@pytest.fixture
def edge(world: World) -> str:
    _client, token = world.a.api_client((Role.METER_READER, None))
    return token


def test_a_batch_is_stored_once_however_often_it_is_pushed(world: World, edge: str) -> None:
    meters = [world.a.meter(), world.a.meter()]
    batch = [_item(m.serial_number) for m in meters]
    first = push(edge, batch).json()
    assert (first["stored"], first["duplicates"]) == (2, 0)
    again = push(edge, batch).json()
    assert (again["stored"], again["duplicates"], again["conflicts"]) == (0, 2, 0)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    reading = Reading.dangerously_unscoped.get(meter=meters[0])
    assert reading.source == "pushed" and str(reading.total) == "1523.450"


def test_other_values_for_a_slot_already_read_are_refused_and_recorded(
    world: World, edge: str
) -> None:
    meter = world.a.meter()
    push(edge, [_item(meter.serial_number)])
    answer = push(edge, [_item(meter.serial_number, total="1600.00")]).json()
    assert answer["results"] == [{"index": 0, "status": "conflict"}]
    assert str(Reading.dangerously_unscoped.get(meter=meter).total) == "1523.450"
    event = MeterEvent.dangerously_unscoped.get(meter=meter, kind="conflicting_reading")
    assert event.detail["offered"]["total"] == "1600.000"


def test_a_slot_repeated_inside_one_batch_is_compared_with_its_first_row(
    world: World, edge: str
) -> None:
    meter = world.a.meter()
    first, same, other = (
        _item(meter.serial_number),
        _item(meter.serial_number),
        _item(meter.serial_number, total="1523.46"),
    )
    answer = push(edge, [first, same, other]).json()
    assert [r["status"] for r in answer["results"]] == ["stored", "duplicate", "conflict"]
    assert str(Reading.dangerously_unscoped.get(meter=meter).total) == "1523.450"


def test_bad_items_are_reported_by_index_and_the_good_ones_kept(world: World, edge: str) -> None:
    meter = world.a.meter()
    batch = [
        _item("no-such-meter"),
        _item(meter.serial_number, total="lots"),
        _item(meter.serial_number, slot="2099-01-01T00:00:00Z"),
        _item(meter.serial_number),
        "not an object",
    ]
    answer = push(edge, batch).json()
    statuses = [(r["index"], r["status"]) for r in answer["results"]]
    assert statuses == [
        (0, "invalid"),
        (1, "invalid"),
        (2, "invalid"),
        (3, "stored"),
        (4, "invalid"),
    ]
    assert "meter" in answer["results"][0]["errors"]
    assert "total" in answer["results"][1]["errors"]
    assert "taken_at" in answer["results"][2]["errors"]
    assert Reading.dangerously_unscoped.filter(meter=meter).count() == 1


def test_a_token_of_another_tenant_cannot_push_for_these_meters(world: World) -> None:
    meter = world.a.meter()
    _client, token_b = world.b.api_client((Role.METER_READER, None))
    answer = push(token_b, [_item(meter.serial_number)]).json()
    assert answer["invalid"] == 1 and answer["stored"] == 0
    assert not Reading.dangerously_unscoped.filter(meter=meter).exists()


def test_a_token_without_the_reader_role_is_refused(world: World) -> None:
    _client, cashier = world.a.api_client((Role.CASHIER, None))
    assert push(cashier, [_item(world.a.meter().serial_number)]).status_code == 403


def test_an_empty_or_oversized_batch_is_a_400(world: World, edge: str) -> None:
    assert push(edge, []).status_code == 400
    too_many = [_item(str(i)) for i in range(5001)]
    response = push(edge, too_many)
    assert response.status_code == 400 and "readings" in response.json()["error"]["fields"]
