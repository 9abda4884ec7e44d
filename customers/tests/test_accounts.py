"""Opening, changing and closing accounts; contacts and their confirmation."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from customers import services
from customers.identifiers import account_number_problem, make_account_number
from customers.models import Account
from tests.concurrency import run_together
from tests.world import World

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse

pytestmark = pytest.mark.django_db


def _open(client: APIClient, world: World, **extra: Any) -> _MonkeyPatchedResponse:
    body = {
        "customer": world.a.customer().pk,
        "premise": world.a.premise().pk,
        "payment_mode": "postpaid",
        "customer_class": "residential",
        **extra,
    }
    return client.post("/api/v1/accounts/", body, format="json")


def test_new_accounts_get_the_next_numbers_with_check_digits(world: World) -> None:
    client = world.client_for(world.alice)
    first = _open(client, world).json()
    second = _open(client, world).json()
    assert first["number"] == make_account_number(1) == "0000000018"
    assert second["number"] == make_account_number(2)
    assert first["site"] == world.a.sites[0].pk
    assert first["opened_on"] == str(date.today()) or first["opened_on"]
    # Tenant B counts its own numbers from 1.
    other = world.b.account()
    assert other.number == "0000000018"


def test_an_imported_number_is_kept_and_the_sequence_skips_it(world: World) -> None:
    client = world.client_for(world.alice)
    assert _open(client, world, number=make_account_number(1)).status_code == 201
    generated = _open(client, world).json()["number"]
    assert generated == make_account_number(2)
    again = _open(client, world, number=make_account_number(1))
    assert again.status_code == 400 and "number" in again.json()["error"]["fields"]


def test_an_account_and_its_premise_share_a_site(world: World) -> None:
    client = world.client_for(world.alice)
    other_site_premise = world.a.premise(world.a.sites[1])
    response = _open(client, world, premise=other_site_premise.pk)
    assert response.json()["site"] == world.a.sites[1].pk
    account = Account.dangerously_unscoped.get(number=response.json()["number"])
    moved = client.patch(
        f"/api/v1/accounts/{account.number}/", {"premise": world.a.premise().pk}, format="json"
    )
    assert moved.status_code == 400 and "premise" in moved.json()["error"]["fields"]


def test_a_closed_account_stays_closed_and_keeps_its_closing_date(world: World) -> None:
    account = world.a.account()
    client = world.client_for(world.alice)
    url = f"/api/v1/accounts/{account.number}/"
    assert client.patch(url, {"status": "suspended"}, format="json").status_code == 200
    closed = client.patch(url, {"status": "closed"}, format="json").json()
    assert closed["status"] == "closed" and closed["closed_on"]
    reopened = client.patch(url, {"status": "active"}, format="json")
    assert reopened.status_code == 400 and "status" in reopened.json()["error"]["fields"]


def test_a_customer_with_accounts_stays_in_their_site(world: World) -> None:
    account = world.a.account()
    customer = account.customer
    with world.a.active(), pytest.raises(ValidationError) as refused:
        services.update_customer(world.a.system, customer, {"site": world.a.sites[1]})
    assert "site" in refused.value.message_dict
    customer.refresh_from_db()
    assert customer.site_id == account.site_id == world.a.sites[0].pk
    newcomer = world.a.customer()  # no account yet: may still move
    with world.a.active():
        services.update_customer(world.a.system, newcomer, {"site": world.a.sites[1]})
    newcomer.refresh_from_db()
    assert newcomer.site_id == world.a.sites[1].pk


def test_a_premise_has_one_open_account_per_utility(world: World) -> None:
    first = world.a.account()
    premise = first.premise
    with pytest.raises(ValidationError) as opened:
        world.a.account(premise=premise)
    assert "premise" in opened.value.message_dict
    water = world.a.account(premise=premise, utility="water")  # another utility: its own supply
    elsewhere = world.a.account()
    with world.a.active(), pytest.raises(ValidationError) as moved:
        services.update_account(world.a.system, elsewhere, {"premise": premise})
    assert "premise" in moved.value.message_dict
    with world.a.active(), pytest.raises(ValidationError):
        services.update_account(world.a.system, water, {"utility": "electricity"})
    with world.a.active():
        services.update_account(world.a.system, first, {"status": "closed"})
        services.update_account(world.a.system, elsewhere, {"premise": premise})  # now free
    elsewhere.refresh_from_db()
    assert elsewhere.premise_id == premise.pk


@pytest.mark.parametrize("opened_on", [date(1900, 1, 1), date(1999, 12, 31), date(2099, 1, 1)])
def test_an_account_opens_from_2000_to_a_year_ahead(world: World, opened_on: date) -> None:
    with pytest.raises(ValidationError) as opening:
        world.a.account(opened_on=opened_on)
    assert "opened_on" in opening.value.message_dict
    account = world.a.account(opened_on=date(2000, 1, 1))
    with world.a.active(), pytest.raises(ValidationError) as editing:
        services.update_account(world.a.system, account, {"opened_on": opened_on})
    assert "opened_on" in editing.value.message_dict
    a_year_ahead = timezone.localdate() + timedelta(days=365)
    with world.a.active():
        services.update_account(world.a.system, account, {"opened_on": a_year_ahead})


def test_one_primary_contact_per_customer_and_sms_only_to_mobiles(world: World) -> None:
    customer = world.a.customer()
    first = world.a.contact(customer, is_primary=True)
    second = world.a.contact(customer, is_primary=True)
    first.refresh_from_db()
    assert second.is_primary and not first.is_primary
    client = world.client_for(world.alice)
    email = client.post(
        "/api/v1/contacts/",
        {
            "customer": customer.pk,
            "kind": "email",
            "value": "Li.Si@Example.com",
            "source": "portal",
            "sms_consent": True,
        },
        format="json",
    )
    assert email.status_code == 400 and "sms_consent" in email.json()["error"]["fields"]


def test_confirming_a_contact_records_when(world: World) -> None:
    contact = world.a.contact()
    assert contact.last_confirmed_at is None
    response = world.client_for(world.bob).post(f"/api/v1/contacts/{contact.pk}/confirm/")
    assert response.status_code == 200 and response.json()["last_confirmed_at"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_openings_get_distinct_gap_free_numbers(world: World) -> None:
    customers = [world.a.customer() for _ in range(8)]
    premises = [world.a.premise() for _ in range(8)]

    def open_one(index: int) -> str:
        with transaction.atomic():
            account = services.open_account(
                world.a.system,
                customer=customers[index],
                premise=premises[index],
                payment_mode="prepaid",
                customer_class="residential",
            )
        return account.number

    numbers, errors = run_together(8, open_one, world.a.tenant)
    assert not errors
    assert sorted(numbers) == [make_account_number(i) for i in range(1, 9)]
    assert all(account_number_problem(n) is None for n in numbers)
