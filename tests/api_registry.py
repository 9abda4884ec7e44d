"""Every API route, discovered from the URL conf, and the factory that feeds it in tests.

The isolation walker and the role tests read this registry. A route the URL conf has and this
registry does not is a failure, so a new endpoint cannot slip past them: add a ``RouteSpec``
(how to make its object in a tenant and site, valid bodies, a body naming another tenant's
objects) when you add an endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import count
from typing import Any

from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from billing.models import (
    Bill,
    BillingSettings,
    BillRun,
    CommonArea,
    FlaggedBill,
    OpeningBalance,
    PrepaidCharge,
    Tariff,
    TariffAssignment,
    TariffVersion,
)
from billing.tariffs import services as tariff_services
from collection.models import (
    AccountClosing,
    CashApproval,
    CashHandover,
    CollectionPolicy,
    Deposit,
    DepositPolicy,
    Payment,
    PaymentAttempt,
    Receipt,
    Refund,
    Shift,
    VoucherBatch,
    VoucherCard,
)
from collection.services.receipts import print_deposit_receipt, print_receipt
from collection.services.shifts import open_shift_of
from customers.models import Account, Contact, Customer, Premise
from ledger.models import JournalEntry, LedgerAccount
from metering.models import Gateway, Meter, MeterCommand, MeterEvent, Reading
from tenancy.audit import AuditAction, record_audit
from tenancy.models import ApiClient, AuditEvent, CalendarDay, Site, TransformerArea, User
from tenancy.permissions import DRF_ACTIONS, METHOD_ACTIONS
from tenancy.principal import Principal
from tenancy.roles import Role
from tests.world import (
    PASSWORD,
    TenantWorld,
    World,
    bank_closed_day,
    identity_number,
    mobile_number,
    unique,
)
from verification.models import (
    LineLoss,
    PeriodConsumption,
    ReadingCorrection,
    VerificationItem,
    VerificationSettings,
)

API_PREFIX = "api/v1/"
METHODS = ["get", "post", "put", "patch", "delete"]


@dataclass(frozen=True, eq=False)
class Route:
    name: str
    basename: str
    suffix: str
    methods: frozenset[str]
    detail: bool
    lookup_kwarg: str | None
    view_class: type[Any]
    actions: dict[str, str]
    initkwargs: dict[str, Any]

    def permission(self, method: str) -> tuple[str, str]:
        """The matrix entry (resource, action) a request with ``method`` is checked against."""
        drf_action = self.actions[method]
        if self.initkwargs.get("permission_action"):
            action = self.initkwargs["permission_action"]
        elif drf_action in DRF_ACTIONS:
            action = DRF_ACTIONS[drf_action]
        else:
            assert self.initkwargs.get("permission_by_method"), self.name
            action = METHOD_ACTIONS[method.upper()]
        return self.view_class.permission_resource, action

    def url(self, lookup: str | None = None) -> str:
        kwargs = {self.lookup_kwarg: lookup} if self.detail and self.lookup_kwarg else {}
        return reverse(self.name, kwargs=kwargs)


def _walk(patterns: list, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def discover_api_routes() -> list[Route]:
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns):
        if not path.startswith(API_PREFIX) or "format" in pattern.pattern.regex.groupindex:
            continue
        assert pattern.name is not None
        view_class = pattern.callback.cls  # type: ignore[attr-defined]  # set by as_view()
        lookup_kwarg = view_class.lookup_url_kwarg or view_class.lookup_field
        detail = lookup_kwarg in pattern.pattern.regex.groupindex
        basename = _basename_of(pattern.name)
        routes.append(
            Route(
                name=pattern.name,
                basename=basename,
                suffix=pattern.name.removeprefix(basename + "-"),
                methods=frozenset(m for m in pattern.callback.actions if m in METHODS),  # type: ignore[attr-defined]
                detail=detail,
                lookup_kwarg=lookup_kwarg if detail else None,
                view_class=view_class,
                actions=dict(pattern.callback.actions),  # type: ignore[attr-defined]
                initkwargs=dict(pattern.callback.initkwargs),  # type: ignore[attr-defined]
            )
        )
    return routes


def _basename_of(route_name: str) -> str:
    matches = [basename for basename in SPECS if route_name.startswith(basename + "-")]
    return max(matches, key=len) if matches else route_name


# --- specs ------------------------------------------------------------------------------------

_dates = count(1)


def fresh_date() -> date:
    return date(2031, 1, 1) + timedelta(days=next(_dates))


def fresh_weekend_day() -> date:
    """A fresh Saturday or Sunday (a make-up working day is one)."""
    while (day := fresh_date()).weekday() < 5:
        pass
    return day


@dataclass
class ActionSpec:
    """A custom action: the body (or query) of a request that succeeds, and its status.

    For an action on the list (not on one object): ``foreign_body(a, b)`` is what another
    tenant (b) sends naming a's objects, answered ``foreign_status`` (any 4xx when None) with
    nothing written; ``lists_objects`` says its GET answer lists objects that must stay hidden.
    """

    body: Callable[[TenantWorld, models.Model | None], dict[str, Any]] = lambda w, o: {}
    query: dict[str, str] = field(default_factory=dict)
    success: int = 200
    foreign_body: Callable[[TenantWorld, TenantWorld], dict[str, Any]] | None = None
    foreign_status: int | None = None
    lists_objects: bool = False
    make: Callable[[TenantWorld, Site], models.Model] | None = None  # instead of the route's


@dataclass
class RouteSpec:
    model: type[models.Model]
    make: Callable[[TenantWorld, Site], Any]
    site_bound: bool
    create_body: Callable[[TenantWorld, Site], dict[str, Any]] | None = None
    foreign_create_body: Callable[[TenantWorld, TenantWorld], dict[str, Any]] | None = None
    patch_body: Callable[[Any], dict[str, Any]] = lambda obj: {}
    put_body: Callable[[TenantWorld, Any], dict[str, Any]] | None = None
    delete_body: dict[str, Any] = field(default_factory=dict)
    lookup: Callable[[Any], str] = lambda obj: str(obj.pk)
    actions: dict[str, ActionSpec] = field(default_factory=dict)
    no_object: bool = False
    global_data: bool = False
    listed_ids: Callable[[Any], set[Any]] | None = None

    def dangerously_unscoped(self) -> models.Manager:
        return getattr(self.model, "dangerously_unscoped", self.model._default_manager)


def _record_event(world: TenantWorld, site: Site) -> AuditEvent:
    return record_audit(world.system, AuditAction.SITE_UPDATED, site, after={"name": site.name})


def _grants(site: Site) -> list[dict[str, Any]]:
    return [{"role": Role.CASHIER, "site": site.pk}]


def _account_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    return {
        "customer": world.customer(site).pk,
        "premise": world.premise(site).pk,
        "payment_mode": "prepaid",
        "customer_class": "residential",
    }


SPECS: dict[str, RouteSpec] = {
    "tenant": RouteSpec(
        model=type("NoModel", (), {}),
        make=lambda w, s: w.tenant,
        site_bound=False,
        no_object=True,
        actions={"me": ActionSpec(body=lambda w, o: {"name": unique("Renamed ")})},
    ),
    "site": RouteSpec(
        model=Site,
        make=lambda w, s: w.site(),
        site_bound=True,
        create_body=lambda w, s: {"code": unique("NEW"), "name": "新站点", "reading_day": 5},
        patch_body=lambda obj: {"name": "改名"},
        put_body=lambda w, obj: {"code": obj.code, "name": "改名", "reading_day": 9},
    ),
    "transformer-area": RouteSpec(
        model=TransformerArea,
        make=lambda w, s: w.transformer_area(s),
        site_bound=True,
        create_body=lambda w, s: {"site": s.pk, "code": unique("TA"), "name": "台区"},
        foreign_create_body=lambda a, b: {"site": a.sites[0].pk, "code": "X1", "name": "x"},
        patch_body=lambda obj: {"name": "改名"},
        put_body=lambda w, obj: {"site": obj.site_id, "code": obj.code, "name": "改名"},
    ),
    "calendar-day": RouteSpec(
        model=CalendarDay,
        make=lambda w, s: w.calendar_day(fresh_date()),
        site_bound=False,
        create_body=lambda w, s: {"date": fresh_date().isoformat(), "kind": "holiday"},
        patch_body=lambda obj: {"name": "改名"},
        put_body=lambda w, obj: {
            "date": fresh_weekend_day().isoformat(),
            "kind": "workday",
            "name": "调休",
        },
        actions={"next-working-day": ActionSpec(query={"date": "2031-03-03"})},
    ),
    "staff": RouteSpec(
        model=User,
        make=lambda w, s: w.staff((Role.CASHIER, s)),
        site_bound=False,
        create_body=lambda w, s: {
            "username": unique("new-user"),
            "password": PASSWORD,
            "grants": _grants(s),
        },
        foreign_create_body=lambda a, b: {
            "username": unique("spy"),
            "password": PASSWORD,
            "grants": _grants(a.sites[0]),
        },
        patch_body=lambda obj: {"display_name": "改名"},
        put_body=lambda w, obj: {
            "display_name": "改名",
            "email": "x@example.com",
            "is_active": True,
            "grants": _grants(w.sites[0]),
        },
        actions={
            "unlock": ActionSpec(success=204),
            "reset-second-factor": ActionSpec(success=204),
            "set-password": ActionSpec(body=lambda w, o: {"password": PASSWORD + "!"}, success=204),
        },
    ),
    "api-client": RouteSpec(
        model=ApiClient,
        make=lambda w, s: w.api_client((Role.CASHIER, s))[0],
        site_bound=False,
        create_body=lambda w, s: {"name": unique("client"), "grants": _grants(s)},
        foreign_create_body=lambda a, b: {"name": "spy", "grants": _grants(a.sites[0])},
        patch_body=lambda obj: {"name": unique("renamed")},
        put_body=lambda w, obj: {"name": unique("renamed"), "grants": _grants(w.sites[0])},
        actions={"rotate-token": ActionSpec()},
    ),
    "audit-event": RouteSpec(model=AuditEvent, make=_record_event, site_bound=True),
    "customer": RouteSpec(
        model=Customer,
        make=lambda w, s: w.customer(s),
        site_bound=True,
        create_body=lambda w, s: {
            "site": s.pk,
            "kind": "person",
            "name": "新客户",
            "id_number": identity_number(),
        },
        foreign_create_body=lambda a, b: {
            "site": a.sites[0].pk,
            "kind": "person",
            "name": "x",
            "id_number": identity_number(),
        },
        patch_body=lambda obj: {"name": "改名"},
        put_body=lambda w, obj: {"site": obj.site_id, "kind": "person", "name": "改名"},
        actions={"reveal": ActionSpec()},
    ),
    "account": RouteSpec(
        model=Account,
        make=lambda w, s: w.account(s),
        site_bound=True,
        lookup=lambda obj: obj.number,
        create_body=_account_body,
        foreign_create_body=lambda a, b: {
            "customer": a.customer().pk,
            "premise": a.premise().pk,
            "payment_mode": "prepaid",
            "customer_class": "residential",
        },
        patch_body=lambda obj: {"household_size": 4},
        put_body=lambda w, obj: {
            "premise": obj.premise_id,
            "payment_mode": "prepaid",
            "customer_class": "commercial",
            "status": "active",
            "opened_on": "2026-01-01",
            "household_size": 2,
            "minimum_living_support": False,
            "utility": "electricity",
        },
    ),
    "premise": RouteSpec(
        model=Premise,
        make=lambda w, s: w.premise(s),
        site_bound=True,
        create_body=lambda w, s: {"site": s.pk, "address": "新址 2 号", "room": "101"},
        foreign_create_body=lambda a, b: {
            "site": b.sites[0].pk,
            "transformer_area": a.transformer_area().pk,
            "address": "x",
        },
        patch_body=lambda obj: {"room": "999"},
        put_body=lambda w, obj: {"site": obj.site_id, "address": "新址 3 号", "room": "102"},
    ),
    "contact": RouteSpec(
        model=Contact,
        make=lambda w, s: w.contact(w.customer(s)),
        site_bound=True,
        create_body=lambda w, s: {
            "customer": w.customer(s).pk,
            "kind": "mobile",
            "value": mobile_number(),
            "source": "counter",
        },
        foreign_create_body=lambda a, b: {
            "customer": a.customer().pk,
            "kind": "mobile",
            "value": mobile_number(),
            "source": "counter",
        },
        patch_body=lambda obj: {"sms_consent": True},
        put_body=lambda w, obj: {
            "customer": obj.customer_id,
            "kind": "mobile",
            "value": mobile_number(),
            "source": "portal",
            "sms_consent": True,
            "is_primary": True,
        },
        actions={"confirm": ActionSpec()},
    ),
}


def _csv_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    return {
        "csv": f"serial_number,profile,site\n{unique('9')}{next(_dates)},DDSY1352,{site.code}\n"
    }


def _ingest_body(world: TenantWorld, meter: Meter, total: str = "1.5") -> dict[str, Any]:
    return {
        "readings": [
            {"meter": meter.serial_number, "taken_at": "2025-06-01T00:00:00Z", "total": total}
        ]
    }


def _replace_body(world: TenantWorld, obj: Any) -> dict[str, Any]:
    return {
        "new_serial_number": unique("88"),
        "replaced_at": "2025-02-01T08:00:00+08:00",
        "final_reading": {"total": "2000.00"},
        "first_reading": {"total": "0.00"},
        "reason": "表计故障更换",
    }


def _completeness_ids(response_json: Any) -> set[Any]:
    return {row["site"] for row in response_json} if isinstance(response_json, list) else set()


METERING_SPECS: dict[str, RouteSpec] = {
    "gateway": RouteSpec(
        model=Gateway,
        make=lambda w, s: w.gateway(s),
        site_bound=True,
        create_body=lambda w, s: {
            "site": s.pk,
            "name": unique("GW-new"),
            "host": "10.1.1.1",
            "port": 10000 + next(_dates),
        },
        foreign_create_body=lambda a, b: {
            "site": a.sites[0].pk,
            "name": "spy",
            "host": "10.1.1.2",
            "port": 502,
        },
        patch_body=lambda obj: {"name": unique("GW-renamed")},
        put_body=lambda w, obj: {
            "site": obj.site_id,
            "name": unique("GW-put"),
            "host": obj.host,
            "port": obj.port,
            "framing": "rtu",
        },
        actions={"health": ActionSpec(query={"hours": "24"}, lists_objects=True)},
    ),
    "meter": RouteSpec(
        model=Meter,
        make=lambda w, s: w.meter(s),
        site_bound=True,
        create_body=lambda w, s: {
            "serial_number": unique("77"),
            "profile": "DTSY1352",
            "site": s.pk,
            "ct_ratio": "40",
        },
        foreign_create_body=lambda a, b: {
            "serial_number": "spy",
            "profile": "DDSY1352",
            "site": b.sites[0].pk,
            "gateway": a.gateway().pk,
            "unit_id": 7,
        },
        patch_body=lambda obj: {"ct_ratio": "40.00"},
        put_body=lambda w, obj: {
            "profile": "DDSY1352",
            "gateway": obj.gateway_id,
            "unit_id": 9,
            "ct_ratio": "20",
            "status": "active",
        },
        actions={
            "import-csv": ActionSpec(
                body=lambda w, o: _csv_body(w, w.sites[0]),
                success=201,
                foreign_body=lambda a, b: _csv_body(a, a.sites[0]),
            ),
            "replace": ActionSpec(body=_replace_body, success=201),
        },
    ),
    "meter-profile": RouteSpec(
        model=type("NoModel", (), {}),
        make=lambda w, s: None,
        site_bound=False,
        global_data=True,
        lookup=lambda obj: "DDSY1352",
    ),
    "reading": RouteSpec(
        model=Reading,
        make=lambda w, s: w.reading(w.meter(s)),
        site_bound=True,
        create_body=lambda w, s: {
            "meter": w.meter(s).pk,
            "taken_at": "2025-03-01T00:00:00Z",
            "total": "123.45",
        },
        foreign_create_body=lambda a, b: {
            "meter": a.meter().pk,
            "taken_at": "2025-03-01T00:00:00Z",
            "total": "1",
        },
        actions={
            "ingest": ActionSpec(
                body=lambda w, o: _ingest_body(w, w.meter(w.sites[0])),
                foreign_body=lambda a, b: _ingest_body(b, a.meter()),
                foreign_status=200,
            ),
        },
    ),
    "reading-completeness": RouteSpec(
        model=Site,
        make=lambda w, s: s,
        site_bound=True,
        listed_ids=_completeness_ids,
    ),
    "meter-event": RouteSpec(model=MeterEvent, make=lambda w, s: w.meter_event(s), site_bound=True),
    "meter-command": RouteSpec(
        model=MeterCommand,
        make=lambda w, s: w.command(s),
        site_bound=True,
        create_body=lambda w, s: {
            "meter": w.meter(s).pk,
            "kind": "relay_trip",
            "reason": "欠费超过30天",
        },
        foreign_create_body=lambda a, b: {
            "meter": a.meter().pk,
            "kind": "relay_close",
            "reason": "x",
        },
    ),
}
SPECS.update(METERING_SPECS)


def _missing_slot_body(item: VerificationItem) -> dict[str, Any]:
    """An estimate for the slot two hours after a suspect reading (the hours before it read)."""
    return {
        "meter": item.meter_id,
        "taken_at": (item.reading.taken_at + timedelta(hours=2)).isoformat(),
        "method": "daily_average",
        "reason": "缺抄",
    }


VERIFY_SPECS: dict[str, RouteSpec] = {
    "verification-item": RouteSpec(
        model=VerificationItem,
        make=lambda w, s: w.suspect_item(s),
        site_bound=True,
        actions={
            "approve": ActionSpec(),
            "bulk-approve": ActionSpec(
                body=lambda w, o: {"ids": [w.suspect_item(w.sites[0]).pk]},
                foreign_body=lambda a, b: {"ids": [a.suspect_item(a.sites[0]).pk]},
            ),
            "edit": ActionSpec(
                body=lambda w, o: {"total": "104.00", "reason": "误读"}, success=201
            ),
            "estimate": ActionSpec(
                body=lambda w, o: {"method": "daily_average", "reason": "表计异常"}, success=201
            ),
        },
    ),
    "reading-correction": RouteSpec(
        model=ReadingCorrection,
        make=lambda w, s: w.correction(s),
        site_bound=True,
        create_body=lambda w, s: _missing_slot_body(w.suspect_item(s)),
        foreign_create_body=lambda a, b: _missing_slot_body(a.suspect_item()),
        actions={
            "approve": ActionSpec(),
            "reject": ActionSpec(body=lambda w, o: {"reason": "不对"}),
        },
    ),
    "period-consumption": RouteSpec(
        model=PeriodConsumption,
        make=lambda w, s: w.period(s),
        site_bound=True,
        actions={
            "compute": ActionSpec(
                body=lambda w, o: {"site": w.sites[0].pk, "period": "2025-10"},
                foreign_body=lambda a, b: {"site": a.sites[0].pk, "period": "2025-10"},
            ),
        },
    ),
    "line-loss": RouteSpec(model=LineLoss, make=lambda w, s: w.line_loss(s), site_bound=True),
    "verification-settings": RouteSpec(
        model=VerificationSettings,
        make=lambda w, s: VerificationSettings.stored_for_tenant(w.tenant),
        site_bound=False,
        no_object=True,
        actions={"current": ActionSpec(body=lambda w, o: {"spike_factor": "7.00"})},
    ),
}
SPECS.update(VERIFY_SPECS)

_FLAT = {"energy": {"kind": "flat", "price": "0.6000"}}


def _opening_body(world: TenantWorld) -> dict[str, Any]:
    """An import of one fresh account's opening balance (the go-live date set first)."""
    settings = BillingSettings.stored_for_tenant(world.tenant)
    settings.go_live_on = date(2026, 1, 1)
    settings.save(update_fields=["go_live_on"])
    account = world.account(world.sites[0])
    return {"rows": [{"account": account.number, "arrears": "10.50", "tier_kwh": "120"}]}


def _bill_run_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    """A run of a period with an account to bill: the site's other accounts may have opened
    after the period (which of the periods a test gets depends on the tests before it)."""
    period = world.next_period()
    world.billed_account(site, period)
    return {"site": site.pk, "period": period}


def _future_version(world: TenantWorld) -> TariffVersion:
    """A version of a fresh tariff from a day years ahead: nothing was priced with it."""
    tariff = world.tariff()
    with world.active():
        return tariff_services.add_tariff_version(
            world.system, tariff, effective_from=fresh_date(), spec=_FLAT
        )


BILLING_SPECS: dict[str, RouteSpec] = {
    "tariff-version": RouteSpec(
        model=TariffVersion,
        make=lambda w, s: _future_version(w),
        site_bound=False,
        delete_body={"reason": "单价录错"},
    ),
    "tariff": RouteSpec(
        model=Tariff,
        make=lambda w, s: w.tariff(),
        site_bound=False,
        create_body=lambda w, s: {"code": unique("T"), "name": "新电价", "utility": "electricity"},
        patch_body=lambda obj: {"name": "改名"},
        put_body=lambda w, obj: {"code": obj.code, "name": "改名", "utility": "electricity"},
        actions={
            "versions": ActionSpec(
                body=lambda w, o: {"effective_from": fresh_date().isoformat(), "spec": _FLAT},
                success=201,
            )
        },
    ),
    "tariff-assignment": RouteSpec(
        model=TariffAssignment,
        make=lambda w, s: w.tariff_assignment(s),
        site_bound=False,
        create_body=lambda w, s: {
            "tariff": w.tariff().pk,
            "account": w.account(s).pk,
            "effective_from": "2020-01-01",
        },
        foreign_create_body=lambda a, b: {
            "tariff": a.tariff().pk,
            "account": a.account().pk,
            "effective_from": "2020-01-01",
        },
        actions={
            "end": ActionSpec(body=lambda w, o: {"effective_to": "2030-01-01"}),
            "bulk": ActionSpec(
                body=lambda w, o: {
                    "tariff": w.tariff().pk,
                    "accounts": [w.account(w.sites[0]).pk, w.account(w.sites[0]).pk],
                    "effective_from": "2020-01-01",
                },
                success=201,
                foreign_body=lambda a, b: {
                    "tariff": b.tariff().pk,
                    "accounts": [a.account().pk],
                    "effective_from": "2020-01-01",
                },
            ),
        },
    ),
    "common-area": RouteSpec(
        model=CommonArea,
        make=lambda w, s: w.common_area(s),
        site_bound=True,
        create_body=lambda w, s: {
            "site": s.pk,
            "name": "2号楼公摊",
            "account": w.account(s).pk,
            "method": "equal",
            "members": [w.account(s).pk, w.account(s).pk],
        },
        foreign_create_body=lambda a, b: {
            "site": a.sites[0].pk,
            "name": "x",
            "account": a.account().pk,
            "method": "equal",
            "members": [a.account().pk],
        },
    ),
    "billing-settings": RouteSpec(
        model=BillingSettings,
        make=lambda w, s: BillingSettings.stored_for_tenant(w.tenant),
        site_bound=False,
        no_object=True,
        actions={"current": ActionSpec(body=lambda w, o: {"history_bills": 9})},
    ),
    "bill-run": RouteSpec(
        model=BillRun,
        make=lambda w, s: w.bill_run(s),
        site_bound=True,
        create_body=lambda w, s: _bill_run_body(w, s),
        foreign_create_body=lambda a, b: {"site": a.sites[0].pk, "period": "2026-10"},
        actions={"approve": ActionSpec(success=202)},
    ),
    "bill": RouteSpec(
        model=Bill,
        make=lambda w, s: w.bill(s),
        site_bound=True,
        actions={
            "approve": ActionSpec(make=lambda w, s: w.bill(s, state="flagged")),
            "void": ActionSpec(
                body=lambda w, o: {"reason": "表计故障"},
                make=lambda w, s: w.bill(s, state="flagged"),
            ),
            "credit": ActionSpec(body=lambda w, o: {"reason": "抄错"}, success=201),
            "rebill": ActionSpec(body=lambda w, o: {"reason": "抄错"}, success=201),
            "document": ActionSpec(query={"as": "html"}),
        },
    ),
    "flagged-bill": RouteSpec(
        model=FlaggedBill,
        make=lambda w, s: w.flagged_bill(s),
        site_bound=True,
        actions={
            "approve": ActionSpec(),
            "bulk-approve": ActionSpec(
                body=lambda w, o: {"ids": [w.flagged_bill(w.sites[0]).pk]},
                foreign_body=lambda a, b: {"ids": [a.flagged_bill(a.sites[0]).pk]},
            ),
        },
    ),
    "prepaid-charge": RouteSpec(
        model=PrepaidCharge,
        make=lambda w, s: w.prepaid_charge(s),
        site_bound=True,
        actions={"run": ActionSpec(foreign_body=lambda a, b: {}, foreign_status=200)},
    ),
    "opening-balance": RouteSpec(
        model=OpeningBalance,
        make=lambda w, s: w.opening_balance(s),
        site_bound=True,
        actions={
            "import-rows": ActionSpec(
                body=lambda w, o: _opening_body(w),
                success=201,
                foreign_body=lambda a, b: {
                    "rows": [{"account": a.account().number, "arrears": "10.50"}]
                },
            )
        },
    ),
    "ledger-account": RouteSpec(
        model=LedgerAccount, make=lambda w, s: w.ledger_account(s), site_bound=True
    ),
    "journal-entry": RouteSpec(
        model=JournalEntry, make=lambda w, s: w.journal_entry(s), site_bound=True
    ),
}
SPECS.update(BILLING_SPECS)


def _staffed_counter(world: TenantWorld, site: Site) -> None:
    """Every cashier of the site without an open shift opens one there: a counter payment
    belongs to its cashier's open shift, and the tests that post these bodies act as any of
    them (bob, the role tests' only-cashier)."""
    with world.active():
        cashiers = [
            actor
            for user in User.tenant_staff.filter(is_active=True).order_by("pk")
            if (actor := Principal.for_user(user)).site_scope((Role.CASHIER,)).allows(site.pk)
        ]
        for cashier in cashiers:
            if open_shift_of(cashier) is None:
                world.on_shift(cashier, site)


def _acting_cashier(world: TenantWorld, site: Site) -> Principal:
    """The cashier a request acts as or for: the role tests' only-cashier when there is one (a
    shift is closed, and cash handed over, by its own cashier), else a new one."""
    with world.active():
        user = User.tenant_staff.filter(username=f"only-{Role.CASHIER}").first()
    return Principal.for_user(user) if user else world.cashier()


def _own_shift(world: TenantWorld, site: Site) -> Shift:
    return world.on_shift(_acting_cashier(world, site), site)


def _handover_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    cashier = _acting_cashier(world, site)
    world.cash_on_hand(cashier, site, "300.00")
    return {
        "site": site.pk,
        "cashier": cashier.id,
        "amount": "300.00",
        "bank": "icbc",
        "slip_reference": unique("SLIP-"),
    }


def _cash_approval_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    return {
        "account": world.account(site, payment_mode="prepaid").number,
        "cashier": world.staff((Role.CASHIER, site)).pk,
        "amount": "5000.00",
        "business_day": bank_closed_day().isoformat(),
        "reason": "节假日预付费充值",
    }


def _payment_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    _staffed_counter(world, site)
    return {
        "account": world.account(site).number,
        "channel": "counter_cash",
        "amount": "88.00",
        "idempotency_key": unique("key-"),
    }


def _rejection_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    return {
        "account": world.account(site).number,
        "channel": "counter_card",
        "amount": "20.00",
        "reason": "余额不足",
    }


def _printed_receipt(world: TenantWorld, site: Site) -> models.Model:
    receipt = world.receipt(site)
    with world.active():
        print_receipt(world.cashier(), receipt)
    return receipt


def _printed_deposit(world: TenantWorld, site: Site) -> models.Model:
    deposit = world.deposit(site)
    with world.active():
        print_deposit_receipt(world.cashier(), deposit)
    return deposit


COLLECTION_SPECS: dict[str, RouteSpec] = {
    "payment": RouteSpec(
        model=Payment,
        make=lambda w, s: w.payment(s),
        site_bound=True,
        create_body=_payment_body,
        foreign_create_body=lambda a, b: _payment_body(a, a.sites[0]),
        actions={"reverse": ActionSpec(body=lambda w, o: {"reason": "收错户号"})},
    ),
    "payment-attempt": RouteSpec(
        model=PaymentAttempt,
        make=lambda w, s: w.payment_attempt(s),
        site_bound=True,
        create_body=_rejection_body,
        foreign_create_body=lambda a, b: _rejection_body(a, a.sites[0]),
    ),
    "receipt": RouteSpec(
        model=Receipt,
        make=lambda w, s: w.receipt(s),
        site_bound=True,
        actions={
            "document": ActionSpec(query={"as": "html"}),
            "print": ActionSpec(body=lambda w, o: {"as": "html"}),
            # A reprint follows the original: the receipt's original is printed first.
            "reprint": ActionSpec(body=lambda w, o: {"as": "html"}, make=_printed_receipt),
        },
    ),
    "account-due": RouteSpec(
        model=Account,
        make=lambda w, s: w.account(s),
        site_bound=True,
        lookup=lambda obj: obj.number,
        actions={"due": ActionSpec()},
    ),
    "shift": RouteSpec(
        model=Shift,
        make=lambda w, s: w.shift(s),
        site_bound=True,
        create_body=lambda w, s: {"site": s.pk, "float_amount": "200.00"},
        foreign_create_body=lambda a, b: {"site": a.sites[0].pk, "float_amount": "0.00"},
        actions={
            "close": ActionSpec(
                body=lambda w, o: {"counted_cash": "0.00", "counted_card": "0.00"},
                make=_own_shift,
            ),
            "approve": ActionSpec(
                body=lambda w, o: {"note": "短款已查明"}, make=lambda w, s: w.pending_shift(s)
            ),
            "reject": ActionSpec(
                body=lambda w, o: {"note": "请重新清点"}, make=lambda w, s: w.pending_shift(s)
            ),
        },
    ),
    "cash-handover": RouteSpec(
        model=CashHandover,
        make=lambda w, s: w.handover(s),
        site_bound=True,
        create_body=_handover_body,
        foreign_create_body=lambda a, b: _handover_body(a, a.sites[0]),
    ),
    "cash-approval": RouteSpec(
        model=CashApproval,
        make=lambda w, s: w.cash_approval(s),
        site_bound=True,
        create_body=_cash_approval_body,
        foreign_create_body=lambda a, b: _cash_approval_body(a, a.sites[0]),
    ),
    "collection-policy": RouteSpec(
        model=CollectionPolicy,
        make=lambda w, s: CollectionPolicy.stored_for_tenant(w.tenant),
        site_bound=False,
        no_object=True,
        actions={"current": ActionSpec(body=lambda w, o: {"holiday_cash_cap": "4000.00"})},
    ),
}
SPECS.update(COLLECTION_SPECS)


def _deposit_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    _staffed_counter(world, site)  # a deposit is taken in the cashier's open shift
    return {
        "account": world.account(site).number,
        "channel": "counter_cash",
        "amount": "300.00",
        "idempotency_key": unique("dep-"),
    }


def _closing_body(world: TenantWorld, site: Site) -> dict[str, Any]:
    account = world.account(site)
    world.meter(site, on_gateway=False, account=account)
    return {
        "account": account.number, "taken_at": "2026-09-20T10:00:00+08:00", "total": "10.00",
        "reason": "迁出",
    }  # fmt: skip


CLOSE_SPECS: dict[str, RouteSpec] = {
    "deposit-policy": RouteSpec(
        model=DepositPolicy,
        make=lambda w, s: w.deposit_policy(),
        site_bound=False,
        create_body=lambda w, s: {
            "utility": "water",
            "customer_class": "commercial",
            "amount": "500.00",
        },
    ),
    "deposit": RouteSpec(
        model=Deposit,
        make=lambda w, s: w.deposit(s),
        site_bound=True,
        create_body=_deposit_body,
        foreign_create_body=lambda a, b: {
            "account": a.account().number,
            "channel": "counter_cash",
            "amount": "300.00",
            "idempotency_key": unique("dep-"),
        },
        actions={
            # The account is named in the query, which is fixed here: a number with a wrong
            # check digit, answered 400 to those allowed (403 to the others).
            "status": ActionSpec(
                query={"account": "0000000000"},
                success=400,
                foreign_body=lambda a, b: {"account": a.account().number},
            ),
            "document": ActionSpec(query={"as": "html"}),
            "print": ActionSpec(body=lambda w, o: {"as": "html"}),
            "reprint": ActionSpec(body=lambda w, o: {"as": "html"}, make=_printed_deposit),
        },
    ),
    "refund": RouteSpec(
        model=Refund,
        make=lambda w, s: w.refund(s),
        site_bound=True,
        create_body=lambda w, s: {
            "account": w.deposit(s).account.number,
            "from_deposit": "50.00",
            "channel": "cash",
            "reason": "押金多收",
        },
        foreign_create_body=lambda a, b: {
            "account": a.deposit().account.number,
            "from_deposit": "50.00",
            "channel": "cash",
            "reason": "押金多收",
        },
        actions={
            "approve": ActionSpec(),
            "reject": ActionSpec(body=lambda w, o: {"reason": "不符合条件"}),
            # Paid by bank transfer: a cash refund is paid in the payer's open shift, which
            # a supervisor or finance paying it here has not.
            "pay": ActionSpec(
                make=lambda w, s: w.refund(s, state="approved", channel="bank_transfer"),
                body=lambda w, o: {"payment_reference": unique("BANK-")},
            ),
            # The bank account of an approved transfer, to whoever pays it (audited).
            "reveal": ActionSpec(
                make=lambda w, s: w.refund(s, state="approved", channel="bank_transfer")
            ),
        },
    ),
    "account-closing": RouteSpec(
        model=AccountClosing,
        make=lambda w, s: w.account_closing(s),
        site_bound=True,
        create_body=_closing_body,
        foreign_create_body=lambda a, b: _closing_body(a, a.sites[0]),
        actions={
            "finish": ActionSpec(success=400),
            # A closing that waits, cancelled by a supervisor with the reason.
            "cancel": ActionSpec(body=lambda w, o: {"reason": "客户不再迁出"}),
            "preview": ActionSpec(
                body=lambda w, o: _closing_body(w, w.sites[0]),
                foreign_body=lambda a, b: _closing_body(a, a.sites[0]),
            ),
        },
    ),
}
SPECS.update(CLOSE_SPECS)


def _batch_of_the_admin(world: TenantWorld, site: Site) -> VoucherBatch:
    """A batch whose PIN file the role tests' tenant administrator may download: only the
    administrator who generated a batch downloads its PINs."""
    user = User.objects.filter(tenant=world.tenant, username=f"only-{Role.TENANT_ADMIN}").first()
    return world.voucher_batch(by=Principal.for_user(user) if user else None, release=False)


def _redemption_body(world: TenantWorld, card: Any, site: Site) -> dict[str, Any]:
    return {
        "account": world.account(site).number,
        "serial": card.serial,
        "pin": card.pin,
        "idempotency_key": unique("v-"),
    }


VOUCHER_SPECS: dict[str, RouteSpec] = {
    "voucher-batch": RouteSpec(
        model=VoucherBatch,
        make=lambda w, s: w.voucher_batch(),
        site_bound=False,
        create_body=lambda w, s: {
            "face_value": "50.00",
            "count": 3,
            "expires_on": (timezone.localdate() + timedelta(days=365)).isoformat(),
        },
        actions={
            "pins": ActionSpec(make=_batch_of_the_admin),
            "release": ActionSpec(
                make=lambda w, s: w.voucher_batch(release=False, pins_downloaded=True)
            ),
            "void": ActionSpec(body=lambda w, o: {"reason": "整批丢失"}),
        },
    ),
    "voucher-card": RouteSpec(
        model=VoucherCard,
        make=lambda w, s: w.voucher_card(s),
        site_bound=False,
        actions={
            "void": ActionSpec(body=lambda w, o: {"reason": "被盗"}),
            "unlock": ActionSpec(),
        },
    ),
    "voucher-redemption": RouteSpec(
        model=Payment,
        make=lambda w, s: w.voucher_payment(s),
        site_bound=True,
        create_body=lambda w, s: _redemption_body(w, w.voucher_card(), s),
        foreign_create_body=lambda a, b: _redemption_body(a, a.voucher_card(), a.sites[0]),
    ),
}
SPECS.update(VOUCHER_SPECS)


def spec_for(route: Route) -> RouteSpec:
    return SPECS[route.basename]


def make_for(route: Route, world: TenantWorld, site: Site) -> models.Model:
    """The object a request to ``route`` is about (an action may need one of its own kind:
    approving needs a flagged draft, crediting an issued bill)."""
    spec = spec_for(route)
    action = spec.actions.get(route.suffix)
    return (action.make if action and action.make else spec.make)(world, site)


def snapshot(spec: RouteSpec, obj: models.Model) -> dict[str, Any]:
    """The stored row, read past the scoped manager, to prove a request left it alone."""
    if spec.no_object:
        fresh = type(obj)._base_manager.get(pk=obj.pk)
    else:
        fresh = spec.dangerously_unscoped().get(pk=obj.pk)
    return {f.attname: getattr(fresh, f.attname) for f in fresh._meta.concrete_fields}


def ids_in(response_json: Any) -> set[Any]:
    rows = response_json.get("results", response_json) if isinstance(response_json, dict) else []
    return {row.get("id") for row in rows if isinstance(row, dict)}


def world_site(world: World, tenant: str = "a") -> tuple[TenantWorld, Site]:
    tenant_world = world.a if tenant == "a" else world.b
    return tenant_world, tenant_world.sites[0]
