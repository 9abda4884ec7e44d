"""Inspection in a real browser: an inspector draws a sample, re-checks an item and records a
finding, then finds the finding's event in the audit trail; the meter reader it is addressed to
acknowledges it. No JavaScript errors and no serious accessibility barriers on any page."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from inspection.models import Finding, FindingState, SampleItem
from inspection.services import record_finding
from inspection.tests.scene import PERIOD, build_scene
from tests.browser import serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _no_barriers(page: Page) -> None:
    assert serious_accessibility_violations(page) == [], page.url


def test_an_inspector_records_a_finding_and_finds_it_in_the_audit_trail(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    scene = build_scene(world)
    scene.enter_readings(3)
    watched = signed_in(browser, live_server.url, "inspector")
    page = watched.page

    page.click("nav.sidebar a[href='/console/inspection/samples/']")
    page.wait_for_url(f"{live_server.url}/console/inspection/samples/")
    _no_barriers(page)
    page.click("a[href='/console/inspection/samples/draw/']")
    page.wait_for_url(f"{live_server.url}/console/inspection/samples/draw/")
    _no_barriers(page)
    page.select_option("#id_site", str(scene.site.pk))
    page.fill("#id_period", PERIOD)
    page.select_option("#id_staff", str(scene.reader.pk))
    page.fill("#id_readings", "2")
    page.fill("#id_bills", "0")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/console/inspection/samples/*/")
    assert "0 / 2" in page.locator("label[for=sample-progress]").inner_text()
    _no_barriers(page)

    page.click("table.list tbody tr:first-child a")
    page.wait_for_url("**/console/inspection/items/*/")
    assert page.locator("tr.inspected").count() == 1  # the reading among its neighbours
    _no_barriers(page)
    page.select_option("#id_outcome", "finding")
    page.select_option("#id_category", "misread")
    page.select_option("#id_severity", "major")
    page.fill("#id_note", "The display shows 131, not 113.")
    page.click("main form button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".messages").inner_text() != ""
    _no_barriers(page)

    page.click("nav.sidebar a[href='/console/audit/']")
    page.wait_for_url(f"{live_server.url}/console/audit/")
    page.select_option("#id_action", "inspection.finding_recorded")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/console/audit/?action=inspection.finding_recorded*")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 1
    with world.a.active():
        finding = Finding.objects.get()
    assert str(finding.pk) in rows.first.inner_text()
    _no_barriers(page)
    rows.first.locator("a").click()
    page.wait_for_url("**/console/audit/*/")
    assert "misread" in page.content() and "major" in page.content()
    _no_barriers(page)
    assert watched.errors == []


def test_the_meter_reader_acknowledges_the_finding_addressed_to_them(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    scene = build_scene(world)
    scene.enter_readings(1)
    sample = scene.draw(readings=1, staff_id=scene.reader.pk)
    with world.a.active():
        item = SampleItem.objects.get(sample=sample)
        finding = record_finding(
            scene.as_(scene.inspector), item, outcome="finding", category="misread",
            severity="minor", note="Typed 13 for 31.",
        )  # fmt: skip
    watched = signed_in(browser, live_server.url, "reader")
    page = watched.page
    page.click("nav.sidebar a[href='/console/inspection/my-findings/']")
    page.wait_for_url(f"{live_server.url}/console/inspection/my-findings/")
    _no_barriers(page)
    page.click("table.list tbody tr:first-child a")
    page.wait_for_url(f"**/console/inspection/my-findings/{finding.pk}/")
    assert "Typed 13 for 31." in page.content()
    _no_barriers(page)
    page.fill("#id_response", "Re-read the meter and corrected my habit.")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/inspection/my-findings/")
    _no_barriers(page)
    with world.a.active():
        finding.refresh_from_db()
    assert finding.state == FindingState.ACKNOWLEDGED
    assert watched.errors == []
