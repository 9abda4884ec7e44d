"""The Verify pages in a real browser, the issue's flow: a verifier approves two suspect
readings from the keyboard and edits a third with a reason; the console offers them no approval
of their own edit, and a second verifier approves it. No JavaScript errors and no serious
accessibility barriers on any page visited."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tenancy.roles import Role
from tests.browser import serious_accessibility_violations, signed_in
from tests.world import World
from verification.models import ReadingCorrection, VerificationItem

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _barrier_free(page: Page) -> None:
    assert serious_accessibility_violations(page) == []


def test_two_readings_approved_and_a_third_edited_then_approved_by_a_second_verifier(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    first, second, third = (world.a.suspect_item() for _ in range(3))
    world.a.staff((Role.VERIFIER, None), username="wang")
    world.a.staff((Role.VERIFIER, None), username="li")

    wang = signed_in(browser, live_server.url, "wang", locale="en-US")
    page = wang.page
    page.click("nav.sidebar a[href='/console/verification/']")
    page.wait_for_url(f"{live_server.url}/console/verification/")
    assert page.locator("table[data-keyboard] tbody tr").count() == 3
    _barrier_free(page)

    # j moves to a row, x ticks it: the two oldest readings.
    for key in ("j", "x", "j", "x"):
        page.keyboard.press(key)
    ticked = page.locator("input[name=item]:checked")
    assert [ticked.nth(i).get_attribute("value") for i in range(2)] == [
        str(first.pk),
        str(second.pk),
    ]
    page.click("#approve-form button[type=submit]")
    page.wait_for_selector(".messages")
    assert "Approved 2 readings" in page.locator(".messages").inner_text()
    assert page.locator("table[data-keyboard] tbody tr").count() == 1
    _barrier_free(page)

    page.click(f"table[data-keyboard] a[href='/console/verification/{third.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/verification/{third.pk}/")
    _barrier_free(page)
    page.click(f"a[href='/console/verification/{third.pk}/edit/']")
    page.wait_for_url(f"{live_server.url}/console/verification/{third.pk}/edit/")
    _barrier_free(page)
    page.fill("#id_total", "104")
    page.fill("#id_reason", "digit misread: the 0 was a 4")
    page.click("main form button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/corrections/\d+/$"))
    correction = ReadingCorrection.dangerously_unscoped.get(meter_id=third.meter_id)
    assert "you cannot approve it" in page.locator("main").inner_text()
    assert (
        page.locator(f"form[action='/console/corrections/{correction.pk}/approve/']").count() == 0
    )
    _barrier_free(page)
    assert wang.errors == []

    li = signed_in(browser, live_server.url, "li", locale="en-US")
    page = li.page
    page.click("nav.sidebar a[href='/console/corrections/']")
    page.wait_for_url(f"{live_server.url}/console/corrections/")
    assert "wang" in page.locator("table.list tbody").inner_text()  # who proposed it
    _barrier_free(page)
    page.click(f"table.list a[href='/console/corrections/{correction.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/corrections/{correction.pk}/")
    _barrier_free(page)
    page.click(f"form[action='/console/corrections/{correction.pk}/approve/'] button")
    page.wait_for_selector(".messages")
    assert "Correction approved" in page.locator(".messages").inner_text()
    _barrier_free(page)
    assert li.errors == []

    approved = ReadingCorrection.dangerously_unscoped.get(pk=correction.pk)
    assert (approved.state, approved.created_by_label, approved.approved_by_label) == (
        "approved",
        "wang",
        "li",
    )
    states = VerificationItem.dangerously_unscoped.filter(
        pk__in=[first.pk, second.pk, third.pk]
    ).values_list("state", flat=True)
    assert set(states) == {"resolved"}


def test_the_period_and_line_loss_pages_draw_without_errors_or_barriers(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    loss = world.a.line_loss()
    period = world.a.period()
    watched = signed_in(browser, live_server.url, "alice")
    page = watched.page
    page.goto(f"{live_server.url}/console/line-losses/?site={loss.site_id}&period=2025-10")
    page.wait_for_selector("[data-chart='line-loss-trend'] canvas")
    _barrier_free(page)
    page.goto(f"{live_server.url}/console/periods/?site={period.site_id}&period=2025-10")
    assert page.locator("dl.figures").count() == 1
    _barrier_free(page)
    page.goto(f"{live_server.url}/console/periods/{period.pk}/")
    _barrier_free(page)
    meter = world.a.meter()
    page.goto(f"{live_server.url}/console/corrections/new/?meter={meter.pk}")
    _barrier_free(page)
    page.goto(f"{live_server.url}/console/verification-settings/")
    _barrier_free(page)
    assert watched.errors == []
