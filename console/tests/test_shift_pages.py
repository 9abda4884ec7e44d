"""The shift pages: a cashier opens a shift, sees the running expected figures, closes with a
count that differs; a supervisor finds it among the differences waiting for approval and
approves it (the difference is posted); the cashier may not decide; holiday cash approvals and
hand-overs are recorded from their forms; errors land on the form (400) with nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from collection.models import CashApproval, CashHandover, Shift, ShiftState
from collection.services.deposits import take_deposit
from ledger.models import JournalEntry
from tenancy.models import User
from tenancy.roles import Role
from tests.world import World, bank_closed_day, unique

pytestmark = pytest.mark.django_db


def _client(user: User, language: str = "zh-hans") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_a_cashier_opens_takes_a_payment_and_closes_with_a_difference(world: World) -> None:
    a = world.a
    bob = _client(world.bob)
    page = bob.get("/console/my-shift/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "开班" in text and "备用金" in text
    opened = bob.post("/console/my-shift/", {"site": a.sites[0].pk, "float_amount": "200.00"})
    assert opened.status_code == 302
    with a.active():
        shift = Shift.objects.get(cashier=world.bob)
    a.payment(account=a.account(), amount="88.00", by=a.cashier_principal(world.bob))
    running = bob.get("/console/my-shift/").content.decode()
    assert "288.00" in running  # 200.00 float + 88.00 cash
    assert "交班" in running
    wrong = bob.post("/console/my-shift/", {"counted_cash": "abc"})
    assert wrong.status_code == 400
    with a.active():
        assert Shift.objects.get(pk=shift.pk).state == ShiftState.OPEN
    closed = bob.post("/console/my-shift/", {"counted_cash": "280.00", "note": "少八元"})
    assert closed.status_code == 302
    with a.active():
        assert Shift.objects.get(pk=shift.pk).difference_cash == Decimal("-8.00")
    # bob may not decide: he holds no supervisor role (403), and the page offers no form
    assert (
        bob.post(
            f"/console/shifts/{shift.pk}/decide/", {"decision": "approve", "note": "x"}
        ).status_code
        == 403
    )

    manager = _client(a.staff((Role.SITE_MANAGER, a.sites[0])))
    listing = manager.get("/console/shifts/").content.decode()
    assert "待审批的差额" in listing and "-8.00" in listing
    detail = manager.get(f"/console/shifts/{shift.pk}/").content.decode()
    assert "审批差额" in detail
    no_note = manager.post(
        f"/console/shifts/{shift.pk}/decide/", {"decision": "approve", "note": ""}
    )
    assert no_note.status_code == 400
    decided = manager.post(
        f"/console/shifts/{shift.pk}/decide/",
        {"decision": "approve", "note": "找零失误"},
    )
    assert decided.status_code == 302
    with a.active():
        assert Shift.objects.get(pk=shift.pk).state == ShiftState.CLOSED
        assert JournalEntry.objects.filter(source_type="shift_difference").count() == 1


def _pending_shift(world: World) -> Shift:
    """bob's shift closed 8.00 short: a difference waiting for a supervisor."""
    a = world.a
    a.on_shift(world.bob, a.sites[0], float_amount="200.00")
    a.payment(account=a.account(), amount="88.00", by=a.cashier_principal(world.bob))
    closed = _client(world.bob).post("/console/my-shift/", {"counted_cash": "280.00"})
    assert closed.status_code == 302
    with a.active():
        return Shift.objects.get(cashier=world.bob)


def test_the_decision_on_a_difference_is_not_preselected(world: World) -> None:
    shift = _pending_shift(world)
    manager = _client(world.a.staff((Role.SITE_MANAGER, world.a.sites[0])), "en")
    page = manager.get(f"/console/shifts/{shift.pk}/")
    form = page.content.decode().split('id="id_decision"')[1].split("</select>")[0]
    # the first option, selected, is the empty "— choose —"; approve and reject are offered
    assert '<option value="" selected>— choose —</option>' in form
    assert 'value="approve"' in form and 'value="reject"' in form
    assert 'value="approve" selected' not in form and 'value="reject" selected' not in form


def test_a_decision_submitted_without_a_choice_is_refused_on_the_field(world: World) -> None:
    shift = _pending_shift(world)
    manager = _client(world.a.staff((Role.SITE_MANAGER, world.a.sites[0])), "en")
    unchosen = manager.post(
        f"/console/shifts/{shift.pk}/decide/", {"decision": "", "note": "找零失误"}
    )
    assert unchosen.status_code == 400
    form = unchosen.context["form"]
    assert form.errors["decision"] == [
        "Choose a decision: approve the difference or reject the count."
    ]
    assert "Choose a decision" in unchosen.content.decode()
    # nothing chosen and no note either: both fields say what is missing
    neither = manager.post(f"/console/shifts/{shift.pk}/decide/", {"note": ""})
    assert neither.status_code == 400
    assert set(neither.context["form"].errors) == {"decision", "note"}
    with world.a.active():
        assert Shift.objects.get(pk=shift.pk).state == ShiftState.PENDING
        assert not JournalEntry.objects.filter(source_type="shift_difference").exists()


def test_the_collection_menu_shows_each_person_their_pages(world: World) -> None:
    bob = _client(world.bob).get("/console/my-shift/")
    menu = {link.url for _section, links in bob.context["console_nav"] for link in links}
    assert "/console/my-shift/" in menu
    assert "/console/cash-approvals/" in menu  # a cashier sees the approvals
    reader = _client(world.a.staff((Role.METER_READER, None)))
    assert reader.get("/console/shifts/").status_code == 403


def test_a_supervisor_approves_holiday_cash_from_the_form(world: World) -> None:
    a = world.a
    account = a.account(payment_mode="prepaid")
    manager = _client(a.staff((Role.SITE_MANAGER, None)))
    form = manager.get("/console/cash-approvals/new/")
    assert form.status_code == 200 and "节假日" in form.content.decode()
    too_much = manager.post(
        "/console/cash-approvals/new/",
        {"account": account.number, "cashier": world.bob.pk, "amount": "5000.01",
         "business_day": bank_closed_day().isoformat(), "reason": "春节充值"},
    )  # fmt: skip
    assert too_much.status_code == 400
    made = manager.post(
        "/console/cash-approvals/new/",
        {"account": account.number, "cashier": world.bob.pk, "amount": "5000.00",
         "business_day": bank_closed_day().isoformat(), "reason": "春节充值"},
    )  # fmt: skip
    assert made.status_code == 302
    with a.active():
        assert CashApproval.objects.get().amount == Decimal("5000.00")
    assert account.number in manager.get("/console/cash-approvals/").content.decode()
    assert _client(world.bob).get("/console/cash-approvals/new/").status_code == 403


def test_a_cashier_records_the_hand_over_to_the_bank(world: World) -> None:
    a = world.a
    a.cash_on_hand(a.cashier_principal(world.bob), a.sites[0], "300.00")
    today = a.tenant.local_today().isoformat()
    bob = _client(world.bob)
    form = bob.get("/console/cash-handovers/new/").content.decode()
    assert "300.00" in form
    too_much = bob.post(
        "/console/cash-handovers/new/",
        {"site": a.sites[0].pk, "amount": "300.01", "bank": "icbc", "slip_reference": "S-9",
         "handed_on": today},
    )  # fmt: skip
    assert too_much.status_code == 400
    done = bob.post(
        "/console/cash-handovers/new/",
        {"site": a.sites[0].pk, "amount": "300.00", "bank": "icbc", "slip_reference": "S-9",
         "handed_on": today},
    )  # fmt: skip
    assert done.status_code == 302
    with a.active():
        assert CashHandover.objects.get().amount == Decimal("300.00")
    assert "S-9" in bob.get("/console/cash-handovers/").content.decode()


def test_the_shift_page_lists_the_deposits_and_cash_refunds_its_figures_count(
    world: World,
) -> None:
    a = world.a
    bob = _client(world.bob)
    assert bob.post("/console/my-shift/", {"site": a.sites[0].pk, "float_amount": "100.00"})
    account = a.account()
    with a.active():
        shift = Shift.objects.get(cashier=world.bob)
        take_deposit(
            a.cashier_principal(world.bob), account=account, channel="counter_cash",
            amount=Decimal("300.00"), idempotency_key=unique("d"),
        )  # fmt: skip
    page = bob.get(f"/console/shifts/{shift.pk}/").content.decode()
    assert "计入应有金额的其他变动" in page and "已收押金" in page and "300.00" in page
