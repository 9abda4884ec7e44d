"""The customer and administration pages in a real browser: finding a customer by phone with
the number masked, revealing it (audited), the account page; creating a member of staff with a
site-limited grant; an API client's token shown once. No JavaScript errors and no serious
accessibility barriers on any page visited."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tenancy.models import ApiClient, AuditEvent, RoleGrant, User
from tenancy.roles import Role
from tests.browser import serious_accessibility_violations, signed_in
from tests.world import PASSWORD, World

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MOBILE = "13987654321"


def _checked(page: Page) -> None:
    assert serious_accessibility_violations(page) == []


def test_an_administrator_finds_a_customer_by_phone_reveals_and_opens_the_account(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    account = world.a.account()
    world.a.contact(account.customer, value=MOBILE)
    world.a.account()
    watched = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = watched.page
    page.click("nav.sidebar a[href='/console/customers/']")
    page.wait_for_url(f"{live_server.url}/console/customers/")
    _checked(page)
    page.fill("#id_mobile", "139 8765 4321")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/customers/?mobile=*")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    assert "+86 139****4321" in rows.inner_text() and MOBILE not in page.content()
    _checked(page)

    rows.locator("button", has_text="Reveal").click()
    page.wait_for_selector(".pii-value")
    assert "+86" + MOBILE in rows.inner_text()
    assert account.customer.id_number in rows.inner_text()
    with world.a.active():
        revealed = AuditEvent.objects.get(action="customer.pii_revealed")
        assert AuditEvent.objects.filter(action="customer.pii_searched").count() == 1
    assert (revealed.actor_label, revealed.object_id) == ("alice", str(account.customer_id))
    _checked(page)

    page.click(f"a[href='/console/accounts/{account.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/accounts/{account.pk}/")
    assert account.number in page.locator("h1").inner_text()
    assert "+86 139****4321" in page.content()
    _checked(page)
    assert watched.errors == []


def test_an_administrator_creates_staff_limited_to_one_site(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    site = world.a.sites[1]
    watched = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = watched.page
    page.click("nav.sidebar a[href='/console/admin/staff/']")
    page.wait_for_url(f"{live_server.url}/console/admin/staff/")
    _checked(page)
    page.click("a[href='/console/admin/staff/new/']")
    _checked(page)
    page.fill("#id_username", "dave")
    page.fill("#id_display_name", "Dave")
    page.fill("#id_password", PASSWORD)
    page.select_option("#id_role", Role.CASHIER)
    page.select_option("#id_site", str(site.pk))
    page.click("main form button[type=submit]")
    dave = User.objects.get(username="dave")
    page.wait_for_url(f"{live_server.url}/console/admin/staff/{dave.pk}/")
    assert site.name in page.locator("table.list").inner_text()
    with world.a.active():
        grants = set(RoleGrant.objects.filter(user=dave).values_list("role", "site_id"))
    assert grants == {(Role.CASHIER, site.pk)}
    _checked(page)
    assert watched.errors == []


def test_an_api_clients_token_is_shown_once(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    watched = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = watched.page
    page.click("nav.sidebar a[href='/console/admin/api-clients/']")
    page.wait_for_url(f"{live_server.url}/console/admin/api-clients/")
    _checked(page)
    page.click("a[href='/console/admin/api-clients/new/']")
    _checked(page)
    page.fill("#id_name", "bank-icbc")
    page.select_option("#id_role", Role.CASHIER)
    page.click("main form button[type=submit]")
    token = page.locator("[data-token]").inner_text().strip()
    assert len(token) > 30
    with world.a.active():
        client = ApiClient.objects.get(name="bank-icbc")
    assert client.key_prefix in token
    _checked(page)

    page.reload()
    page.wait_for_load_state()
    assert token not in page.content()
    assert page.locator("[data-token]").count() == 0
    with world.a.active():
        assert ApiClient.objects.count() == 1
    _checked(page)
    assert watched.errors == []


def test_every_people_page_is_free_of_barriers_and_errors(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    account = world.a.account()
    world.a.contact(account.customer, value=MOBILE)
    world.a.meter(on_gateway=False, account=account)
    world.a.journal_entry()
    world.a.calendar_day()
    area = world.a.transformer_area()
    api_client, _token = world.a.api_client((Role.CASHIER, None))
    watched = signed_in(browser, live_server.url, "alice")  # in Chinese, as staff use it
    page = watched.page
    paths = [
        f"/console/customers/{account.customer_id}/",
        f"/console/customers/{account.customer_id}/edit/",
        f"/console/customers/{account.customer_id}/accounts/new/",
        f"/console/accounts/{account.pk}/",
        f"/console/accounts/{account.pk}/edit/",
        f"/console/premises/{account.premise_id}/edit/",
        "/console/customers/new/",
        f"/console/admin/staff/{world.bob.pk}/",
        f"/console/admin/staff/{world.bob.pk}/deactivate/",
        f"/console/admin/api-clients/{api_client.pk}/",
        f"/console/admin/api-clients/{api_client.pk}/rotate/",
        "/console/admin/calendar/?year=2030",
        "/console/admin/sites/",
        f"/console/admin/sites/{area.site_id}/",
        "/console/admin/settings/",
    ]
    for path in paths:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        assert serious_accessibility_violations(page) == [], path
    assert watched.errors == []
    page.goto(f"{live_server.url}/console/customers/new/")
    page.fill("#id_name", "王五")
    page.fill("#id_id_number", "110105")
    page.click("main form button[type=submit]")
    page.wait_for_selector(".field.invalid")
    assert page.input_value("#id_name") == "王五"
    assert serious_accessibility_violations(page) == []
    # The wrong form answers 400, which Chromium reports; nothing else went wrong.
    assert [error for error in watched.errors if "status of 400" not in error] == []
