"""The demo on PostgreSQL does not exhaust the database however long it runs (issue: the
development server kept one connection per HTTP connection; after about 3,000 requests it
held 88 of the server's 100 connections and requests failed with "too many clients")."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection

from tenancy.roles import Role
from tests.workers import ROOT, free_port, subprocess_env
from tests.world import World

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 300


def _server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_the_demo_server_holds_no_connection_after_its_requests(world: World) -> None:
    _client, token = world.a.api_client((Role.TENANT_ADMIN, None))
    port = free_port()
    env = subprocess_env(REDIS_URL="", DJANGO_DEBUG="1", BARS_LOG_LEVEL="WARNING")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/sites/"
        request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - loopback
                break
            except OSError:
                assert time.monotonic() < deadline, "the development server did not start"
                time.sleep(0.2)
        statuses = set()
        for _ in range(REQUESTS):  # each on a connection (and a server thread) of its own
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                statuses.add(answer.status)
        assert statuses == {200}
        held = _server_connections()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert held <= 1, f"the server still holds {held} connections after {REQUESTS} requests"
