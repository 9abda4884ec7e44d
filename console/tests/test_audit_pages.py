"""The audit trail pages: filters in the URL, keyset pages, CSV export audited, 404 across
tenants and sites, 403 for roles without it."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import translation

from tenancy.audit import AuditAction, record_audit
from tenancy.models import AuditEvent
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(world: World, user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _events(world: World, count: int, action: AuditAction = AuditAction.SITE_UPDATED) -> None:
    with world.a.active():
        for number in range(count):
            record_audit(world.a.system, action, world.a.sites[0], after={"n": number})


def test_an_administrator_pages_through_the_audit_trail_newest_first(world: World) -> None:
    _events(world, 60)
    client = _client(world, world.alice)
    first = client.get("/console/audit/")
    assert first.status_code == 200
    listing = first.context["listing"]
    assert len(listing.page()) == 50
    ids = [row.id for row in listing.rows]
    assert ids == sorted(ids, reverse=True)
    second = client.get(listing.next_url)
    assert second.status_code == 200
    later_ids = [row.id for row in second.context["listing"].rows]
    assert later_ids and max(later_ids) < min(ids)


def test_the_filters_stay_in_the_url_and_narrow_the_list(world: World) -> None:
    _events(world, 3)
    _events(world, 2, AuditAction.SITE_CREATED)
    client = _client(world, world.alice)
    response = client.get("/console/audit/", {"action": "site.created"})
    with world.a.active():
        created = set(AuditEvent.objects.filter(action="site.created").values_list("pk", flat=True))
    assert {row.id for row in response.context["listing"].rows} == created
    assert len(created) >= 2
    assert "action=site.created" in response.context["listing"].export_url


def test_an_invalid_filter_answers_400_with_the_field_error(world: World) -> None:
    client = _client(world, world.alice)
    response = client.get("/console/audit/", {"since": "1899-01-01"})
    assert response.status_code == 400
    assert response.context["listing"].filters.errors["since"]


def test_the_csv_export_has_every_matching_row_and_is_itself_audited(world: World) -> None:
    _events(world, 70)
    client = _client(world, world.alice)
    response = client.get("/console/audit/", {"action": "site.updated", "export": "csv"})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 1 + 70
    with world.a.active():
        export = AuditEvent.objects.filter(action="export.downloaded").get()
    assert export.after["rows"] == 70 and export.after["filters"] == {"action": "site.updated"}


def test_another_tenants_event_answers_404(world: World) -> None:
    with world.b.active():
        event = record_audit(world.b.system, AuditAction.SITE_UPDATED, world.b.sites[0])
    assert _client(world, world.alice).get(f"/console/audit/{event.pk}/").status_code == 404


def test_an_event_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    with world.a.active():
        event = record_audit(world.a.system, AuditAction.SITE_UPDATED, world.a.sites[0])
    carol = _client(world, world.carol)  # every role, site A2 only
    assert carol.get(f"/console/audit/{event.pk}/").status_code == 404
    assert _client(world, world.alice).get(f"/console/audit/{event.pk}/").status_code == 200


def test_a_cashier_gets_403_and_no_audit_link(world: World) -> None:
    client = _client(world, world.bob)
    assert client.get("/console/audit/").status_code == 403
    home = client.get("/console/")
    assert b"/console/audit/" not in home.content


def test_an_inspector_sees_the_audit_link(world: World) -> None:
    inspector = world.a.staff((Role.INSPECTOR, None))
    home = _client(world, inspector).get("/console/")
    assert b'href="/console/audit/"' in home.content


def test_the_staff_filter_lists_only_this_tenants_staff(world: World) -> None:
    response = _client(world, world.alice).get("/console/audit/")
    with world.a.active():
        choices = dict(response.context["listing"].filters.form.fields["actor_id"].choices)
    assert world.alice.pk in {int(k) for k in choices if k}
    assert world.mallory.pk not in {int(k) for k in choices if k}
    assert "mallory" not in response.content.decode()


def test_an_events_object_is_named_as_people_read_it_not_by_its_model_code(world: World) -> None:
    _events(world, 1)
    client = _client(world, world.alice)
    event = AuditEvent.dangerously_unscoped.filter(tenant=world.a.tenant).latest("id")
    assert event.object_type == "tenancy.site"
    listing = client.get("/console/audit/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    detail = client.get(f"/console/audit/{event.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "tenancy.site" not in listing and "tenancy.site" not in detail
    assert "站点" in listing and "site" in detail


def test_a_site_that_cannot_be_chosen_is_refused_in_plain_words(world: World) -> None:
    client = _client(world, world.carol)  # holds site A2 only
    with translation.override("en"):
        response = client.get(
            "/console/periods/",
            {"site": str(world.a.sites[0].pk), "period": "2026-10"},
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 400
    [message] = response.context["form"].errors["site"]
    assert message == f"There is no “{world.a.sites[0].pk}” to choose here."
