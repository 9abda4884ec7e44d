"""Staff who handle money sign in with a second factor (TOTP), enrolled with a QR code, with
recovery codes; API clients are not affected."""

from __future__ import annotations

import base64
import re
import time

import pytest
from django.test import Client
from django_otp.oath import totp

from tenancy.audit import AuditAction
from tenancy.models import AuditEvent, Tenant, User
from tenancy.permissions import second_factor_roles
from tenancy.roles import Role
from tests.world import PASSWORD, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def required(world: World) -> Tenant:
    tenant = world.a.tenant
    tenant.require_second_factor = True
    tenant.save(update_fields=["require_second_factor"])
    return tenant


def _sign_in(user: User) -> Client:
    client = Client(headers={"accept-language": "en"})
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def _code(secret: str, drift: int = 0) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=drift):06d}"


def _enrol(client: Client) -> tuple[str, list[str]]:
    page = client.get("/two-factor/").content.decode()
    assert "<svg" in page, "the enrolment page shows a QR code"
    secret = re.search(r'<code id="otp-secret">([A-Z2-7]+)</code>', page)
    assert secret is not None
    done = client.post("/two-factor/", {"code": _code(secret.group(1)), "next": "/console/"})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>(\d{8})</code></li>", done.content.decode())
    return secret.group(1), codes


def test_the_roles_that_handle_money_and_administrators_need_it() -> None:
    assert {Role.TENANT_ADMIN, Role.VERIFIER} <= second_factor_roles()
    assert Role.METER_READER not in second_factor_roles()


def test_a_money_role_enrols_with_a_qr_code_and_then_reaches_the_console(
    world: World, required: Tenant
) -> None:
    verifier = world.a.staff((Role.VERIFIER, None))
    client = _sign_in(verifier)
    held = client.get("/console/")
    assert held.status_code == 302 and held["Location"].startswith("/two-factor/")
    refused = client.get("/api/v1/bills/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "second_factor_required"
    wrong = client.post("/two-factor/", {"code": "000000"})
    assert "not right" in wrong.content.decode()
    hurried = client.post("/two-factor/", {"code": "000000"})
    assert "wait a few seconds" in hurried.content.decode()  # each wrong code doubles the wait
    time.sleep(1.1)
    _secret, codes = _enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/console/").status_code == 200
    assert client.get("/api/v1/bills/").status_code == 200
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.SECOND_FACTOR_ENROLLED)
    assert event.actor_id == verifier.pk and not set(codes) & set(str(event.after).split("'"))


def test_a_later_sign_in_needs_a_code_from_the_app_or_a_recovery_code_once(
    world: World, required: Tenant
) -> None:
    verifier = world.a.staff((Role.VERIFIER, None))
    secret, codes = _enrol(_sign_in(verifier))

    by_app = _sign_in(verifier)
    assert by_app.get("/console/").status_code == 302
    # The enrolment used this step's code; the next step's is accepted (one step of drift).
    assert by_app.post("/two-factor/", {"code": _code(secret, drift=1)}).status_code == 302
    assert by_app.get("/console/").status_code == 200

    by_recovery = _sign_in(verifier)
    assert by_recovery.post("/two-factor/", {"code": codes[0]}).status_code == 302
    assert by_recovery.get("/console/").status_code == 200
    used = AuditEvent.dangerously_unscoped.get(action=AuditAction.SECOND_FACTOR_RECOVERY_USED)
    assert used.after == {"recovery_codes_left": 9}

    again = _sign_in(verifier)
    refused = again.post("/two-factor/", {"code": codes[0]})
    assert refused.status_code == 200 and "not right" in refused.content.decode()
    assert again.get("/console/").status_code == 302


def test_other_roles_api_clients_and_tenants_that_do_not_require_it_are_not_asked(
    world: World, required: Tenant
) -> None:
    reader = world.a.staff((Role.METER_READER, None))
    assert _sign_in(reader).get("/console/").status_code == 200
    _client, token = world.a.api_client((Role.TENANT_ADMIN, None))
    answer = Client().get("/api/v1/bills/", HTTP_AUTHORIZATION=f"Token {token}")
    assert answer.status_code == 200
    other = world.b.staff((Role.TENANT_ADMIN, None))  # tenant B does not require it
    assert _sign_in(other).get("/console/").status_code == 200


def test_an_administrator_resets_a_lost_phone_and_the_user_enrols_again(
    world: World, required: Tenant
) -> None:
    verifier = world.a.staff((Role.VERIFIER, None))
    _enrol(_sign_in(verifier))
    admin_user = world.a.staff((Role.TENANT_ADMIN, None))
    admin = _sign_in(admin_user)
    assert admin.post(f"/api/v1/staff/{verifier.pk}/reset-second-factor/").status_code == 403
    _enrol(admin)
    reset = admin.post(f"/api/v1/staff/{verifier.pk}/reset-second-factor/")
    assert reset.status_code == 204
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.SECOND_FACTOR_RESET)
    assert (event.actor_id, event.after) == (admin_user.pk, {"devices": 2})
    page = _sign_in(verifier).get("/two-factor/").content.decode()
    assert 'id="otp-secret"' in page, "after a reset the next sign-in enrols a new app"
