"""The console in a real browser: each role's navigation, pages refused outside the grants,
no JavaScript errors, and axe-core's accessibility check on every page visited."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser import serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser
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
