"""schemathesis over the project's own OpenAPI schema, as a tenant administrator: every
operation, a bounded number of generated requests each (``BARS_SCHEMATHESIS_EXAMPLES``, 10),
checked for server errors, answers that do not match their documented schema and status codes
the schema does not list. A fixed seed in CI, so a run repeats the last one; a random one
locally, so each run tries new inputs (a failure prints the request to reproduce it).

Not checked here: that a request the schema allows is accepted (an id that names nothing is
schema-valid and rightly refused) and that one it forbids is refused (the schema cannot say
everything the serializers check)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tenancy.roles import Role
from tests.world import World

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# A fixed seed in CI (the same requests every run), a random one locally.
FIXED = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def token(world: World) -> Iterator[str]:
    """A tenant administrator's token. The requests go straight to the WSGI application, not
    through Django's test client, so the connection-closing signal handlers are taken off as
    that client takes them off: the test's transaction must outlive each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield world.a.api_client((Role.TENANT_ADMIN, None))[1]
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("BARS_SCHEMATHESIS_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=FIXED,
    database=None,
)
def test_the_api_keeps_its_schema(case: Any, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
