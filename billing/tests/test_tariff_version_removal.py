"""Removing a mistyped tariff version (``DELETE /api/v1/tariff-versions/{id}/`` with a reason,
and the console's "Remove" on the tariff page): only before it takes effect and while no bill
(a draft included) was priced with it; the audit event keeps what it held."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from billing.models import Bill, TariffVersion
from billing.tariffs import services as tariff_services
from billing.tests.test_bill_runs import Billing
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tests.world import World

pytestmark = pytest.mark.django_db

MISTYPED = {"energy": {"kind": "flat", "price": "5.6000"}}  # 0.56 with the point slipped


def _future_version(world: World, days: int = 30) -> TariffVersion:
    tariff = world.a.tariff()
    with world.a.active():
        return tariff_services.add_tariff_version(
            world.a.system,
            tariff,
            effective_from=world.a.tenant.local_today() + timedelta(days=days),
            spec=MISTYPED,
            note="2026 调价",
        )


def _delete(world: World, version: TariffVersion, user: Any = None, **body: Any) -> Any:
    client = world.client_for(user or world.alice)
    return client.delete(
        f"/api/v1/tariff-versions/{version.pk}/",
        body or {"reason": "单价小数点错位"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )


def _exists(version: TariffVersion) -> bool:
    return TariffVersion.dangerously_unscoped.filter(pk=version.pk).exists()


def test_a_future_version_is_removed_and_the_audit_keeps_its_prices(world: World) -> None:
    version = _future_version(world)
    response = _delete(world, version)
    assert response.status_code == 204
    assert not _exists(version)
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.TARIFF_VERSION_REMOVED)
    assert event.object_id == str(version.pk)
    before = event.before or {}
    assert before["spec"] == MISTYPED
    assert before["effective_from"] == version.effective_from.isoformat()
    assert before["note"] == "2026 调价"
    assert event.after == {"reason": "单价小数点错位"}


def test_a_version_in_effect_today_is_refused_with_409(world: World) -> None:
    version = _future_version(world, days=0)
    response = _delete(world, version)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_in_effect"
    assert _exists(version)
    assert not AuditEvent.dangerously_unscoped.filter(
        action=AuditAction.TARIFF_VERSION_REMOVED
    ).exists()


def test_a_version_a_draft_bill_was_priced_with_is_refused_with_409(world: World) -> None:
    billing = Billing(world)
    account = billing.account(None, opened_on=date(2026, 1, 1))
    billing.period(account, "200", "2026-09")
    billing.run("2026-09")
    version = _future_version(world)
    with world.a.active():
        draft = Bill.objects.get(account=account)
        assert draft.state == "draft"
    # As if the run had reached the version's days (a bill's days can run past a meter's clock).
    Bill.dangerously_unscoped.filter(pk=draft.pk).update(tariff_versions=[version.pk])
    response = _delete(world, version)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "version_priced"
    assert _exists(version)


def test_a_removal_needs_a_reason(world: World) -> None:
    version = _future_version(world)
    response = _delete(world, version, reason="")
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]
    assert _exists(version)


def test_another_tenant_gets_404_and_the_version_stays(world: World) -> None:
    version = _future_version(world)
    assert _delete(world, version, user=world.mallory).status_code == 404
    assert _exists(version)


def test_staff_of_one_site_or_a_cashier_may_not_remove_a_version(world: World) -> None:
    version = _future_version(world)
    assert _delete(world, version, user=world.carol).status_code == 403
    assert _delete(world, version, user=world.bob).status_code == 403
    assert _exists(version)


# --- the console ------------------------------------------------------------------------------


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_the_tariff_page_offers_remove_only_beside_a_version_yet_to_start(world: World) -> None:
    version = _future_version(world)
    remove_url = f"/console/tariffs/{version.tariff_id}/versions/{version.pk}/remove/"
    page = _client(world.alice).get(f"/console/tariffs/{version.tariff_id}/")
    html = page.content.decode()
    assert html.count("/remove/") == 1
    assert remove_url in html
    assert (
        "/remove/"
        not in _client(world.bob).get(f"/console/tariffs/{version.tariff_id}/").content.decode()
    )


def test_the_console_removes_a_version_after_confirming_with_a_reason(world: World) -> None:
    version = _future_version(world)
    url = f"/console/tariffs/{version.tariff_id}/versions/{version.pk}/remove/"
    client = _client(world.alice)
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Remove the version of" in confirm.content.decode()
    assert client.post(url, {"reason": ""}).status_code == 400
    assert _exists(version)
    response = client.post(url, {"reason": "单价小数点错位"})
    assert response.status_code == 302
    assert not _exists(version)


def test_the_console_shows_why_a_version_in_effect_stays(world: World) -> None:
    version = _future_version(world, days=0)
    url = f"/console/tariffs/{version.tariff_id}/versions/{version.pk}/remove/"
    response = _client(world.alice).post(url, {"reason": "x"})
    assert response.status_code == 400
    assert "in effect since" in response.content.decode()
    assert _exists(version)


def test_the_console_answers_404_for_another_tenants_version(world: World) -> None:
    version = _future_version(world)
    url = f"/console/tariffs/{version.tariff_id}/versions/{version.pk}/remove/"
    assert _client(world.mallory).get(url).status_code == 404
    assert _client(world.mallory).post(url, {"reason": "x"}).status_code == 404
    assert _exists(version)
