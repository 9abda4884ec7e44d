"""Screenshots of the console's main pages on the demo tenant, for the README.

The demo is seeded into the test database (last months billed, suspect readings waiting,
dashboards computed) and each page is opened as the demo staff member who works on it. The
images go to ``BARS_SCREENSHOT_DIR`` when it is set (``docs/screenshots`` refreshes the
README's), else to a temporary directory; either way each must be a real, non-trivial PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from billing.models import Bill, BillRun
from console.demo import DEMO_PASSWORD, seed_demo
from customers.models import Account
from metering.models import Meter
from tenancy.context import use_tenant
from verification.models import VerificationItem

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PNG = b"\x89PNG\r\n\x1a\n"


def test_screenshots_of_the_main_pages_on_the_demo(
    browser: Browser, live_server: LiveServer, tmp_path: Path
) -> None:
    target = Path(os.environ.get("BARS_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    result = seed_demo()
    with use_tenant(result.tenant):
        meter = Meter.objects.filter(account__isnull=False).order_by("pk").first()
        run = BillRun.objects.order_by("-period", "pk").first()
        bill = Bill.objects.filter(state="issued").order_by("-period", "pk").first()
        account = Account.objects.order_by("number").first()
        assert VerificationItem.objects.exists() and meter and run and bill and account
    shots = [
        ("demo-verifier", "dashboard", "/console/"),
        ("demo-verifier", "verification-queue", "/console/verification/"),
        ("demo-admin", "meter", f"/console/meters/{meter.pk}/"),
        ("demo-verifier", "bill-run", f"/console/bill-runs/{run.pk}/"),
        ("demo-verifier", "bill", f"/console/bills/{bill.pk}/"),
        ("demo-admin", "account", f"/console/accounts/{account.pk}/"),
        ("demo-admin", "tariffs", "/console/tariffs/"),
        ("demo-inspector", "audit-trail", "/console/audit/"),
    ]
    for username, name, url in shots:
        page = browser.new_page(locale="zh-CN", viewport={"width": 1366, "height": 900})
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", DEMO_PASSWORD)
        page.click("form[action='/login/'] button[type=submit]")
        page.wait_for_url(f"{live_server.url}/console/")
        response = page.goto(f"{live_server.url}{url}")
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(600)  # the charts' entry animation
        path = target / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        page.close()
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, name
