"""The isolation walker for console pages: every page whose URL names an object, found in the
URL conf, against another tenant and against a grant that leaves the object's site out.

For each such page an object is made in tenant A, site A1. Mallory (tenant B's administrator)
gets 404 on GET and POST and writes nothing; carol (every role, site A2 only) gets 404 where the
object belongs to a site; alice (tenant A's administrator) opens it (the page works, so the 404s
mean something). A page added without an entry here fails the first test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from billing.tariffs import services as tariff_services
from inspection.models import SampleItem
from inspection.services import record_finding
from inspection.tests.scene import build_scene
from tenancy.audit import AuditAction, record_audit
from tenancy.models import AuditEvent, RoleGrant, User
from tenancy.roles import Role
from tests.world import World
from verification.models import PeriodComputation

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Page:
    """How to make the object a page names, the URL's other arguments, and who may open it."""

    make: Callable[[World], dict[str, Any]]  # the URL's keyword arguments
    site_bound: bool = True
    opener: Callable[[World, dict[str, Any]], User] | None = None  # default: alice
    opens: frozenset[int] = field(default_factory=lambda: frozenset({200}))
    # A page that only takes POST may answer GET with 405 for any id, which reveals nothing.
    post_only: bool = False


# A form's target: a GET goes back to the page the form is on, or is not allowed.
POSTED = frozenset({200, 302, 405})


def _site(world: World) -> Any:
    return world.a.sites[0]


def _inspection(world: World) -> dict[str, Any]:
    scene = build_scene(world)
    scene.enter_readings(2)
    sample = scene.draw(readings=2, staff_id=scene.reader.pk)
    with world.a.active():
        item = SampleItem.objects.filter(sample=sample).order_by("position").first()
        assert item is not None
        finding = record_finding(
            scene.as_(scene.inspector), item, outcome="finding", category="misread",
            severity="minor", note="checked",
        )  # fmt: skip
    return {"sample": sample, "item": item, "finding": finding, "reader": scene.reader}


def _grant(world: World) -> dict[str, Any]:
    user = world.a.staff((Role.CASHIER, _site(world)))
    with world.a.active():
        grant = RoleGrant.objects.get(user=user)
    return {"user_id": user.pk, "grant_id": grant.pk}


def _computation(world: World) -> dict[str, Any]:
    with world.a.active():
        computation = PeriodComputation.objects.create(
            site=_site(world), period="2025-10", total=1, started_by_kind="system",
            started_by_label="test",
        )  # fmt: skip
    return {"computation_id": computation.pk}


def _event(world: World) -> dict[str, Any]:
    with world.a.active():
        event = record_audit(world.a.system, AuditAction.SITE_UPDATED, _site(world))
    return {"event_id": event.pk}


def _future_version(world: World) -> dict[str, Any]:
    tariff = world.a.tariff()
    with world.a.active():
        version = tariff_services.add_tariff_version(
            world.a.system,
            tariff,
            effective_from=world.a.tenant.local_today() + timedelta(days=30),
            spec={"energy": {"kind": "flat", "price": "0.6000"}},
        )
    return {"tariff_id": tariff.pk, "version_id": version.pk}


PAGES: dict[str, Page] = {
    # read
    "meter": Page(lambda w: {"meter_id": w.a.meter(_site(w)).pk}),
    "meter-readings": Page(lambda w: {"meter_id": w.a.meter(_site(w)).pk}),
    "meter-reading-new": Page(lambda w: {"meter_id": w.a.meter(_site(w)).pk}),
    "meter-command-new": Page(lambda w: {"meter_id": w.a.meter(_site(w)).pk, "kind": "trip"}),
    "meter-command": Page(lambda w: {"command_id": w.a.command(_site(w)).pk}),
    "meter-command-progress": Page(lambda w: {"command_id": w.a.command(_site(w)).pk}),
    "gateway": Page(lambda w: {"gateway_id": w.a.gateway(_site(w)).pk}),
    # verify
    "verification-item": Page(lambda w: {"item_id": w.a.suspect_item(_site(w)).pk}),
    "verification-edit": Page(lambda w: {"item_id": w.a.suspect_item(_site(w)).pk}),
    "verification-estimate": Page(lambda w: {"item_id": w.a.suspect_item(_site(w)).pk}),
    "correction": Page(lambda w: {"correction_id": w.a.correction(_site(w)).pk}),
    "correction-approve": Page(
        lambda w: {"correction_id": w.a.correction(_site(w)).pk}, opens=POSTED
    ),
    "correction-reject": Page(lambda w: {"correction_id": w.a.correction(_site(w)).pk}),
    "period": Page(lambda w: {"period_id": w.a.period(_site(w)).pk}),
    "period-computation": Page(_computation),
    "period-computation-resume": Page(_computation, opens=POSTED),
    # bill
    "tariff": Page(lambda w: {"tariff_id": w.a.tariff().pk}, False),
    "tariff-version-new": Page(lambda w: {"tariff_id": w.a.tariff().pk}, False),
    "tariff-version-remove": Page(_future_version, False),
    "bill-run": Page(lambda w: {"run_id": w.a.bill_run(_site(w)).pk}),
    "bill-run-progress": Page(lambda w: {"run_id": w.a.bill_run(_site(w)).pk}),
    "bill-run-held-back": Page(lambda w: {"run_id": w.a.bill_run(_site(w)).pk}),
    "bill-run-approve": Page(lambda w: {"run_id": w.a.bill_run(_site(w)).pk}, opens=POSTED),
    "bill-run-resume": Page(lambda w: {"run_id": w.a.bill_run(_site(w)).pk}, opens=POSTED),
    "bill": Page(lambda w: {"bill_id": w.a.bill(_site(w)).pk}),
    "bill-document": Page(lambda w: {"bill_id": w.a.bill(_site(w)).pk}),
    "bill-credit": Page(lambda w: {"bill_id": w.a.bill(_site(w)).pk}),
    "bill-rebill": Page(lambda w: {"bill_id": w.a.bill(_site(w)).pk}),
    "bill-approve": Page(lambda w: {"bill_id": w.a.bill(_site(w), state="draft").pk}, opens=POSTED),
    "bill-void": Page(lambda w: {"bill_id": w.a.bill(_site(w), state="draft").pk}, opens=POSTED),
    # collect: refunds and account closings
    "refund": Page(lambda w: {"refund_id": w.a.refund(_site(w)).pk}),
    "refund-reveal": Page(
        lambda w: {"refund_id": w.a.refund(_site(w), state="approved", channel="bank_transfer").pk},
        opens=POSTED,
        post_only=True,
    ),
    "account-closing": Page(lambda w: {"closing_id": w.a.account_closing(_site(w)).pk}),
    "account-closing-cancel": Page(
        lambda w: {"closing_id": w.a.account_closing(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    # customers
    "customer": Page(lambda w: {"customer_id": w.a.customer(_site(w)).pk}),
    "customer-edit": Page(lambda w: {"customer_id": w.a.customer(_site(w)).pk}),
    "customer-reveal": Page(
        lambda w: {"customer_id": w.a.customer(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    "account-new": Page(lambda w: {"customer_id": w.a.customer(_site(w)).pk}),
    "contact-new": Page(lambda w: {"customer_id": w.a.customer(_site(w)).pk}),
    "account": Page(lambda w: {"account_id": w.a.account(_site(w)).pk}),
    "account-edit": Page(lambda w: {"account_id": w.a.account(_site(w)).pk}),
    "premise-edit": Page(lambda w: {"premise_id": w.a.premise(_site(w)).pk}),
    "contact-edit": Page(lambda w: {"contact_id": w.a.contact(w.a.customer(_site(w))).pk}),
    "contact-remove": Page(lambda w: {"contact_id": w.a.contact(w.a.customer(_site(w))).pk}),
    # collect
    "counter-account": Page(lambda w: {"account_id": w.a.account(_site(w)).pk}),
    "payment": Page(lambda w: {"payment_id": w.a.payment(_site(w)).pk}),
    "payment-reverse": Page(lambda w: {"payment_id": w.a.payment(_site(w)).pk}),
    "receipt": Page(lambda w: {"receipt_id": w.a.receipt(_site(w)).pk}),
    "receipt-document": Page(lambda w: {"receipt_id": w.a.receipt(_site(w)).pk}),
    "receipt-print": Page(
        lambda w: {"receipt_id": w.a.receipt(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    "receipt-reprint": Page(
        lambda w: {"receipt_id": w.a.receipt(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    "deposit-receipt": Page(lambda w: {"deposit_id": w.a.deposit(_site(w)).pk}),
    "deposit-receipt-document": Page(lambda w: {"deposit_id": w.a.deposit(_site(w)).pk}),
    "deposit-receipt-print": Page(
        lambda w: {"deposit_id": w.a.deposit(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    "deposit-receipt-reprint": Page(
        lambda w: {"deposit_id": w.a.deposit(_site(w)).pk}, opens=POSTED, post_only=True
    ),
    # administration: staff, API clients and calendar days belong to no site
    "staff-member": Page(lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False),
    "staff-profile": Page(
        lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False, opens=POSTED
    ),
    "staff-grant-add": Page(
        lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False, opens=POSTED
    ),
    "staff-grant-remove": Page(_grant, False, opens=POSTED),
    "staff-deactivate": Page(lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False),
    "staff-unlock": Page(lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False),
    "staff-reset-second-factor": Page(
        lambda w: {"user_id": w.a.staff((Role.CASHIER, None)).pk}, False
    ),
    "api-client": Page(lambda w: {"client_id": w.a.api_client((Role.CASHIER, None))[0].pk}, False),
    "api-client-rotate": Page(
        lambda w: {"client_id": w.a.api_client((Role.CASHIER, None))[0].pk}, False
    ),
    "api-client-revoke": Page(
        lambda w: {"client_id": w.a.api_client((Role.CASHIER, None))[0].pk}, False
    ),
    "calendar-day-delete": Page(lambda w: {"day_id": w.a.calendar_day().pk}, False),
    "site": Page(lambda w: {"site_id": _site(w).pk}),
    "site-edit": Page(lambda w: {"site_id": _site(w).pk}),
    "area-edit": Page(lambda w: {"area_id": w.a.transformer_area(_site(w)).pk}),
    # inspection and audit
    "audit-event": Page(_event),
    "inspection-sample": Page(lambda w: {"sample_id": _inspection(w)["sample"].pk}),
    "inspection-item": Page(lambda w: {"item_id": _inspection(w)["item"].pk}),
    # collection
    "shift": Page(lambda w: {"shift_id": w.a.shift(_site(w)).pk}),
    "shift-decide": Page(lambda w: {"shift_id": w.a.pending_shift(_site(w)).pk}, opens=POSTED),
    "inspection-my-finding": Page(
        lambda w: {"finding_id": (made := _inspection(w))["finding"].pk, "_reader": made["reader"]},
        opener=lambda w, kwargs: kwargs["_reader"],
    ),
    "voucher-batch": Page(lambda w: {"batch_id": w.a.voucher_batch().pk}, False),
    "voucher-batch-pins": Page(
        lambda w: {"batch_id": w.a.voucher_batch(release=False).pk}, False, opens=POSTED
    ),
    "voucher-batch-release": Page(
        lambda w: {"batch_id": w.a.voucher_batch(release=False, pins_downloaded=True).pk}, False
    ),
    "voucher-batch-void": Page(lambda w: {"batch_id": w.a.voucher_batch().pk}, False),
    "voucher-card": Page(lambda w: {"card_id": w.a.voucher_card().pk}, False),
    "voucher-card-void": Page(lambda w: {"card_id": w.a.voucher_card().pk}, False),
    "voucher-card-unlock": Page(lambda w: {"card_id": w.a.voucher_card().pk}, False, opens=POSTED),
    "voucher-redeemed": Page(lambda w: {"payment_id": w.a.voucher_payment(_site(w)).pk}),
}


def console_object_pages() -> list[tuple[str, str]]:
    """(name, route) of every console URL with an argument, from the URL conf."""
    found: list[tuple[str, str]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and prefix.startswith("console/"):
                route = prefix + str(pattern.pattern)
                if "<" in route:
                    found.append((str(pattern.name), route))

    walk(get_resolver().url_patterns, "")
    return found


PAGE_NAMES = sorted({name for name, _route in console_object_pages()})


def test_every_console_page_that_names_an_object_is_walked() -> None:
    missing = [name for name in PAGE_NAMES if name not in PAGES]
    assert not missing, f"console pages with no entry in tests/test_console_isolation.py: {missing}"


def _url(name: str, kwargs: dict[str, Any]) -> str:
    from django.urls import reverse

    return reverse(f"console:{name}", kwargs={k: getattr(v, "pk", v) for k, v in kwargs.items()
                                              if not k.startswith("_")})  # fmt: skip


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_another_tenant_and_another_site_get_404_on_the_page(world: World, name: str) -> None:
    page = PAGES[name]
    kwargs = page.make(world)
    url = _url(name, kwargs)
    events = AuditEvent.dangerously_unscoped.count()
    refused_get = {404, 405} if page.post_only else {404}
    mallory = _client(world.mallory)
    assert mallory.get(url).status_code in refused_get, url
    assert mallory.post(url, {"reason": "x", "confirm": "1"}).status_code == 404, url
    assert AuditEvent.dangerously_unscoped.count() == events, "a refused request wrote"
    if page.site_bound:
        carol = _client(world.carol)
        assert carol.get(url).status_code in refused_get, url
        assert carol.post(url, {"reason": "x", "confirm": "1"}).status_code == 404, url
        assert AuditEvent.dangerously_unscoped.count() == events, "a refused request wrote"
    opener = page.opener(world, kwargs) if page.opener else world.alice
    assert _client(opener).get(url).status_code in page.opens, url
