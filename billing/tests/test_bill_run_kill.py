"""A bill run killed with SIGKILL in the middle of pricing and again in the middle of issuing,
then started again, ends with the same bills and ledger, to the fen, as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from billing.models import BillRun
from billing.tests.test_bill_runs import PERIOD, Billing, _bills_and_ledger
from ledger.checks import check_ledger
from tests.workers import ROOT, subprocess_env
from tests.world import World

ACCOUNTS = 60


def _command(billing: Billing, *extra: str) -> list[str]:
    return [
        sys.executable, "manage.py", "bill_run", "--tenant", billing.world.a.tenant.slug,
        "--site", billing.site.code, "--period", PERIOD, "--chunk", "1", *extra,
    ]  # fmt: skip


def _kill_when(billing: Billing, command: list[str], field: str) -> int:
    """Start the command, SIGKILL it once the run shows some progress in ``field``; returns the
    progress seen in the database after the kill."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its worker processes die with it
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = BillRun.dangerously_unscoped.filter(site=billing.site).first()
        if run is not None and getattr(run, field) >= 3:
            os.killpg(process.pid, signal.SIGKILL)
            break
        if process.poll() is not None:
            raise AssertionError(f"finished before it could be killed: {process.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return getattr(BillRun.dangerously_unscoped.get(site=billing.site), field)


def _finish(command: list[str]) -> None:
    done = subprocess.run(
        command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_and_restarted_bill_run_matches_an_uninterrupted_one(
    world: World, workers: int
) -> None:
    calm = Billing(world, world.a.sites[0])
    killed = Billing(world, world.a.site())
    for index in range(ACCOUNTS):
        for billing in (calm, killed):
            premise = world.a.premise(billing.site, room=f"R{index:03d}")
            billing.account(str(37 * index + 10 + index % 7), premise=premise)
    calm.approve(calm.run())

    starter = ["--as", killed.starter.username, "--workers", str(workers)]
    approver = ["--approve", "--as", killed.approver.username]
    priced_at_kill = _kill_when(killed, _command(killed, *starter), "done")
    assert 0 < priced_at_kill < ACCOUNTS
    _finish(_command(killed, *starter))
    issued_at_kill = _kill_when(killed, _command(killed, *approver), "issued")
    assert 0 < issued_at_kill < ACCOUNTS
    _finish(_command(killed, *approver))

    run = BillRun.dangerously_unscoped.get(site=killed.site)
    assert (run.state, run.bills, run.issued, run.shards) == ("issued", ACCOUNTS, ACCOUNTS, workers)
    assert _bills_and_ledger(killed.site.pk) == _bills_and_ledger(calm.site.pk)
    assert check_ledger(world.a.tenant) == []
