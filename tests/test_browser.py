"""Pages in a real browser: headless Chromium driven by Playwright.

The login page works in Chinese and in English, and the API docs list their operations with
every asset served by this site (the machines are offline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.world import PASSWORD, World

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_log_in_in_chinese_and_switch_to_english(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{live_server.url}/login/")
    assert page.locator("h1").inner_text() == "员工登录"
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit] >> text=登录")
    page.wait_for_url(f"{live_server.url}/console/")
    assert page.locator("h1").inner_text() == "Tenant A"
    assert "您的角色" in page.content()
    page.click("button[name=language][value=en]")
    page.wait_for_load_state()
    assert "Your roles" in page.content()
    assert "Tenant administrator" in page.content()
    page.click("text=Log out")
    page.wait_for_url(f"{live_server.url}/login/")
    assert page.locator("h1").inner_text() == "Staff login"
    page.goto(f"{live_server.url}/console/")
    assert page.url.startswith(f"{live_server.url}/login/"), "the session must be gone"
    page.close()


def test_a_wrong_password_shows_the_error_in_english(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    page = browser.new_page(locale="en-US", extra_http_headers={"Accept-Language": "en"})
    page.goto(f"{live_server.url}/login/")
    assert page.locator("h1").inner_text() == "Staff login"
    page.fill("#id_username", "alice")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit] >> text=Log in")
    page.wait_for_load_state()
    assert page.locator(".errors").is_visible()
    page.close()


def test_the_api_docs_list_their_operations_from_local_assets(
    browser: Browser, live_server: LiveServer, db: None
) -> None:
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    violations = _csp_violations(page)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)
    # Swagger UI renders the tags near the viewport: scroll through and collect them all.
    operations: set[str] = set()
    for _step in range(200):
        operations.update(page.locator(".opblock-summary-path").all_inner_texts())
        if len(operations) >= 30:
            break
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(100)
    assert len(operations) >= 30
    assert any("/api/v1/accounts/{number}/" in op.replace("\u200b", "") for op in operations)
    outside = [url for url in requested if not url.startswith(live_server.url)]
    assert not outside, f"the docs fetched from outside this site: {outside}"
    assert not violations, violations
    page.close()


def _csp_violations(page: Page) -> list[str]:
    """What the browser refused under the page's Content-Security-Policy, as it reports it."""
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def test_every_page_is_served_with_a_content_security_policy_it_keeps(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    """The login page, the console, a bill and ReDoc render under the policy, with nothing
    refused: scripts only from this site, no framing."""
    bill = world.a.bill()
    page = browser.new_page(locale="zh-CN")
    violations = _csp_violations(page)
    response = page.goto(f"{live_server.url}/login/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    page.fill("#id_username", "bob")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit] >> text=登录")
    page.wait_for_url(f"{live_server.url}/console/")
    page.goto(f"{live_server.url}/console/bills/{bill.pk}/document/")
    assert page.locator(".qr svg").count() == 1
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("text=/api/v1/accounts/", timeout=30_000)
    # ReDoc's "API docs by Redocly" badge is an image on the vendor's site: refused, as every
    # other site is; nothing of this site's, and no script, may be.
    refused_here = [v for v in violations if "script" in v or live_server.url in v]
    assert not refused_here, refused_here
    assert all("cdn.redoc.ly" in v for v in violations), violations
    page.close()


def test_a_bill_page_shows_its_lines_amount_due_and_payment_code(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    bill = world.a.bill()
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit] >> text=登录")
    page.wait_for_url(f"{live_server.url}/console/")
    page.goto(f"{live_server.url}/console/bills/{bill.pk}/document/")
    text = page.locator("body").inner_text()
    assert "电费账单" in text and bill.number in text
    assert "应缴金额: ¥100.00" in text.replace("：", ":")
    assert "电度电费" in text and "11.50" in text  # the line and its tax
    assert page.locator(".qr svg").count() == 1
    page.goto(f"{live_server.url}/console/bills/{bill.pk}/document/?lang=en")
    assert "Amount due: ¥100.00" in page.locator("body").inner_text()
    page.close()
