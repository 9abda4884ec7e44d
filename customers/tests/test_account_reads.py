"""Reading accounts, the hottest integration calls. The lookup (``GET /api/v1/accounts/NUMBER/``)
is found by a prepared lookup and rendered from fields bound once, the list skips django-filter
when nothing is filtered: with the answers the plain DRF path gives
(``TenantViewSet.get_object``, ``TenantModelSerializer.fixed_representation``,
``tenancy.api_plumbing.FilterBackend``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from rest_framework import serializers

from customers.api import AccountSerializer
from customers.models import Account, Customer
from tenancy.roles import Role
from tenancy.scoping import PreparedLookup
from tests.world import World

pytestmark = pytest.mark.django_db


def _drf_representation(account: Account) -> dict[str, Any]:
    """What DRF's own ``Serializer.to_representation`` makes of the account."""
    serializer = AccountSerializer(account)
    return serializers.ModelSerializer.to_representation(serializer, account)


def test_the_same_number_in_two_tenants_finds_each_callers_own_account(world: World) -> None:
    ours, theirs = world.a.account(), world.b.account()
    assert ours.number == theirs.number
    alice = world.client_for(world.alice).get(f"/api/v1/accounts/{ours.number}/")
    mallory = world.client_for(world.mallory).get(f"/api/v1/accounts/{ours.number}/")
    assert alice.status_code == mallory.status_code == 200
    assert alice.json()["id"] == ours.pk
    assert mallory.json()["id"] == theirs.pk


def test_an_account_at_a_site_outside_the_grant_answers_404(world: World) -> None:
    outside, inside = world.a.account(world.a.sites[0]), world.a.account(world.a.sites[1])
    carol = world.client_for(world.carol)
    assert carol.get(f"/api/v1/accounts/{outside.number}/").status_code == 404
    assert carol.get(f"/api/v1/accounts/{inside.number}/").json()["id"] == inside.pk
    # The all-sites lookup prepared for alice does not leak into carol's, nor back.
    alice = world.client_for(world.alice)
    assert alice.get(f"/api/v1/accounts/{outside.number}/").status_code == 200
    assert carol.get(f"/api/v1/accounts/{outside.number}/").status_code == 404


def test_an_unknown_number_is_404_and_a_mistyped_one_400(world: World) -> None:
    account = world.a.account()
    client = world.client_for(world.bob)
    unknown = client.get("/api/v1/accounts/0000000026/")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    mistyped = client.get(f"/api/v1/accounts/{account.number[:-1]}9/")
    assert mistyped.status_code == 400 and "number" in mistyped.json()["error"]["fields"]


def test_the_lookup_answers_with_what_drf_renders(world: World) -> None:
    plain = world.a.account()
    large = world.a.account(
        customer_class="commercial",
        household_size=6,
        minimum_living_support=True,
        contracted_capacity_kva=Decimal("315.0"),
    )
    _client_row, token = world.a.api_client((Role.CASHIER, None))
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    for account in (plain, large):
        answer = api.get(f"/api/v1/accounts/{account.number}/")
        assert answer.status_code == 200
        with world.a.active():
            stored = Account.objects.get(pk=account.pk)
            assert answer.json() == _drf_representation(stored)
        assert list(answer.json()) == list(_drf_representation(stored))
    assert api.get(f"/api/v1/accounts/{large.number}/").json()["contracted_capacity_kva"] == (
        "315.0"
    )


def test_the_account_list_renders_each_account_as_drf_does(world: World) -> None:
    accounts = [world.a.account() for _ in range(3)]
    page = world.client_for(world.alice).get("/api/v1/accounts/").json()
    with world.a.active():
        expected = [_drf_representation(Account.objects.get(pk=a.pk)) for a in reversed(accounts)]
    assert page["results"] == expected


def test_a_prepared_lookup_decrypts_personal_data_as_a_query_does(world: World) -> None:
    customer = world.a.customer()
    lookup = PreparedLookup(Customer.objects.all(), "pk")
    with world.a.active():
        found = lookup.find(customer.pk)
        assert found is not None and isinstance(found, Customer)
        assert found.id_number == Customer.objects.get(pk=customer.pk).id_number != ""


def test_list_filters_still_narrow_the_list_and_refuse_bad_values(world: World) -> None:
    first_site = [world.a.account(world.a.sites[0]) for _ in range(2)]
    second_site = world.a.account(world.a.sites[1], customer_class="commercial")
    client = world.client_for(world.alice)
    everything = client.get("/api/v1/accounts/?page_size=10").json()["results"]
    assert [row["id"] for row in everything] == [second_site.pk] + [
        a.pk for a in reversed(first_site)
    ]
    by_site = client.get(f"/api/v1/accounts/?site={world.a.sites[1].pk}").json()["results"]
    assert [row["id"] for row in by_site] == [second_site.pk]
    by_class = client.get("/api/v1/accounts/?customer_class=residential").json()["results"]
    assert {row["id"] for row in by_class} == {a.pk for a in first_site}
    refused = client.get("/api/v1/accounts/?site=not-a-site")
    assert refused.status_code == 400 and "site" in refused.json()["error"]["fields"]
    cursor = client.get("/api/v1/accounts/?page_size=1").json()["next"]
    second_page = client.get(cursor).json()["results"]
    assert [row["id"] for row in second_page] == [first_site[1].pk]
