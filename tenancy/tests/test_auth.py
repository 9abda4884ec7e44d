"""Staff login and logout, lockout after repeated failures, API tokens, production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from axes.models import AccessAttempt
from cryptography.fernet import Fernet
from django.db.models import Sum
from django.test import Client

from tenancy.audit import AuditAction
from tenancy.models import AuditEvent, User
from tenancy.roles import Role
from tests.world import PASSWORD, World

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db


def test_the_login_page_speaks_chinese_by_default_and_english_on_request(world: World) -> None:
    chinese = Client().get("/login/")
    assert chinese.status_code == 200
    assert "员工登录" in chinese.content.decode()
    english = Client(headers={"accept-language": "en"}).get("/login/")
    assert "Staff login" in english.content.decode()
    switched = Client()
    switched.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert "Staff login" in switched.get("/login/").content.decode()


def test_a_staff_login_opens_the_console_and_is_audited(world: World) -> None:
    client = Client()
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/console/"
    home = client.get("/console/")
    assert "Tenant A" in home.content.decode()
    assert AuditEvent.dangerously_unscoped.filter(
        action=AuditAction.LOGIN, actor_id=world.alice.pk
    ).exists()
    client.post("/logout/")
    assert AuditEvent.dangerously_unscoped.filter(
        action=AuditAction.LOGOUT, actor_id=world.alice.pk
    ).exists()
    assert client.get("/console/").status_code == 302


def _fail(client: Client, username: str, times: int = 1) -> int:
    status = 0
    for _attempt in range(times):
        answer = client.post("/login/", {"username": username, "password": "wrong-password"})
        status = answer.status_code
    return status


def test_five_wrong_passwords_lock_the_user_from_that_address_until_an_administrator_unlocks(
    world: World,
) -> None:
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    assert _fail(attacker, "bob", 4) == 200
    response = attacker.post("/login/", {"username": "bob", "password": "wrong-password"})
    assert response.status_code == 429 and "锁定" in response.content.decode()
    locked = attacker.post("/login/", {"username": "bob", "password": PASSWORD})
    assert locked.status_code == 429, "the right password must not open a locked pair"
    from_elsewhere = Client(REMOTE_ADDR="10.9.9.9")
    opened = from_elsewhere.post("/login/", {"username": "bob", "password": PASSWORD})
    assert opened.status_code == 302, "five requests must not lock bob out everywhere"

    alice = world.client_for(world.alice)
    assert alice.post(f"/api/v1/staff/{world.bob.pk}/unlock/").status_code == 204
    assert attacker.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    assert AuditEvent.dangerously_unscoped.filter(action=AuditAction.STAFF_UNLOCKED).exists()


def test_a_locked_clients_attempts_do_not_count_as_more_failures(world: World) -> None:
    client = Client(REMOTE_ADDR="10.0.0.2")
    _fail(client, "bob", 5)
    for _attempt in range(3):
        assert client.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 429
    assert _fail(client, "bob", 3) == 429
    failures = AccessAttempt.objects.filter(username="bob").aggregate(n=Sum("failures_since_start"))
    assert failures["n"] == 5


def test_a_new_user_agent_does_not_reset_the_lock(world: World) -> None:
    statuses = [
        Client(REMOTE_ADDR="10.0.0.3", HTTP_USER_AGENT=f"agent-{n}")
        .post("/login/", {"username": "bob", "password": "wrong-password"})
        .status_code
        for n in range(6)
    ]
    assert statuses == [200] * 4 + [429, 429]


def test_one_address_trying_many_user_names_is_locked_at_its_own_higher_limit(
    world: World,
) -> None:
    office = Client(REMOTE_ADDR="10.0.0.4")
    for index in range(12):  # twelve cashiers behind one NAT address, four typos each: 48
        assert _fail(office, f"cashier{index}", 4) == 200
    opened = office.post("/login/", {"username": "alice", "password": PASSWORD})
    assert opened.status_code == 302, "an office behind one address must not lock itself out"
    sprayer = Client(REMOTE_ADDR="10.0.0.66")
    for index in range(50):
        sprayer.post("/login/", {"username": f"guess{index}", "password": "123456"})
    refused = sprayer.post("/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429


def test_one_user_name_guessed_from_many_addresses_is_locked_everywhere(world: World) -> None:
    for address in range(20):
        assert _fail(Client(REMOTE_ADDR=f"10.1.0.{address}"), "bob") in (200, 429)
    fresh = Client(REMOTE_ADDR="10.2.0.1")
    assert fresh.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 429
    assert fresh.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_a_login_clears_only_that_user_names_failures_from_that_address(world: World) -> None:
    """An insider with a valid account must not wipe the failures their address ran up
    against someone else by logging in to their own account."""
    insider = Client(REMOTE_ADDR="10.0.0.5")
    assert _fail(insider, "bob", 4) == 200
    assert insider.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    insider.post("/logout/")
    assert _fail(insider, "bob") == 429


def test_an_api_token_authenticates_until_it_is_revoked_or_rotated(world: World) -> None:
    client_row, token = world.a.api_client((Role.CASHIER, None))
    api = Client()
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Token {token}"}
    assert api.get("/api/v1/sites/", **headers).status_code == 200
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    alice = world.client_for(world.alice)
    new_token = alice.post(f"/api/v1/api-clients/{client_row.pk}/rotate-token/").json()["token"]
    refused = api.get("/api/v1/sites/", **headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {new_token}").status_code == 200

    assert alice.delete(f"/api/v1/api-clients/{client_row.pk}/").status_code == 204
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {new_token}").status_code == 401


def test_the_token_is_shown_once_and_only_its_hash_is_stored(world: World) -> None:
    alice = world.client_for(world.alice)
    created = alice.post(
        "/api/v1/api-clients/",
        {"name": "bank-gateway", "grants": [{"role": "cashier", "site": None}]},
        format="json",
    ).json()
    token = created["token"]
    assert token.startswith("bars_") and len(token) > 40
    listed = alice.get(f"/api/v1/api-clients/{created['id']}/").json()
    assert listed["token"] is None and listed["key_prefix"] == token[5:13]
    stored = AuditEvent.dangerously_unscoped.filter(action=AuditAction.API_CLIENT_CREATED).last()
    assert stored is not None
    assert token not in str(stored.after)


def test_requests_without_credentials_get_401_with_the_error_body(world: World) -> None:
    response = Client().get("/api/v1/sites/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    garbage = Client().get("/api/v1/sites/", HTTP_AUTHORIZATION="Token not-a-token")
    assert garbage.status_code == 401


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key not in {"DATABASE_URL"}
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS="billing.example.com",
        DJANGO_FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/bars_prodcheck",
        REDIS_URL="redis://127.0.0.1:6379/13",
        BARS_VAR_DIR=str(ROOT / "var"),
    )
    env.update(extra)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_FIELD_ENCRYPTION_KEY"]
)
def test_production_refuses_to_start_without_its_keys(missing: str) -> None:
    env = _production_env()
    env.pop(missing)
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_switching_a_tenant_off_in_the_admin_refuses_its_tokens_at_once(world: World) -> None:
    operator = User.objects.create_superuser("operator", password=PASSWORD)
    _client_row, token = world.a.api_client((Role.CASHIER, None))
    api = Client()
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    admin = Client()
    admin.force_login(operator)
    tenant = world.a.tenant
    response = admin.post(
        f"/admin/tenancy/tenant/{tenant.pk}/change/",
        {
            "name": tenant.name,
            "slug": tenant.slug,
            "time_zone": tenant.time_zone,
            "currency": tenant.currency,
            "language": tenant.language,
            "payment_term_days": tenant.payment_term_days,
            "reading_interval_minutes": tenant.reading_interval_minutes,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert api.get("/api/v1/sites/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401
