"""The bill pages: the searchable list, a bill's page (lines, amounts, ledger postings, the
document), credit and re-bill with a reason approved by a second person, flagged bills approved
one by one or together, and the billing settings; 404 across tenants and sites, 403 without the
role."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.bills import review
from billing.models import Bill, BillingSettings, BillKind, BillState, FlaggedBill, ReviewState
from billing.runs import services as run_services
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _issued_bills(world: World, count: int) -> list[Bill]:
    """``count`` issued bills of one run of site A1 (200 kWh at 0.50 = 100.00 yuan each)."""
    site = world.a.sites[0]
    period = world.a.next_period()
    for _ in range(count):
        world.a.billed_account(site, period)
    approver = Principal.for_user(world.a.staff((Role.VERIFIER, None)))
    with world.a.active():
        run = run_services.open_bill_run(world.a.system, site, period)
        run_services.price_bill_run(world.a.system, run.pk)
        run_services.approve_bill_run(approver, run.pk)
        return list(Bill.objects.filter(run=run).order_by("pk"))


def _flagged(world: World, count: int) -> list[FlaggedBill]:
    """``count`` zero bills of one approved run of site A1, each held for review."""
    site = world.a.sites[0]
    period = world.a.next_period()
    for _ in range(count):
        world.a.billed_account(site, period, total="0")
    approver = Principal.for_user(world.a.staff((Role.VERIFIER, None)))
    with world.a.active():
        run = run_services.open_bill_run(world.a.system, site, period)
        run_services.price_bill_run(world.a.system, run.pk)
        run_services.approve_bill_run(approver, run.pk)
        return list(FlaggedBill.objects.filter(bill__run=run))


def _bill(world: World, bill_id: int) -> Bill:
    with world.a.active():
        return Bill.objects.get(pk=bill_id)


# --- the list ---------------------------------------------------------------------------------


def test_a_bill_is_found_by_number_account_customer_site_period_and_state(world: World) -> None:
    wanted, other = _issued_bills(world, 2)  # both customers are called 张三
    client = _client(world.bob)  # a cashier looks up a customer's bill
    for query in (
        {"number": wanted.number},
        {"account": wanted.account.number},
        {"site": str(wanted.site_id), "period": wanted.period, "state": "issued",
         "number": wanted.number},
    ):  # fmt: skip
        response = client.get("/console/bills/", query)
        assert response.status_code == 200
        assert [row.id for row in response.context["listing"].rows] == [wanted.pk], query
    assert client.get("/console/bills/", {"state": "draft"}).context["listing"].rows == []
    by_name = client.get("/console/bills/", {"customer": "张"}).context["listing"].rows
    assert {row.id for row in by_name} == {wanted.pk, other.pk}
    assert client.get("/console/bills/", {"customer": "李四"}).context["listing"].rows == []


def test_the_bill_list_costs_as_many_queries_for_30_bills_as_for_3(world: World) -> None:
    _issued_bills(world, 3)
    client = _client(world.alice)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/console/bills/").status_code == 200
    _issued_bills(world, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/console/bills/")
    assert len(response.context["listing"].rows) == 30
    assert len(many) == len(few)


def test_the_bill_list_sorts_by_number_and_exports_csv(world: World) -> None:
    bills = _issued_bills(world, 3)
    client = _client(world.alice)
    response = client.get("/console/bills/", {"sort": "number"})
    assert [row.id for row in response.context["listing"].rows] == [
        bill.pk for bill in sorted(bills, key=lambda b: b.number)
    ]
    export = client.get("/console/bills/", {"export": "csv"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    assert all(bill.number in text for bill in bills)


def test_staff_of_one_site_see_only_their_sites_bills(world: World) -> None:
    [ours] = _issued_bills(world, 1)  # site A1
    response = _client(world.carol).get("/console/bills/")  # site A2 only
    assert ours.pk not in {row.id for row in response.context["listing"].rows}
    offered = response.context["listing"].filters.form.fields["site"].queryset
    with world.a.active():
        assert [site.pk for site in offered] == [world.a.sites[1].pk]


# --- a bill's page ----------------------------------------------------------------------------


def test_a_bills_page_shows_its_lines_amounts_ledger_posting_and_document(world: World) -> None:
    [bill] = _issued_bills(world, 1)
    response = _client(world.bob).get(f"/console/bills/{bill.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert bill.number in page and "100.00" in page and "11.50" in page  # the total, its tax
    assert f'href="/console/bills/{bill.pk}/document/"' in page
    assert f'href="/console/bills/{bill.pk}/document/?as=pdf"' in page
    [posting] = response.context["postings"]
    assert posting.amount == Decimal("100.00") and posting.reference == f"bill:{bill.pk}"
    assert response.context["entry"].pk == bill.entry_id
    assert not response.context["may_correct"]  # a cashier does not correct bills


def test_another_tenants_bill_and_a_bill_of_another_site_answer_404(world: World) -> None:
    theirs = world.b.bill()
    [ours] = _issued_bills(world, 1)
    assert _client(world.alice).get(f"/console/bills/{theirs.pk}/").status_code == 404
    for url in ("", "document/", "credit/", "rebill/", "approve/"):
        assert _client(world.carol).get(f"/console/bills/{ours.pk}/{url}").status_code == 404
    reader = world.a.staff((Role.METER_READER, None))
    assert _client(reader).get(f"/console/bills/{ours.pk}/").status_code == 403
    assert _client(world.bob).get(f"/console/bills/{ours.pk}/credit/").status_code == 403


# --- credit and re-bill -----------------------------------------------------------------------


def test_crediting_asks_for_a_reason_and_says_what_will_happen(world: World) -> None:
    [bill] = _issued_bills(world, 1)
    verifier = world.a.staff((Role.VERIFIER, None))
    page = _client(verifier).get(f"/console/bills/{bill.pk}/credit/")
    assert page.status_code == 200
    assert "A credit note reversing bill" in page.content.decode()
    assert [field.name for field in page.context["form"].fields] == ["reason"]
    refused = _client(verifier).post(f"/console/bills/{bill.pk}/credit/", {"reason": "  "})
    assert refused.status_code == 400
    assert refused.context["form"].errors["reason"]
    with world.a.active():
        assert not Bill.objects.filter(corrects=bill).exists()


def test_a_credit_note_waits_for_a_second_person_who_approves_it(world: World) -> None:
    [bill] = _issued_bills(world, 1)
    proposer = world.a.staff((Role.VERIFIER, None))
    second = world.a.staff((Role.VERIFIER, None))
    response = _client(proposer).post(
        f"/console/bills/{bill.pk}/credit/", {"reason": "电表读数录错"}
    )
    assert response.status_code == 302
    with world.a.active():
        note = Bill.objects.get(corrects=bill, kind=BillKind.CREDIT_NOTE)
    assert note.state == BillState.DRAFT and note.reason == "电表读数录错"
    # the proposer sees who proposed and who may approve, and no approve button
    mine = _client(proposer).get(f"/console/bills/{note.pk}/")
    page = mine.content.decode()
    assert "Waiting for a second person" in page and proposer.label in page
    assert "A verifier or administrator of this site other than" in page
    assert f'href="/console/bills/{note.pk}/approve/"' not in page
    assert _client(proposer).post(f"/console/bills/{note.pk}/approve/").status_code == 400
    assert _bill(world, note.pk).state == BillState.DRAFT
    # the second person approves
    theirs = _client(second).get(f"/console/bills/{note.pk}/")
    assert f'href="/console/bills/{note.pk}/approve/"' in theirs.content.decode()
    assert _client(second).post(f"/console/bills/{note.pk}/approve/").status_code == 302
    approved = _bill(world, note.pk)
    assert approved.state == BillState.ISSUED and approved.total == Decimal("-100.00")
    assert approved.approved_by_label == second.label


def test_a_bill_credited_already_offers_no_second_credit(world: World) -> None:
    [bill] = _issued_bills(world, 1)
    verifier = world.a.staff((Role.VERIFIER, None))
    _client(verifier).post(f"/console/bills/{bill.pk}/credit/", {"reason": "重复"})
    page = _client(verifier).get(f"/console/bills/{bill.pk}/")
    assert not page.context["may_correct"]
    again = _client(verifier).post(f"/console/bills/{bill.pk}/credit/", {"reason": "再次"})
    assert again.status_code == 400
    assert "awaits approval" in " ".join(again.context["form"].non_field_errors)


def test_a_rebill_drafts_a_credit_note_and_a_new_bill_from_the_period_consumption(
    world: World,
) -> None:
    [bill] = _issued_bills(world, 1)
    verifier = world.a.staff((Role.VERIFIER, None))
    response = _client(verifier).post(f"/console/bills/{bill.pk}/rebill/", {"reason": "换表"})
    assert response.status_code == 302
    with world.a.active():
        kinds = set(Bill.objects.filter(corrects=bill).values_list("kind", "state"))
    assert kinds == {(BillKind.CREDIT_NOTE, BillState.DRAFT), (BillKind.REBILL, BillState.DRAFT)}


def test_a_flagged_draft_is_voided_with_a_reason(world: World) -> None:
    [flag] = _flagged(world, 1)
    client = _client(world.alice)
    assert (
        f'href="/console/bills/{flag.bill_id}/void/"'
        in client.get(f"/console/bills/{flag.bill_id}/").content.decode()
    )
    refused = client.post(f"/console/bills/{flag.bill_id}/void/", {"reason": ""})
    assert refused.status_code == 400 and refused.context["form"].errors["reason"]
    assert _bill(world, flag.bill_id).state == BillState.DRAFT
    assert (
        client.post(f"/console/bills/{flag.bill_id}/void/", {"reason": "户已销户"}).status_code
        == 302
    )
    voided = _bill(world, flag.bill_id)
    assert voided.state == BillState.VOID and voided.reason == "户已销户"
    with world.a.active():
        assert FlaggedBill.objects.get(pk=flag.pk).resolution == "voided"
    assert _client(world.bob).get(f"/console/bills/{flag.bill_id}/void/").status_code == 403


# --- flagged bills ----------------------------------------------------------------------------


def test_the_flagged_list_costs_as_many_queries_for_30_as_for_3(world: World) -> None:
    flags = _flagged(world, 3)
    client = _client(world.alice)
    with CaptureQueriesContext(connection) as few:
        response = client.get("/console/flagged-bills/")
    assert {row.id for row in response.context["listing"].rows} == {f.pk for f in flags}
    _flagged(world, 27)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/console/flagged-bills/")
    assert len(response.context["listing"].rows) == 30
    assert len(many) == len(few)


def test_the_flagged_list_shows_open_reviews_unless_asked_for_the_resolved(world: World) -> None:
    first, second = _flagged(world, 2)
    with world.a.active():
        review.approve_bill(Principal.for_user(world.alice), first.bill)
    client = _client(world.alice)
    shown = client.get("/console/flagged-bills/").context["listing"].rows
    assert [row.id for row in shown] == [second.pk]
    resolved = client.get("/console/flagged-bills/", {"state": "resolved"})
    assert [row.id for row in resolved.context["listing"].rows] == [first.pk]


def test_flagged_bills_are_approved_together_after_a_confirmation(world: World) -> None:
    flags = [world.a.flagged_bill() for _ in range(2)]
    client = _client(world.alice)
    query = "&".join(f"ids={flag.pk}" for flag in flags)
    confirm = client.get(f"/console/flagged-bills/approve/?{query}")
    assert confirm.status_code == 200 and len(confirm.context["flags"]) == 2
    ids = confirm.context["form"].value("ids")
    assert client.post("/console/flagged-bills/approve/", {"ids": ids}).status_code == 302
    with world.a.active():
        states = {FlaggedBill.objects.get(pk=flag.pk).state for flag in flags}
        bills = {Bill.objects.get(pk=flag.bill_id).state for flag in flags}
    assert states == {ReviewState.RESOLVED} and bills == {BillState.ISSUED}


def test_a_batch_with_a_bill_the_person_produced_is_refused_whole(world: World) -> None:
    flag = world.a.flagged_bill()
    [bill] = _issued_bills(world, 1)
    proposer = world.a.staff((Role.VERIFIER, None))
    _client(proposer).post(f"/console/bills/{bill.pk}/credit/", {"reason": "错"})
    with world.a.active():
        own = FlaggedBill.objects.get(bill__corrects=bill)
    response = _client(proposer).post(
        "/console/flagged-bills/approve/", {"ids": f"{flag.pk},{own.pk}"}
    )
    assert response.status_code == 400
    assert "Nobody approves a bill they produced" in response.content.decode()
    with world.a.active():
        assert FlaggedBill.objects.get(pk=flag.pk).state == ReviewState.OPEN


def test_flagged_bills_of_another_tenant_or_site_cannot_be_approved(world: World) -> None:
    theirs = world.b.flagged_bill()
    ours = world.a.flagged_bill(world.a.sites[0])
    response = _client(world.carol).post(
        "/console/flagged-bills/approve/", {"ids": f"{theirs.pk},{ours.pk}"}
    )
    assert response.status_code == 400
    assert response.context["flags"] == []
    assert _client(world.bob).get("/console/flagged-bills/").status_code == 403


# --- billing settings -------------------------------------------------------------------------


def test_an_administrator_changes_the_vat_rate(world: World) -> None:
    client = _client(world.alice)
    form = client.get("/console/billing-settings/").context["form"]
    values = {field.name: form.value(field.name) for field in form.fields}
    values["vat_rate_electricity"] = "0.1300"
    values["history_bills"] = "12"
    assert client.post("/console/billing-settings/", values).status_code == 302
    with world.a.active():
        stored = BillingSettings.objects.get()
    assert stored.history_bills == 12


def test_a_bad_setting_is_shown_next_to_its_field_and_nothing_is_stored(world: World) -> None:
    client = _client(world.alice)
    response = client.post(
        "/console/billing-settings/",
        {"vat_rate_electricity": "1.5", "tax_code_electricity": "123", "history_bills": "6",
         "vat_rate_water": "0.09", "tax_code_water": "1100301010000000000",
         "history_factor": "3", "prepaid_charge_interval_minutes": "60"},
    )  # fmt: skip
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"vat_rate_electricity", "tax_code_electricity"}
    assert response.context["form"].value("tax_code_electricity") == "123"
    with world.a.active():
        assert not BillingSettings.objects.exists()


def test_settings_are_read_only_for_a_cashier_and_closed_to_a_meter_reader(world: World) -> None:
    page = _client(world.bob).get("/console/billing-settings/")
    assert page.status_code == 200 and not page.context["may_change"]
    assert '<form method="post" novalidate>' not in page.content.decode()
    assert _client(world.bob).post("/console/billing-settings/", {}).status_code == 403
    assert _client(world.carol).post("/console/billing-settings/", {}).status_code == 403
    reader = world.a.staff((Role.METER_READER, None))
    assert _client(reader).get("/console/billing-settings/").status_code == 403


def test_the_bill_section_of_the_navigation_follows_the_role(world: World) -> None:
    verifier = world.a.staff((Role.VERIFIER, None))
    home = _client(verifier).get("/console/").content.decode()
    for url in ("/console/bill-runs/", "/console/bills/", "/console/flagged-bills/",
                "/console/tariffs/", "/console/billing-settings/"):  # fmt: skip
        assert f'href="{url}"' in home
    cashier = _client(world.bob).get("/console/").content.decode()
    assert 'href="/console/bills/"' in cashier and 'href="/console/bill-runs/"' not in cashier
