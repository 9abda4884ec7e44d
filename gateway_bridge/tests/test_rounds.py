"""Polling rounds against the simulator: every fault is recorded and none stops the round."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from gateway_bridge import rounds
from gateway_bridge.testing import (
    SimulatorThread,
    free_port_range,
    register_simulated,
    start_simulator,
)
from metering import services
from metering.models import (
    CommandState,
    Gateway,
    Meter,
    MeterCommand,
    MeterEvent,
    PollRound,
    Reading,
)
from tests.world import World

pytestmark = pytest.mark.django_db
SLOT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
Bus = tuple[SimulatorThread, list[Gateway]]


@pytest.fixture
def bus(world: World) -> Iterator[Bus]:
    with (
        start_simulator(
            2, 4, profiles=["DDSY1352", "DTSY1352", "WATER-DN20", "DDSY1352"], baud=115200
        ) as sim,
        world.a.active(),
    ):
        gateways = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=250, retries=1)
        yield sim, gateways


def _round(world: World, gateways: list[Gateway], slot: datetime = SLOT) -> rounds.RoundSummary:
    return rounds.run_round(world.a.tenant, [g.pk for g in gateways], slot)


def test_a_round_reads_every_meter_once_for_its_slot(world: World, bus: Bus) -> None:
    _sim, gateways = bus
    summary = _round(world, gateways)
    assert (summary.meters, summary.stored, summary.failures) == (8, 8, 0)
    readings = Reading.objects.filter(taken_at=SLOT)
    assert readings.count() == 8
    for reading in readings.filter(meter__profile="DDSY1352"):
        registers = (reading.tou_spike, reading.tou_peak, reading.tou_flat, reading.tou_valley)
        assert None not in registers
        tou = sum(register for register in registers if register is not None)
        assert abs(tou - reading.total) <= Decimal("0.04")
        assert reading.relay_state == "closed" and reading.source == "polled"
        assert set(reading.extra) == {"apparent_power", "code"}
    three_phase = readings.get(meter__profile="DTSY1352", meter__gateway=gateways[0])
    assert {"voltage_a", "reactive_energy", "max_demand"} <= set(three_phase.extra)
    water = readings.get(meter__profile="WATER-DN20", meter__gateway=gateways[0])
    assert water.tou_peak is None and "flow_rate" in water.extra
    stats = PollRound.objects.get(gateway=gateways[0], slot=SLOT)
    assert (stats.meters_total, stats.meters_read) == (4, 4)
    assert stats.requests == 4  # one request reads a meter: its profile has one block


def test_a_retried_round_stores_nothing_twice_and_does_not_read_again(
    world: World, bus: Bus
) -> None:
    _sim, gateways = bus
    _round(world, gateways)
    again = _round(world, gateways)
    assert (again.read, again.stored) == (0, 0)
    assert Reading.objects.filter(taken_at=SLOT).count() == 8
    assert PollRound.objects.get(gateway=gateways[0], slot=SLOT).meters_read == 4


@pytest.mark.parametrize(
    "fault,kind,framing",
    [
        ("no_answer", "timeout", "tcp"),
        ("exception", "exception", "tcp"),
        ("corrupted", "bad_frame", "tcp"),
        ("corrupted", "bad_frame", "rtu"),
        ("no_answer", "timeout", "rtu"),
        ("swapped", "identity_mismatch", "tcp"),
    ],
)
def test_a_faulty_meter_is_recorded_and_the_others_are_read(
    world: World, fault: str, kind: str, framing: str
) -> None:
    with (
        start_simulator(1, 4, profiles=["DDSY1352"], baud=115200, framing=framing) as sim,
        world.a.active(),
    ):
        gateways = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=250, retries=1)
        sim.gateways[0].meters[2].forced_fault = fault
        summary = _round(world, gateways)
        faulty = Meter.objects.get(gateway=gateways[0], unit_id=2)
        assert summary.stored == 3
        assert not Reading.objects.filter(meter=faulty).exists()
        events = MeterEvent.objects.filter(meter=faulty)
        assert [event.kind for event in events] == [kind]
        assert events[0].slot == SLOT and events[0].detail["unit_id"] == 2


def test_a_counter_that_jumps_back_is_stored_as_read_for_verification_to_judge(
    world: World, bus: Bus
) -> None:
    sim, gateways = bus
    _round(world, gateways)
    meter = Meter.objects.get(gateway=gateways[0], unit_id=1)
    first = Reading.objects.get(meter=meter).total
    sim.gateways[0].meters[1].forced_fault = "jump_back"
    _round(world, gateways, datetime(2026, 11, 24, 4, 15, tzinfo=UTC))
    last = Reading.objects.filter(meter=meter).order_by("taken_at").last()
    assert last is not None and last.total < first


def test_a_gateway_that_refuses_connections_does_not_stop_the_others(
    world: World, bus: Bus
) -> None:
    _sim, gateways = bus
    with world.a.active():
        closed = services.create_gateway(
            world.a.system,
            site=world.a.sites[0],
            name="dead",
            host="127.0.0.1",
            port=free_port_range(1),
            timeout_ms=250,
        )
        services.register_meter(
            world.a.system,
            site=world.a.sites[0],
            serial_number="404",
            profile="DDSY1352",
            gateway=closed,
            unit_id=1,
        )
    summary = rounds.run_round(world.a.tenant, [g.pk for g in [*gateways, closed]], SLOT)
    assert summary.stored == 8
    event = MeterEvent.objects.get(gateway=closed)
    assert event.kind == "connection_refused" and event.meter is None
    assert PollRound.objects.get(gateway=closed, slot=SLOT).meters_read == 0


def test_random_faults_never_stop_a_round_and_every_meter_is_accounted_for(world: World) -> None:
    with (
        start_simulator(3, 8, profiles=["DDSY1352"], baud=115200, fault_rate=0.3, seed=7) as sim,
        world.a.active(),
    ):
        gateways = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=200, retries=0)
        summary = _round(world, gateways)
        read = set(Reading.objects.filter(taken_at=SLOT).values_list("meter_id", flat=True))
        failed = set(MeterEvent.objects.filter(slot=SLOT).values_list("meter_id", flat=True))
        everyone = set(Meter.objects.filter(gateway__in=gateways).values_list("id", flat=True))
    assert summary.meters == 24
    assert 0 < summary.stored < 24
    assert read | failed == everyone
    assert not read & failed


def test_a_relay_trip_is_confirmed_by_reading_the_relay_back(world: World, bus: Bus) -> None:
    sim, gateways = bus
    meter = Meter.objects.get(gateway=gateways[0], unit_id=1)
    with world.a.active():
        command = services.issue_command(world.a.system, meter, kind="relay_trip", reason="欠费")
        with pytest.raises(ValidationError) as refused:
            services.issue_command(world.a.system, meter, kind="relay_close", reason="again")
        assert refused.value.code == "open_command"
    summary = _round(world, gateways)
    command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED and command.attempts == 1
    assert summary.commands_confirmed == 1
    assert sim.gateways[0].meters[1].relay_tripped
    reading = Reading.objects.get(meter=meter, taken_at=SLOT)
    assert reading.relay_state == "tripped" and reading.power == 0
    audit = MeterCommand.objects.get(pk=command.pk)
    assert audit.sent_at and audit.completed_at and audit.sent_at <= audit.completed_at


def test_a_relay_that_does_not_move_fails_the_command_after_its_attempts(
    world: World, bus: Bus
) -> None:
    sim, gateways = bus
    sim.gateways[0].meters[1].stuck_relay = True
    meter = Meter.objects.get(gateway=gateways[0], unit_id=1)
    with world.a.active():
        command = services.issue_command(world.a.system, meter, kind="relay_trip", reason="欠费")
        rounds.run_commands(world.a.tenant, gateways[0].pk)
        command.refresh_from_db()
        assert command.state == CommandState.FAILED and command.attempts == 3
        assert "read back closed" in command.last_error
        assert MeterEvent.objects.filter(meter=meter, kind="command_failed").exists()
        assert not Reading.objects.filter(meter=meter).exists()  # commands alone read nothing


def test_a_setpoint_is_written_and_confirmed(world: World, bus: Bus) -> None:
    sim, gateways = bus
    meter = Meter.objects.get(gateway=gateways[0], unit_id=1)
    with world.a.active():
        command = services.issue_command(
            world.a.system, meter, kind="setpoint", setpoint="code", value=Decimal(42), reason="x"
        )
        rounds.run_commands(world.a.tenant, gateways[0].pk)
        command.refresh_from_db()
    assert command.state == CommandState.CONFIRMED
    assert sim.gateways[0].meters[1].writes == {10: 42}


def test_poll_once_runs_a_round_in_the_foreground_with_progress(
    world: World, bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("poll_once", "--tenant", world.a.tenant.slug, "--site", world.a.sites[0].code)
    output = capsys.readouterr().out
    assert "gateways 2/2" in output and "8 read, 8 stored" in output
    with pytest.raises(CommandError, match="no gateway"):
        call_command("poll_once", "--tenant", world.a.tenant.slug, "--gateway", "nope")


def test_health_and_completeness_come_from_the_rounds(world: World) -> None:
    slot = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    with start_simulator(2, 3, profiles=["DDSY1352"], baud=115200) as sim, world.a.active():
        gateways = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=250, retries=0)
        sim.gateways[1].meters[3].forced_fault = "no_answer"
        rounds.run_round(world.a.tenant, [g.pk for g in gateways], slot)
    client = world.client_for(world.bob)
    health = {row["id"]: row for row in client.get("/api/v1/gateways/health/?hours=720").json()}
    assert health[gateways[0].pk]["success_rate"] == 1.0
    assert health[gateways[1].pk]["success_rate"] == pytest.approx(2 / 3, abs=0.001)
    assert health[gateways[0].pk]["mean_response_ms"] > 0
    assert health[gateways[0].pk]["last_success_at"]
    completeness = client.get(
        "/api/v1/reading-completeness/",
        {"site": world.a.sites[0].pk, "slot": slot.isoformat()},  # type: ignore[arg-type]
    ).json()
    assert completeness == [
        {
            "site": world.a.sites[0].pk,
            "slot": "2026-11-24T04:00:00Z",
            "meters": 6,
            "read": 5,
            "completeness": pytest.approx(5 / 6, abs=0.001),
        }
    ]
