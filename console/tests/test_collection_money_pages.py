"""The deposit, refund and account-closing pages: a cashier takes a deposit; a refund requested
on the page is approved by a second person and paid; the closing page previews the final
figures without writing and then closes; 403 without the role."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from billing.tariffs import services as tariff_services
from collection.models import (
    AccountClosing,
    ClosingState,
    Deposit,
    DepositPrint,
    Refund,
    RefundState,
)
from collection.services.deposits import take_deposit
from collection.services.payments import post_payment
from customers.models import AccountStatus
from ledger.models import LedgerAccount, LedgerKind
from metering.models import Reading
from tenancy.audit import AuditAction
from tenancy.models import AuditEvent
from tenancy.roles import Role
from tests.world import World, unique
from verification.rules import validate_readings

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _bob_on_shift(world: World) -> None:
    """bob takes money at the counter of site A1 in his open shift."""
    world.a.on_shift(world.bob, world.a.sites[0])


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_a_cashier_takes_a_deposit_and_sees_what_the_account_still_misses(world: World) -> None:
    a = world.a
    account = a.account(customer_class="commercial")
    a.deposit_policy("commercial")  # 2,000.00
    client = _client(world.bob)
    page = client.get("/console/deposits/", {"account": account.number})
    assert page.status_code == 200
    assert page.context["status"].missing == Decimal("2000.00")
    key = page.context["form"].value("idempotency_key")
    body = {"account": account.number, "channel": "counter_cash", "amount": "1500.00",
            "idempotency_key": key}  # fmt: skip
    taken = client.post("/console/deposits/", body)
    assert taken.status_code == 302
    again = client.post("/console/deposits/", body)  # a double click posts once
    assert again.status_code == 302
    with a.active():
        deposit = Deposit.objects.get(account=account)
    # The counter lands on the deposit's receipt, to print its original.
    assert taken["Location"] == again["Location"] == f"/console/deposits/{deposit.pk}/receipt/"
    page = client.get("/console/deposits/", {"account": account.number})
    assert page.context["status"].missing == Decimal("500.00")
    assert f'<a href="/console/deposits/{deposit.pk}/receipt/">Y0000000001</a>' in (
        page.content.decode()
    )


def test_a_deposits_receipt_prints_its_original_once_then_reprints(world: World) -> None:
    deposit = world.a.deposit(world.a.sites[0], amount="2000.00")
    client = _client(world.bob)
    url = f"/console/deposits/{deposit.pk}/receipt/"
    page = client.get(url).content.decode()
    for copy in ("Customer copy", "Stub", "Bookkeeping copy"):
        assert copy in page
    assert page.count(deposit.display_receipt_number) >= 4  # the heading and every copy
    assert "For viewing only" in page and f'action="{url}print/"' in page
    printed = client.post(f"{url}print/", {"copy": "stub"})
    with world.a.active():
        original = DepositPrint.objects.get(deposit=deposit)
        assert AuditEvent.objects.filter(
            action="deposit.receipt_printed", object_id=str(deposit.pk), actor_id=world.bob.pk
        ).exists()
    assert printed["Location"] == f"{url}?copy=stub&print={original.pk}&now=1"
    shown = client.get(printed["Location"]).content.decode()
    assert "For viewing only" not in shown and "data-print-on-load" in shown
    assert "Stub" in shown and "Customer copy</span>" not in shown
    refused = client.post(f"{url}print/", {}, follow=True).content.decode()
    assert "was printed already" in refused
    reprinted = client.post(f"{url}reprint/", {})
    assert "Reprint no. 1" in client.get(reprinted["Location"]).content.decode()
    pdf = client.get(f"{url}document/", {"as": "pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    collector = _client(world.a.staff((Role.COLLECTOR, None)))
    assert collector.get(url).status_code == 200
    assert collector.post(f"{url}reprint/", {}).status_code == 403
    assert _client(world.mallory).get(url).status_code == 404
    with world.a.active():
        assert DepositPrint.objects.filter(deposit=deposit).count() == 2


def test_a_deposit_over_the_limit_is_shown_on_the_form_and_nothing_is_taken(world: World) -> None:
    a = world.a
    account = a.account()
    response = _client(world.bob).post(
        "/console/deposits/",
        {"account": account.number, "channel": "counter_cash", "amount": "0",
         "idempotency_key": unique("k")},
    )  # fmt: skip
    assert response.status_code == 400
    assert response.context["form"].errors["amount"]
    with a.active():
        assert not Deposit.objects.exists()


def test_a_card_deposit_without_the_slip_reference_is_refused_on_its_field(world: World) -> None:
    a = world.a
    account = a.account()
    client = _client(world.bob)
    body = {"account": account.number, "channel": "counter_card", "amount": "800.00",
            "idempotency_key": unique("k")}  # fmt: skip
    refused = client.post("/console/deposits/", body)
    assert refused.status_code == 400
    assert refused.context["form"].errors["external_reference"] == [
        "A card deposit records the reference on the terminal's slip."
    ]
    with a.active():
        assert not Deposit.objects.exists()
    taken = client.post("/console/deposits/", {**body, "external_reference": "POS-31415"})
    assert taken.status_code == 302
    page = client.get("/console/deposits/", {"account": account.number}).content.decode()
    assert "POS-31415" in page


FULL, MASKED = "6222000011112222", "6222 **** **** 2222"  # as tests.world requests it


def _reveals(world: World) -> list[AuditEvent]:
    with world.a.active():
        return list(
            AuditEvent.objects.filter(action=AuditAction.REFUND_BANK_ACCOUNT_REVEALED).order_by(
                "id"
            )
        )


def test_the_refund_pages_show_the_bank_account_masked_to_everyone(world: World) -> None:
    a = world.a
    requested = a.refund(channel="bank_transfer")
    approved = a.refund(state="approved", channel="bank_transfer")
    alice = _client(world.alice)  # a tenant administrator: approves and pays refunds
    listed = alice.get("/console/refunds/").content.decode()
    assert FULL not in listed
    waiting = alice.get(f"/console/refunds/{requested.pk}/").content.decode()
    assert MASKED in waiting and FULL not in waiting
    assert "Show the full account number" not in waiting  # nothing to pay yet
    to_pay = alice.get(f"/console/refunds/{approved.pk}/")
    assert MASKED in to_pay.content.decode() and FULL not in to_pay.content.decode()
    assert to_pay.context["may_reveal"] is True
    assert "Show the full account number" in to_pay.content.decode()
    inspector = _client(a.staff((Role.INSPECTOR, None)))
    seen = inspector.get(f"/console/refunds/{approved.pk}/")
    assert MASKED in seen.content.decode() and FULL not in seen.content.decode()
    assert seen.context["may_reveal"] is False
    assert _reveals(world) == []


def test_whoever_pays_reveals_the_account_on_the_page_the_post_answers_and_it_is_audited(
    world: World,
) -> None:
    a = world.a
    approved = a.refund(state="approved", channel="bank_transfer")
    alice = _client(world.alice)
    url = f"/console/refunds/{approved.pk}/reveal/"
    revealed = alice.post(url)
    assert revealed.status_code == 200
    assert revealed["Cache-Control"] == "no-store"
    page = revealed.content.decode()
    assert FULL in page
    assert "Revealed, recorded in the audit trail" in page
    # The pay form on that page still goes to the refund's page, not back to the reveal.
    assert f'action="/console/refunds/{approved.pk}/"' in page
    assert FULL not in str(dict(alice.session))  # nothing kept for later
    again = alice.get(f"/console/refunds/{approved.pk}/").content.decode()
    assert FULL not in again and MASKED in again  # the next view is masked again
    alice.post(url)
    events = _reveals(world)
    assert len(events) == 2  # one event per reveal
    assert {(e.actor_label, e.object_type, e.object_id) for e in events} == {
        ("alice", "collection.refund", str(approved.pk))
    }
    assert all(FULL not in repr((e.before, e.after)) for e in events)
    paid = alice.post(
        f"/console/refunds/{approved.pk}/", {"do": "pay", "payment_reference": "TRF-9"}
    )
    assert paid.status_code == 302
    after = alice.get(f"/console/refunds/{approved.pk}/").content.decode()
    assert MASKED in after and FULL not in after


def test_revealing_needs_a_post(world: World) -> None:
    approved = world.a.refund(state="approved", channel="bank_transfer")
    answer = _client(world.alice).get(f"/console/refunds/{approved.pk}/reveal/")
    assert answer.status_code == 405
    assert _reveals(world) == []


@pytest.mark.parametrize("role", [Role.INSPECTOR, Role.COLLECTOR, Role.VERIFIER])
def test_staff_who_pay_no_refund_may_not_reveal(world: World, role: str) -> None:
    approved = world.a.refund(state="approved", channel="bank_transfer")
    refused = _client(world.a.staff((role, None))).post(f"/console/refunds/{approved.pk}/reveal/")
    assert refused.status_code == 403
    assert FULL not in refused.content.decode()
    assert _reveals(world) == []


def test_another_sites_payer_and_another_tenant_get_404(world: World) -> None:
    a = world.a
    approved = a.refund(a.sites[0], state="approved", channel="bank_transfer")
    url = f"/console/refunds/{approved.pk}/reveal/"
    elsewhere = a.staff((Role.INSPECTOR, None), (Role.CASHIER, a.sites[1]))
    assert _client(elsewhere).post(url).status_code == 404
    assert _client(world.mallory).post(url).status_code == 404
    assert _reveals(world) == []


def test_a_paid_refund_answers_why_and_reveals_nothing(world: World) -> None:
    a = world.a
    approved = a.refund(state="approved", channel="bank_transfer")
    alice = _client(world.alice)
    alice.post(f"/console/refunds/{approved.pk}/", {"do": "pay", "payment_reference": "TRF-3"})
    refused = alice.post(f"/console/refunds/{approved.pk}/reveal/")
    assert refused.status_code == 409
    page = refused.content.decode()
    assert "this refund is paid" in page
    assert FULL not in page and MASKED in page
    assert _reveals(world) == []


def test_a_refund_requested_on_the_page_is_approved_by_another_person_and_paid(
    world: World,
) -> None:
    a = world.a
    deposit = a.deposit(amount="300.00")
    account = deposit.account
    bob = _client(world.bob)  # a cashier requests it
    requested = bob.post(
        "/console/refunds/",
        {"account": account.number, "from_deposit": "300.00", "channel": "cash",
         "reason": "押金退还"},
    )  # fmt: skip
    assert requested.status_code == 302
    with a.active():
        refund = Refund.objects.get(account=account)
    url = f"/console/refunds/{refund.pk}/"
    assert bob.post(url, {"do": "approve"}).status_code == 403  # a cashier approves nothing
    alice = _client(world.alice)
    assert alice.get(url).context["may_decide"] is True
    assert alice.post(url, {"do": "approve"}).status_code == 302
    # a cashier with no open shift is told to open one, not offered a form the service refuses
    idle = _client(a.staff((Role.CASHIER, a.sites[0])))
    waiting = idle.get(url)
    assert waiting.context["may_pay"] is True and waiting.context["pay_shift"] is None
    assert 'value="pay"' not in waiting.content.decode()
    assert waiting.context["pay_shift_here"] is False
    assert 'value="pay"' in bob.get(url).content.decode()
    paid = bob.post(url, {"do": "pay"})
    assert paid.status_code == 302
    with a.active():
        assert Refund.objects.get(pk=refund.pk).state == RefundState.PAID
        held = LedgerAccount.objects.get(account=account, kind=LedgerKind.DEPOSIT).balance
    assert held == Decimal("0.00")


def test_the_requester_is_told_a_second_person_decides(world: World) -> None:
    a = world.a
    deposit = a.deposit()
    alice = _client(world.alice)
    alice.post(
        "/console/refunds/",
        {"account": deposit.account.number, "from_deposit": "100.00", "channel": "cash",
         "reason": "退押金"},
    )  # fmt: skip
    with a.active():
        refund = Refund.objects.get(account=deposit.account)
    page = alice.get(f"/console/refunds/{refund.pk}/")
    assert page.context["may_decide"] is False
    assert page.context["decide_refused"]
    refused = alice.post(f"/console/refunds/{refund.pk}/", {"do": "approve"})
    assert refused.status_code == 400
    with a.active():
        assert Refund.objects.get(pk=refund.pk).state == RefundState.REQUESTED


def test_the_closing_page_previews_then_closes(world: World) -> None:
    a = world.a
    account = a.account(customer_class="commercial")
    meter = a.meter(account=account, on_gateway=False)
    tariff = a.tariff("0.5000")  # flat 0.50 yuan/kWh
    with a.active():
        tariff_services.assign_tariff(
            a.system, tariff, effective_from=date(2020, 1, 1), account=account
        )
    a.reading(meter, taken_at=datetime(2026, 9, 1, tzinfo=SHANGHAI), total=Decimal("500.00"))
    with a.active():
        validate_readings(a.tenant)
    a.issued_bill(account, "40.00", date(2026, 9, 25), period="2026-09")
    with a.active():
        take_deposit(
            a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal("100.00"),
            idempotency_key=unique("d"),
        )  # fmt: skip
    form = {"account": account.number, "taken_at": "2026-09-15T09:00", "total": "560.00",
            "reason": "客户迁出", "refund_channel": "cash"}  # fmt: skip
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    # 60.000 kWh × 0.50 = 30.00; owed 40.00 + 30.00 = 70.00; the deposit pays it; 30.00 back.
    preview = manager.post("/console/account-closings/new/", {**form, "do": "preview"})
    assert preview.status_code == 200
    assert preview.context["preview"].figures["final_charge"] == "30.00"
    assert preview.context["preview"].figures["refund"] == "30.00"
    with a.active():
        assert not AccountClosing.objects.exists()
    # Closing without the preview of these very values previews instead: nothing is closed.
    unseen = {**form, "total": "561.00"}
    not_yet = manager.post(
        "/console/account-closings/new/",
        {**unseen, "do": "close", "previewed": preview.context["previewed"]},
    )
    assert not_yet.status_code == 200 and not_yet.context["preview"] is not None
    with a.active():
        assert not AccountClosing.objects.exists()
    closed = manager.post(
        "/console/account-closings/new/",
        {**form, "do": "close", "previewed": preview.context["previewed"]},
    )
    assert closed.status_code == 302
    with a.active():
        closing = AccountClosing.objects.get(account=account)
        account.refresh_from_db()
    assert closing.state == ClosingState.CLOSED
    assert account.status == AccountStatus.CLOSED
    page = manager.get(closed["Location"])
    assert page.status_code == 200
    assert closing.bill is not None and closing.bill.number in page.content.decode()
    listed = manager.get("/console/account-closings/", {"state": "closed"})
    assert list(listed.context["closings"]) == [closing]
    assert account.number in listed.content.decode()


def test_a_cashier_may_not_close_an_account(world: World) -> None:
    assert _client(world.bob).get("/console/account-closings/new/").status_code == 403


def test_the_closings_list_holds_only_the_sites_of_the_grant(world: World) -> None:
    here = world.a.account_closing(world.a.sites[1])
    elsewhere = world.a.account_closing(world.a.sites[0])
    listed = _client(world.carol).get("/console/account-closings/")  # every role, site A2
    assert listed.status_code == 200
    assert list(listed.context["closings"]) == [here]
    assert elsewhere.account.number not in listed.content.decode()
    assert _client(world.mallory).get("/console/account-closings/").context["closings"].count() == 0


def _prepaid_account(world: World, *totals: str) -> Any:
    """A prepaid account at a flat 0.50 yuan/kWh whose meter read ``totals`` at 00:00 on 1, 2,
    3… September (validated)."""
    a = world.a
    account = a.account(payment_mode="prepaid")
    meter = a.meter(account=account, on_gateway=False)
    tariff = a.tariff("0.5000")
    with a.active():
        tariff_services.assign_tariff(
            a.system, tariff, effective_from=date(2020, 1, 1), account=account
        )
    for day, total in enumerate(totals, start=1):
        a.reading(meter, taken_at=datetime(2026, 9, day, tzinfo=SHANGHAI), total=Decimal(total))
    with a.active():
        validate_readings(a.tenant)
    return account


def test_the_closing_preview_shows_the_prepaid_balance_owed_and_its_figures_add_up(
    world: World,
) -> None:
    a = world.a
    account = _prepaid_account(world, "1000.00")
    with a.active():
        take_deposit(
            a.cashier_on_shift(), account=account, channel="counter_cash", amount=Decimal("200.00"),
            idempotency_key=unique("d"),
        )  # fmt: skip
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    form = {"account": account.number, "taken_at": "2026-09-20T10:00", "total": "1100.000",
            "reason": "退租", "refund_channel": "cash", "do": "preview"}  # fmt: skip
    preview = manager.post("/console/account-closings/new/", form)
    assert preview.status_code == 200, preview.content.decode()
    # The last prepaid charge: 100.000 kWh × 0.50 = 50.00, nothing paid in: the wallet owes
    # 50.00; the deposit 200.00 pays it and 150.00 is refunded. Every figure is on the page,
    # in the settlement's order, and they add up.
    rows = [(str(row.label), row.amount) for row in preview.context["rows"]]
    assert rows == [
        ("Final charge", Decimal("50.00")),
        ("Bills owed", Decimal("0.00")),
        ("Prepaid balance owed", Decimal("50.00")),
        ("Owed in all", Decimal("50.00")),
        ("Credit on account", Decimal("0.00")),
        ("Credit applied", Decimal("0.00")),
        ("Deposit held", Decimal("200.00")),
        ("Deposit applied", Decimal("-50.00")),
        ("Arrears left", Decimal("0.00")),
        ("To refund", Decimal("150.00")),
    ]
    html = preview.content.decode()
    assert "Prepaid balance owed" in html and "-50.00" in html and "150.00" in html


def test_a_closing_preview_held_by_its_final_reading_says_why_instead_of_empty_figures(
    world: World,
) -> None:
    a = world.a
    # 10 kWh a day, then 980 kWh in one day: a spike, held for a verifier.
    account = _prepaid_account(world, "1000.00", "1010.00", "1020.00")
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    form = {"account": account.number, "taken_at": "2026-09-04T00:00", "total": "2000",
            "reason": "退租", "refund_channel": "cash", "do": "preview"}  # fmt: skip
    preview = manager.post("/console/account-closings/new/", form)
    assert preview.status_code == 200, preview.content.decode()
    assert preview.context["rows"] == []
    html = preview.content.decode()
    assert "Consumption far above the meter&#x27;s history" in html  # the rule it broke
    assert "worked out once the final reading is verified" in html
    assert "Deposit applied" not in html  # no boxes of empty figures


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "Enter the final reading shown on the meter."),
        ("-5", "greater than or equal to 0"),
        ("1e4", "without an exponent"),
        ("abc", "A valid number is required."),
        ("1000.1234", "no more than 3 decimal places"),
    ],
)
def test_the_closing_form_refuses_a_final_reading_that_is_not_a_register_value(
    world: World, typed: str, says: str
) -> None:
    a = world.a
    account = _prepaid_account(world, "1000.00")
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    for step in ("preview", "close"):
        form = {"account": account.number, "taken_at": "2026-09-20T10:00", "total": typed,
                "reason": "退租", "refund_channel": "cash", "do": step}  # fmt: skip
        refused = manager.post("/console/account-closings/new/", form)
        assert refused.status_code == 400
        errors = refused.context["form"].errors["total"]
        assert any(says in error for error in errors), errors
        assert not any("Enter an amount in yuan" in error for error in errors)
    with a.active():
        assert not AccountClosing.objects.exists()
        assert not Reading.objects.filter(meter__account=account, total=0).exists()


def test_the_closing_form_refuses_a_final_reading_below_the_meters_last_one_up_front(
    world: World,
) -> None:
    a = world.a
    account = _prepaid_account(world, "1000.00")
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    form = {"account": account.number, "taken_at": "2026-09-20T10:00", "total": "999.5",
            "reason": "退租", "refund_channel": "cash", "do": "preview"}  # fmt: skip
    refused = manager.post("/console/account-closings/new/", form)
    assert refused.status_code == 400
    [error] = refused.context["form"].errors["total"]
    assert "below the meter's reading of 2026-09-01 00:00, 1000.000" in error
    with a.active():
        assert not AccountClosing.objects.exists()


def test_the_counter_and_the_account_page_say_a_closing_is_under_way_and_payments_still_count(
    world: World,
) -> None:
    a = world.a
    # 10 kWh a day, then 980 kWh in a day: the final reading is a spike, held for a verifier.
    account = _prepaid_account(world, "1000.00", "1010.00", "1020.00")
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    form = {"account": account.number, "taken_at": "2026-09-04T00:00", "total": "2000",
            "reason": "退租", "refund_channel": "cash", "do": "close"}  # fmt: skip
    preview = manager.post("/console/account-closings/new/", {**form, "do": "preview"})
    started = manager.post(
        "/console/account-closings/new/", {**form, "previewed": preview.context["previewed"]}
    )
    assert started.status_code == 302
    with a.active():
        closing = AccountClosing.objects.get(account=account)
    assert closing.state == ClosingState.STARTED
    counter = _client(world.bob).get(f"/console/counter/accounts/{account.pk}/")
    assert counter.status_code == 200
    assert "Closing under way" in counter.content.decode()
    page = manager.get(f"/console/accounts/{account.pk}/")
    assert "Closing under way" in page.content.decode()
    assert f"/console/account-closings/{closing.pk}/" in page.content.decode()
    # The counter still takes a payment; the settlement will count it.
    with a.active():
        post_payment(
            a.cashier_on_shift(), account=account, channel="counter_cash",
            amount=Decimal("20.00"), idempotency_key=unique("k"),
        )  # fmt: skip
    # A settled account is closed, not "under way".
    other = _prepaid_account(world, "1000.00")
    assert (
        "Closing under way"
        not in _client(world.bob).get(f"/console/counter/accounts/{other.pk}/").content.decode()
    )


def test_a_supervisor_cancels_a_closing_that_waits_on_its_page_with_a_reason(world: World) -> None:
    a = world.a
    closing = a.account_closing(a.sites[0])
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    page = manager.get(f"/console/account-closings/{closing.pk}/")
    assert page.status_code == 200 and "Cancel the closing" in page.content.decode()
    url = f"/console/account-closings/{closing.pk}/cancel/"
    assert _client(world.bob).post(url, {"reason": "x"}).status_code == 403  # a cashier
    blank = manager.post(url, {"reason": " "})
    assert blank.status_code == 400
    assert blank.context["cancel_form"].errors["reason"]
    done = manager.post(url, {"reason": "客户不再迁出"})
    assert done.status_code == 302
    with a.active():
        closing.refresh_from_db()
        assert AuditEvent.objects.filter(
            action=AuditAction.ACCOUNT_CLOSING_CANCELLED, object_id=str(closing.pk)
        ).exists()
    assert closing.state == ClosingState.CANCELLED
    shown = manager.get(done["Location"]).content.decode()
    assert "客户不再迁出" in shown and "Cancel the closing" not in shown
    again = manager.post(url, {"reason": "again"})
    assert again.status_code == 409
    assert "Only a closing that waits can be cancelled" in again.content.decode()
