"""The counter in a real browser: a cashier opens a shift with a float, finds an account by its
number, previews how a cash payment covering two bills is allocated, takes it (a double click
posts once), prints the receipt's original (one click: recorded, audited, then the print
dialog; view-only stamps before, a reprint offered after) and closes the shift with a cash
count that is short; a supervisor of the site approves the difference (posted to cash over and
short), then reverses the payment, which voids the receipt. A cashier reveals the bank account
of a transfer refund he pays (audited) and records it paid. No JavaScript errors, and
axe-core's check on every page visited."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from collection.models import (
    Payment,
    PaymentReversal,
    Receipt,
    ReceiptPrint,
    Refund,
    RefundState,
    Shift,
    ShiftState,
)
from ledger.checks import check_ledger
from ledger.models import JournalEntry
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
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


def test_a_cashier_takes_a_cash_payment_in_a_shift_closes_it_short_and_a_supervisor_approves(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    """Bills of 200.00 (20 days overdue: late fee 200.00 × 1‰ × 20 = 4.00) and 100.00 (not due);
    310.00 in cash pays 4.00 + 200.00 + 100.00 and leaves 6.00 of credit on account. The shift
    opened with a float of 500.00 expects 500.00 + 310.00 = 810.00 in the drawer; 805.00 is
    counted: 5.00 short, which the site manager approves."""
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
    page.click("nav.sidebar a[href='/console/my-shift/']")
    page.wait_for_url(f"{live_server.url}/console/my-shift/")
    page.select_option("#id_site", str(site.pk))
    page.fill("#id_float_amount", "500.00")
    page.click("main form button[type=submit]")
    page.locator("#id_counted_cash").wait_for()  # the shift is open: its close form shows
    _accessible(bob)
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
    # Until the original is printed the copies on screen are stamped view-only; one click
    # records the original and opens the print dialog on its unmarked copies.
    assert page.locator(".receipts .view-only-stamp").count() == 3
    assert page.evaluate("window.printed") is None
    _accessible(bob)
    page.click("button.print-original")
    page.wait_for_url(f"{live_server.url}/console/receipts/{receipt.pk}/?print=*")
    page.wait_for_function("window.printed === 1")
    assert page.locator(".receipts .view-only-stamp").count() == 0
    assert page.locator(".receipts").get_by_text("仅供查看").count() == 0
    with world.a.active():
        original = ReceiptPrint.objects.get(receipt=receipt)
        assert (original.copy, original.actor_id) == (0, world.bob.pk)
        assert AuditEvent.objects.filter(
            action="receipt.printed", object_id=str(receipt.pk)
        ).exists()
    page.locator("button.print-original").wait_for(state="detached")  # printed: never again
    page.locator("form[action$='/reprint/'] button").wait_for()  # later copies are reprints
    _accessible(bob)
    page.click("nav.sidebar a[href='/console/my-shift/']")
    page.wait_for_url(f"{live_server.url}/console/my-shift/")
    page.locator("main").get_by_text("810.00").first.wait_for()  # expected cash
    page.fill("#id_counted_cash", "805.00")
    page.fill("#id_counted_card", "0.00")
    page.fill("#id_note", "找零时少收五元")
    page.click("main form button[type=submit]")
    page.locator("#id_float_amount").wait_for()  # closed for the cashier: a new one may open
    with world.a.active():
        shift = Shift.objects.get(payments=payment)
    assert (shift.state, shift.expected_cash, shift.difference_cash) == (
        ShiftState.PENDING,
        Decimal("810.00"),
        Decimal("-5.00"),
    )
    _accessible(bob)
    bob.page.close()

    meili = signed_in(browser, live_server.url, "meili")
    page = meili.page
    page.click("nav.sidebar a[href='/console/shifts/']")
    page.wait_for_url(f"{live_server.url}/console/shifts/")
    _accessible(meili)
    page.click(f"main a[href='/console/shifts/{shift.pk}/']")
    page.wait_for_url(f"{live_server.url}/console/shifts/{shift.pk}/")
    page.select_option("#id_decision", "approve")
    page.fill("#id_note", "已核实，收费员赔付")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/shifts/{shift.pk}/")
    _accessible(meili)
    with world.a.active():
        shift.refresh_from_db()
        assert shift.state == ShiftState.CLOSED and shift.difference_entry_id is not None
        posted = JournalEntry.objects.get(pk=shift.difference_entry_id)
        assert sorted(line.amount for line in posted.lines.all()) == [
            Decimal("-5.00"),  # Cr the cashier's cash on hand
            Decimal("5.00"),  # Dr cash over and short
        ]
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
    assert check_ledger(world.a.tenant) == []


def test_the_cashier_who_pays_a_transfer_refund_reveals_the_bank_account_then_pays_it(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    """The refund page shows the customer's bank account masked; bob (a cashier: he pays
    refunds) presses 显示完整账号 and reads the full number on the page that answers, which the
    audit trail records, types the bank's reference and records the transfer paid; the page is
    masked again."""
    full, masked = "6222000011112222", "6222 **** **** 2222"  # as tests.world requests it
    refund = world.a.refund(state="approved", channel="bank_transfer")
    url = f"{live_server.url}/console/refunds/{refund.pk}/"
    bob = signed_in(browser, live_server.url, "bob")
    page = bob.page
    page.goto(url)
    pay = page.locator("section[aria-labelledby=refund-pay]")
    assert masked in pay.inner_text() and full not in page.content()
    _accessible(bob)
    pay.get_by_role("button", name="显示完整账号").click()
    page.wait_for_url(f"{url}reveal/")
    assert page.locator("#payee-bank-account").inner_text() == full
    _accessible(bob)
    with world.a.active():
        revealed = AuditEvent.objects.get(action=AuditAction.REFUND_BANK_ACCOUNT_REVEALED)
    assert (revealed.actor_label, revealed.object_id) == ("bob", str(refund.pk))
    page.fill("#id_payment_reference", "TRF-20261129")
    page.click("section[aria-labelledby=refund-pay] button[name=do][value=pay]")
    page.wait_for_url(url)
    with world.a.active():
        assert Refund.objects.get(pk=refund.pk).state == RefundState.PAID
    assert masked in page.content() and full not in page.content()
    _accessible(bob)
