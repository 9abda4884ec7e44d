"""The read pages in a real browser: a meter reader enters a reading by hand (a wrong value is
refused next to its field, a good one is stored and checked), and a site manager trips a meter's
relay on the simulated bus and sees it confirmed; no JavaScript errors, no serious
accessibility barriers on any page visited."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from django.db import connection

from gateway_bridge.testing import SimulatorThread, register_simulated, start_simulator
from metering.models import CommandState, Meter, MeterCommand, Reading
from tenancy.roles import Role
from tests.browser import serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_meter_reader_enters_a_reading_by_hand(
    browser: Browser, live_server: LiveServer, world: World, eager_tasks: None
) -> None:
    meter = world.a.meter(serial_number="31415926")
    world.a.staff((Role.METER_READER, world.a.sites[0]), username="reader")
    watched = signed_in(browser, live_server.url, "reader")
    page = watched.page
    page.click("nav.sidebar a[href='/console/meters/']")
    page.wait_for_url(f"{live_server.url}/console/meters/")
    assert serious_accessibility_violations(page) == []
    page.click(f"table.list a[href='/console/meters/{meter.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/meters/{meter.pk}/")
    assert serious_accessibility_violations(page) == []
    page.click(f"a[href='/console/meters/{meter.pk}/readings/new/']")
    page.wait_for_url(f"{live_server.url}/console/meters/{meter.pk}/readings/new/")
    assert serious_accessibility_violations(page) == []

    page.fill("#id_total", "-5")
    page.click("main form button[type=submit]")
    page.wait_for_selector("#id_total-error")
    assert page.get_attribute("#id_total", "aria-invalid") == "true"
    assert page.input_value("#id_total") == "-5"
    assert serious_accessibility_violations(page) == []
    with world.a.active():
        assert not Reading.objects.filter(meter=meter).exists()

    page.fill("#id_total", "1234.5")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/meters/{meter.pk}/")
    with world.a.active():
        reading = Reading.objects.get(meter=meter)
    assert reading.source == "manual"
    row = page.locator(f"#reading-{reading.pk}")
    assert "1234.500" in row.inner_text()
    assert row.locator(".badge.ok").count() == 1  # checked and valid
    assert page.locator(".messages .message").count() == 1
    assert serious_accessibility_violations(page) == []
    # The refused form answered 400 (as bad input must), which Chromium logs as a failed load;
    # nothing else went wrong.
    refused = [error for error in watched.errors if "status of 400" in error]
    assert len(refused) == 1
    assert [error for error in watched.errors if error not in refused] == []


@pytest.fixture
def simulated_meter(world: World) -> Iterator[tuple[SimulatorThread, Meter]]:
    with start_simulator(1, 1, profiles=["DDSY1352"], baud=115200) as sim:
        with world.a.active():
            (gateway,) = register_simulated(world.a.sites[0], sim.gateways, timeout_ms=500)
            meter = Meter.objects.get(gateway=gateway)
        yield sim, meter


def test_a_site_manager_trips_a_relay_and_sees_it_confirmed(
    browser: Browser,
    live_server: LiveServer,
    world: World,
    eager_tasks: None,
    simulated_meter: tuple[SimulatorThread, Meter],
) -> None:
    sim, meter = simulated_meter
    world.a.staff((Role.SITE_MANAGER, world.a.sites[0]), username="manager")
    watched = signed_in(browser, live_server.url, "manager")
    page = watched.page
    page.goto(f"{live_server.url}/console/meters/{meter.pk}/")
    assert serious_accessibility_violations(page) == []
    page.click(f"a[href='/console/meters/{meter.pk}/commands/trip/']")
    page.wait_for_url(f"{live_server.url}/console/meters/{meter.pk}/commands/trip/")
    assert page.locator(".warning li").count() >= 2  # what will happen, before anything does
    assert serious_accessibility_violations(page) == []

    page.fill("#id_reason", "欠费停电")
    page.click("button.danger")
    page.wait_for_url(f"{live_server.url}/console/meter-commands/*/")
    page.wait_for_selector("[data-state='confirmed']", timeout=20_000)
    assert serious_accessibility_violations(page) == []
    with world.a.active():
        command = MeterCommand.objects.get(meter=meter)
    assert command.state == CommandState.CONFIRMED and command.reason == "欠费停电"
    assert sim.gateways[0].meters[int(meter.unit_id or 0)].relay_tripped

    page.click(f"h1 a[href='/console/meters/{meter.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/meters/{meter.pk}/")
    assert page.locator("a[href$='/commands/close/']").count() == 1  # it may be closed again
    assert serious_accessibility_violations(page) == []
    assert watched.errors == []


def test_an_administrator_opens_every_read_page_without_errors_or_barriers(
    browser: Browser,
    live_server: LiveServer,
    world: World,
    eager_tasks: None,
    simulated_meter: tuple[SimulatorThread, Meter],
) -> None:
    from gateway_bridge import rounds
    from metering.reports import last_finished_slot

    _sim, meter = simulated_meter
    assert meter.gateway_id is not None

    def poll() -> None:  # the browser's event loop runs in this thread: poll in another
        with world.a.active():
            slot = last_finished_slot(world.a.tenant)
            rounds.run_round(world.a.tenant, [meter.gateway_id], slot)  # type: ignore[list-item]
        connection.close()

    poller = threading.Thread(target=poll)
    poller.start()
    poller.join(60)
    watched = signed_in(browser, live_server.url, "alice")
    page = watched.page
    for path in (
        "/console/meters/",
        f"/console/meters/{meter.pk}/",
        f"/console/meters/{meter.pk}/readings/",
        "/console/gateways/",
        f"/console/gateways/{meter.gateway_id}/",
        "/console/reading-completeness/",
        "/console/meter-commands/",
        "/console/meter-import/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        assert serious_accessibility_violations(page) == [], path
    page.goto(f"{live_server.url}/console/gateways/{meter.gateway_id}/")
    page.wait_for_selector("[data-chart='rounds-chart'] canvas")
    assert watched.errors == []
