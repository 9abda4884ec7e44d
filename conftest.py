"""Fixtures every test module shares: the two-tenant world and the hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest
from django.db import connection
from django.utils import translation
from hypothesis import HealthCheck, settings

from tests.world import TenantWorld, World, build_world

# The browser fixture (headless Chromium) for every test module that asks for it.
pytest_plugins = ["tests.browser"]

if TYPE_CHECKING:
    from pytest_django import Settings

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "local", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "local")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (row locks, triggers, real concurrency): set DATABASE_URL"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Settings) -> None:
    """PBKDF2's deliberate slowness protects stored passwords, not tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """Each test starts in the default language (Chinese): a request's locale middleware leaves
    the language it chose active in the thread, and a test that asked for English would hand it
    to whichever test runs next in that process."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _ample_pii_search_budget(settings: Settings) -> None:
    """Searches by a personal number have a budget of a few a minute per caller; tests that
    search are not about it (the test of the budget sets its own)."""
    rest = settings.REST_FRAMEWORK
    rates = {**rest["DEFAULT_THROTTLE_RATES"], "pii_search": "10000/min"}
    settings.REST_FRAMEWORK = {**rest, "DEFAULT_THROTTLE_RATES": rates}


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.fixture
def in_tenant_a(world: World) -> Iterator[TenantWorld]:
    """The test body runs in tenant A's context, as business code runs in a request or task."""
    with world.a.active():
        yield world.a


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in this process, as in the embedded demo, even when a broker is configured."""
    from celery import current_app

    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    try:
        yield
    finally:
        current_app.conf.task_always_eager = eager


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After every test that posted to the ledger (before its database is rolled back): every
    entry sums to zero and every cached balance equals the sum of its lines."""
    result = yield
    uses_db = {"db", "transactional_db"} & set(getattr(item, "fixturenames", ()))
    if uses_db or item.get_closest_marker("django_db"):
        from ledger.checks import check_ledger
        from ledger.models import JournalLine

        if JournalLine.dangerously_unscoped.exists():
            problems = check_ledger()
            assert not problems, "the ledger is unsound after this test:\n" + "\n".join(problems)
    return result
