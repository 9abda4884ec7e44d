"""The isolation walker: every API route, found in the URL conf, against another tenant and
against a staff user whose grant leaves the object's site out.

For each route, objects are made in tenant A. Mallory (tenant B's administrator) sends GET,
POST, PUT, PATCH and DELETE to A's real ids and gets 404 (405 where the route has no such
method) with A's rows unchanged; her lists never hold A's objects; her writes naming A's ids
in the body get a 4xx and write nothing. Carol holds every role, but for site A2 only: on A1's
objects she gets the same answers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.tariffs import services as tariff_services
from tenancy.models import AuditEvent, CalendarDay, Tenant
from tests.api_registry import (
    METHODS,
    SPECS,
    Route,
    RouteSpec,
    discover_api_routes,
    ids_in,
    make_for,
    snapshot,
    spec_for,
)
from tests.world import TenantWorld, World

ROUTES = discover_api_routes()
COVERED: list[str] = []


def _body(spec: RouteSpec, route: Route, method: str, world: TenantWorld, obj: Any) -> dict:
    if route.suffix in spec.actions:
        return spec.actions[route.suffix].body(world, obj)
    if method == "patch":
        return spec.patch_body(obj)
    if method == "put" and spec.put_body is not None:
        return spec.put_body(world, obj)
    if method == "post" and spec.create_body is not None:
        return spec.create_body(world, world.sites[0])
    if method == "delete":
        return spec.delete_body
    return {}


def _row_counts(spec: RouteSpec) -> tuple[int, int]:
    model_rows = 0 if spec.no_object else spec.dangerously_unscoped().count()
    return model_rows, AuditEvent.dangerously_unscoped.count()


def test_every_api_route_has_a_factory_and_every_action_a_spec() -> None:
    missing = sorted({route.name for route in ROUTES if route.basename not in SPECS})
    assert not missing, f"API routes with no factory in tests/api_registry.py: {missing}"
    unspecified = [
        route.name
        for route in ROUTES
        if route.suffix not in ("list", "detail")
        and route.suffix not in SPECS[route.basename].actions
    ]
    assert not unspecified, f"custom actions with no ActionSpec: {unspecified}"
    assert len(ROUTES) >= 20
    print("\nisolation walker covers:")
    for route in ROUTES:
        print(f"  {route.name:<34} {sorted(route.methods)}")


def _assert_detail_refused(
    client: APIClient, route: Route, spec: RouteSpec, actor_world: TenantWorld, obj: Any
) -> None:
    url = route.url(spec.lookup(obj))
    bodies = {
        m: _body(spec, route, m, actor_world, obj) if m in route.methods else {} for m in METHODS
    }
    before = snapshot(spec, obj)
    counts = _row_counts(spec)
    for method in METHODS:
        response = getattr(client, method)(url, bodies[method], format="json")
        expected = 404 if method in route.methods else 405
        assert response.status_code == expected, (route.name, method, response.content)
        assert "error" in response.json(), (route.name, method)
        if expected == 404:
            assert response.json()["error"]["code"] == "not_found"
    assert snapshot(spec, obj) == before, f"{route.name}: another tenant's row changed"
    assert _row_counts(spec) == counts, f"{route.name}: a refused request wrote rows"


def _listed(spec: RouteSpec, payload: Any) -> set[Any]:
    return spec.listed_ids(payload) if spec.listed_ids else ids_in(payload)


def _assert_list_hides(client: APIClient, route: Route, spec: RouteSpec, obj: Any) -> None:
    action = spec.actions.get(route.suffix)
    query: dict[str, Any] = {"page_size": 500, **(action.query if action else {})}
    response = client.get(route.url(), query)
    assert response.status_code == 200, (route.name, response.content)
    assert obj.pk not in _listed(spec, response.json()), f"{route.name} lists a hidden object"


def _assert_foreign_write_refused(
    client: APIClient, route: Route, spec: RouteSpec, body: dict, status: int | None = None
) -> None:
    counts = _row_counts(spec)
    response = client.post(route.url(), body, format="json")
    if status is None:
        assert 400 <= response.status_code < 500, (
            route.name,
            response.status_code,
            response.content,
        )
        assert "error" in response.json()
        assert _row_counts(spec) == counts, f"{route.name}: a refused write wrote rows"
    else:
        # Accepted for the caller's own data (its audit event is its own): none of the
        # hidden objects' rows may appear.
        assert response.status_code == status, (route.name, response.content)
        assert _row_counts(spec)[0] == counts[0], f"{route.name}: wrote rows it may not"


def _assert_collection_route(
    client: APIClient, route: Route, spec: RouteSpec, obj: Any, body: dict[str, Any] | None
) -> None:
    """A route on the collection: its listing hides the object, a write naming hidden objects
    is refused with nothing written, and methods it does not have answer 405."""
    action = spec.actions.get(route.suffix)
    if "get" in route.methods and (route.suffix == "list" or (action and action.lists_objects)):
        _assert_list_hides(client, route, spec, obj)
    if "post" in route.methods and body is not None:
        _assert_foreign_write_refused(
            client, route, spec, body, action.foreign_status if action else None
        )
    for method in set(METHODS) - route.methods:
        response = getattr(client, method)(route.url(), {}, format="json")
        assert response.status_code == 405, (route.name, method)


def _assert_global_route(world: World, route: Route, spec: RouteSpec) -> None:
    """Data that belongs to no tenant (meter models): every tenant reads the same."""
    url = route.url(spec.lookup(None)) if route.detail else route.url()
    alice = world.client_for(world.alice).get(url)
    mallory = world.client_for(world.mallory).get(url)
    assert alice.status_code == mallory.status_code == 200
    assert alice.json() == mallory.json()
    for method in set(METHODS) - route.methods:
        assert getattr(world.client_for(world.mallory), method)(url, {}).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_another_tenant_cannot_see_or_touch_the_route(world: World, route: Route) -> None:
    spec = spec_for(route)
    COVERED.append(route.name)
    if spec.global_data:
        _assert_global_route(world, route, spec)
        return
    a, b = world.a, world.b
    obj = make_for(route, a, a.sites[0])
    mallory = world.client_for(world.mallory)

    if route.suffix == "me":
        before = snapshot(spec, a.tenant)
        assert mallory.get(route.url()).json()["id"] == b.tenant.pk
        assert mallory.patch(route.url(), {"name": "B renamed"}, format="json").status_code == 200
        assert snapshot(spec, a.tenant) == before
        assert Tenant.objects.get(pk=b.tenant.pk).name == "B renamed"
        return
    if route.suffix == "current":
        before = snapshot(spec, obj)
        assert mallory.get(route.url()).status_code == 200
        assert (
            mallory.patch(route.url(), {"spike_factor": "9.00"}, format="json").status_code == 200
        )
        assert snapshot(spec, obj) == before, "another tenant's settings changed"
        return
    if route.suffix == "next-working-day":
        monday = "2031-03-03"
        a.calendar_day(CalendarDay._meta.get_field("date").to_python(monday), kind="holiday")
        assert mallory.get(route.url(), {"date": monday}).json()["is_working_day"] is True
        alice = world.client_for(world.alice)
        assert alice.get(route.url(), {"date": monday}).json()["is_working_day"] is False
        return
    if route.detail:
        _assert_detail_refused(mallory, route, spec, b, obj)
        return
    action = spec.actions.get(route.suffix)
    if action is not None:
        body = action.foreign_body(a, b) if action.foreign_body else None
    else:
        body = spec.foreign_create_body(a, b) if spec.foreign_create_body else None
    _assert_collection_route(mallory, route, spec, obj, body)


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_a_grant_for_another_site_hides_the_site_objects(world: World, route: Route) -> None:
    spec = spec_for(route)
    a = world.a
    carol = world.client_for(world.carol)
    if spec.global_data:
        assert (
            carol.get(route.url(spec.lookup(None)) if route.detail else route.url()).status_code
            == 200
        )
        print(f"not tenant data: {route.name}")
        return
    if not spec.site_bound:
        # Tenant-wide rows (the tenant, calendar, staff, API clients) belong to no site: carol
        # may read them, but changing them needs a role for all sites.
        for method in sorted({"post", "put", "patch", "delete"} & route.methods):
            obj = make_for(route, a, a.sites[1])
            url = route.url(spec.lookup(obj)) if route.detail else route.url()
            response = getattr(carol, method)(
                url, _body(spec, route, method, a, obj), format="json"
            )
            assert response.status_code == 403, (route.name, method, response.content)
        print(f"tenant-wide (writes need an all-sites grant): {route.name}")
        return
    obj = make_for(route, a, a.sites[0])
    if route.detail:
        _assert_detail_refused(carol, route, spec, a, obj)
        return
    action = spec.actions.get(route.suffix)
    if action is not None:
        body = action.foreign_body(a, a) if action.foreign_body else None
    else:
        body = spec.create_body(a, a.sites[0]) if spec.create_body else None
    _assert_collection_route(carol, route, spec, obj, body)


@pytest.mark.django_db
def test_a_grant_for_another_site_hides_the_tariff_assignments_of_its_accounts(
    world: World,
) -> None:
    """Tariff assignments are tenant-wide, but one naming an account of site A1 (its id and
    tariff) is A1's: carol, with grants for A2 only, reads only A2's and the classes'."""
    a = world.a
    on_a1 = a.tariff_assignment(a.sites[0])
    on_a2 = a.tariff_assignment(a.sites[1])
    with a.active():
        every_site = tariff_services.assign_tariff(
            a.system, a.tariff(), effective_from=date(2020, 1, 1), customer_class="commercial"
        )
        a1_only = tariff_services.assign_tariff(
            a.system,
            a.tariff(),
            effective_from=date(2020, 1, 1),
            customer_class="residential",
            sites=[a.sites[0]],
        )
    carol = world.client_for(world.carol)
    listed = {row["id"] for row in carol.get("/api/v1/tariff-assignments/").json()["results"]}
    assert listed == {on_a2.pk, every_site.pk}
    for hidden in (on_a1, a1_only):
        assert carol.get(f"/api/v1/tariff-assignments/{hidden.pk}/").status_code == 404
    alice = world.client_for(world.alice)
    everything = {row["id"] for row in alice.get("/api/v1/tariff-assignments/").json()["results"]}
    assert everything >= {on_a1.pk, on_a2.pk, every_site.pk, a1_only.pk}
