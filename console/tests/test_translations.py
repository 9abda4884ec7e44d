"""The console in Simplified Chinese says what a utility's staff expect: a building's unit is
单元, a code is 编码 (not a one-time 验证码), a bill line's dates are dates, and the audit trail
names each action in Chinese instead of showing its code."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client
from django.utils import translation

from billing.tariffs import services as tariff_services
from tenancy.audit import AuditAction, record_audit
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _labels(html: str) -> list[str]:
    """The text of the form labels and column headings, markup and the required mark left out."""
    found = re.findall(r"<(?:label|th)\b[^>]*>(.*?)</(?:label|th)>", html, re.S)
    return [re.sub(r"<[^>]+>|\*", "", text).strip() for text in found]


def test_the_premise_form_calls_a_buildings_unit_danyuan(world: World) -> None:
    premise = world.a.premise()
    html = _client(world.alice).get(f"/console/premises/{premise.pk}/edit/").content.decode()
    labels = _labels(html)
    assert "单元" in labels and "单位" not in labels


def test_a_customers_name_is_a_persons_or_an_organisations_name(world: World) -> None:
    customer = world.a.customer()
    html = _client(world.alice).get(f"/console/customers/{customer.pk}/edit/").content.decode()
    assert "姓名/名称" in _labels(html)


def test_a_tariff_code_is_biaoma_not_a_one_time_code(world: World) -> None:
    html = _client(world.alice).get("/console/tariffs/").content.decode()
    assert any(label.startswith("编码") for label in _labels(html)) and "验证码" not in html


def test_a_bill_lines_date_range_is_headed_as_dates(world: World) -> None:
    bill = world.a.bill()
    html = _client(world.alice).get(f"/console/bills/{bill.pk}/").content.decode()
    assert "起止日期" in _labels(html) and "天数" not in _labels(html)


def test_every_audit_action_has_its_own_label_in_chinese() -> None:
    untranslated = []
    for action in AuditAction:
        with translation.override("en"):
            english = str(action.label)
        with translation.override("zh-hans"):
            chinese = str(action.label)
        if chinese == english or action.value in english:
            untranslated.append(action.value)
    assert untranslated == []


def test_the_audit_trail_and_the_dashboard_name_actions_in_chinese(world: World) -> None:
    with world.a.active():
        record_audit(world.a.system, AuditAction.CUSTOMER_PII_REVEALED, world.a.sites[0])
        record_audit(world.a.system, AuditAction.LOGIN, world.a.sites[0])
    client = _client(world.alice)
    trail = client.get("/console/audit/").content.decode()
    home = client.get("/console/").content.decode()
    for html in (trail, home):
        assert "已查看客户个人信息明文" in html and "登录" in html
        assert "Customer Pii Revealed" not in html and "auth.login" not in html.split("<tbody")[-1]


def test_an_accounts_history_names_its_actions_in_chinese(world: World) -> None:
    account = world.a.account()
    html = _client(world.alice).get(f"/console/accounts/{account.pk}/").content.decode()
    assert "账户已开立" in html and "account.opened" not in html


WATER_TIERS = {
    "energy": {
        "kind": "tiered",
        "cumulation": "year",
        "tiers": [
            {"up_to": "180", "price": "5.00"},
            {"up_to": "260", "price": "7.00"},
            {"up_to": None, "price": "9.00"},
        ],
    },
    "large_household": {"min_members": 5, "extra": ["50", "50"]},
    "free_allowance_kwh_per_month": "2",
    "fixed_monthly_fee": "1",
    "common_area_price": "5.00",
}


def test_a_water_tariffs_page_says_water_price_never_electricity_price(world: World) -> None:
    """电价 is the price of electricity: a water tariff's page says 水价 and 立方米, and its
    generic words (价格, 价格版本) are the neutral ones."""
    with world.a.active():
        water = tariff_services.create_tariff(
            world.a.system, code="WATER-RES", name="居民阶梯水价", utility="water"
        )
        tariff_services.add_tariff_version(
            world.a.system, water, effective_from=date(2026, 1, 1), spec=WATER_TIERS
        )
    client = _client(world.alice)
    html = client.get(f"/console/tariffs/{water.pk}/").content.decode()
    assert "电价" not in html
    assert '<h2 id="tariff-facts">水价</h2>' in html and "立方米" in html
    assert "千瓦时" not in html
    form = client.get(f"/console/tariffs/{water.pk}/versions/new/").content.decode()
    assert "电价" not in form and "千瓦时" not in form
    assert "水价 WATER-RES 的新版本" in form and "单价（元/立方米）" in form
    electricity = world.a.tariff()
    assert (
        '<h2 id="tariff-facts">电价</h2>'
        in client.get(f"/console/tariffs/{electricity.pk}/").content.decode()
    )
