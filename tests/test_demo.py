"""The embedded demo: seeding twice changes nothing, and the demo server starts on SQLite with
in-process tasks and answers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client

from billing.models import BillRun, FlaggedBill, ReviewState, RunState
from console.demo import DEMO_PASSWORD, DEMO_READING_MINUTES, DEMO_STAFF, seed_demo
from customers.models import Account, Contact, Customer
from gateway_bridge.testing import free_port_range
from tenancy.context import use_tenant
from tenancy.models import AuditEvent, CalendarDay, RoleGrant, Site, User
from tenancy.roles import Role
from verification.models import ItemState, LineLoss, VerificationItem

ROOT = Path(__file__).resolve().parent.parent


def _counts() -> tuple[int, ...]:
    return tuple(
        getattr(model, "dangerously_unscoped", model.objects).count()
        for model in (Site, User, RoleGrant, Customer, Account, Contact, CalendarDay)
    )


@pytest.mark.django_db
def test_seeding_twice_changes_nothing_and_every_role_can_log_in(client: Client) -> None:
    first = seed_demo()
    counts = _counts()
    events = AuditEvent.dangerously_unscoped.count()
    second = seed_demo()
    assert _counts() == counts
    assert second.accounts == first.accounts and len(first.accounts) == 5
    assert AuditEvent.dangerously_unscoped.count() == events + 1  # only the token re-issue
    assert {staff.role for staff in DEMO_STAFF} == set(Role.values)
    for staff in DEMO_STAFF:
        response = client.post("/login/", {"username": staff.username, "password": DEMO_PASSWORD})
        assert response.status_code == 302, staff.username
        client.post("/logout/")
    response = client.get(
        f"/api/v1/accounts/{first.accounts[0]}/", HTTP_AUTHORIZATION=f"Token {second.api_token}"
    )
    assert response.status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_demo_starts_on_its_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["BARS_VAR_DIR"] = str(tmp_path)
    env["DEMO_SIM_BASE_PORT"] = str(free_port_range(2))
    port = _free_port()

    def manage(*args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
        )

    manage("migrate", "--noinput")
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    ).stdout
    token = re.search(r"bars_[\w-]+", seeded).group(0)  # type: ignore[union-attr]
    server = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        login = None
        deadline = time.monotonic() + 60
        while login is None and time.monotonic() < deadline and server.poll() is None:
            try:
                login = urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5).read()
            except OSError:
                time.sleep(0.3)
        answered = time.monotonic()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
        completeness = []
        while time.monotonic() - answered < 60:
            completeness = _current_completeness(port, token)
            if completeness and all(row["read"] == row["meters"] for row in completeness):
                break
            time.sleep(1)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert login is not None, output
    assert "员工登录" in login.decode()
    assert b'"ok"' in health
    assert "In-process scheduler running" in output
    assert (tmp_path / "bars.sqlite3").exists()
    assert [row["meters"] for row in completeness] == [6, 2], output
    assert all(row["read"] == row["meters"] for row in completeness), completeness


def _current_completeness(port: int, token: str) -> list[dict]:
    """Each site's meters read for the current slot, from the API."""
    slot = datetime.now(UTC).replace(second=0, microsecond=0)
    slot -= timedelta(minutes=slot.minute % DEMO_READING_MINUTES)
    request = urllib.request.Request(  # noqa: S310 (loopback http)
        f"http://127.0.0.1:{port}/api/v1/reading-completeness/?slot={slot.isoformat()}".replace(
            "+", "%2B"
        ),
        headers={"Authorization": f"Token {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.mark.django_db
def test_the_demo_is_alive_from_the_first_page(client: Client) -> None:
    """Last month billed with one bill flagged for review, suspect readings waiting, charts
    with data, and the meters read every minute."""
    result = seed_demo()
    with use_tenant(result.tenant):
        runs = list(BillRun.objects.order_by("period"))
        assert runs and all(run.state == RunState.ISSUED for run in runs)
        assert FlaggedBill.objects.filter(state=ReviewState.OPEN).count() == 1
        assert VerificationItem.objects.filter(state=ItemState.OPEN).count() >= 2
        assert LineLoss.objects.exists()
    assert result.tenant.reading_interval_minutes == 1
    client.force_login(User.objects.get(username="demo-verifier"))
    panels = client.get("/console/").context["panels"]
    assert panels["verify"]["open"] >= 2 and panels["verify"]["flagged_bills"] == 1
    assert len(panels["verify"]["trend_chart"]["xAxis"]["data"]) == 3
