"""The console in a real browser: each role's navigation, pages refused outside the grants,
no JavaScript errors, and axe-core's accessibility check on every page visited."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.urls import resolve, reverse

from console.nav import entries
from console.summaries import refresh_summaries
from tenancy.permissions import allowed_roles
from tenancy.roles import Role
from tests.browser import serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_filters_the_audit_trail_without_errors_or_barriers(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    watched = signed_in(browser, live_server.url, "alice")
    page = watched.page
    assert serious_accessibility_violations(page) == []
    page.click("nav.sidebar a[href='/console/audit/']")
    page.wait_for_url(f"{live_server.url}/console/audit/")
    page.select_option("#id_action", "site.created")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/audit/?action=site.created&sort=-id")
    assert page.locator("table.list tbody tr").count() == 2
    assert serious_accessibility_violations(page) == []
    assert watched.errors == []


def _nav_links(page: Page) -> set[str]:
    return set(
        page.locator("nav.sidebar a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
    )


def _page_permission(url: str) -> tuple[str, str]:
    """The permission the page's view asks for (``@page``): the same as its link's, so the
    menu shows exactly what the server lets a person open (a settings page opens read-only
    for those who may only view)."""
    view = resolve(url).func
    # The dashboard is open to every member of staff (each panel follows its own permission).
    return getattr(view, "console_permission", ("tenant", "view"))


@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_exactly_the_pages_its_grants_allow_and_gets_403_outside(
    browser: Browser, live_server: LiveServer, world: World, role: Role
) -> None:
    world.a.staff((role, None), username=f"nav-{role.value}")
    allowed = {
        reverse(entry.url_name)
        for entry in entries()
        if role.value in allowed_roles(entry.resource, entry.action)
    }
    outside = sorted(
        url
        for url in (reverse(entry.url_name) for entry in entries())
        if role.value not in allowed_roles(*_page_permission(url))
    )
    watched = signed_in(browser, live_server.url, f"nav-{role.value}")
    page = watched.page
    assert _nav_links(page) == allowed
    assert serious_accessibility_violations(page) == []
    for url in outside:
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 403, url
    assert watched.errors == [
        "console.error: Failed to load resource: the server responded with a status of 403 "
        "(Forbidden)"
    ] * len(outside)
    page.close()


def test_every_page_in_the_navigation_opens_without_errors_or_barriers(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    """The administrator opens every page of the navigation, with something on each."""
    site = world.a.sites[0]
    world.a.suspect_item(site)
    world.a.bill(site)
    world.a.line_loss(site)
    with world.a.active():
        refresh_summaries()
    watched = signed_in(browser, live_server.url, "alice")
    page = watched.page
    links = sorted(_nav_links(page))
    assert len(links) >= 20
    for url in links:
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert serious_accessibility_violations(page) == [], url
    assert watched.errors == []
    page.close()
