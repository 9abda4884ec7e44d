"""The counter (柜台收费): finding the account, what it owes, taking a payment once however often
the form is sent, the service's refusals on the form, and the receipt's copies, reprints and
void mark."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from billing.tests.test_documents import pdf_text
from collection.models import Payment, PaymentAttempt, Receipt, ReceiptPrint
from collection.services.cash_rules import grant_cash_approval
from collection.services.reversal import reverse_payment
from customers.identifiers import make_account_number
from customers.models import Account
from metering.models import Meter
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import PASSWORD, World, unique

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bob_on_shift(world: World) -> None:
    """bob takes counter payments at site A1 in his open shift."""
    world.a.on_shift(world.bob, world.a.sites[0])


def _client(user: Any, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def _panel(account: Account) -> str:
    return reverse("console:counter-account", args=[account.pk])


def _form_key(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the payment form carries its idempotency key"
    return match.group(1)


def _pay(client: Client, account: Account, amount: str, key: str, **extra: str) -> Any:
    return client.post(
        _panel(account),
        {"channel": "counter_cash", "amount": amount, "idempotency_key": key, "post": "1", **extra},
    )


def _mistype(number: str) -> str:
    """The same number with its check digit off by one."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# --- finding the account -----------------------------------------------------------------------


def test_an_account_number_opens_the_accounts_panel(world: World) -> None:
    account = world.a.account()
    response = _client(world.bob).get("/console/counter/", {"q": f" {account.number} "})
    assert response.status_code == 302 and response["Location"] == _panel(account)


def test_a_mistyped_account_number_is_caught_by_its_check_digit(world: World) -> None:
    account = world.a.account()
    response = _client(world.bob).get("/console/counter/", {"q": _mistype(account.number)})
    assert response.status_code == 200
    html = response.content.decode()
    assert "校验位不符" in html and "户号可能输错了" in html


def test_several_customers_of_one_name_are_listed_to_pick_from(world: World) -> None:
    first = world.a.account(customer=world.a.customer(name="李秀英"))
    second = world.a.account(customer=world.a.customer(name="李秀英"))
    world.a.account(customer=world.a.customer(name="王五"))
    response = _client(world.bob).get("/console/counter/", {"q": "秀英"})
    assert response.status_code == 200
    found = [account.pk for account in response.context["search"].accounts]
    assert sorted(found) == sorted([first.pk, second.pk])
    assert "找到 2 个账户" in response.content.decode()


def test_a_meter_serial_and_a_mobile_number_find_the_account(world: World) -> None:
    customer = world.a.customer(name="赵六")
    account = world.a.account(customer=customer)
    world.a.contact(customer, value="13912345678")
    meter = world.a.meter()
    with world.a.active():
        Meter.objects.filter(pk=meter.pk).update(account=account)
    bob = _client(world.bob)
    by_serial = bob.get("/console/counter/", {"q": meter.serial_number})
    by_mobile = bob.get("/console/counter/", {"q": "139 1234 5678"})
    assert by_serial["Location"] == by_mobile["Location"] == _panel(account)
    with world.a.active():  # a search by a personal number is audited
        assert AuditEvent.objects.filter(actor_id=world.bob.pk, action__contains="search").exists()


def test_a_cashier_of_site_a_does_not_find_site_bs_account(world: World) -> None:
    on_b = world.a.account(world.a.sites[1])
    cashier_a = world.a.staff((Role.CASHIER, world.a.sites[0]))
    client = _client(cashier_a)
    response = client.get("/console/counter/", {"q": on_b.number})
    assert response.status_code == 200
    assert response.context["search"].accounts == []
    assert "您所在站点的账户中没有找到" in response.content.decode()
    assert client.get(_panel(on_b)).status_code == 404
    on_a = world.a.account(world.a.sites[0], customer=world.a.customer(name="钱七"))
    world.a.account(world.a.sites[1], customer=world.a.customer(world.a.sites[1], name="钱七"))
    assert client.get("/console/counter/", {"q": "钱七"})["Location"] == _panel(on_a)
    assert _pay(client, on_b, "10.00", unique("k")).status_code == 404
    with world.a.active():
        assert not Payment.objects.exists()


# --- what is due ----------------------------------------------------------------------------


def test_the_panel_shows_what_the_due_service_says_oldest_bill_first(world: World) -> None:
    """Two bills of a residential account, today T:
    - 2026-08, 200.00 due T − 20: late fee 200.00 × 1‰ × 20 days = 4.00;
    - 2026-09, 100.00 due T + 10: no late fee yet.
    Amount due 200.00 + 4.00 + 100.00 = 304.00, the form's amount, and the API's figure."""
    today = world.a.tenant.local_today()
    account = world.a.account()
    older = world.a.issued_bill(account, "200.00", today - timedelta(days=20), period="2026-08")
    newer = world.a.issued_bill(account, "100.00", today + timedelta(days=10), period="2026-09")
    response = _client(world.bob).get(_panel(account))
    assert response.status_code == 200
    position = response.context["position"]
    assert [item.bill_id for item in position.items] == [older.pk, newer.pk]
    assert [item.late_fee for item in position.items] == [Decimal("4.00"), Decimal("0.00")]
    assert position.amount_due == Decimal("304.00")
    api = world.client_for(world.bob).get(f"/api/v1/accounts/{account.number}/due/").json()
    assert api["amount_due"] == "304.00"
    html = response.content.decode()
    assert 'name="amount" value="304.00"' in html
    assert html.index(older.number) < html.index(newer.number)
    assert "应缴金额" in html and "¥304.00" in html


# --- taking a payment -------------------------------------------------------------------------


def test_a_cash_payment_covering_two_bills_lands_on_its_receipt(world: World) -> None:
    """Bills of 200.00 (late fee 4.00) and 100.00; 310.00 received: 4.00 + 200.00 + 100.00 paid,
    6.00 left as credit on account."""
    today = world.a.tenant.local_today()
    account = world.a.account()
    world.a.issued_bill(account, "200.00", today - timedelta(days=20), period="2026-08")
    world.a.issued_bill(account, "100.00", today + timedelta(days=10), period="2026-09")
    bob = _client(world.bob)
    key = _form_key(bob.get(_panel(account)).content.decode())
    response = _pay(bob, account, "310.00", key)
    with world.a.active():
        payment = Payment.objects.get()
        receipt = Receipt.objects.get(payment=payment)
    assert response.status_code == 302
    assert response["Location"] == reverse("console:receipt", args=[receipt.pk])
    assert (payment.late_fees, payment.principal, payment.surplus) == (
        Decimal("4.00"),
        Decimal("300.00"),
        Decimal("6.00"),
    )
    assert payment.idempotency_key == key and payment.actor_id == world.bob.pk
    page = bob.get(response["Location"]).content.decode()
    for copy in ("客户联", "存根联", "记账联"):
        assert copy in page
    assert receipt.display_number in page and "¥310.00" in page and "叁佰壹拾元整" in page


def test_a_double_submit_or_a_resubmit_after_going_back_posts_once(world: World) -> None:
    account = world.a.account()
    bob = _client(world.bob)
    key = _form_key(bob.get(_panel(account)).content.decode())
    first = _pay(bob, account, "50.00", key)
    again = _pay(bob, account, "50.00", key)  # the double click, or back and submit again
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"]
    with world.a.active():
        assert Payment.objects.count() == 1 and Receipt.objects.count() == 1
    landed = bob.get(again["Location"])
    assert "已入账" in "".join(str(m) for m in landed.context["messages"])


def test_each_drawing_of_the_form_carries_a_new_key(world: World) -> None:
    account = world.a.account()
    bob = _client(world.bob)
    assert _form_key(bob.get(_panel(account)).content.decode()) != _form_key(
        bob.get(_panel(account)).content.decode()
    )


def test_the_allocation_preview_posts_nothing_and_keeps_the_key(world: World) -> None:
    """A bill of 80.00 not yet due; 100.00 previewed: 80.00 to the bill, 20.00 to credit."""
    today = world.a.tenant.local_today()
    account = world.a.account()
    bill = world.a.issued_bill(account, "80.00", today + timedelta(days=5))
    bob = _client(world.bob)
    key = _form_key(bob.get(_panel(account)).content.decode())
    response = bob.post(
        _panel(account),
        {"channel": "counter_cash", "amount": "100.00", "idempotency_key": key, "preview": "1"},
    )
    assert response.status_code == 200
    preview = response.context["preview"]
    assert [(row.number, row.principal) for row in preview.rows] == [
        (bill.number, Decimal("80.00"))
    ]
    assert preview.surplus == Decimal("20.00")
    assert _form_key(response.content.decode()) == key
    assert "转入账户余额" in response.content.decode() or "预存" in response.content.decode()
    with world.a.active():
        assert not Payment.objects.exists() and not PaymentAttempt.objects.exists()


def test_a_card_payment_keeps_the_slip_reference(world: World) -> None:
    account = world.a.account()
    response = _pay(
        _client(world.bob), account, "20.00", unique("k"), channel="counter_card",
        external_reference="POS-778812",
    )  # fmt: skip
    assert response.status_code == 302
    with world.a.active():
        payment = Payment.objects.get()
    assert (payment.channel, payment.external_reference) == ("counter_card", "POS-778812")


def test_a_prepaid_top_up_with_nothing_due_goes_to_the_prepaid_balance(world: World) -> None:
    """A prepaid account with no bills owes nothing: the amount is left for the cashier to type;
    80.00 received is all surplus, and the panel then shows a prepaid balance of 80.00."""
    account = world.a.account(payment_mode="prepaid")
    bob = _client(world.bob)
    form = bob.get(_panel(account))
    assert form.context["position"].amount_due == Decimal("0.00")
    assert 'name="amount" value=""' in form.content.decode()
    assert "预付费余额" in form.content.decode()
    assert _pay(bob, account, "80.00", _form_key(form.content.decode())).status_code == 302
    with world.a.active():
        payment = Payment.objects.get()
    assert (payment.principal, payment.surplus) == (Decimal("0.00"), Decimal("80.00"))
    assert bob.get(_panel(account)).context["wallet"] == Decimal("80.00")


# --- refusals ---------------------------------------------------------------------------------


def test_the_services_refusal_shows_on_the_form_in_plain_words(world: World) -> None:
    account = world.a.account()
    with world.a.active():
        Account.objects.filter(pk=account.pk).update(status="closed", closed_on="2026-06-01")
    response = _pay(_client(world.bob), account, "30.00", unique("k"))
    assert response.status_code == 400
    errors = response.context["form"].non_field_errors
    assert errors == ["该户号已销户，不能缴费。"], errors
    assert "closed_account" not in response.content.decode()
    with world.a.active():
        assert not Payment.objects.exists()
        attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.code) == ("refused", "closed_account")


def test_an_amount_with_three_decimals_is_refused_beside_the_field_and_recorded(
    world: World,
) -> None:
    account = world.a.account()
    response = _pay(_client(world.bob), account, "10.001", unique("k"))
    assert response.status_code == 400
    assert response.context["form"].errors["amount"]
    with world.a.active():
        assert not Payment.objects.exists()
        attempt = PaymentAttempt.objects.get()
    assert (attempt.outcome, attempt.amount, attempt.account_id) == (
        "invalid",
        "10.001",
        account.pk,
    )


def test_a_key_spent_on_another_amount_is_refused_and_the_form_gets_a_new_key(
    world: World,
) -> None:
    account = world.a.account()
    bob = _client(world.bob)
    key = unique("k")
    _pay(bob, account, "50.00", key)
    clash = _pay(bob, account, "70.00", key)  # back, the amount changed, submitted again
    assert clash.status_code == 400
    assert clash.context["form"].non_field_errors == ["该幂等键已用于另一笔缴费。"]
    with world.a.active():
        first = Payment.objects.get()
    assert clash.context["conflicting"] == first
    assert _form_key(clash.content.decode()) != key
    with world.a.active():
        assert PaymentAttempt.objects.get().outcome == "conflict"


def test_a_meter_reader_may_neither_open_the_counter_nor_post(world: World) -> None:
    account = world.a.account()
    reader = _client(world.a.staff((Role.METER_READER, None)))
    assert reader.get("/console/counter/").status_code == 403
    assert reader.get(_panel(account)).status_code == 403
    assert _pay(reader, account, "10.00", unique("k")).status_code == 403
    with world.a.active():
        assert not Payment.objects.exists()


def test_an_administrator_sees_what_is_due_but_takes_no_payment(world: World) -> None:
    account = world.a.account()
    alice = _client(world.alice)
    page = alice.get(_panel(account))
    assert page.status_code == 200 and page.context["may_take"] is False
    assert 'name="idempotency_key"' not in page.content.decode()
    assert _pay(alice, account, "10.00", unique("k")).status_code == 403


def test_the_counter_waits_for_the_second_factor_where_the_tenant_requires_it(
    world: World,
) -> None:
    tenant = world.a.tenant
    tenant.require_second_factor = True
    tenant.save(update_fields=["require_second_factor"])
    session = Client()
    assert session.post("/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    response = session.get("/console/counter/")
    assert response.status_code == 302 and response["Location"].startswith("/two-factor/")


# --- the receipt ------------------------------------------------------------------------------


def test_one_copy_can_be_printed_alone(world: World) -> None:
    receipt = world.a.receipt()
    html = _client(world.bob).get(f"/console/receipts/{receipt.pk}/?copy=stub").content.decode()
    body = html.split('class="receipts')[1]
    assert "存根联" in body and "客户联" not in body and "记账联" not in body


def test_the_cashier_prints_the_original_with_one_click_and_it_opens_the_print_dialog(
    world: World,
) -> None:
    receipt = world.a.receipt()
    bob = _client(world.bob)
    page = bob.get(f"/console/receipts/{receipt.pk}/").content.decode()
    assert f'action="/console/receipts/{receipt.pk}/print/"' in page
    assert "data-print-on-load" not in page and "重打（记录在案" not in page
    assert page.count("仅供查看") >= 4  # the heading's badge and every copy's mark
    response = bob.post(f"/console/receipts/{receipt.pk}/print/", {"copy": ""})
    with world.a.active():
        original = ReceiptPrint.objects.get(receipt=receipt)
        assert AuditEvent.objects.filter(
            action="receipt.printed", object_id=str(receipt.pk), actor_id=world.bob.pk
        ).exists()
    assert (original.copy, original.actor_id) == (0, world.bob.pk)
    assert response.status_code == 302
    assert response["Location"].endswith(f"?print={original.pk}&now=1")
    page = bob.get(response["Location"]).content.decode()
    assert "data-print-on-load" in page and "仅供查看" not in page and "重打 第" not in page
    assert "客户联" in page and "存根联" in page and "记账联" in page
    assert f'action="/console/receipts/{receipt.pk}/print/"' not in page  # printed: gone
    assert f'action="/console/receipts/{receipt.pk}/reprint/"' in page
    pdf = bob.get(f"/console/receipts/{receipt.pk}/document/?print={original.pk}")
    assert "仅供查看" not in pdf.content.decode()
    viewed = bob.get(f"/console/receipts/{receipt.pk}/").content.decode()
    assert "仅供查看" in viewed and "原件已打印" in viewed
    alice = _client(world.alice)  # the print's link is the printer's own
    assert (
        "仅供查看"
        in alice.get(f"/console/receipts/{receipt.pk}/?print={original.pk}").content.decode()
    )


def test_a_second_print_of_the_original_is_refused_and_says_to_reprint(world: World) -> None:
    receipt = world.a.receipt()
    bob = _client(world.bob)
    bob.post(f"/console/receipts/{receipt.pk}/print/", {})
    again = bob.post(f"/console/receipts/{receipt.pk}/print/", {}, follow=True)
    assert again.status_code == 200
    assert "原件已打印" in again.content.decode() and "重打" in again.content.decode()
    with world.a.active():
        assert list(
            ReceiptPrint.objects.filter(receipt=receipt).values_list("copy", flat=True)
        ) == [0]
    assert bob.get(f"/console/receipts/{receipt.pk}/print/").status_code == 405


def test_a_reprint_is_recorded_audited_and_marked_on_the_copies(world: World) -> None:
    receipt = world.a.receipt()
    bob = _client(world.bob)
    refused = bob.post(f"/console/receipts/{receipt.pk}/reprint/", {}, follow=True)
    assert "尚未打印" in refused.content.decode()  # the original comes first
    bob.post(f"/console/receipts/{receipt.pk}/print/", {})
    response = bob.post(f"/console/receipts/{receipt.pk}/reprint/", {"copy": "customer"})
    with world.a.active():
        printed = ReceiptPrint.objects.get(receipt=receipt, copy=1)
        assert AuditEvent.objects.filter(
            action="receipt.reprinted", object_id=str(receipt.pk), actor_id=world.bob.pk
        ).exists()
    assert printed.actor_id == world.bob.pk
    assert response.status_code == 302
    assert response["Location"].endswith(f"?copy=customer&print={printed.pk}&now=1")
    page = bob.get(response["Location"]).content.decode()
    assert "重打" in page and "客户联" in page and "仅供查看" not in page
    assert bob.get(f"/console/receipts/{receipt.pk}/reprint/").status_code == 405


def test_who_may_print_a_receipt_follows_who_may_reprint(world: World) -> None:
    """Cashiers, site managers and tenant administrators print; a collector or finance only
    views (view-only copies, no print button) and is refused the print (403)."""
    receipt = world.a.receipt()
    for role in (Role.COLLECTOR, Role.HQ_FINANCE):
        viewer = _client(world.a.staff((role, None)))
        page = viewer.get(f"/console/receipts/{receipt.pk}/").content.decode()
        assert "仅供查看" in page and "/print/" not in page
        assert viewer.post(f"/console/receipts/{receipt.pk}/print/", {}).status_code == 403
    manager = _client(world.a.staff((Role.SITE_MANAGER, world.a.sites[0])))
    assert manager.post(f"/console/receipts/{receipt.pk}/print/", {}).status_code == 302
    with world.a.active():
        assert ReceiptPrint.objects.filter(receipt=receipt).count() == 1


def test_a_void_receipt_says_so_on_every_copy(world: World) -> None:
    payment = world.a.payment()
    manager = world.a.staff((Role.SITE_MANAGER, world.a.sites[0]))
    with world.a.active():
        reverse_payment(Principal.for_user(manager), payment, "收错户号")
        receipt = Receipt.objects.get(payment=payment)
    html = _client(world.bob).get(f"/console/receipts/{receipt.pk}/").content.decode()
    assert html.count("作废") >= 4 and "收错户号" in html


def test_the_receipts_pdf_is_the_receipt_document_stamped_view_only_unless_printed(
    world: World,
) -> None:
    receipt = world.a.receipt()
    response = _client(world.bob).get(f"/console/receipts/{receipt.pk}/document/?as=pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert pdf_text(response.content).count("仅供查看") >= 3


def test_an_accounts_page_lists_its_payments(world: World) -> None:
    account = world.a.account()
    world.a.payment(account=account, amount="66.00")
    html = _client(world.bob).get(f"/console/accounts/{account.pk}/").content.decode()
    assert "¥66.00" in html and f"/console/payments/?account={account.number}" in html
    reader = _client(world.a.staff((Role.METER_READER, None)))
    assert "payments-heading" not in reader.get(f"/console/accounts/{account.pk}/").content.decode()


def test_an_unknown_account_number_finds_nothing(world: World) -> None:
    response = _client(world.bob).get("/console/counter/", {"q": make_account_number(987654)})
    assert response.status_code == 200 and response.context["search"].accounts == []


# --- the shift and the holiday cash rule ------------------------------------------------------


def test_a_cashier_without_an_open_shift_is_sent_to_open_one_and_offered_no_form(
    world: World,
) -> None:
    account = world.a.account()
    cashier = world.a.staff((Role.CASHIER, None))
    html = _client(cashier).get(_panel(account)).content.decode()
    assert "您没有已开的班次" in html and reverse("console:my-shift") in html
    assert 'name="amount"' not in html


def test_on_a_bank_holiday_a_cash_top_up_names_the_supervisors_approval(world: World) -> None:
    """A prepaid account, a day the bank is closed: the form offers the approval a site
    manager granted bob for the account today, and the payment uses it up."""
    account = world.a.account(payment_mode="prepaid")
    day = world.a.tenant.local_today()
    if day.weekday() < 5:
        world.a.calendar_day(day, kind="holiday")
    manager = world.a.staff((Role.SITE_MANAGER, None))
    with world.a.active():
        approval = grant_cash_approval(
            Principal.for_user(manager), account=account, cashier=world.bob,
            amount=Decimal("800.00"), business_day=day, reason="国庆充值",
        )  # fmt: skip
    bob = _client(world.bob)
    html = bob.get(_panel(account)).content.decode()
    assert 'name="cash_approval"' in html and f'value="{approval.pk}"' in html
    refused = _pay(bob, account, "800.00", unique("k"))
    assert refused.status_code == 400 and "主管" in refused.content.decode()
    taken = _pay(bob, account, "800.00", unique("k"), cash_approval=str(approval.pk))
    assert taken.status_code == 302
    with world.a.active():
        approval.refresh_from_db()
        assert approval.payment is not None and approval.payment.amount == Decimal("800.00")


def test_a_card_payment_without_the_slip_reference_is_refused_beside_the_field(
    world: World,
) -> None:
    account = world.a.account()
    response = _pay(_client(world.bob), account, "20.00", unique("k"), channel="counter_card")
    assert response.status_code == 400
    assert response.context["form"].errors["external_reference"]
    with world.a.active():
        assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("typed", "says"), [("1e3", "1e3"), ("12,5", "1e3"), ("100000000", "99,999,999.99")]
)
def test_an_amount_typed_wrong_is_refused_in_words_a_cashier_understands(
    world: World, typed: str, says: str
) -> None:
    account = world.a.account()
    response = _pay(_client(world.bob), account, typed, unique("k"))
    assert response.status_code == 400
    assert says in " ".join(response.context["form"].errors["amount"])
    with world.a.active():
        assert not Payment.objects.exists()


def test_a_closed_account_is_shown_without_a_payment_form(world: World) -> None:
    account = world.a.account()
    with world.a.active():
        Account.objects.filter(pk=account.pk).update(status="closed", closed_on="2026-06-01")
    html = _client(world.bob).get(_panel(account)).content.decode()
    assert "该户已销户" in html and 'name="amount"' not in html
