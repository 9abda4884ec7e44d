"""The audit trail: who did what, append-only, readable by inspectors and administrators."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from tenancy.audit import AuditAction, record_audit
from tenancy.models import AppendOnlyError, AuditEvent
from tenancy.roles import Role
from tests.world import World, identity_number

pytestmark = pytest.mark.django_db


def _events(world: World, **filters: Any) -> QuerySet[AuditEvent]:
    return AuditEvent.dangerously_unscoped.filter(tenant=world.a.tenant, **filters).order_by("id")


def test_a_write_through_the_api_names_the_staff_user_and_the_request(world: World) -> None:
    client = world.client_for(world.alice)
    response = client.post(
        "/api/v1/sites/",
        {"code": "N1", "name": "新站"},
        format="json",
        HTTP_X_REQUEST_ID="req-123",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 201
    event = _events(
        world, action=AuditAction.SITE_CREATED, object_id=str(response.json()["id"])
    ).get()
    assert (event.actor_kind, event.actor_id, event.actor_label) == (
        "staff",
        world.alice.pk,
        "alice",
    )
    assert event.request_id == "req-123" and response["X-Request-ID"] == "req-123"
    assert event.ip == "10.1.2.3"
    assert event.after is not None
    assert event.after["name"] == "新站" and event.site_id == response.json()["id"]


def test_a_write_with_a_token_names_the_api_client(world: World) -> None:
    client_row, token = world.a.api_client((Role.SITE_MANAGER, None))
    response = world.client_for(world.alice).post(
        "/api/v1/customers/",
        {"site": world.a.sites[0].pk, "kind": "person", "name": "李四"},
        format="json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert response.status_code == 201, response.content
    event = _events(world, action=AuditAction.CUSTOMER_REGISTERED).last()
    assert event is not None
    assert (event.actor_kind, event.actor_id) == ("api_client", client_row.pk)
    assert event.actor_label == client_row.name


def test_an_update_records_only_the_changed_values_before_and_after(world: World) -> None:
    site = world.a.sites[0]
    client = world.client_for(world.alice)
    response = client.patch(
        f"/api/v1/sites/{site.pk}/",
        {"name": "新名", "reading_day": site.reading_day},
        format="json",
    )
    assert response.status_code == 200
    event = _events(world, action=AuditAction.SITE_UPDATED).get()
    assert event.before == {"name": site.name}
    assert event.after == {"name": "新名"}


def test_personal_data_is_masked_in_the_trail(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    event = _events(world, action=AuditAction.CUSTOMER_REGISTERED, object_id=str(customer.pk)).get()
    assert id_number not in str(event.after)
    assert event.after is not None
    assert event.after["id_number"] == id_number[:6] + "********" + id_number[-4:]
    assert "id_number_hash" not in event.after


def test_a_bulk_action_lists_every_id(world: World) -> None:
    sites = world.a.sites
    event = record_audit(
        world.a.system,
        AuditAction.SITE_UPDATED,
        object_type="tenancy.site",
        object_ids=[s.pk for s in sites],
    )
    assert AuditEvent.dangerously_unscoped.get(pk=event.pk).object_ids == [s.pk for s in sites]
    assert event.actor_kind == "system" and event.actor_label == "test setup"


def test_events_cannot_be_changed_or_deleted_in_code(world: World) -> None:
    event = _events(world).first()
    assert event is not None
    event.action = "tampered"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.dangerously_unscoped.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(AppendOnlyError), world.a.active():
        AuditEvent.objects.all().delete()
    assert AuditEvent.dangerously_unscoped.get(pk=event.pk).action != "tampered"


def test_events_cannot_be_changed_through_the_api(world: World) -> None:
    event = _events(world).first()
    assert event is not None
    client = world.client_for(world.alice)
    url = f"/api/v1/audit-events/{event.pk}/"
    assert client.get(url).status_code == 200
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(url, {"action": "x"}, format="json").status_code == 405
    assert client.post("/api/v1/audit-events/", {"action": "x"}, format="json").status_code == 405


@pytest.mark.postgres
def test_the_database_refuses_to_change_or_delete_events(world: World) -> None:
    event = _events(world).first()
    assert event is not None
    for statement in (
        "UPDATE tenancy_auditevent SET action = 'tampered' WHERE id = %s",
        "DELETE FROM tenancy_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="Cannot"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    assert AuditEvent.dangerously_unscoped.get(pk=event.pk).action == event.action


def test_inspectors_page_through_the_trail_newest_first_with_filters(world: World) -> None:
    inspector = world.a.staff((Role.INSPECTOR, None))
    client = world.client_for(inspector)
    for index in range(5):
        record_audit(
            world.a.system, AuditAction.CALENDAR_DAY_DELETED, object_type="x", object_ids=[index]
        )
    seen: list[int] = []
    url = "/api/v1/audit-events/?action=calendar_day.deleted&page_size=2"
    while url:
        page = client.get(url).json()
        seen.extend(row["object_ids"][0] for row in page["results"])
        url = page["next"]
    assert seen == [4, 3, 2, 1, 0]
    assert client.get("/api/v1/audit-events/?action=nonsense").status_code == 400


def test_a_cashier_cannot_read_the_trail(world: World) -> None:
    assert world.client_for(world.bob).get("/api/v1/audit-events/").status_code == 403
