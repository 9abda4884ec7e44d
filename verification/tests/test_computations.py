"""A site's period computed as a task: each committed chunk moves the computation's cursor,
figures and ``progressed_at`` together; a computation whose worker died counts as stalled
after the threshold, and started again it resumes after the last committed chunk (the chunks
before are not computed twice) to the same figures as one never interrupted."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from customers.models import Account
from tenancy.models import AuditEvent
from tests.concurrency import run_together
from tests.world import World
from verification import computations, periods
from verification.computations import (
    resume_period_computation,
    run_period_computation,
    start_period_computation,
)
from verification.models import ComputationState, PeriodComputation, PeriodConsumption
from verification.tests.helpers import checks, lay
from verification.tests.test_periods import END, START

if TYPE_CHECKING:
    from pytest_django import DjangoCaptureOnCommitCallbacks

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """The worker process dying mid-task: nothing in the task catches it or records it."""


def _site_of_five(world: World) -> list[Account]:
    """Three accounts that compute (100 → 100 + 10·n kWh) and two held back (no meter)."""
    site = world.a.sites[0]
    accounts = []
    for number in range(5):
        account = world.a.account(site)
        if number < 3:
            meter = world.a.meter(site, account=account)
            with world.a.active():
                lay(
                    meter,
                    [
                        {"taken_at": START, "total": "100.00"},
                        {"taken_at": END, "total": f"{100 + 10 * (number + 1)}.00"},
                    ],
                )
                checks(meter)
        accounts.append(account)
    return accounts


def _computation(world: World) -> PeriodComputation:
    with world.a.active():
        return start_period_computation(world.a.system, world.a.sites[0], "2026-10")


def _state(computation: PeriodComputation) -> PeriodComputation:
    return PeriodComputation.dangerously_unscoped.get(pk=computation.pk)


def _periods(world: World) -> dict[str, tuple[str, Any]]:
    return {
        period.account.number: (period.status, period.total)
        for period in PeriodConsumption.dangerously_unscoped.filter(
            site=world.a.sites[0], period="2026-10"
        ).select_related("account")
    }


def _killed_after(chunks: int) -> Any:
    """``_write_periods`` that kills the worker in the chunk after ``chunks`` committed ones
    (inside the chunk's transaction, which rolls back)."""
    real = periods._write_periods
    calls = iter(range(1000))

    def write(rows: list[PeriodConsumption]) -> None:
        if next(calls) >= chunks:
            raise WorkerKilled
        real(rows)

    return write


def _age(computation: PeriodComputation, minutes: int) -> None:
    PeriodComputation.dangerously_unscoped.filter(pk=computation.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.mark.usefixtures("eager_tasks")
@override_settings(BARS_STALL_MINUTES=5)
def test_a_computation_whose_worker_died_is_stalled_and_started_again_resumes_where_it_stopped(
    world: World, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    accounts = _site_of_five(world)
    computation = _computation(world)
    started = _state(computation).progressed_at
    with (
        world.a.active(),
        mock.patch.object(periods, "COMPUTE_CHUNK", 2),
        mock.patch.object(periods, "_write_periods", _killed_after(1)),
        pytest.raises(WorkerKilled),
    ):
        run_period_computation(computation.pk)
    killed = _state(computation)
    # The first chunk (two accounts) committed with its figures; the second rolled back.
    assert (killed.state, killed.cursor, killed.done, killed.computed) == (
        ComputationState.RUNNING, accounts[1].pk, 2, 2,
    )  # fmt: skip
    assert killed.progressed_at > started and not killed.stalled
    assert set(_periods(world)) == {accounts[0].number, accounts[1].number}
    first_written = PeriodConsumption.dangerously_unscoped.get(account=accounts[0]).computed_at

    _age(computation, 6)
    assert _state(computation).stalled
    with (
        world.a.active(),
        mock.patch.object(periods, "COMPUTE_CHUNK", 2),
        django_capture_on_commit_callbacks(execute=True),  # the task runs as it exits
    ):
        resume_period_computation(world.a.system, computation.pk)
    done = _state(computation)
    assert (done.state, done.done, done.computed, done.held_back) == ("done", 5, 3, 2)
    assert not done.stalled
    # Resumed after the first chunk: its rows were not computed again.
    assert PeriodConsumption.dangerously_unscoped.get(account=accounts[0]).computed_at == (
        first_written
    )
    resumed = _periods(world)

    with world.a.active():  # the same period computed from scratch, never interrupted
        again = start_period_computation(world.a.system, world.a.sites[0], "2026-10")
        run_period_computation(again.pk)
    calm = _state(again)
    assert (calm.computed, calm.held_back) == (done.computed, done.held_back)
    assert _periods(world) == resumed
    assert resumed[accounts[2].number] == ("computed", 30)
    assert resumed[accounts[4].number][0] == "held_back"
    assert AuditEvent.dangerously_unscoped.filter(
        action="period.computation_resumed", object_id=computation.pk
    ).exists()


@override_settings(BARS_STALL_MINUTES=5)
def test_a_computation_still_moving_or_ended_is_not_started_again(
    world: World, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    _site_of_five(world)
    computation = _computation(world)
    _age(computation, 4)
    with (
        world.a.active(),
        django_capture_on_commit_callbacks() as queued,
        pytest.raises(ValidationError) as moving,
    ):
        resume_period_computation(world.a.system, computation.pk)
    assert moving.value.code == "not_stalled" and not queued
    with world.a.active():
        run_period_computation(computation.pk)
    _age(computation, 60)
    assert not _state(computation).stalled  # done: nothing to wait for
    with world.a.active(), pytest.raises(ValidationError) as ended:
        resume_period_computation(world.a.system, computation.pk)
    assert ended.value.code == "not_running"
    assert not AuditEvent.dangerously_unscoped.filter(action="period.computation_resumed").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_tasks_of_one_computation_at_once_write_and_count_each_chunk_once(
    world: World,
) -> None:
    """Started again while its first worker was only slow: both tasks read the same position
    and compute the same first chunk; the one that moves the cursor first writes it, the other
    carries on from there."""
    _site_of_five(world)
    computation = _computation(world)
    both_read = threading.Barrier(2, timeout=20)
    first_read = threading.local()
    real_position = computations._StoredCheckpoint.position
    real_write = periods._write_periods
    written: list[int] = []

    def position(checkpoint: Any) -> tuple[int, int, int]:
        found = real_position(checkpoint)
        if not getattr(first_read, "done", False):
            first_read.done = True
            both_read.wait()  # each task has read where the computation stands
        return found

    def write(rows: list[PeriodConsumption]) -> None:
        written.append(rows[0].account_id)
        real_write(rows)

    with (
        mock.patch.object(periods, "COMPUTE_CHUNK", 1),
        mock.patch.object(computations._StoredCheckpoint, "position", position),
        mock.patch.object(periods, "_write_periods", write),
    ):
        _results, errors = run_together(
            2, lambda _index: run_period_computation(computation.pk), world.a.tenant
        )
    assert errors == []
    done = _state(computation)
    assert (done.state, done.done, done.computed, done.held_back) == ("done", 5, 3, 2)
    assert len(_periods(world)) == 5
    assert sorted(written) == sorted(set(written)) and len(written) == 5  # each chunk once
