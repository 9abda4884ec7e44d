"""Console lists: personal data masked on the page for everyone; in a CSV export (audited)
unmasked only for the roles that may reveal it."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory

from console.lists import Column, Listing
from customers.identifiers import mask_identifier
from customers.models import Customer
from tenancy.models import AuditEvent
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import World

pytestmark = pytest.mark.django_db

COLUMNS = [Column("name", "name"), Column("id_number", "id", mask=mask_identifier)]


def _listing(world: World, user, query: dict) -> Listing:  # type: ignore[no-untyped-def]
    request = RequestFactory().get("/console/x/", query)
    request.user = user or AnonymousUser()
    request.principal = Principal.for_user(user)  # type: ignore[attr-defined]
    return Listing(request, Customer.objects.all(), columns=COLUMNS, export_name="customers")


def _exported(listing: Listing) -> list[list[str]]:
    text = b"".join(listing.export().streaming_content).decode()  # type: ignore[arg-type]
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_page_masks_identity_numbers_even_for_a_role_that_may_reveal_them(
    world: World,
) -> None:
    customer = world.a.customer()
    with world.a.active():
        listing = _listing(world, world.alice, {})
        texts = [row.cells[1].text for row in listing.rows]
    assert texts == [mask_identifier(customer.id_number)]
    assert customer.id_number not in texts


def test_an_export_is_unmasked_for_an_administrator_and_audited_as_unmasked(world: World) -> None:
    customer = world.a.customer()
    with world.a.active():
        rows = _exported(_listing(world, world.alice, {"export": "csv"}))
        event = AuditEvent.objects.get(action="export.downloaded")
    assert rows[1] == [customer.name, customer.id_number]
    assert event.after["masked"] is False and event.after["rows"] == 1


def test_an_export_stays_masked_for_a_verifier(world: World) -> None:
    customer = world.a.customer()
    verifier = world.a.staff((Role.VERIFIER, None))
    with world.a.active():
        rows = _exported(_listing(world, verifier, {"export": "csv"}))
        event = AuditEvent.objects.get(action="export.downloaded")
    assert rows[1] == [customer.name, mask_identifier(customer.id_number)]
    assert event.after["masked"] is True


def test_an_export_writes_plain_numbers_and_times_in_the_tenants_zone(world: World) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    world.a.customer()
    columns = [
        Column("amount", "amount", value=lambda c: Decimal("19165.31")),
        Column("at", "at", value=lambda c: datetime(2026, 11, 29, 12, 41, 5, tzinfo=UTC)),
    ]
    request = RequestFactory().get("/console/x/", {"export": "csv"})
    request.user = world.alice
    request.principal = Principal.for_user(world.alice)  # type: ignore[attr-defined]
    with world.a.active():
        listing = Listing(request, Customer.objects.all(), columns=columns, export_name="x")
        rows = _exported(listing)
    assert rows[1] == ["19165.31", "2026-11-29 20:41:05"]  # Asia/Shanghai


@pytest.mark.parametrize(
    "url",
    [
        "/console/bills/",
        "/console/bill-runs/",
        "/console/inspection/samples/",
        "/console/line-losses/",
    ],
)
@pytest.mark.parametrize("period", ["2026-13", "1999-12", "2026-1", "２０２６-01"])
def test_a_list_refuses_a_period_that_is_not_yyyy_mm_with_the_reason(
    world: World, url: str, period: str
) -> None:
    client = Client()
    client.force_login(world.alice)
    response = client.get(url, {"period": period})
    assert response.status_code == 400
    (reason,) = response.context["listing"].filters.errors["period"]
    assert "YYYY-MM" in reason and "2099-12" in reason


@pytest.mark.parametrize(
    "url", ["/console/bills/", "/console/bill-runs/", "/console/inspection/samples/"]
)
def test_a_list_takes_a_period_in_yyyy_mm(world: World, url: str) -> None:
    client = Client()
    client.force_login(world.alice)
    assert client.get(url, {"period": "2026-12"}).status_code == 200


SITE_FILTERED_PAGES = [
    "/console/meters/",
    "/console/gateways/",
    "/console/meter-commands/",
    "/console/verification/",
    "/console/corrections/",
    "/console/line-losses/",
    "/console/bill-runs/",
    "/console/bills/",
    "/console/flagged-bills/",
    "/console/customers/",
    "/console/inspection/samples/",
    "/console/inspection/findings/",
    "/console/payments/",
    "/console/payment-reversals/",
    "/console/payment-attempts/",
]


@pytest.mark.parametrize("path", SITE_FILTERED_PAGES)
def test_a_lists_site_filter_offers_only_the_sites_of_the_grant(world: World, path: str) -> None:
    """Carol holds every role for site A2 only: the filter names A2 and never A1 (a site
    outside the grant is not even named)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(world.carol)
    response = client.get(path)
    assert response.status_code == 200
    offered = response.context["listing"].filters.form.fields["site"].queryset
    with world.a.active():
        assert list(offered) == [world.a.sites[1]]
    assert str(world.a.sites[0]) not in response.content.decode()
