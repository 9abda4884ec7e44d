"""``POST /api/v1/refunds/{id}/reveal/``: the customer's bank account of a transfer refund is
answered masked to everyone; whoever pays the approved transfer at its site asks for it in full,
and every reveal is in the audit trail (who, which refund, never the number). Anyone else is
refused, and so is a refund that is not an approved transfer waiting to be paid."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from collection.services.refunds import pay_refund, reject_refund, reveal_payee_bank_account
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db

FULL = "6222000011112222"  # the payee account tests.world gives a transfer refund
MASKED = "6222 **** **** 2222"
REFUNDS = "/api/v1/refunds/"


def _reveals() -> list[AuditEvent]:
    return list(
        AuditEvent.dangerously_unscoped.filter(
            action=AuditAction.REFUND_BANK_ACCOUNT_REVEALED
        ).order_by("id")
    )


def test_the_detail_shows_the_account_masked_even_to_whoever_pays_the_transfer(
    world: World,
) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    shown = world.client_for(world.alice).get(f"{REFUNDS}{refund.pk}/")
    assert shown.status_code == 200
    assert shown.json()["payee_bank_account"] == MASKED
    assert FULL not in shown.content.decode()
    assert _reveals() == []  # looking at the refund reveals nothing


def test_whoever_pays_the_transfer_reveals_it_and_each_reveal_is_audited(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    alice = world.client_for(world.alice)  # a tenant administrator: may pay refunds
    first = alice.post(f"{REFUNDS}{refund.pk}/reveal/")
    assert first.status_code == 200, first.content
    assert first.json() == {"id": refund.pk, "payee_bank_account": FULL, "payee_bank": ""}
    assert first["Cache-Control"] == "no-store"
    assert alice.post(f"{REFUNDS}{refund.pk}/reveal/").status_code == 200
    events = _reveals()
    assert len(events) == 2  # one event per reveal
    assert {(e.actor_kind, e.actor_id, e.actor_label) for e in events} == {
        ("staff", world.alice.pk, "alice")
    }
    assert {(e.object_type, e.object_id, e.site_id) for e in events} == {
        ("collection.refund", str(refund.pk), refund.site_id)
    }
    assert all(FULL not in repr((e.before, e.after)) for e in events)


def test_a_cashier_who_pays_at_the_counter_may_reveal_it(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    revealed = world.client_for(world.bob).post(f"{REFUNDS}{refund.pk}/reveal/")
    assert revealed.status_code == 200
    assert revealed.json()["payee_bank_account"] == FULL
    assert [event.actor_id for event in _reveals()] == [world.bob.pk]


@pytest.mark.parametrize("role", [Role.INSPECTOR, Role.COLLECTOR, Role.VERIFIER, Role.METER_READER])
def test_roles_that_pay_no_refund_cannot_reveal(world: World, role: str) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    user = world.a.staff((role, None))
    refused = world.client_for(user).post(f"{REFUNDS}{refund.pk}/reveal/")
    assert refused.status_code == 403
    assert FULL not in refused.content.decode()
    assert _reveals() == []


def test_staff_who_pay_refunds_at_another_site_cannot_reveal(world: World) -> None:
    a = world.a
    refund = a.refund(a.sites[0], state="approved", channel="bank_transfer")
    # Reads every site's refunds, pays only at the second site's counter.
    user = a.staff((Role.INSPECTOR, None), (Role.CASHIER, a.sites[1]))
    client = world.client_for(user)
    assert client.get(f"{REFUNDS}{refund.pk}/").json()["payee_bank_account"] == MASKED
    assert client.post(f"{REFUNDS}{refund.pk}/reveal/").status_code == 404
    assert world.client_for(world.carol).post(f"{REFUNDS}{refund.pk}/reveal/").status_code == 404
    assert _reveals() == []


def test_another_tenant_gets_404_and_reveals_nothing(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    refused = world.client_for(world.mallory).post(f"{REFUNDS}{refund.pk}/reveal/")
    assert refused.status_code == 404
    assert FULL not in refused.content.decode()
    assert _reveals() == []


def test_an_integration_cannot_reveal_even_with_a_paying_role(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    _client, token = world.a.api_client((Role.CASHIER, None))
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    refused = integration.post(f"{REFUNDS}{refund.pk}/reveal/")
    assert refused.status_code == 403
    assert _reveals() == []


def test_a_paid_refund_is_not_revealed_any_more(world: World) -> None:
    refund = world.a.refund(state="approved", channel="bank_transfer")
    with world.a.active():
        pay_refund(Principal.for_user(world.alice), refund, payment_reference="TRF-7")
    refused = world.client_for(world.alice).post(
        f"{REFUNDS}{refund.pk}/reveal/", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "refund_state",
        "message": "The full bank account is shown only while an approved refund waits for its "
        "transfer; this refund is paid.",
        "fields": {},
    }
    assert FULL not in refused.content.decode()
    assert _reveals() == []


def test_a_rejected_or_undecided_refund_is_not_revealed(world: World) -> None:
    waiting = world.a.refund(channel="bank_transfer")
    rejected = world.a.refund(channel="bank_transfer")
    with world.a.active():
        reject_refund(Principal.for_user(world.alice), rejected, "客户撤回")
    alice = world.client_for(world.alice)
    for refund in (waiting, rejected):
        refused = alice.post(f"{REFUNDS}{refund.pk}/reveal/")
        assert refused.status_code == 409, refund.state
        assert refused.json()["error"]["code"] == "refund_state"
    assert _reveals() == []


def test_a_cash_refund_has_no_bank_account_to_reveal(world: World) -> None:
    refund = world.a.refund(state="approved", channel="cash")
    refused = world.client_for(world.alice).post(f"{REFUNDS}{refund.pk}/reveal/")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "not_bank_transfer"
    assert _reveals() == []


def test_the_service_refuses_a_payer_of_another_site_whoever_calls_it(world: World) -> None:
    a = world.a
    refund = a.refund(a.sites[0], state="approved", channel="bank_transfer")
    elsewhere = Principal.for_user(a.staff((Role.CASHIER, a.sites[1])))
    with a.active(), pytest.raises(PermissionDenied):
        reveal_payee_bank_account(elsewhere, refund)
    assert _reveals() == []
