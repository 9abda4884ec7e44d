"""A bill run whose worker died: each committed chunk records when the run last made progress,
a run with no progress for longer than the stall threshold counts as stalled (the API says so),
and starting it again resumes it where it stopped, to the same bills and ledger, to the fen, as
a run never interrupted; twice at once it still bills each account once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone

from billing.models import Bill, BillRun, RunState
from billing.runs import services as run_services
from billing.runs.services import (
    approve_run,
    issue_bill_run,
    open_bill_run,
    price_bill_run,
    resume_bill_run,
)
from billing.tests.test_bill_runs import PERIOD, Billing, Crash, _bills_and_ledger
from tenancy.models import AuditEvent
from tests.concurrency import run_together
from tests.world import World

if TYPE_CHECKING:
    from pytest_django import DjangoCaptureOnCommitCallbacks

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing(world: World) -> Billing:
    return Billing(world)


def _twin_sites(world: World, accounts: int = 7) -> tuple[Billing, Billing]:
    """Two sites with the same accounts and consumption: one billed without a hitch, the other
    interrupted; their bills must come out the same."""
    calm, stalled = Billing(world, world.a.sites[0]), Billing(world, world.a.site())
    for index in range(accounts):
        for billing in (calm, stalled):
            premise = world.a.premise(billing.site, room=f"R{index}")
            billing.account(str(100 + 173 * index), premise=premise)
    return calm, stalled


def _age(run: BillRun, minutes: int) -> None:
    """The run last made progress ``minutes`` ago (its worker died then)."""
    BillRun.dangerously_unscoped.filter(pk=run.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=minutes)
    )


def _crash_after(chunks: int) -> Any:
    """A progress callback that kills the worker after ``chunks`` committed chunks."""
    seen = iter(range(1000))

    def crash(_run: BillRun) -> None:
        if next(seen) + 1 >= chunks:
            raise Crash

    return crash


def _state(run: BillRun) -> BillRun:
    return BillRun.dangerously_unscoped.get(pk=run.pk)


def test_each_committed_chunk_records_the_runs_progress_and_a_rolled_back_one_does_not(
    billing: Billing,
) -> None:
    for _ in range(3):
        billing.account("200")
    times: list[datetime] = []
    with billing.world.a.active():
        run = open_bill_run(billing.as_(billing.starter), billing.site, PERIOD)
        opened = run.progressed_at
        real = run_services.price_chunk
        calls = iter(range(100))

        def second_chunk_fails(*args: Any) -> Any:
            result = real(*args)  # the chunk's bills and the run's figures are written...
            if next(calls) == 1:
                raise Crash  # ...and rolled back with its transaction
            return result

        with (
            mock.patch.object(run_services, "price_chunk", second_chunk_fails),
            pytest.raises(Crash),
        ):
            price_bill_run(
                billing.as_(billing.starter),
                run.pk,
                chunk=1,
                progress=lambda run: times.append(run.progressed_at),
            )
    after_crash = _state(run)
    assert len(times) == 1 and times[0] > opened
    assert (after_crash.done, after_crash.progressed_at) == (1, times[0])
    assert Bill.dangerously_unscoped.filter(run=run).count() == 1
    with billing.world.a.active():
        price_bill_run(
            billing.as_(billing.starter),
            run.pk,
            chunk=1,
            progress=lambda run: times.append(run.progressed_at),
        )
    assert times == sorted(times) and len(times) == 3
    assert _state(run).done == 3


@override_settings(BARS_STALL_MINUTES=5)
def test_a_run_is_stalled_after_the_threshold_without_progress_while_pricing_or_issuing(
    billing: Billing,
) -> None:
    billing.account("200")
    with billing.world.a.active():
        run = open_bill_run(billing.as_(billing.starter), billing.site, PERIOD)
    _age(run, 4)
    assert not _state(run).stalled  # four minutes: maybe a slow chunk
    _age(run, 6)
    assert _state(run).stalled
    with billing.world.a.active():
        price_bill_run(billing.as_(billing.starter), run.pk)
    assert not _state(run).stalled  # the chunk moved it
    _age(run, 60)
    assert not _state(run).stalled  # drafted: it waits for a person, not for a worker
    with billing.world.a.active():
        approve_run(billing.as_(billing.approver), run.pk)
    assert _state(run).state == RunState.ISSUING and not _state(run).stalled  # approval moved it
    _age(run, 6)
    assert _state(run).stalled


@override_settings(BARS_STALL_MINUTES=5)
def test_the_api_run_detail_gives_the_last_progress_and_whether_it_stalled(
    billing: Billing,
) -> None:
    billing.account("200")
    with billing.world.a.active():
        run = open_bill_run(billing.as_(billing.starter), billing.site, PERIOD)
    _age(run, 7)
    alice = billing.world.client_for(billing.world.alice)
    body = alice.get(f"/api/v1/bill-runs/{run.pk}/").json()
    assert body["stalled"] is True
    assert datetime.fromisoformat(body["progressed_at"]) == _state(run).progressed_at
    with billing.world.a.active():
        price_bill_run(billing.as_(billing.starter), run.pk)
    body = alice.get(f"/api/v1/bill-runs/{run.pk}/").json()
    assert (body["state"], body["stalled"]) == ("drafted", False)
    mallory = billing.world.client_for(billing.world.mallory)
    assert mallory.get(f"/api/v1/bill-runs/{run.pk}/").status_code == 404


@pytest.mark.usefixtures("eager_tasks")
def test_a_stalled_run_started_again_in_pricing_and_in_issuing_ends_as_an_uninterrupted_one(
    world: World, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    calm, stalled = _twin_sites(world)
    calm.approve(calm.run(chunk=2))
    starter, approver = stalled.as_(stalled.starter), stalled.as_(stalled.approver)
    with world.a.active():
        run = open_bill_run(starter, stalled.site, PERIOD)
        with pytest.raises(Crash):  # the worker dies after two chunks of two accounts
            price_bill_run(starter, run.pk, chunk=2, progress=_crash_after(2))
    assert (_state(run).state, _state(run).done) == (RunState.RUNNING, 4)
    _age(run, 30)
    with world.a.active(), django_capture_on_commit_callbacks(execute=True):
        resume_bill_run(starter, run.pk)  # the tasks run in this process (eager)
    assert (_state(run).state, _state(run).done, _state(run).bills) == (RunState.DRAFTED, 7, 7)

    with world.a.active():
        approve_run(approver, run.pk)
        with pytest.raises(Crash):  # and again after issuing one chunk
            issue_bill_run(approver, run.pk, chunk=3, progress=_crash_after(1))
    assert (_state(run).state, _state(run).issued) == (RunState.ISSUING, 3)
    _age(run, 30)
    with world.a.active(), django_capture_on_commit_callbacks(execute=True):
        resume_bill_run(starter, run.pk)
    assert (_state(run).state, _state(run).issued) == (RunState.ISSUED, 7)
    assert _bills_and_ledger(stalled.site.pk) == _bills_and_ledger(calm.site.pk)
    resumed = AuditEvent.dangerously_unscoped.filter(action="bill_run.resumed", object_id=run.pk)
    assert [(event.after or {}).get("state") for event in resumed.order_by("id")] == [
        "running", "issuing",
    ]  # fmt: skip


def test_a_run_still_moving_or_past_its_stages_is_not_started_again(
    billing: Billing, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    billing.account("200")
    starter = billing.as_(billing.starter)
    with billing.world.a.active():
        run = open_bill_run(starter, billing.site, PERIOD)
        with (
            django_capture_on_commit_callbacks() as queued,
            pytest.raises(ValidationError) as moving,
        ):
            resume_bill_run(starter, run.pk)
        assert moving.value.code == "not_stalled" and not queued
        price_bill_run(starter, run.pk)
    _age(run, 60)
    with billing.world.a.active(), pytest.raises(ValidationError) as drafted:
        resume_bill_run(starter, run.pk)
    assert drafted.value.code == "not_active"
    assert not AuditEvent.dangerously_unscoped.filter(action="bill_run.resumed").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_started_again_while_its_first_worker_still_prices_bills_each_account_once(
    world: World,
) -> None:
    """The page offered "start again" because the worker looked dead, but it was only slow:
    the two workers price the same shard at once, chunk by chunk under its lock."""
    calm, stalled = _twin_sites(world, accounts=12)
    calm.run(chunk=1)
    starter = stalled.as_(stalled.starter)
    with world.a.active():
        run = open_bill_run(starter, stalled.site, PERIOD)
    _results, errors = run_together(
        2, lambda _index: price_bill_run(starter, run.pk, chunk=1), world.a.tenant
    )
    assert errors == []
    assert (_state(run).state, _state(run).done, _state(run).bills) == (RunState.DRAFTED, 12, 12)
    assert Bill.dangerously_unscoped.filter(run=run).values("account").distinct().count() == 12
    assert _bills_and_ledger(stalled.site.pk) == _bills_and_ledger(calm.site.pk)
