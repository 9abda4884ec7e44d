"""Corrections in the console: who proposed each, the proposer offered no approval (four
eyes, which the service enforces), a second verifier approving or rejecting with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tenancy.audit import AuditAction
from tenancy.models import AuditEvent, User
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World
from verification import services
from verification.models import PeriodConsumption, ReadingCorrection, VerificationItem
from verification.rules import validate_readings

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def _proposed_by(world: World, verifier: User, site=None) -> ReadingCorrection:  # type: ignore[no-untyped-def]
    item = world.a.suspect_item(site)
    with world.a.active():
        return services.edit_reading(
            Principal.for_user(verifier), item, {"total": Decimal("104")}, "digit misread"
        )


def _fresh(correction: ReadingCorrection) -> ReadingCorrection:
    return ReadingCorrection.dangerously_unscoped.get(pk=correction.pk)


def test_the_list_shows_who_proposed_each_correction(world: World) -> None:
    first = world.a.staff((Role.VERIFIER, None), username="wang")
    correction = _proposed_by(world, first)
    response = _client(world.alice).get("/console/corrections/", {"state": "proposed"})
    [row] = response.context["listing"].rows
    texts = [cell.text for cell in row.cells]
    assert row.id == correction.pk
    assert "wang" in texts and "104.000" in texts and "90.000" in texts  # proposed, as read
    assert "Awaiting a second verifier" in texts


def test_the_proposer_sees_why_they_cannot_approve_and_no_approve_button(world: World) -> None:
    first = world.a.staff((Role.VERIFIER, None))
    correction = _proposed_by(world, first)
    page = _client(first).get(f"/console/corrections/{correction.pk}/")
    text = page.content.decode()
    assert "you cannot approve it" in text
    assert f"/console/corrections/{correction.pk}/approve/" not in text


def test_the_service_refuses_the_proposers_own_approval_and_the_page_shows_it(
    world: World,
) -> None:
    first = world.a.staff((Role.VERIFIER, None))
    correction = _proposed_by(world, first)
    response = _client(first).post(f"/console/corrections/{correction.pk}/approve/")
    assert response.status_code == 400
    assert "Nobody approves their own edit or estimate (four eyes)." in response.content.decode()
    assert _fresh(correction).state == "proposed"


def test_a_second_verifier_approves_and_the_reading_is_resolved(world: World) -> None:
    first = world.a.staff((Role.VERIFIER, None))
    second = world.a.staff((Role.VERIFIER, None), username="li")
    correction = _proposed_by(world, first)
    client = _client(second)
    assert (
        f"/console/corrections/{correction.pk}/approve/"
        in client.get(f"/console/corrections/{correction.pk}/").content.decode()
    )
    response = client.post(f"/console/corrections/{correction.pk}/approve/", follow=True)
    assert "Correction approved" in response.content.decode()
    approved = _fresh(correction)
    assert (approved.state, approved.approved_by_label) == ("approved", "li")
    assert VerificationItem.dangerously_unscoped.get(correction=correction).state == "resolved"


def test_rejecting_asks_for_a_reason_and_reopens_the_reading(world: World) -> None:
    correction = _proposed_by(world, world.a.staff((Role.VERIFIER, None)))
    client = _client(world.a.staff((Role.VERIFIER, None)))
    confirm = client.get(f"/console/corrections/{correction.pk}/reject/")
    assert "goes back to the verification queue" in confirm.content.decode()
    refused = client.post(f"/console/corrections/{correction.pk}/reject/", {"reason": "  "})
    assert refused.status_code == 400 and refused.context["form"].errors["reason"]
    assert _fresh(correction).state == "proposed"
    client.post(f"/console/corrections/{correction.pk}/reject/", {"reason": "104 is too high"})
    assert _fresh(correction).state == "rejected"
    assert VerificationItem.dangerously_unscoped.get(meter=correction.meter).state == "open"
    with world.a.active():
        event = AuditEvent.objects.get(action=AuditAction.CORRECTION_REJECTED)
    assert event.after == {"reason": "104 is too high"}


def test_an_inspector_reads_corrections_but_may_not_decide(world: World) -> None:
    correction = _proposed_by(world, world.a.staff((Role.VERIFIER, None)))
    inspector = _client(world.a.staff((Role.INSPECTOR, None)))
    page = inspector.get(f"/console/corrections/{correction.pk}/")
    assert page.status_code == 200 and b"/approve/" not in page.content
    assert inspector.post(f"/console/corrections/{correction.pk}/approve/").status_code == 403
    assert inspector.get(f"/console/corrections/{correction.pk}/reject/").status_code == 403
    assert _fresh(correction).state == "proposed"


def test_a_cashier_gets_403(world: World) -> None:
    assert _client(world.bob).get("/console/corrections/").status_code == 403


def test_another_tenants_correction_answers_404(world: World) -> None:
    correction = world.b.correction()
    client = _client(world.alice)
    assert client.get(f"/console/corrections/{correction.pk}/").status_code == 404
    assert client.post(f"/console/corrections/{correction.pk}/approve/").status_code == 404
    assert _fresh(correction).state == "proposed"


def test_a_correction_of_a_site_outside_the_grant_answers_404(world: World) -> None:
    correction = world.a.correction(world.a.sites[0])
    carol = _client(world.carol)  # every role, site A2 only
    assert carol.get(f"/console/corrections/{correction.pk}/").status_code == 404
    assert carol.post(f"/console/corrections/{correction.pk}/approve/").status_code == 404
    assert carol.get(f"/console/corrections/{correction.pk}/reject/").status_code == 404


def test_the_list_costs_the_same_queries_for_3_rows_as_for_30(world: World) -> None:
    for _ in range(3):
        world.a.correction()
    client = _client(world.alice)
    client.get("/console/corrections/")
    with CaptureQueriesContext(connection) as three:
        assert len(client.get("/console/corrections/").context["listing"].rows) == 3
    for _ in range(27):
        world.a.correction()
    with CaptureQueriesContext(connection) as thirty:
        assert len(client.get("/console/corrections/").context["listing"].rows) == 30
    assert len(thirty) == len(three)


def test_a_missing_closing_reading_is_estimated_from_the_held_back_period(world: World) -> None:
    account = world.a.account()
    meter = world.a.meter(account.site, account=account)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for day in range(5):
        world.a.reading(meter, taken_at=start + timedelta(days=day), total=Decimal(100 + day))
    with world.a.active():
        validate_readings(world.a.tenant, [meter.pk])
    period = PeriodConsumption.dangerously_unscoped.create(
        tenant=world.a.tenant, account=account, site=account.site, period="2025-01",
        starts_at=start - timedelta(days=31), ends_at=start + timedelta(days=5),
        status="held_back", hold_reason="no reading after the close",
    )  # fmt: skip
    verifier = _client(world.a.staff((Role.VERIFIER, None)))
    detail = verifier.get(f"/console/periods/{period.pk}/")
    [_opening, (closing_url, label)] = detail.context["estimates"]
    assert label == f"Estimate the closing reading of meter {meter.serial_number}"
    form = verifier.get(closing_url)
    assert form.context["form"].value("taken_at") == "2025-01-06T08:00"  # China time
    refused = verifier.post(
        "/console/corrections/new/",
        {"meter": meter.pk, "taken_at": "2025-01-06T08:00", "method": "daily_average"},
    )
    assert refused.status_code == 400 and refused.context["form"].errors["reason"]
    response = verifier.post(
        "/console/corrections/new/",
        {
            "meter": meter.pk,
            "taken_at": "2025-01-06T08:00",
            "method": "daily_average",
            "reason": "no reading on the reading day",
        },
    )
    assert response.status_code == 302
    correction = ReadingCorrection.dangerously_unscoped.get(meter=meter)
    assert correction.taken_at == start + timedelta(days=5)
    assert (correction.kind, correction.total) == ("estimate", Decimal("105"))


def test_a_meter_of_another_tenant_or_site_cannot_be_estimated(world: World) -> None:
    theirs = world.b.meter()
    other_site = world.a.meter(world.a.sites[0])
    assert (
        _client(world.alice).get(f"/console/corrections/new/?meter={theirs.pk}").status_code == 404
    )
    carol = _client(world.carol)
    assert carol.get(f"/console/corrections/new/?meter={other_site.pk}").status_code == 404
    assert (
        _client(world.a.staff((Role.INSPECTOR, None)))
        .get(f"/console/corrections/new/?meter={other_site.pk}")
        .status_code
        == 403
    )
