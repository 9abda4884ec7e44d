"""The shift endpoints: a cashier opens a shift, takes payments, sees the running expected
figures and closes with the count; a supervisor approves the difference (never the cashier,
even one who is a site manager too); the cash goes to the bank; another tenant sees nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collection.models import Shift
from ledger.models import JournalLine
from tenancy.roles import Role
from tests.world import World, unique

pytestmark = pytest.mark.django_db

SHIFTS = "/api/v1/shifts/"


def test_a_cashiers_day_through_the_api(world: World) -> None:
    a = world.a
    bob = world.client_for(world.bob)
    opened = bob.post(SHIFTS, {"site": a.sites[0].pk, "float_amount": "300.00"}, format="json")
    assert opened.status_code == 201, opened.content
    shift_id = opened.json()["id"]
    assert opened.json()["state"] == "open"
    twice = bob.post(SHIFTS, {"site": a.sites[0].pk, "float_amount": "0.00"}, format="json")
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "shift_open"
    for amount in ("100.00", "50.50"):
        paid = bob.post(
            "/api/v1/payments/",
            {"account": a.account().number, "channel": "counter_cash", "amount": amount,
             "idempotency_key": unique("k")},
            format="json",
        )  # fmt: skip
        assert paid.status_code == 201 and paid.json()["shift"] == shift_id
    [open_one] = bob.get(SHIFTS, {"state": "open"}).json()["results"]
    assert open_one["expected"]["expected_cash"] == "450.50"  # live while open, lists too
    running = bob.get(f"{SHIFTS}{shift_id}/").json()["expected"]
    # 300.00 float + 100.00 + 50.50 = 450.50
    assert running["expected_cash"] == "450.50" and running["cash"]["payments"] == 2
    closed = bob.post(
        f"{SHIFTS}{shift_id}/close/", {"counted_cash": "450.00", "note": "少五角"}, format="json"
    )
    assert closed.status_code == 200, closed.content
    assert closed.json()["state"] == "pending" and closed.json()["difference_cash"] == "-0.50"
    refused = bob.post(f"{SHIFTS}{shift_id}/approve/", {"note": "自批"}, format="json")
    assert refused.status_code == 403  # a cashier does not approve
    manager = world.client_for(a.staff((Role.SITE_MANAGER, a.sites[0])))
    pending = manager.get(SHIFTS, {"state": "pending"}).json()["results"]
    assert [row["id"] for row in pending] == [shift_id]
    approved = manager.post(f"{SHIFTS}{shift_id}/approve/", {"note": "已核实"}, format="json")
    assert approved.status_code == 200 and approved.json()["state"] == "closed"
    [listed] = manager.get(SHIFTS).json()["results"]
    assert (listed["expected_cash"], listed["counted_cash"]) == ("450.50", "450.00")
    assert listed["expected"] is None  # a closed shift's detail is on its own page
    with a.active():
        entry = Shift.objects.get(pk=shift_id).difference_entry_id
        amounts = JournalLine.objects.filter(entry_id=entry).values_list("amount", flat=True)
        assert sorted(amounts) == [Decimal("-0.50"), Decimal("0.50")]  # cash, over and short
    handed = bob.post(
        "/api/v1/cash-handovers/",
        {"site": a.sites[0].pk, "amount": "150.00", "bank": "icbc", "slip_reference": "S-1"},
        format="json",
    )
    assert handed.status_code == 201, handed.content
    retry = bob.post(
        "/api/v1/cash-handovers/",
        {"site": a.sites[0].pk, "amount": "150.00", "bank": "icbc", "slip_reference": "S-1"},
        format="json",
    )
    assert retry.status_code == 200 and retry.json()["id"] == handed.json()["id"]
    too_much = bob.post(
        "/api/v1/cash-handovers/",
        {"site": a.sites[0].pk, "amount": "0.01", "bank": "icbc", "slip_reference": "S-2"},
        format="json",
    )
    assert too_much.status_code == 400  # 150.50 taken − 0.50 short − 150.00 handed over = 0
    assert too_much.json()["error"]["code"] == "exceeds_cash_on_hand"
    mallory = world.client_for(world.mallory)
    assert mallory.get(SHIFTS).json()["results"] == []
    assert mallory.get(f"{SHIFTS}{shift_id}/").status_code == 404


def test_a_cashier_who_is_also_a_site_manager_cannot_approve_their_own_difference(
    world: World,
) -> None:
    a = world.a
    both = a.staff((Role.CASHIER, None), (Role.SITE_MANAGER, None))
    client = world.client_for(both)
    shift_id = client.post(
        SHIFTS, {"site": a.sites[0].pk, "float_amount": "100.00"}, format="json"
    ).json()["id"]
    client.post(f"{SHIFTS}{shift_id}/close/", {"counted_cash": "99.00"}, format="json")
    own = client.post(f"{SHIFTS}{shift_id}/approve/", {"note": "自批"}, format="json")
    assert own.status_code == 400 and own.json()["error"]["code"] == "four_eyes"
    own = client.post(f"{SHIFTS}{shift_id}/reject/", {"note": "自驳"}, format="json")
    assert own.status_code == 400 and own.json()["error"]["code"] == "four_eyes"
    no_note = world.client_for(world.alice).post(f"{SHIFTS}{shift_id}/approve/", {}, format="json")
    assert no_note.status_code == 400
    rejected = world.client_for(world.alice).post(
        f"{SHIFTS}{shift_id}/reject/", {"note": "重点"}, format="json"
    )
    assert rejected.status_code == 200 and rejected.json()["state"] == "recount"
