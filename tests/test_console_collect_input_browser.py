"""The collect pages a user trial found wanting, in a real browser: the deposits page without
an open shift says to open one instead of showing a form; a mistyped account number is blamed
on its check digit; an empty amount is asked for; a card deposit's receipt shows the slip; a
recharge card serial of letters is refused saying what a serial is. No JavaScript errors, and
axe-core's check on every page visited."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from collection.models import Deposit
from tests.browser import Watched, serious_accessibility_violations, signed_in
from tests.world import World

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _accessible(watched: Watched, refused: bool = False) -> None:
    """No serious accessibility violation and no JavaScript error; a refused form answers 400,
    which the browser logs as a failed load (that one is expected)."""
    assert serious_accessibility_violations(watched.page) == []
    expected = ["console.error: Failed to load resource: the server responded with a status of "
                "400 (Bad Request)"] if refused else []  # fmt: skip
    assert watched.errors == expected
    watched.errors.clear()


def test_a_cashier_takes_a_card_deposit_once_the_page_lets_him(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    account = world.a.account()
    mistyped = account.number[:-1] + str((int(account.number[-1]) + 1) % 10)
    bob = signed_in(browser, live_server.url, "bob")
    page = bob.page
    page.goto(f"{live_server.url}/console/deposits/?account={mistyped}")
    assert "校验位不符" in page.locator("main").inner_text()
    _accessible(bob)
    page.goto(f"{live_server.url}/console/deposits/?account={account.number}")
    take = page.locator("section[aria-labelledby=take-deposit]")
    assert "您没有已开的班次" in take.inner_text()
    assert take.locator("form").count() == 0
    _accessible(bob)
    world.a.on_shift(world.bob, account.site)
    page.reload()
    page.select_option("#id_channel", "counter_card")
    page.fill("#id_external_reference", "POS-778899")
    page.click("section[aria-labelledby=take-deposit] button[type=submit]")
    assert page.locator("#id_amount-error").inner_text() == "请填写金额。"
    _accessible(bob, refused=True)
    page.fill("#id_amount", "500.00")
    page.click("section[aria-labelledby=take-deposit] button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/deposits/[0-9]+/receipt/$"))
    with world.a.active():
        deposit = Deposit.objects.get()
    assert page.url.endswith(f"/console/deposits/{deposit.pk}/receipt/")
    assert "POS-778899" in page.locator("main").inner_text()
    _accessible(bob)


def test_a_card_serial_of_letters_is_refused_saying_what_a_serial_is(
    browser: Browser, live_server: LiveServer, world: World
) -> None:
    account = world.a.account(payment_mode="prepaid")
    bob = signed_in(browser, live_server.url, "bob")
    page = bob.page
    page.goto(f"{live_server.url}/console/voucher-redemptions/new/")
    assert page.get_attribute("#id_serial", "title") == "12 位数字，与卡面印刷一致。"
    page.fill("#id_account", account.number)
    page.fill("#id_serial", "abc")
    page.fill("#id_pin", "12345")
    page.click("main button[type=submit]")
    assert "卡号为 12 位数字" in page.locator("#id_serial-error").inner_text()
    assert "密码为 16 位数字" in page.locator("#id_pin-error").inner_text()
    _accessible(bob, refused=True)
