"""The isolation walker: every API route, found in the URL conf, against another tenant and
against a staff user whose grant leaves the object's site out.

For each route, objects are made in tenant A. Mallory (tenant B's administrator) sends GET,
POST, PUT, PATCH and DELETE to A's real ids and gets 404 (405 where the route has no such
method) with A's rows unchanged; her lists never hold A's objects; her writes naming A's ids
in the body get a 4xx and write nothing. Carol holds every role, but for site A2 only: on A1's
objects she gets the same answers.
"""

from __future__ import annotations

from typing import Any

import pytest

from tenancy.models import AuditEvent, CalendarDay, Tenant
from tests.api_registry import (
    METHODS,
    SPECS,
    Route,
    RouteSpec,
    discover_api_routes,
    ids_in,
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
    return {}


def _row_counts(spec: RouteSpec) -> tuple[int, int]:
    model_rows = 0 if spec.no_object else spec.unscoped().count()
    return model_rows, AuditEvent.unscoped.count()


def test_every_api_route_has_a_factory_and_every_action_a_spec():
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
    client, route: Route, spec: RouteSpec, actor_world: TenantWorld, obj: Any
) -> None:  # type: ignore[no-untyped-def]
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


def _assert_list_hides(client, route: Route, obj: Any) -> None:  # type: ignore[no-untyped-def]
    response = client.get(route.url(), {"page_size": 500})
    assert response.status_code == 200, (route.name, response.content)
    assert obj.pk not in ids_in(response.json()), f"{route.name} lists another tenant's object"


def _assert_foreign_create_refused(client, route: Route, spec: RouteSpec, body: dict) -> None:  # type: ignore[no-untyped-def]
    counts = _row_counts(spec)
    response = client.post(route.url(), body, format="json")
    assert 400 <= response.status_code < 500, (route.name, response.status_code, response.content)
    assert "error" in response.json()
    assert _row_counts(spec) == counts, f"{route.name}: a refused create wrote rows"


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_another_tenant_cannot_see_or_touch_the_route(world: World, route: Route):
    spec = spec_for(route)
    a, b = world.a, world.b
    obj = spec.make(a, a.sites[0])
    mallory = world.client_for(world.mallory)
    COVERED.append(route.name)

    if route.suffix == "me":
        before = snapshot(spec, a.tenant)
        assert mallory.get(route.url()).json()["id"] == b.tenant.pk
        assert mallory.patch(route.url(), {"name": "B renamed"}, format="json").status_code == 200
        assert snapshot(spec, a.tenant) == before
        assert Tenant.objects.get(pk=b.tenant.pk).name == "B renamed"
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
    _assert_list_hides(mallory, route, obj)
    if "post" in route.methods and spec.foreign_create_body is not None:
        _assert_foreign_create_refused(mallory, route, spec, spec.foreign_create_body(a, b))
    for method in set(METHODS) - route.methods:
        response = getattr(mallory, method)(route.url(), {}, format="json")
        assert response.status_code == 405, (route.name, method)


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_a_grant_for_another_site_hides_the_site_objects(world: World, route: Route):
    spec = spec_for(route)
    a = world.a
    carol = world.client_for(world.carol)
    if not spec.site_bound:
        # Tenant-wide rows (the tenant, calendar, staff, API clients) belong to no site: carol
        # may read them, but changing them needs a role for all sites.
        for method in sorted({"post", "put", "patch", "delete"} & route.methods):
            obj = spec.make(a, a.sites[1])
            url = route.url(spec.lookup(obj)) if route.detail else route.url()
            response = getattr(carol, method)(
                url, _body(spec, route, method, a, obj), format="json"
            )
            assert response.status_code == 403, (route.name, method, response.content)
        print(f"tenant-wide (writes need an all-sites grant): {route.name}")
        return
    obj = spec.make(a, a.sites[0])
    if route.detail:
        _assert_detail_refused(carol, route, spec, a, obj)
        return
    _assert_list_hides(carol, route, obj)
    if "post" in route.methods and spec.create_body is not None:
        _assert_foreign_create_refused(carol, route, spec, spec.create_body(a, a.sites[0]))
