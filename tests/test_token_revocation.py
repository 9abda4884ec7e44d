"""Revoking, rotating and regranting an API client take effect at once in every web worker,
also without Redis (issue: with a cache in each worker's memory, 2 of 20 requests with a revoked
token still got 200 and a revoked token still created rows)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tenancy.roles import Role
from tests.workers import ROOT, free_port, subprocess_env
from tests.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 20


@pytest.fixture
def two_workers() -> Iterator[str]:
    """gunicorn with two worker processes on this test's database, with no Redis (the debug
    settings the demo uses), so each request may land on either worker."""
    port = free_port()
    env = subprocess_env(REDIS_URL="", DJANGO_DEBUG="1", BARS_LOG_LEVEL="WARNING")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--config",
            "gunicorn.conf.py",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"gunicorn stopped:\n{server.stdout.read() if server.stdout else ''}")
            try:
                urllib.request.urlopen(f"{base}/api/v1/", timeout=2)  # noqa: S310 - loopback
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _call(base: str, token: str, method: str, path: str, body: Any = None) -> int:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _statuses(base: str, token: str, path: str = "/api/v1/sites/") -> set[int]:
    return {_call(base, token, "GET", path) for _ in range(REQUESTS)}


def test_a_revoked_token_stops_working_in_every_worker_at_once(
    world: World, two_workers: str
) -> None:
    _admin, admin_token = world.a.api_client((Role.TENANT_ADMIN, None))
    client, token = world.a.api_client((Role.TENANT_ADMIN, None))
    assert _statuses(two_workers, token) == {200}  # both workers have served it
    revoked = _call(two_workers, admin_token, "DELETE", f"/api/v1/api-clients/{client.pk}/")
    assert revoked == 204
    assert _statuses(two_workers, token) == {401}
    created = {
        _call(
            two_workers,
            token,
            "POST",
            "/api/v1/calendar/",
            {"date": f"2026-12-{day:02d}", "kind": "holiday"},
        )
        for day in range(1, 4)
    }
    assert created == {401}


def test_a_rotated_token_stops_working_in_every_worker_at_once(
    world: World, two_workers: str
) -> None:
    _admin, admin_token = world.a.api_client((Role.TENANT_ADMIN, None))
    client, old = world.a.api_client((Role.TENANT_ADMIN, None))
    assert _statuses(two_workers, old) == {200}
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{two_workers}/api/v1/api-clients/{client.pk}/rotate-token/",
        method="POST",
        headers={"Authorization": f"Token {admin_token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        new = json.load(answer)["token"]
    assert _statuses(two_workers, old) == {401}
    assert _statuses(two_workers, new) == {200}


def test_fewer_grants_take_effect_in_every_worker_at_once(world: World, two_workers: str) -> None:
    _admin, admin_token = world.a.api_client((Role.TENANT_ADMIN, None))
    client, token = world.a.api_client((Role.TENANT_ADMIN, None))
    assert _statuses(two_workers, token, "/api/v1/api-clients/") == {200}
    changed = _call(
        two_workers,
        admin_token,
        "PATCH",
        f"/api/v1/api-clients/{client.pk}/",
        {"grants": [{"role": Role.METER_READER, "site": None}]},
    )
    assert changed == 200
    assert _statuses(two_workers, token, "/api/v1/api-clients/") == {403}
