"""A bridge worker killed with SIGKILL in the middle of a round: the task comes back, reads only
the meters the first delivery did not store, and every meter ends with exactly one reading for
the slot."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.conf import settings

from gateway_bridge.tasks import poll_shard
from gateway_bridge.testing import register_simulated, start_simulator
from metering.models import PollRound, Reading
from tests.workers import start_worker
from tests.world import World

SLOT = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: set REDIS_URL"),
]


def _worker(queue: str) -> subprocess.Popen:
    # Abandoned messages come back after 2 s, looked for every second.
    return start_worker(
        queue,
        env={"BARS_BROKER_VISIBILITY_TIMEOUT": "2", "BARS_BROKER_RESTORE_INTERVAL": "1"},
    )


def _wait(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_round_killed_midway_is_redelivered_and_reads_each_meter_once(world: World) -> None:
    queue = f"polling-{uuid.uuid4().hex[:8]}"
    with start_simulator(1, 32, profiles=["DDSY1352"], baud=9600) as sim:
        with world.a.active():
            gateways = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=1000)
        bus = sim.gateways[0].stats
        first = _worker(queue)
        outputs = []
        try:
            poll_shard.apply_async(
                kwargs={
                    "tenant_id": world.a.tenant.pk,
                    "gateway_ids": [g.pk for g in gateways],
                    "slot": SLOT.isoformat(),
                },
                queue=queue,
            )
            assert _wait(lambda: bus.requests >= 10, 60), "the first worker never started polling"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            outputs.append(first.stdout.read())  # type: ignore[union-attr]
            killed_at = bus.requests
            assert killed_at < 32, "the round finished before the kill"
            stored_before = Reading.dangerously_unscoped.filter(taken_at=SLOT).count()
            assert stored_before < 32
            second = _worker(queue)
            try:
                done = _wait(
                    lambda: PollRound.dangerously_unscoped.filter(
                        slot=SLOT, meters_read=32
                    ).exists(),
                    90,
                )
            finally:
                second.terminate()
                outputs.append(second.communicate(timeout=30)[0])
        finally:
            if first.poll() is None:
                first.kill()
    assert done, "the task was not redelivered:\n" + "\n".join(outputs)
    readings = Reading.dangerously_unscoped.filter(taken_at=SLOT)
    assert readings.count() == 32
    assert readings.values("meter_id").distinct().count() == 32
    # The second delivery read the meters still missing (one request each), not the stored ones.
    missing = 32 - stored_before
    assert missing <= bus.requests - killed_at <= missing + 2
