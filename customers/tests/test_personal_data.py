"""Identity and phone numbers are encrypted at rest, searchable by hash, masked in answers,
and revealed only to roles that need them, with every reveal in the audit trail."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from pytest_django import Settings

from customers.models import Contact, Customer
from tenancy import fastcache
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.roles import Role
from tenancy.throttling import current_window
from tests.world import World, identity_number

pytestmark = pytest.mark.django_db


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_identity_and_phone_numbers_are_not_stored_in_clear(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    contact = world.a.contact(customer, value="13912345678")
    stored_id = _raw("customers_customer", "id_number", customer.pk)
    stored_phone = _raw("customers_contact", "value", contact.pk)
    assert id_number not in stored_id and stored_id.startswith("gAAAA")
    assert "13912345678" not in stored_phone
    assert Customer.dangerously_unscoped.get(pk=customer.pk).id_number == id_number
    assert Contact.dangerously_unscoped.get(pk=contact.pk).value == "+8613912345678"


def test_rows_written_under_an_old_key_still_read_after_a_new_key_is_added(
    world: World, settings: Settings
) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    settings.FIELD_ENCRYPTION_KEYS = [
        Fernet.generate_key().decode(),
        *settings.FIELD_ENCRYPTION_KEYS,
    ]
    assert Customer.dangerously_unscoped.get(pk=customer.pk).id_number == id_number
    with world.a.active():
        assert Customer.objects.filter(pk=customer.pk).exists()


def test_staff_find_a_customer_by_identity_number_and_by_mobile(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    world.a.contact(customer, value="13700001111")
    world.a.customer()
    client = world.client_for(world.alice)
    found = client.get("/api/v1/customers/", {"id_number": id_number.lower()}).json()["results"]
    assert [row["id"] for row in found] == [customer.pk]
    contacts = client.get("/api/v1/contacts/", {"mobile": "+86 137 0000 1111"}).json()["results"]
    assert [row["customer"] for row in contacts] == [customer.pk]


def test_answers_show_personal_data_masked(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    contact = world.a.contact(customer, value="13912345678")
    client = world.client_for(world.alice)
    shown = client.get(f"/api/v1/customers/{customer.pk}/").json()
    assert "id_number" not in shown
    assert shown["id_number_masked"] == id_number[:6] + "********" + id_number[-4:]
    listed = client.get(f"/api/v1/contacts/{contact.pk}/").json()
    assert listed["value_masked"] == "+86 139****5678" and "value" not in listed


def test_a_cashier_may_reveal_and_the_reveal_is_audited(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    world.a.contact(customer, value="13912345678")
    response = world.client_for(world.bob).post(f"/api/v1/customers/{customer.pk}/reveal/")
    assert response.status_code == 200
    assert response.json()["id_number"] == id_number
    assert response.json()["contacts"][0]["value"] == "+8613912345678"
    event = AuditEvent.dangerously_unscoped.get(action=AuditAction.CUSTOMER_PII_REVEALED)
    assert (event.actor_id, event.object_id) == (world.bob.pk, str(customer.pk))
    assert id_number not in str(event.after)


@pytest.mark.parametrize("role", [Role.HQ_FINANCE, Role.VERIFIER, Role.INSPECTOR])
def test_roles_without_the_need_cannot_reveal(world: World, role: str) -> None:
    customer = world.a.customer()
    user = world.a.staff((role, None))
    response = world.client_for(user).post(f"/api/v1/customers/{customer.pk}/reveal/")
    assert response.status_code == 403
    assert not AuditEvent.dangerously_unscoped.filter(
        action=AuditAction.CUSTOMER_PII_REVEALED
    ).exists()


def test_a_second_customer_with_the_same_identity_number_is_refused(world: World) -> None:
    id_number = identity_number()
    world.a.customer(id_number=id_number)
    response = world.client_for(world.alice).post(
        "/api/v1/customers/",
        {"site": world.a.sites[0].pk, "kind": "person", "name": "n", "id_number": id_number},
        format="json",
    )
    assert response.status_code == 400
    assert "id_number" in response.json()["error"]["fields"]
    # Tenant B may register the same person: tenants never see each other's customers.
    world.b.customer(id_number=id_number)


# --- searching by a personal number ------------------------------------------------------------


def test_a_role_that_may_not_see_the_numbers_may_not_search_by_them(world: World) -> None:
    """A verifier recovered a full identity number by trying candidates in the search."""
    customer = world.a.customer()
    world.a.contact(customer, value="13700002222")
    verifier = world.client_for(world.a.staff((Role.VERIFIER, None)))
    by_id = verifier.get("/api/v1/customers/", {"id_number": customer.id_number})
    assert by_id.status_code == 403 and "id_number" in by_id.json()["error"]["message"]
    by_mobile = verifier.get("/api/v1/contacts/", {"mobile": "13700002222"})
    assert by_mobile.status_code == 403
    assert verifier.get("/api/v1/customers/").status_code == 200  # the list itself is allowed
    assert not AuditEvent.dangerously_unscoped.filter(action=AuditAction.PII_SEARCHED).exists()


def test_every_search_by_a_personal_number_is_audited_masked(world: World) -> None:
    id_number = identity_number()
    customer = world.a.customer(id_number=id_number)
    world.a.contact(customer, value="13700003333")
    cashier = world.client_for(world.bob)
    found = cashier.get("/api/v1/customers/", {"id_number": id_number}).json()["results"]
    assert [row["id"] for row in found] == [customer.pk]
    assert cashier.get("/api/v1/contacts/", {"mobile": "13700003334"}).json()["results"] == []
    events = list(
        AuditEvent.dangerously_unscoped.filter(action=AuditAction.PII_SEARCHED).order_by("id")
    )
    afters = [event.after or {} for event in events]
    assert [
        (e.actor_label, a["field"], a["found"]) for e, a in zip(events, afters, strict=True)
    ] == [
        (world.bob.username, "id_number", 1),
        (world.bob.username, "mobile", 0),
    ]
    assert events[0].object_ids == [customer.pk]
    assert id_number not in str(events[0].after) and "13700003334" not in str(events[1].after)
    assert afters[0]["searched_for"] == id_number[:6] + "********" + id_number[-4:]


def test_searches_by_personal_numbers_have_a_tight_budget_of_their_own(
    world: World, settings: Settings
) -> None:
    """Five searches a day here (five a minute by default): the sixth is refused with 429,
    while the caller's other requests go on."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "pii_search": "5/d",
        },
    }
    user = world.a.staff((Role.CASHIER, None))
    window = current_window("5/d")
    fastcache.reset_count(window.counter("pii_search", f"staff:{user.pk}"))  # an earlier run's
    cashier = world.client_for(user)
    statuses = [
        cashier.get("/api/v1/contacts/", {"mobile": f"1370000{n:04d}"}).status_code
        for n in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    refused = cashier.get("/api/v1/customers/", {"id_number": identity_number()})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "throttled"
    assert cashier.get("/api/v1/customers/").status_code == 200
