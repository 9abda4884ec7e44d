"""Payments, reversals (冲正) and failed attempts in the console: the lists and their filters,
a payment's page, and who is offered the reverse button (a supervisor of its site on its
business day, finance later, never who took it), with the reason shown to the others."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from collection.models import Payment, PaymentReversal, Receipt
from collection.services.payments import post_payment
from collection.services.reversal import reverse_payment
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World, unique

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bob_on_shift(world: World) -> None:
    """bob takes counter payments at site A1 in his open shift."""
    world.a.on_shift(world.bob, world.a.sites[0])


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def _earlier_payment(world: World, days: int = 2) -> Payment:
    """A cash payment taken ``days`` business days ago by a cashier of its own."""
    account = world.a.account()
    cashier = world.a.cashier()
    world.a.on_shift(cashier, account.site)
    with world.a.active():
        return post_payment(
            cashier, account=account, channel="counter_cash", amount=Decimal("40.00"),
            idempotency_key=unique("k"), now=timezone.now() - timedelta(days=days),
        ).payment  # fmt: skip


def _page(client: Client, payment: Payment) -> Any:
    response = client.get(f"/console/payments/{payment.pk}/")
    assert response.status_code == 200
    return response


# --- the lists --------------------------------------------------------------------------------


def test_the_payments_list_filters_by_channel_state_account_and_cashier(world: World) -> None:
    cash = world.a.payment(amount="10.00")
    card_account = world.a.account()
    with world.a.active():
        card = post_payment(
            Principal.for_user(world.bob), account=card_account, channel="counter_card",
            amount=Decimal("20.00"), idempotency_key=unique("k"), external_reference="POS-0001",
        ).payment  # fmt: skip
    reversed_one = world.a.payment(amount="30.00")
    with world.a.active():
        reverse_payment(Principal.for_user(world.alice), reversed_one, "重复收费")
    finance = _client(world.a.staff((Role.HQ_FINANCE, None)))

    def listed(**query: Any) -> list[int]:
        response = finance.get("/console/payments/", query)
        assert response.status_code == 200
        return sorted(row.id for row in response.context["listing"].rows)

    assert listed() == sorted([cash.pk, card.pk, reversed_one.pk])
    assert listed(channel="counter_card") == [card.pk]
    assert listed(state="reversed") == [reversed_one.pk]
    assert listed(state="posted") == sorted([cash.pk, card.pk])
    assert listed(account=card_account.number) == [card.pk]
    assert listed(cashier=world.bob.pk) == [card.pk]
    today = world.a.tenant.local_today()
    assert listed(since=today.isoformat(), until=today.isoformat()) == listed()
    assert listed(until=(today - timedelta(days=1)).isoformat()) == []
    html = finance.get("/console/payments/").content.decode()
    body = html.split("<tbody")[1]
    assert "已冲正" in body and "营业厅刷卡" in body, body


def test_a_site_managers_list_holds_only_the_payments_of_the_site(world: World) -> None:
    on_a1 = world.a.payment(world.a.sites[0])
    world.a.payment(world.a.sites[1])
    manager = _client(world.a.staff((Role.SITE_MANAGER, world.a.sites[0])))
    rows = manager.get("/console/payments/").context["listing"].rows
    assert [row.id for row in rows] == [on_a1.pk]


def test_the_reversals_list_names_who_reversed_and_why(world: World) -> None:
    payment = world.a.payment()
    with world.a.active():
        reverse_payment(Principal.for_user(world.alice), payment, "收错户号")
    response = _client(world.a.staff((Role.HQ_FINANCE, None))).get("/console/payment-reversals/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "收错户号" in html and "alice" in html


def test_the_failed_attempts_list_filters_by_outcome(world: World) -> None:
    rejected = world.a.payment_attempt()
    account = world.a.account()
    _client(world.bob).post(
        f"/console/counter/accounts/{account.pk}/",
        {"channel": "counter_cash", "amount": "0.00", "idempotency_key": unique("k"), "post": "1"},
    )
    finance = _client(world.a.staff((Role.HQ_FINANCE, None)))
    every = finance.get("/console/payment-attempts/").context["listing"].rows
    assert len(every) == 2
    only = finance.get("/console/payment-attempts/", {"outcome": "rejected"})
    assert [row.id for row in only.context["listing"].rows] == [rejected.pk]
    assert "卡被拒绝" in only.content.decode()


def test_a_cashier_may_not_open_the_failed_attempts(world: World) -> None:
    assert _client(world.bob).get("/console/payment-attempts/").status_code == 403


# --- a payment's page and its reversal ------------------------------------------------------


def test_the_payments_page_shows_its_allocations_receipt_and_entry(world: World) -> None:
    today = world.a.tenant.local_today()
    account = world.a.account()
    bill = world.a.issued_bill(account, "35.00", today + timedelta(days=3))
    payment = world.a.payment(account=account, amount="50.00")
    with world.a.active():
        receipt = Receipt.objects.get(payment=payment)
    response = _page(_client(world.alice), payment)
    html = response.content.decode()
    assert bill.number in html and receipt.display_number in html
    assert [part.principal for part in response.context["allocations"]] == [Decimal("35.00")]
    # The entry: Dr cash 50.00, Cr receivable 35.00, Cr wallet 15.00.
    amounts = sorted(line.amount for line in response.context["lines"])
    assert amounts == [Decimal("-35.00"), Decimal("-15.00"), Decimal("50.00")]


def test_the_cashier_who_took_it_is_not_offered_the_reverse_button_and_reads_why(
    world: World,
) -> None:
    payment = world.a.payment(by=Principal.for_user(world.bob))
    response = _page(_client(world.bob), payment)
    assert response.context["may_reverse"] is False
    html = response.content.decode()
    assert f"/console/payments/{payment.pk}/reverse/" not in html
    assert "不得冲正本人收取的缴费" in html


def test_a_supervisor_reverses_a_payment_of_the_same_business_day(world: World) -> None:
    payment = world.a.payment(world.a.sites[0])
    manager = _client(world.a.staff((Role.SITE_MANAGER, world.a.sites[0])))
    page = _page(manager, payment)
    assert page.context["may_reverse"] is True
    assert f"/console/payments/{payment.pk}/reverse/" in page.content.decode()
    refused = manager.post(f"/console/payments/{payment.pk}/reverse/", {"reason": "  "})
    assert refused.status_code == 400
    done = manager.post(f"/console/payments/{payment.pk}/reverse/", {"reason": "户号收错"})
    assert done.status_code == 302
    with world.a.active():
        reversal = PaymentReversal.objects.get(payment=payment)
    assert reversal.reason == "户号收错"
    after = _page(manager, payment)
    assert after.context["may_reverse"] is False and "户号收错" in after.content.decode()
    again = manager.post(f"/console/payments/{payment.pk}/reverse/", {"reason": "再次"})
    assert again.status_code == 400
    with world.a.active():
        assert PaymentReversal.objects.count() == 1


def test_a_payment_of_an_earlier_day_is_reversed_by_finance_not_the_supervisor(
    world: World,
) -> None:
    payment = _earlier_payment(world)
    manager = _client(world.a.staff((Role.SITE_MANAGER, None)))
    page = _page(manager, payment)
    assert page.context["may_reverse"] is False
    assert "由财务" in page.content.decode() or "财务" in page.context["refusal"]
    refused = manager.post(f"/console/payments/{payment.pk}/reverse/", {"reason": "晚了"})
    assert refused.status_code == 400
    with world.a.active():
        assert not PaymentReversal.objects.exists()
    finance = _client(world.a.staff((Role.HQ_FINANCE, None)))
    assert _page(finance, payment).context["may_reverse"] is True
    done = finance.post(f"/console/payments/{payment.pk}/reverse/", {"reason": "银行退回"})
    assert done.status_code == 302
    with world.a.active():
        assert PaymentReversal.objects.filter(payment=payment).exists()


def test_the_person_who_took_it_cannot_reverse_it_by_posting_directly(world: World) -> None:
    """A site manager who also works the counter took the payment: the service refuses them."""
    manager = world.a.staff((Role.SITE_MANAGER, None), (Role.CASHIER, None))
    payment = world.a.payment(by=Principal.for_user(manager))
    response = _client(manager).post(f"/console/payments/{payment.pk}/reverse/", {"reason": "x"})
    assert response.status_code == 400
    assert "不得冲正本人收取的缴费" in response.content.decode()
    with world.a.active():
        assert not PaymentReversal.objects.exists()


def test_a_cashier_may_not_open_the_reverse_page(world: World) -> None:
    payment = world.a.payment()
    assert _client(world.bob).get(f"/console/payments/{payment.pk}/reverse/").status_code == 403


def test_the_collect_section_of_the_menu_lists_the_pages_a_cashier_may_open(world: World) -> None:
    response = _client(world.bob).get("/console/counter/")
    sections = dict(response.context["console_nav"])
    links = [link.url for link in sections["收费"]]
    assert links == [
        "/console/counter/",
        "/console/my-shift/",
        "/console/voucher-redemptions/new/",
        "/console/payments/",
        "/console/payment-reversals/",
        "/console/shifts/",
        "/console/cash-approvals/",
        "/console/cash-handovers/",
        "/console/deposits/",
        "/console/refunds/",
        "/console/voucher-cards/",
        "/console/account-closings/",
    ]
