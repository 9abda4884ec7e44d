"""How many accounts a period billed: one per account with an issued bill, whatever credit
notes and re-bills it went through; drafts waiting for review do not count."""

from __future__ import annotations

import pytest

from billing.bills.corrections import credit_bill
from billing.bills.review import approve_bill
from billing.models import Bill
from billing.runs.services import billed_account_count
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db


def test_an_issued_bill_counts_and_a_flagged_draft_does_not(world: World) -> None:
    site = world.a.sites[0]
    issued = world.a.bill(site)
    world.a.bill(site, state="flagged")
    with world.a.active():
        assert billed_account_count(site, issued.period) == 1


def test_a_credited_bill_no_longer_counts(world: World) -> None:
    site = world.a.sites[0]
    bill = world.a.bill(site)
    first = Principal.for_user(world.a.staff((Role.VERIFIER, None)))
    second = Principal.for_user(world.a.staff((Role.VERIFIER, None)))
    with world.a.active():
        note = credit_bill(first, bill, "wrong meter")
        assert billed_account_count(site, bill.period) == 1  # the note waits for review
        approve_bill(second, Bill.objects.get(pk=note.pk))
        assert billed_account_count(site, bill.period) == 0
