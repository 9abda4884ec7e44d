"""Role tests generated from the permission matrix.

For every API route and every method, each role (held for all sites, alone) gets what
``tenancy.permissions.MATRIX`` says: a 2xx when the role is listed, 403 when it is not, 405
when the route has no such method. Every write that succeeds leaves an audit event naming the
user who made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from tenancy.models import AuditEvent
from tenancy.permissions import MATRIX
from tenancy.roles import Role
from tests.api_registry import METHODS, Route, discover_api_routes, make_for, spec_for
from tests.world import World

if TYPE_CHECKING:
    from rest_framework.response import _MonkeyPatchedResponse

ROUTES = discover_api_routes()
CASES = [(route, method) for route in ROUTES for method in METHODS]


def _success_status(route: Route, method: str) -> int:
    spec = spec_for(route)
    if route.suffix in spec.actions:
        return spec.actions[route.suffix].success
    return {"post": 201, "delete": 204}.get(method, 200)


def _request(client: APIClient, route: Route, method: str, world: World) -> _MonkeyPatchedResponse:
    spec = spec_for(route)
    a = world.a
    obj = make_for(route, a, a.sites[0])
    url = route.url(spec.lookup(obj)) if route.detail else route.url()
    if route.suffix in spec.actions:
        action = spec.actions[route.suffix]
        if method == "get":
            return client.get(url, action.query)
        return getattr(client, method)(url, action.body(a, obj), format="json")
    if method == "post":
        body = spec.create_body(a, a.sites[0]) if spec.create_body else {}
    elif method == "put":
        body = spec.put_body(a, obj) if spec.put_body else {}
    elif method == "patch":
        body = spec.patch_body(obj)
    elif method == "delete":
        body = spec.delete_body
    else:
        body = {}
    return getattr(client, method)(url, body, format="json")


def test_the_matrix_names_only_known_roles_and_every_routed_action() -> None:
    for resource, actions in MATRIX.items():
        for action, roles in actions.items():
            assert roles <= set(Role.values), (resource, action)
    for route in ROUTES:
        for method in route.methods:
            resource, action = route.permission(method)
            assert action in MATRIX[resource], f"{route.name} {method}: no {resource}.{action}"


@pytest.mark.django_db
@pytest.mark.parametrize("route,method", CASES, ids=[f"{r.name}-{m}" for r, m in CASES])
def test_each_role_gets_what_the_matrix_says(world: World, route: Route, method: str) -> None:
    users = {role: world.a.staff((role, None), username=f"only-{role}") for role in Role.values}
    mismatches: list[tuple[str, object, object, bytes]] = []
    for role, user in users.items():
        if method not in route.methods:
            expected = 405
        else:
            resource, action = route.permission(method)
            expected = _success_status(route, method) if role in MATRIX[resource][action] else 403
        with transaction.atomic():
            last_event = (
                AuditEvent.dangerously_unscoped.order_by("-id").values_list("id", flat=True).first()
            )
            response = _request(world.client_for(user), route, method, world)
            if response.status_code != expected:
                mismatches.append((role, expected, response.status_code, response.content[:300]))
            elif method != "get" and 200 <= expected < 300:
                mine = AuditEvent.dangerously_unscoped.filter(
                    id__gt=last_event or 0, actor_kind="staff", actor_id=user.pk
                )
                if not mine.exists():
                    mismatches.append((role, "an audit event by the user", "none", b""))
            transaction.set_rollback(True)
    assert not mismatches, f"{route.name} {method.upper()}: {mismatches}"
