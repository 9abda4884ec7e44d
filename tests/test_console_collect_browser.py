"""The counter in a real browser: a cashier finds an account by its number, previews how a cash
payment covering two bills is allocated, takes it (a double click posts once), prints the
receipt's copies, and a supervisor of the site reverses it, which voids the receipt. No
JavaScript errors, and axe-core's check on every page visited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from collection.models import Payment, PaymentReversal, Receipt
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


def test_a_cashier_takes_a_cash_payment_for_two_bills_prints_it_and_a_supervisor_reverses_it(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    """Bills of 200.00 (20 days overdue: late fee 200.00 × 1‰ × 20 = 4.00) and 100.00 (not due);
    310.00 in cash pays 4.00 + 200.00 + 100.00 and leaves 6.00 of credit on account."""
    today = world.a.tenant.local_today()
    site = world.a.sites[0]
    account = world.a.account(site)
    world.a.issued_bill(account, "200.00", today - timedelta(days=20), period="2026-08")
    world.a.issued_bill(account, "100.00", today + timedelta(days=10), period="2026-09")
    world.a.staff((Role.SITE_MANAGER, site), username="meili")

    bob = signed_in(browser, live_server.url, "bob")
    page = bob.page
    page.add_init_script(
        "window.print = function () { window.printed = (window.printed || 0) + 1; };"
    )
    page.click("nav.sidebar a[href='/console/counter/']")
    page.wait_for_url(f"{live_server.url}/console/counter/")
    _accessible(bob)
    page.fill("#id_q", account.number)
    page.click("form.counter-search button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/counter/accounts/{account.pk}/")
    assert page.input_value("#id_amount") == "304.00"
    _accessible(bob)
    page.fill("#id_amount", "310.00")
    page.click("button[name=preview]")
    page.locator(".preview").get_by_text("6.00").wait_for()
    _accessible(bob)
    page.dblclick("button[name=post]")
    page.wait_for_url(f"{live_server.url}/console/receipts/*/")
    with world.a.active():
        payment = Payment.objects.get()
        receipt = Receipt.objects.get(payment=payment)
    assert (payment.amount, payment.late_fees, payment.surplus) == (
        Decimal("310.00"),
        Decimal("4.00"),
        Decimal("6.00"),
    )
    for copy in ("客户联", "存根联", "记账联"):
        page.locator(".receipts").get_by_text(copy).wait_for()
    page.click("button[data-print]")
    assert page.evaluate("window.printed") == 1
    _accessible(bob)
    bob.page.close()

    meili = signed_in(browser, live_server.url, "meili")
    page = meili.page
    page.goto(f"{live_server.url}/console/payments/{payment.pk}/")
    page.click(f"a[href='/console/payments/{payment.pk}/reverse/']")
    page.wait_for_url(f"{live_server.url}/console/payments/{payment.pk}/reverse/")
    _accessible(meili)
    page.fill("#id_reason", "收错户号")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/payments/{payment.pk}/")
    with world.a.active():
        assert PaymentReversal.objects.filter(payment=payment).exists()
    page.goto(f"{live_server.url}/console/receipts/{receipt.pk}/")
    page.get_by_text("此收据已作废").wait_for()
    _accessible(meili)
