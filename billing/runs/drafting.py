"""Drafting bills: what a chunk of a bill run reads (accounts, their period consumption,
tariffs, the year's earlier bills, recent bill totals, common-area shares), how each account is
priced and checked, and the set-based write of the drafts, their lines and the review rows of
flagged drafts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    Bill,
    BillCheck,
    BillingSettings,
    BillKind,
    BillLine,
    BillRun,
    BillState,
    CommonArea,
    CommonAreaMember,
    FlaggedBill,
    SharingMethod,
    TariffAssignment,
    TariffVersion,
)
from billing.tariffs.pricing import (
    AccountFacts,
    Assignment,
    Priced,
    Usage,
    Version,
    price,
    tariff_segments,
)
from billing.tariffs.spec import (
    KWH,
    PricingError,
)
from billing.tariffs.spec import TariffSpec as Spec
from customers.models import Account, Customer, CustomerKind
from ledger.models import LedgerKind
from ledger.services import tenant_ledger_account
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids, insert_rows
from tenancy.models import Site, Tenant
from tenancy.principal import Principal
from verification.models import PeriodConsumption, PeriodStatus
from verification.periods import period_bounds

REGISTERS = ("total", "tou_spike", "tou_peak", "tou_flat", "tou_valley")


ISSUE_FIELDS = ("pk", "tenant_id", "site_id", "account_id", "run_id", "period", "kind",
                "utility", "total", "posting")  # fmt: skip


ACCOUNT_FIELDS = {
    "pk": "pk", "number": "number", "customer_id": "customer_id",
    "customer_name": "customer__name", "utility": "utility",
    "customer_class": "customer_class", "household_size": "household_size",
    "minimum_living_support": "minimum_living_support",
    "contracted_capacity_kva": "contracted_capacity_kva", "opened_on": "opened_on",
}  # fmt: skip


class AccountRow(NamedTuple):
    """What pricing needs of an account: the columns of ``ACCOUNT_FIELDS``, in its order."""

    pk: int
    number: str
    customer_id: int
    customer_name: str
    utility: str
    customer_class: str
    household_size: int
    minimum_living_support: bool
    contracted_capacity_kva: Decimal | None
    opened_on: date


PERIOD_FIELDS = (
    "account_id", "status", "hold_reason", *REGISTERS, "reactive_energy", "max_demand",
    "estimated", "opening", "closing", "starts_at", "ends_at",
)  # fmt: skip


class PeriodRow(NamedTuple):
    """What pricing needs of a period's consumption: the columns of ``PERIOD_FIELDS``."""

    account_id: int
    status: str
    hold_reason: str
    total: Decimal | None
    tou_spike: Decimal | None
    tou_peak: Decimal | None
    tou_flat: Decimal | None
    tou_valley: Decimal | None
    reactive_energy: Decimal | None
    max_demand: Decimal | None
    estimated: bool
    opening: list[Any]
    closing: list[Any]
    starts_at: datetime
    ends_at: datetime


class BillRow(NamedTuple):
    """What issuing needs of a bill, without building a model instance per bill: the columns
    of ``ISSUE_FIELDS``, in its order."""

    pk: int
    tenant_id: int
    site_id: int
    account_id: int
    run_id: int | None
    period: str
    kind: str
    utility: str
    total: Decimal
    posting: dict[str, Any]

    @property
    def source_type(self) -> str:
        return "credit_note" if self.kind == BillKind.CREDIT_NOTE else "bill"


def account_rows(accounts: QuerySet[Account]) -> list[AccountRow]:
    return [AccountRow(*row) for row in accounts.values_list(*ACCOUNT_FIELDS.values())]


@dataclass
class RunContext:
    tenant: Tenant
    site: Site
    period: str
    starts_on: date
    ends_on: date
    settings: BillingSettings
    assignments: list[Assignment]
    versions: list[Version]
    common_area_shares: dict[int, Decimal]


def run_context(site_id: int, period: str) -> RunContext:
    site = Site.objects.select_related("tenant").get(pk=site_id)
    start, end = period_bounds(site, period)
    tenant = site.tenant
    assignments = [
        Assignment(a.tariff_id, a.account_id, a.customer_class, a.effective_from, a.effective_to)
        for a in TariffAssignment.objects.filter(account__isnull=True)
    ]
    versions = [
        Version(v.pk, v.tariff_id, v.effective_from, Spec.parse(v.spec))
        for v in TariffVersion.objects.all()
    ]
    return RunContext(
        tenant,
        site,
        period,
        start.date(),
        end.date(),
        BillingSettings.for_tenant(tenant),
        assignments,
        versions,
        common_area_shares(site, period),
    )


def share_by_weights(total: Decimal, weights: dict[int, Decimal]) -> dict[int, Decimal]:
    """Share ``total`` kWh by weights to 0.001 with the largest remainders taking the spare
    thousandths, so the shares add up to the total exactly."""
    whole = sum(weights.values())
    if not weights or whole <= 0:
        return {}
    units = int((total / KWH).to_integral_value(ROUND_HALF_UP))
    raw = {key: Decimal(units) * weight / whole for key, weight in weights.items()}
    floors = {key: int(value) for key, value in raw.items()}
    spare = units - sum(floors.values())
    order = sorted(raw, key=lambda key: (raw[key] - floors[key], -key), reverse=True)
    for key in order[:spare]:
        floors[key] += 1
    return {key: Decimal(count) * KWH for key, count in floors.items()}


def common_area_shares(site: Site, period: str) -> dict[int, Decimal]:
    """Each member account's kWh of its common areas' consumption in the period (公摊)."""
    shares: dict[int, Decimal] = defaultdict(Decimal)
    areas = CommonArea.objects.filter(site=site)
    members = defaultdict(list)
    for area_id, account_id, floor_area in CommonAreaMember.objects.filter(
        common_area__in=areas
    ).values_list("common_area_id", "account_id", "account__premise__floor_area"):
        members[area_id].append((account_id, floor_area))
    area_of_account = {area.account_id: area.pk for area in areas}
    used = {
        area_of_account[account_id]: total
        for account_id, total in PeriodConsumption.objects.filter(
            account_id__in=area_of_account, period=period, status=PeriodStatus.COMPUTED
        ).values_list("account_id", "total")
        if total is not None
    }
    for area in areas:
        if area.pk not in used or not members[area.pk]:
            continue
        if area.method == SharingMethod.FLOOR_AREA:
            weights = {acc: Decimal(fa or 0) for acc, fa in members[area.pk]}
        else:
            weights = {acc: Decimal(1) for acc, _fa in members[area.pk]}
        for account_id, kwh in share_by_weights(used[area.pk], weights).items():
            shares[account_id] += kwh
    return dict(shares)


def year_to_date(
    account_ids: Sequence[int], starts_on: date, period: str
) -> dict[int, dict[int, Decimal]]:
    """kWh counted towards annual tiers before this period, per account and calendar year,
    from the account's bills of earlier periods (credit notes count negative)."""
    years = {starts_on.year - 1, starts_on.year}
    earliest = f"{min(years)}-01"
    found: dict[int, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rows = Bill.objects.filter(
        account_id__in=account_ids, period__gte=earliest, period__lt=period
    ).exclude(state=BillState.VOID)
    for account_id, quantities in rows.values_list("account_id", "annual_quantities"):
        for year, kwh in quantities.items():
            found[account_id][int(year)] += Decimal(kwh)
    return found


def _history(account_ids: Sequence[int], period: str, keep: int) -> dict[int, Decimal]:
    """The average of each account's last ``keep`` issued bills before this period."""
    totals: dict[int, list[Decimal]] = defaultdict(list)
    rows = (
        Bill.objects.filter(
            account_id__in=account_ids,
            state=BillState.ISSUED,
            kind__in=[BillKind.BILL, BillKind.REBILL],
            period__lt=period,
        )
        .order_by("account_id", "-period", "-pk")
        .values_list("account_id", "total")
    )
    for account_id, total in rows:
        if len(totals[account_id]) < keep:
            totals[account_id].append(total)
    return {key: sum(values, Decimal(0)) / len(values) for key, values in totals.items()}


def bill_checks(total: Decimal, average: Decimal | None, factor: Decimal) -> list[str]:
    """Automatic checks of a draft: a zero or negative bill, or one far from the account's own
    recent bills (above factor × average, or below average / factor)."""
    checks = []
    if total == 0:
        checks.append(BillCheck.ZERO_BILL.value)
    elif total < 0:
        checks.append(BillCheck.NEGATIVE_BILL.value)
    elif average and average > 0 and (total > average * factor or total < average / factor):
        checks.append(BillCheck.FAR_FROM_HISTORY.value)
    return checks


def _usage(period: PeriodRow | PeriodConsumption, common_area: Decimal) -> Usage:
    assert period.total is not None, "only a computed period is priced"
    return Usage(
        period.total,
        {name: getattr(period, name) for name in REGISTERS[1:]},
        period.reactive_energy,
        period.max_demand,
        common_area,
    )


def price_account(
    ctx: RunContext,
    account: AccountRow,
    period: PeriodRow | PeriodConsumption,
    own: list[Assignment],
    ytd: dict[int, Decimal],
) -> Priced:
    facts = AccountFacts(
        account.utility,
        account.household_size,
        account.minimum_living_support,
        account.contracted_capacity_kva,
        account.opened_on,
    )
    segments = tariff_segments(
        account.pk,
        account.customer_class,
        max(ctx.starts_on, account.opened_on),
        ctx.ends_on,
        [*ctx.assignments, *own],
        ctx.versions,
    )
    return price(
        facts,
        segments,
        _usage(period, ctx.common_area_shares.get(account.pk, Decimal(0))),
        period=ctx.period,
        vat_rate=ctx.settings.vat_rate(account.utility),
        year_to_date=ytd,
    )


@dataclass
class Draft:
    account: AccountRow
    period: PeriodRow | PeriodConsumption
    priced: Priced
    checks: list[str]


def draft_rows(
    actor: Principal,
    ctx: RunContext,
    drafts: Sequence[Draft],
    *,
    run: BillRun | None,
    kind: str = BillKind.BILL,
    corrects: dict[int, int] | None = None,
) -> list[int]:
    """Write draft bills, their lines and the review rows of flagged drafts; returns the bill
    ids. A bill's number is the year and its id: unique, given without a lock that concurrent
    runs would queue on, and kept by a voided draft."""
    bill_ids = allocate_ids(Bill, len(drafts))
    year = timezone.localdate(timezone=ctx.tenant.zone).year
    now = timezone.now()
    # Identity numbers are decrypted only for organisations (the fapiao's buyer tax id).
    organisations = dict(
        Customer.objects.filter(
            pk__in={d.account.customer_id for d in drafts}, kind=CustomerKind.ORGANISATION
        ).values_list("pk", "id_number")
    )
    insert_rows(
        Bill,
        ["id", "tenant_id", "site_id", "account_id", "run_id", "period", "kind", "state",
         "corrects_id", "utility", "starts_on", "ends_on", "total", "tax_total", "consumption",
         "opening", "closing", "annual_quantities", "checks", "buyer_name", "buyer_tax_id",
         "tax_code", "payment_reference", "created_by_kind", "created_by_id",
         "created_by_label", "created_at", "number", "reason", "approved_by_label", "posting"],
        (
            (bill_id, ctx.tenant.pk, ctx.site.pk, d.account.pk, run.pk if run else None,
             ctx.period, kind, BillState.DRAFT, (corrects or {}).get(d.account.pk),
             d.account.utility, d.period.starts_at.astimezone(ctx.tenant.zone).date(),
             d.period.ends_at.astimezone(ctx.tenant.zone).date(), d.priced.total,
             d.priced.tax, _consumption(d.period, ctx), d.period.opening, d.period.closing,
             {year: str(kwh) for year, kwh in d.priced.annual_quantities.items()},
             ",".join(d.checks), d.account.customer_name[:200],
             organisations.get(d.account.customer_id, ""),
             ctx.settings.tax_code(d.account.utility),
             f"{d.account.number}{ctx.period.replace('-', '')}", actor.kind, actor.id,
             actor.label[:200], now, f"{year}{bill_id:010d}", "", "", posting(d.priced))
            for bill_id, d in zip(bill_ids, drafts, strict=True)
        ),
    )  # fmt: skip
    insert_rows(
        BillLine,
        ["tenant_id", "bill_id", "position", "component", "label", "label_en",
         "quantity", "unit", "unit_price", "amount", "tax_rate", "tax", "starts_on",
         "ends_on"],
        (
            (ctx.tenant.pk, bill_id, position, line.component, line.label,
             line.label_en, line.quantity, line.unit, line.unit_price, line.amount,
             line.tax_rate, line.tax, line.starts_on, line.ends_on)
            for bill_id, d in zip(bill_ids, drafts, strict=True)
            for position, line in enumerate(d.priced.lines, start=1)
        ),
    )  # fmt: skip
    FlaggedBill.objects.bulk_create(
        [
            FlaggedBill(
                tenant=ctx.tenant,
                site=ctx.site,
                bill_id=bill_id,
                first_check=d.checks[0],
                checks=",".join(d.checks),
            )
            for bill_id, d in zip(bill_ids, drafts, strict=True)
            if d.checks
        ]
    )
    return bill_ids


def posting(priced: Priced) -> dict[str, list[str]]:
    """What issuing will post for the bill: net amount and tax per revenue component."""
    sums: dict[str, list[Decimal]] = {}
    for line in priced.lines:
        net_tax = sums.setdefault(revenue_component(line.component), [Decimal(0), Decimal(0)])
        net_tax[0] += line.amount - line.tax
        net_tax[1] += line.tax
    return {component: [str(net), str(tax)] for component, (net, tax) in sums.items()}


class RevenueCredits:
    """The credit side of a posting: revenue per utility and component and VAT payable per
    utility, summed over any number of postings. The tenant's ledger accounts are looked up
    (created on first use) once each and in key order, so issuing shards that create them at
    the same time take the same locks in the same order and never deadlock."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.amounts: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)

    def add(self, utility: str, posting: dict[str, list[str]]) -> None:
        """Credit the net amount and tax of each component of a ``posting(...)``."""
        for component, (net, tax) in posting.items():
            self.amounts[(LedgerKind.REVENUE, utility, component)] -= Decimal(net)
            self.amounts[(LedgerKind.VAT_PAYABLE, utility, "")] -= Decimal(tax)

    def lines(self) -> list[tuple[int, Decimal]]:
        ledger_ids = {
            key: tenant_ledger_account(self.tenant, key[0], utility=key[1], component=key[2]).pk
            for key in sorted(self.amounts)
        }
        return sorted((ledger_ids[key], amount) for key, amount in self.amounts.items() if amount)


def _consumption(period: PeriodRow | PeriodConsumption, ctx: RunContext) -> dict[str, Any]:
    values = {name: getattr(period, name) for name in REGISTERS}
    values["reactive_energy"] = period.reactive_energy
    values["max_demand"] = period.max_demand
    values["common_area"] = ctx.common_area_shares.get(period.account_id)
    consumption: dict[str, Any] = {
        key: str(value) for key, value in values.items() if value is not None
    }
    consumption["estimated"] = bool(period.estimated)  # a JSON boolean; quantities as strings
    return consumption


def price_chunk(
    actor: Principal, ctx: RunContext, run: BillRun, batch: list[AccountRow]
) -> dict[str, str]:
    ids = [account.pk for account in batch]
    periods = {
        row[0]: PeriodRow(*row)
        for row in PeriodConsumption.objects.filter(
            account_id__in=ids, period=ctx.period
        ).values_list(*PERIOD_FIELDS)
    }
    own: dict[int, list[Assignment]] = defaultdict(list)
    for a in TariffAssignment.objects.filter(account_id__in=ids):
        assert a.account_id is not None  # filtered on it
        own[a.account_id].append(
            Assignment(a.tariff_id, a.account_id, "", a.effective_from, a.effective_to)
        )
    ytd = year_to_date(ids, ctx.starts_on, ctx.period)
    history = _history(ids, ctx.period, ctx.settings.history_bills)
    drafts: list[Draft] = []
    held: dict[str, str] = {}
    for account in batch:
        period = periods.get(account.pk)
        if period is None:
            held[account.number] = _("no period consumption computed")
            continue
        if period.status != PeriodStatus.COMPUTED:
            held[account.number] = period.hold_reason or _("held back in verification")
            continue
        try:
            priced = price_account(ctx, account, period, own[account.pk], ytd[account.pk])
        except PricingError as exc:
            held[account.number] = str(exc)
            continue
        checks = bill_checks(priced.total, history.get(account.pk), ctx.settings.history_factor)
        drafts.append(Draft(account, period, priced, checks))
    bill_ids = draft_rows(actor, ctx, drafts, run=run)
    record_audit(
        actor,
        AuditAction.BILL_RUN_PRICED,
        run,
        object_type="billing.bill",
        object_ids=bill_ids,
        after={"run": run.pk, "chunk_after": ids[0] - 1, "held_back": held},
    )
    # The run's counters move last, so the run row is locked only while the chunk commits.
    BillRun.objects.filter(pk=run.pk).update(
        done=F("done") + len(batch),
        bills=F("bills") + len(drafts),
        flagged=F("flagged") + sum(1 for d in drafts if d.checks),
        amount=F("amount") + sum((d.priced.total for d in drafts), Decimal(0)),
    )
    return held


def revenue_component(component: str) -> str:
    """Revenue accounts by charge: TOU and tier lines are all energy revenue."""
    if component.startswith("tou_") or component in ("tier_surcharge", "free_allowance"):
        return "energy"
    return component
