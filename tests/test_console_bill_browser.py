"""The bill pages in a real browser: a verifier starts a bill run and sees it finish, cannot
approve it themselves, and a second verifier approves it; a run's panel follows its progress by
htmx polling, and a stalled run is checked and started again from it. No JavaScript errors, and
axe-core's check on every page visited."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from django.test import override_settings
from django.utils import timezone

from billing.models import BillRun, RunState, Tariff
from billing.runs import services as run_services
from billing.tests.test_bill_runs import Billing
from tenancy.roles import Role
from tests.browser import Watched, serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _accessible(watched: Watched) -> None:
    assert serious_accessibility_violations(watched.page) == []
    assert watched.errors == []


@pytest.mark.usefixtures("eager_tasks")
def test_a_verifier_starts_a_run_sees_it_finish_and_a_second_verifier_approves_it(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    world.a.staff((Role.VERIFIER, None), username="vera")
    world.a.staff((Role.VERIFIER, None), username="victor")
    site = world.a.sites[0]
    period = world.a.next_period()
    for _ in range(2):
        world.a.billed_account(site, period)

    vera = signed_in(browser, live_server.url, "vera", locale="en-US")
    page = vera.page
    page.click("nav.sidebar a[href='/console/bill-runs/']")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/")
    _accessible(vera)
    page.click("main a[href='/console/bill-runs/new/']")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/new/")
    _accessible(vera)
    page.select_option("#id_site", str(site.pk))
    page.fill("#id_period", period)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/*/")
    with world.a.active():
        run = BillRun.objects.get(site=site, period=period)
    panel = page.locator("#run-panel")
    panel.get_by_text("2 / 2").first.wait_for()
    assert "Drafted" in panel.inner_text()
    # the starter may not approve: the button is disabled and says why
    assert page.locator("#run-panel button[disabled]").count() == 1
    assert "You started this run" in panel.inner_text()
    assert page.locator(f"a[href='/console/bill-runs/{run.pk}/approve/']").count() == 0
    _accessible(vera)

    victor = signed_in(browser, live_server.url, "victor", locale="en-US")
    page = victor.page
    page.goto(f"{live_server.url}/console/bill-runs/{run.pk}/")
    _accessible(victor)
    page.click(f"a[href='/console/bill-runs/{run.pk}/approve/']")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/{run.pk}/approve/")
    assert "Bills issued now: 2" in page.locator("main").inner_text()
    _accessible(victor)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/{run.pk}/")
    page.locator("#run-panel .badge.ok").wait_for()
    _accessible(victor)
    with world.a.active():
        run.refresh_from_db()
    assert run.state == RunState.ISSUED and run.issued == 2
    assert run.approved_by_label and run.started_by_label != run.approved_by_label


def test_the_run_panel_follows_pricing_without_reloading_the_page(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    site = world.a.sites[0]
    period = world.a.next_period()
    world.a.billed_account(site, period)
    with world.a.active():
        run = run_services.open_bill_run(world.a.system, site, period)
    alice = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = alice.page
    page.goto(f"{live_server.url}/console/bill-runs/{run.pk}/")
    assert "0 of 1 accounts priced" in page.locator("#run-panel").inner_text()
    _accessible(alice)
    with world.a.active():
        run_services.price_bill_run(world.a.system, run.pk)
    page.locator("#run-panel:not([hx-trigger])").wait_for(timeout=10_000)
    assert "1 / 1" in page.locator("#run-panel").inner_text()
    assert page.locator(f"a[href='/console/bill-runs/{run.pk}/approve/']").count() == 1
    _accessible(alice)


@pytest.mark.usefixtures("eager_tasks")
@override_settings(BARS_STALL_MINUTES=5)
def test_a_stalled_run_is_checked_again_and_started_again_from_its_panel(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    site = world.a.sites[0]
    period = world.a.next_period()
    world.a.billed_account(site, period)
    with world.a.active():
        run = run_services.open_bill_run(world.a.system, site, period)
    BillRun.dangerously_unscoped.filter(pk=run.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=20)
    )
    alice = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = alice.page
    page.goto(f"{live_server.url}/console/bill-runs/{run.pk}/")
    panel = page.locator("#run-panel")
    assert panel.get_attribute("hx-trigger") == "every 30s"
    assert "No progress for 20 minutes" in panel.inner_text()
    _accessible(alice)
    BillRun.dangerously_unscoped.filter(pk=run.pk).update(
        progressed_at=timezone.now() - timedelta(minutes=45)
    )
    page.click("#run-stalled a:has-text('Check again')")  # swaps the panel, no reload
    page.get_by_text("No progress for 45 minutes").wait_for()
    assert page.url == f"{live_server.url}/console/bill-runs/{run.pk}/"
    page.click("#run-stalled button:has-text('Start again')")
    page.wait_for_url(f"{live_server.url}/console/bill-runs/{run.pk}/")
    page.get_by_text("Bill run started again; it resumes where it stopped.").wait_for()
    assert "Drafted" in page.locator("#run-panel").inner_text()
    assert page.locator("#run-panel").get_attribute("hx-trigger") is None
    _accessible(alice)


def test_a_tariff_version_form_shows_an_error_next_to_the_tier_limit(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    tariff = world.a.tariff()
    alice = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = alice.page
    page.goto(f"{live_server.url}/console/tariffs/{tariff.pk}/")
    _accessible(alice)
    page.click(f"a[href='/console/tariffs/{tariff.pk}/versions/new/?kind=tiered']")
    _accessible(alice)
    page.fill("#id_effective_from", "2026-07-01")
    page.fill("#id_tier_1_up_to", "2880")
    page.fill("#id_tier_1_price", "0.4883")
    page.fill("#id_tier_2_up_to", "1000")
    page.fill("#id_tier_2_price", "0.5383")
    page.fill("#id_tier_3_price", "0.7883")
    page.click("main form button[type=submit]")
    assert page.locator("#id_tier_2_up_to-error").inner_text() == "limits must rise"
    assert page.input_value("#id_tier_2_up_to") == "1000"
    # the refused form answers 400, which the browser reports; nothing else may be reported
    assert [error for error in alice.errors if "status of 400" not in error] == []
    alice.errors.clear()
    _accessible(alice)
    page.fill("#id_tier_2_up_to", "4800")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/tariffs/{tariff.pk}/")
    assert "4,800" in page.locator("main").inner_text()
    _accessible(alice)


def test_a_version_backdated_over_issued_bills_is_added_after_the_warning_is_confirmed(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    billing = Billing(world)
    account = billing.account(None, opened_on=date(2026, 1, 1))
    billing.period(account, "200", "2026-09")
    billing.approve(billing.run("2026-09"))
    tariff = Tariff.dangerously_unscoped.get(code=f"RES{billing.site.pk}")
    alice = signed_in(browser, live_server.url, "alice", locale="en-US")
    page = alice.page
    page.goto(f"{live_server.url}/console/tariffs/{tariff.pk}/versions/new/?kind=tiered")
    page.fill("#id_effective_from", "2026-08-15")
    page.fill("#id_tier_1_price", "0.5001")
    page.click("main form button[type=submit]")
    warning = page.locator("main .warning[role=alert]")
    assert "1 issued bill already covers" in warning.inner_text()
    assert "2026-09" in warning.inner_text()
    assert page.input_value("#id_tier_1_price") == "0.5001"  # what was typed is kept
    assert [error for error in alice.errors if "status of 409" not in error] == []
    alice.errors.clear()
    _accessible(alice)
    page.check("#id_confirm_backdated")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/tariffs/{tariff.pk}/")
    assert "From 2026-08-15" in page.locator("main").inner_text()
    _accessible(alice)


def test_a_verifier_credits_a_bill_and_reviews_flagged_bills_without_barriers(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    bill = world.a.bill()
    flag = world.a.flagged_bill()
    world.a.staff((Role.VERIFIER, None), username="vera")
    vera = signed_in(browser, live_server.url, "vera", locale="en-US")
    page = vera.page
    page.click("nav.sidebar a[href='/console/bills/']")
    page.fill("#id_number", bill.number)
    page.click("form.filters button[type=submit]")
    page.click(f"table.list a[href='/console/bills/{bill.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/bills/{bill.pk}/")
    _accessible(vera)
    page.click(f"a[href='/console/bills/{bill.pk}/credit/']")
    _accessible(vera)
    page.fill("#id_reason", "抄表员录错读数")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/bills/{bill.pk}/")
    page.click("main a:has-text('Credit note')")
    assert "Waiting for a second person" in page.locator("main").inner_text()
    _accessible(vera)
    page.goto(f"{live_server.url}/console/flagged-bills/")
    _accessible(vera)
    page.check(f"input[name=ids][value='{flag.pk}']")
    page.click("#approve-flagged button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/flagged-bills/approve/?ids={flag.pk}")
    _accessible(vera)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/flagged-bills/")
    assert "1 bill approved and issued" in page.locator("main").inner_text()
    page.goto(f"{live_server.url}/console/billing-settings/")
    _accessible(vera)
