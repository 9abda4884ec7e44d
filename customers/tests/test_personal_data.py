"""Identity and phone numbers are encrypted at rest, searchable by hash, masked in answers,
and revealed only to roles that need them, with every reveal in the audit trail."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from pytest_django import Settings

from customers.models import Contact, Customer
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.roles import Role
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
