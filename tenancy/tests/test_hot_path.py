"""What every API request goes through, made cheaper without changing what it guarantees:
prepared lookups, the token entry decoded once per process, the token lookup and throttle
count in one Redis round trip, lazy message storage and the content negotiation short cut."""

from __future__ import annotations

from collections.abc import Callable

import django_filters
import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils.functional import empty
from redis.exceptions import ResponseError

from tenancy import fastcache
from tenancy.api_plumbing import FilterBackend
from tenancy.context import TenantNotSet, use_tenant
from tenancy.middleware import LazyMessageMiddleware
from tenancy.models import Site
from tenancy.principal import forget_tokens, principal_for_token
from tenancy.roles import Role
from tenancy.scoping import PreparedLookup
from tests.world import World

pytestmark = pytest.mark.django_db


# --- prepared lookups ---------------------------------------------------------------------


def _values(obj: models.Model) -> dict[str, object]:
    return {field.attname: getattr(obj, field.attname) for field in Site._meta.concrete_fields}


def test_a_prepared_lookup_finds_what_the_scoped_queryset_finds(world: World) -> None:
    ours, theirs = world.a.sites[0], world.b.sites[0]
    with world.b.active():
        theirs.code = ours.code
        theirs.save(update_fields=["code"])
    lookup = PreparedLookup(Site.objects.all(), "code")
    with world.a.active():
        found = lookup.find(ours.code)
        assert found is not None
        assert _values(found) == _values(Site.objects.get(code=ours.code))
        assert not found._state.adding and found._state.db == "default"
        assert lookup.find("NOWHERE") is None
    with world.b.active():
        found_in_b = lookup.find(ours.code)
        assert found_in_b is not None and found_in_b.pk == theirs.pk != ours.pk


def test_a_prepared_lookup_refuses_to_run_without_a_tenant(world: World) -> None:
    lookup = PreparedLookup(Site.objects.all(), "code")
    with pytest.raises(TenantNotSet):
        lookup.find(world.a.sites[0].code)


def test_a_prepared_lookup_keeps_the_site_filter_it_was_compiled_with(world: World) -> None:
    first, second = world.a.sites
    lookup = PreparedLookup(Site.objects.for_sites(frozenset({second.pk})), "pk")
    with world.a.active():
        assert lookup.find(first.pk) is None
        found = lookup.find(str(second.pk))
        assert found is not None and found.pk == second.pk
        assert lookup.find("not-a-number") is None


def test_only_a_scoped_queryset_and_a_field_unique_in_the_tenant_can_be_prepared() -> None:
    with pytest.raises(ImproperlyConfigured):
        PreparedLookup(Site.dangerously_unscoped.all(), "code")
    with pytest.raises(ImproperlyConfigured):
        PreparedLookup(Site.objects.all(), "name")
    with pytest.raises(ImproperlyConfigured):
        PreparedLookup(Site.objects.select_related("tenant"), "code")


# --- API tokens -----------------------------------------------------------------------------


def test_every_request_gets_its_own_client_and_tenant_objects(world: World) -> None:
    _client_row, token = world.a.api_client((Role.CASHIER, None))
    first, _count = principal_for_token(token)
    second, _count = principal_for_token(token)
    assert first is not None and second is not None
    assert first.api_client is not second.api_client and first.tenant is not second.tenant
    assert first.tenant is not None and second.tenant is not None
    first.tenant.name = "changed by one request"
    assert second.tenant.name == world.a.tenant.name
    assert first.grants == second.grants == ((Role.CASHIER, None),)


def test_a_token_turned_off_in_its_row_is_refused_once_its_entry_is_dropped(
    world: World,
) -> None:
    client_row, token = world.a.api_client((Role.CASHIER, None))
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/sites/").status_code == 200
    assert api.get("/api/v1/sites/").status_code == 200  # served from the decoded entry
    with world.a.active():
        client_row.is_active = False
        client_row.save(update_fields=["is_active"])
    forget_tokens(client_row.key_hash)
    assert api.get("/api/v1/sites/").status_code == 401


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: set REDIS_URL")
def test_a_failed_command_leaves_no_reply_on_the_pooled_connection() -> None:
    client = fastcache.redis_client()
    assert client is not None
    client.set("hot-path:text", "not a number")
    client.set("hot-path:value", "kept")
    with pytest.raises(ResponseError):
        fastcache._round_trip(client, ("INCR", "hot-path:text"), ("GET", "hot-path:value"))
    assert fastcache._round_trip(client, ("GET", "hot-path:value")) == [b"kept"]
    raw, count = fastcache.get_and_count("hot-path:none", "hot-path:counter", 5)
    assert raw is None and count >= 1
    assert 0 < client.ttl(fastcache._key("hot-path:counter")) <= 5
    client.delete("hot-path:text", "hot-path:value", fastcache._key("hot-path:counter"))


# --- messages and content negotiation -------------------------------------------------------


def _serve(view: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    """``view`` behind the session and (lazy) message middleware."""
    SessionMiddleware(view).process_request(request)
    response = LazyMessageMiddleware(view)(request)
    assert isinstance(response, HttpResponse)
    return response


def test_message_storage_is_made_only_for_requests_that_use_it() -> None:
    def silent_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    def noting_view(request: HttpRequest) -> HttpResponse:
        messages.info(request, "saved")
        return HttpResponse()

    quiet = RequestFactory().get("/")
    response = _serve(silent_view, quiet)
    assert quiet._messages._wrapped is empty  # type: ignore[attr-defined]
    assert "messages" not in response.cookies

    response = _serve(noting_view, RequestFactory().get("/"))
    read: list[str] = []

    def reading_view(request: HttpRequest) -> HttpResponse:
        read.extend(str(message) for message in messages.get_messages(request))
        return HttpResponse()

    reader = RequestFactory().get("/")
    reader.COOKIES["messages"] = response.cookies["messages"].value
    response = _serve(reading_view, reader)
    assert read == ["saved"]
    assert response.cookies["messages"].value == ""  # read, so cleared


def test_the_api_still_refuses_what_it_cannot_render(world: World) -> None:
    client = world.client_for(world.alice)
    assert client.get("/api/v1/sites/", HTTP_ACCEPT="*/*")["Content-Type"] == "application/json"
    assert client.get("/api/v1/sites/", HTTP_ACCEPT="application/json").status_code == 200
    assert client.get("/api/v1/sites/?format=json").status_code == 200
    refused = client.get("/api/v1/sites/", HTTP_ACCEPT="text/html")
    assert refused.status_code == 406
    assert refused.json()["error"]["code"] == "not_acceptable"
    assert client.get("/api/v1/sites/?format=xml").status_code == 404


class _RequiredCodeFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(required=True)

    class Meta:
        model = Site
        fields = ["code"]


class _PlainFilter(django_filters.FilterSet):
    class Meta:
        model = Site
        fields = ["code", "is_active"]


def test_a_filter_set_is_skipped_only_where_it_could_change_nothing() -> None:
    backend = FilterBackend()
    assert backend._inert_without_data(_PlainFilter, set())
    assert backend._inert_without_data(_PlainFilter, {"cursor"})
    assert not backend._inert_without_data(_PlainFilter, {"code"})
    assert not backend._inert_without_data(_PlainFilter, {"is_active_after"})
    assert not backend._inert_without_data(_RequiredCodeFilter, set())


def test_a_boolean_filter_refuses_a_word_that_is_not_a_boolean(world: World) -> None:
    client = world.client_for(world.alice)
    closed = world.a.sites[1]
    with use_tenant(world.a.tenant):
        Site.objects.filter(pk=closed.pk).update(is_active=False)
    active = client.get("/api/v1/sites/?is_active=true").json()["results"]
    assert [site["id"] for site in active] == [world.a.sites[0].pk]
    assert [site["id"] for site in client.get("/api/v1/sites/?is_active=0").json()["results"]] == [
        closed.pk
    ]
    refused = client.get("/api/v1/sites/?is_active=maybe")
    assert refused.status_code == 400, refused.content
    assert "is_active" in refused.content.decode()
    # The same on a list with a filter set of its own, and on bills' supplementary flag.
    assert client.get("/api/v1/bills/?supplementary=maybe").status_code == 400
    assert client.get("/api/v1/bills/?supplementary=false").status_code == 200
    assert client.get("/api/v1/meter-events/?meter=x").status_code == 400
