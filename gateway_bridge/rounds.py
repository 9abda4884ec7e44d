"""Polling rounds: from the registry to the poller and from its results to the database.

A round reads every active meter of a site's gateways for one scheduled slot. The database
work is set-based on both sides: one query plans a shard of gateways, and the results are
written in bulk (readings four times a second while the round goes on, then events and
per-gateway counts, written while the last readings are stored), never a query per reading.
Validation is handed over once every reading of the round is stored. The slot is an argument,
so a round that is retried or redelivered writes the same rows, once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from gateway_bridge.poller import (
    CommandTarget,
    GatewayResult,
    GatewayTarget,
    MeterRead,
    MeterTarget,
    command_words,
    poll_gateways,
    run_loop,
)
from metering import services as metering_services
from metering.meter_profiles import READING_COLUMNS, MeterProfile, get_profile
from metering.models import (
    OPEN_COMMAND_STATES,
    CommandKind,
    CommandState,
    Gateway,
    Meter,
    MeterCommand,
    MeterEvent,
    MeterStatus,
    PollRound,
    Reading,
    ReadingSource,
    RoundDispatch,
)
from metering.readings import ReadingRow, StoreOutcome, store_readings
from tenancy.context import get_current_tenant, use_tenant
from tenancy.handover import VALIDATE_READINGS, send_task_after_commit
from tenancy.models import Site, Tenant
from tenancy.principal import Principal

BRIDGE = "gateway bridge"
FLUSH_SECONDS = 0.25


def _command_target(command: MeterCommand, meter: Meter) -> CommandTarget | None:
    profile = get_profile(meter.profile)
    if command.kind in (CommandKind.RELAY_TRIP, CommandKind.RELAY_CLOSE):
        relay = profile.relay
        if relay is None:
            return None
        trip = command.kind == CommandKind.RELAY_TRIP
        value = relay.trip_value if trip else relay.close_value
        return CommandTarget(
            command.pk,
            relay.control,
            (value,),
            "relay",
            "tripped" if trip else "closed",
            command.attempts,
            command.max_attempts,
        )
    spec = profile.setpoint(command.setpoint)
    if spec is None or command.value is None:
        return None
    return CommandTarget(
        command.pk,
        spec,
        command_words(spec, command.value),
        "setpoint",
        command.value,
        command.attempts,
        command.max_attempts,
    )


def plan_shard(
    gateway_ids: Sequence[int], *, slot: datetime | None = None, read: bool = True
) -> list[GatewayTarget]:
    """The gateways of a shard with their active meters and the commands waiting for them.

    Meters that already have a reading for ``slot`` are not read again (a redelivered round
    polls only what the first delivery did not store). Pending commands are marked sent here:
    from now on the bridge owns them.
    """
    gateways = {
        gateway.pk: gateway
        for gateway in Gateway.objects.filter(pk__in=gateway_ids, is_active=True)
    }
    meters_by_gateway: dict[int, list[tuple[int, int, str, str]]] = defaultdict(list)
    for gateway_id, meter_id, unit_id, serial_number, profile in (
        Meter.objects.filter(gateway_id__in=gateways, status=MeterStatus.ACTIVE)
        .order_by("gateway_id", "unit_id")
        .values_list("gateway_id", "id", "unit_id", "serial_number", "profile")
    ):
        # A meter on a gateway has a unit id (the check constraint meter_on_gateway_has_unit_id).
        meters_by_gateway[gateway_id].append((meter_id, cast(int, unit_id), serial_number, profile))
    already_read: set[int] = set()
    if read and slot is not None:
        already_read = set(
            Reading.objects.filter(meter__gateway_id__in=gateways, taken_at=slot).values_list(
                "meter_id", flat=True
            )
        )
    open_commands = {
        command.meter_id: command
        for command in MeterCommand.objects.select_related("meter").filter(
            meter__gateway_id__in=gateways,
            state__in=OPEN_COMMAND_STATES,
            expires_at__gt=timezone.now(),
        )
    }
    profiles: dict[str, MeterProfile] = {}
    targets = []
    for gateway_id, gateway in gateways.items():
        meters = []
        active = meters_by_gateway.get(gateway_id, [])
        read_before = 0
        for meter_id, unit_id, serial_number, profile in active:
            command = open_commands.get(meter_id) if open_commands else None
            command_target = _command_target(command, command.meter) if command else None
            to_read = read
            if meter_id in already_read:
                read_before += 1
                to_read = False
            if not to_read and command_target is None:
                continue
            if profile not in profiles:
                profiles[profile] = get_profile(profile)
            meters.append(
                MeterTarget(
                    meter_id,
                    unit_id,
                    serial_number,
                    profiles[profile],
                    read=to_read,
                    command=command_target,
                )
            )
        targets.append(
            GatewayTarget(
                gateway.pk,
                gateway.site_id,
                gateway.host,
                gateway.port,
                gateway.framing,
                gateway.timeout_ms / 1000,
                gateway.retries,
                tuple(meters),
                meters_active=len(active),
                meters_already_read=read_before,
            )
        )
    pending = [c for c in open_commands.values() if c.state == CommandState.PENDING]
    if pending:
        system = Principal.system(pending[0].tenant, BRIDGE)
        for command in pending:
            metering_services.move_command(system, command, CommandState.SENT)
    return targets


@dataclass
class RoundSummary:
    slot: datetime
    gateways: int
    meters: int
    read: int
    stored: int
    duplicates: int
    conflicts: int
    failures: int
    commands_confirmed: int
    commands_failed: int


_COLUMN_NAMES = frozenset(READING_COLUMNS)


def reading_row(target: GatewayTarget, slot: datetime, read: MeterRead) -> ReadingRow:
    """A read as a row to store: reading columns apart, the relay's state, the rest in
    ``extra`` (called for every reading of a round, so one pass over the values)."""
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    relay_state = ""
    for name, value in read.values.items():
        if name in _COLUMN_NAMES:
            columns[name] = value
        elif name == "relay_state":
            relay_state = value
        else:
            extra[name] = str(value)
    return ReadingRow(
        meter_id=read.meter_id,
        site_id=target.site_id,
        gateway_id=target.gateway_id,
        taken_at=slot,
        read_at=read.read_at,
        source=ReadingSource.POLLED,
        values=columns,
        relay_state=relay_state,
        extra=extra,
    )


class ReadingWriter:
    """Stores a round's readings while the round goes on, in bulk four times a second.

    The writes run on a thread of their own (with its own database connection), so the buses
    keep being polled while a batch is stored and the round ends a moment after its last
    answer. Inside a caller's transaction (a test, an operator's atomic block) another
    connection could not see its rows, so the writer then stores on the caller's connection.
    """

    def __init__(self, tenant: Tenant, slot: datetime) -> None:
        self.tenant = tenant
        self.slot = slot
        self.pending: list[ReadingRow] = []
        self.outcomes: list[StoreOutcome] = []
        self.last_batch: Future[list[StoreOutcome]] | None = None
        background = not transaction.get_connection().in_atomic_block
        self.executor = ThreadPoolExecutor(1, "reading-writer") if background else None

    def add(self, target: GatewayTarget, read: MeterRead) -> None:
        self.pending.append(reading_row(target, self.slot, read))

    def _store(self, rows: list[ReadingRow]) -> list[StoreOutcome]:
        with use_tenant(self.tenant), transaction.atomic():
            return store_readings(self.tenant, rows)

    async def flush(self) -> None:
        """Hand what was read since the last flush to the writer thread (in the background
        mode; inline, everything waits for ``finish``)."""
        if self.executor is None or not self.pending:
            return
        rows, self.pending = self.pending, []
        loop = asyncio.get_running_loop()
        self.outcomes.extend(await loop.run_in_executor(self.executor, self._store, rows))

    def hand_over_rest(self) -> None:
        """Give what was read since the last flush to the writer thread without waiting for it
        (the round's own record is written meanwhile); ``finish`` waits for it."""
        if self.executor is None or not self.pending:
            return
        rows, self.pending = self.pending, []
        self.last_batch = self.executor.submit(self._store, rows)

    def finish(self) -> None:
        """Wait for the last batch and store what is left, once the event loop is done;
        release the writer thread."""
        try:
            if self.last_batch is not None:
                self.outcomes.extend(self.last_batch.result())
            if self.pending:
                rows, self.pending = self.pending, []
                self.outcomes.extend(self._store(rows))
        finally:
            if self.executor is not None:
                self.executor.submit(lambda: connection.close()).result()  # its own connection
                self.executor.shutdown()


async def _poll_and_write(
    targets: Sequence[GatewayTarget],
    writer: ReadingWriter,
    progress: Callable[[int, int], None] | None,
) -> list[GatewayResult]:
    polling = asyncio.ensure_future(poll_gateways(targets, progress, writer.add))
    while not polling.done():
        await asyncio.wait([polling], timeout=FLUSH_SECONDS)
        if not polling.done():
            await writer.flush()
    writer.hand_over_rest()
    return polling.result()


@dataclass
class RoundRecord:
    """What writing a round's record found: failures recorded, commands settled."""

    failures: int
    commands_confirmed: int
    commands_failed: int


def record_results(
    tenant: Tenant,
    slot: datetime,
    targets: Sequence[GatewayTarget],
    results: Sequence[GatewayResult],
    *,
    polled: bool = True,
) -> RoundRecord:
    """Write the rest of a round (its readings are stored as they come, by ``ReadingWriter``):
    failures as meter events, per-gateway counts for a polling round, commands' outcomes."""
    system = Principal.system(tenant, BRIDGE)
    with transaction.atomic():
        events = [
            MeterEvent(
                tenant=tenant,
                gateway_id=failure.gateway_id,
                meter_id=failure.meter_id,
                site_id=result.site_id,
                kind=failure.kind,
                slot=slot,
                detail=failure.detail,
            )
            for result in results
            for failure in result.failures
        ]
        MeterEvent.objects.bulk_create(events)
        if polled:
            _store_poll_rounds(tenant, slot, targets, results)
    confirmed, failed = _store_command_outcomes(system, results)
    return RoundRecord(len(events), confirmed, failed)


def summarise(
    slot: datetime,
    results: Sequence[GatewayResult],
    record: RoundRecord,
    outcomes: Sequence[StoreOutcome] = (),
) -> RoundSummary:
    statuses = [outcome.status for outcome in outcomes]
    return RoundSummary(
        slot=slot,
        gateways=len(results),
        meters=sum(result.meters_total for result in results),
        read=sum(result.meters_read for result in results),
        stored=statuses.count("stored"),
        duplicates=statuses.count("duplicate"),
        conflicts=statuses.count("conflict"),
        failures=record.failures,
        commands_confirmed=record.commands_confirmed,
        commands_failed=record.commands_failed,
    )


def _store_poll_rounds(
    tenant: Tenant,
    slot: datetime,
    targets: Sequence[GatewayTarget],
    results: Sequence[GatewayResult],
) -> None:
    """One row per gateway and slot. The meters read are those that had a reading for the slot
    when the round was planned plus those this round read, so a redelivered round that read
    only the rest still reports the whole gateway (and no query counts them again)."""
    planned = {target.gateway_id: target for target in targets}
    PollRound.objects.bulk_create(
        [
            PollRound(
                tenant=tenant,
                gateway_id=result.gateway_id,
                site_id=result.site_id,
                slot=slot,
                started_at=result.started_at,
                finished_at=result.finished_at or result.started_at,
                meters_total=planned[result.gateway_id].meters_active,
                meters_read=planned[result.gateway_id].meters_already_read + result.meters_read,
                requests=result.requests,
                failed_requests=result.failed_requests,
                response_ms_total=result.response_seconds * 1000,
            )
            for result in results
        ],
        update_conflicts=True,
        unique_fields=["tenant", "gateway", "slot"],
        update_fields=[
            "finished_at",
            "meters_total",
            "meters_read",
            "requests",
            "failed_requests",
            "response_ms_total",
        ],
    )


def _store_command_outcomes(system: Principal, results: Sequence[GatewayResult]) -> tuple[int, int]:
    outcomes = [outcome for result in results for outcome in result.commands]
    if not outcomes:
        return 0, 0
    commands = {
        c.pk: c for c in MeterCommand.objects.filter(pk__in=[o.command_id for o in outcomes])
    }
    confirmed = failed = 0
    for outcome in outcomes:
        command = commands[outcome.command_id]
        if command.state != CommandState.SENT:
            continue
        if outcome.confirmed:
            confirmed += 1
            metering_services.move_command(
                system, command, CommandState.CONFIRMED, attempts=outcome.attempts
            )
        elif outcome.attempts >= command.max_attempts:
            failed += 1
            metering_services.move_command(
                system, command, CommandState.FAILED, error=outcome.error, attempts=outcome.attempts
            )
            MeterEvent.objects.create(
                tenant=get_current_tenant(),
                meter_id=command.meter_id,
                gateway_id=command.meter.gateway_id,
                site_id=command.meter.site_id,
                kind="command_failed",
                detail={"command": command.pk, "error": outcome.error},
            )
    return confirmed, failed


def run_round(
    tenant: Tenant,
    gateway_ids: Sequence[int],
    slot: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> RoundSummary:
    """Poll a shard for a slot and store it; the readings are handed to validation once all
    are stored."""
    targets = plan_shard(gateway_ids, slot=slot)
    writer = ReadingWriter(tenant, slot)
    try:
        results = run_loop(_poll_and_write(targets, writer, progress))
        # Written while the writer's thread stores the last readings (the counts it writes come
        # from the plan and the poller, not from the readings table).
        record = record_results(tenant, slot, targets, results)
    finally:
        writer.finish()
    send_task_after_commit(VALIDATE_READINGS, {"tenant_id": tenant.pk})
    return summarise(slot, results, record, writer.outcomes)


def run_commands(tenant: Tenant, gateway_id: int) -> RoundSummary:
    """Send the open commands of one gateway now, between the poller's reads on its bus."""
    targets = plan_shard([gateway_id], read=False)
    results = run_loop(poll_gateways(targets))
    moment = timezone.now()
    record = record_results(tenant, moment, targets, results, polled=False)
    return summarise(moment, results, record)


def claim_round(site: Site, slot: datetime, gateways: int) -> bool:
    """True for the first caller that claims this site's round for the slot."""
    _dispatch, created = RoundDispatch.objects.get_or_create(
        site=site, slot=slot, defaults={"tenant": site.tenant, "gateways": gateways}
    )
    return created


def shards(gateway_ids: Sequence[int], size: int) -> list[list[int]]:
    return [list(gateway_ids[i : i + size]) for i in range(0, len(gateway_ids), size)]
