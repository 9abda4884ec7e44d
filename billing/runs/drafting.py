"""Drafting bills: what a chunk of a bill run reads (accounts, their period consumption,
tariffs, the year's earlier bills, recent bill totals, common-area shares), how each account is
priced and checked, and the set-based write of the drafts, their lines and the review rows of
flagged drafts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
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
    TariffVersion,
)
from billing.runs.numbers import BillNumbers, payment_reference
from billing.runs.order import (
    account_bills,
    first_period,
    not_billed_reason,
    site_start,
    unbilled_before,
)
from billing.tariffs.pricing import (
    AccountFacts,
    Assignment,
    Priced,
    Segment,
    Usage,
    Version,
    Versions,
    price,
    tariff_segments,
)
from billing.tariffs.services import account_assignments, class_assignments
from billing.tariffs.spec import (
    KWH,
    LABELS,
    WATER_LABELS,
    PricingError,
)
from billing.tariffs.spec import TariffSpec as Spec
from customers.models import Account, Customer, CustomerKind, Utility
from ledger.models import LedgerKind
from ledger.services import records_language, tenant_ledger_account
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import JSONText, allocate_ids, insert_rows, loads_json
from tenancy.models import Site, Tenant
from tenancy.principal import Principal
from tenancy.wording import in_chinese
from verification.models import PeriodConsumption, PeriodStatus
from verification.periods import period_bounds

REGISTERS = ("total", "tou_spike", "tou_peak", "tou_flat", "tou_valley")


ISSUE_FIELDS = ("pk", "tenant_id", "site_id", "account_id", "run_id", "period", "kind",
                "utility", "total", "posting_text", "checks")  # fmt: skip


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
    "estimated", "opening_text", "closing_text", "starts_at", "ends_at", "period",
)  # fmt: skip
_OPENING = PERIOD_FIELDS.index("opening_text")


def _period_row(row: tuple[Any, ...]) -> PeriodRow:
    """A row of ``PERIOD_FIELDS``, its opening and closing readings parsed (by orjson)."""
    values = list(row)
    values[_OPENING] = loads_json(values[_OPENING])
    values[_OPENING + 1] = loads_json(values[_OPENING + 1])
    return PeriodRow._make(values)


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
    period: str


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
    checks: str = ""

    @property
    def source_type(self) -> str:
        return "credit_note" if self.kind == BillKind.CREDIT_NOTE else "bill"


def issue_rows(bills: QuerySet[Bill], limit: int) -> list[BillRow]:
    """The first ``limit`` bills of ``bills`` as issuing needs them."""
    rows = bills.annotate(posting_text=JSONText("posting")).values_list(*ISSUE_FIELDS)[:limit]
    return [
        BillRow(pk, tenant, site, account, run, period, kind, utility, total,
                loads_json(posting), checks)
        for pk, tenant, site, account, run, period, kind, utility, total, posting, checks in rows
    ]  # fmt: skip


def account_rows(accounts: QuerySet[Account]) -> list[AccountRow]:
    return [AccountRow(*row) for row in accounts.values_list(*ACCOUNT_FIELDS.values())]


@dataclass
class RunContext:
    """What pricing a site's period reads once: the tariffs, settings, common-area shares, the
    site's first period billed here, and the tenant's bill numbers. A catch-up prices earlier
    periods with ``for_period``."""

    tenant: Tenant
    site: Site
    period: str
    starts_on: date
    ends_on: date
    settings: BillingSettings
    assignments: list[Assignment]
    versions: Versions
    common_area_shares: dict[int, Decimal]
    start: str | None
    numbers: BillNumbers
    earlier: dict[str, RunContext] = field(default_factory=dict)
    # The tariff segments of accounts with no assignment of their own, by what decides them.
    class_segments: dict[tuple[str, str, date, date], tuple[Segment, ...]] = field(
        default_factory=dict
    )

    def for_period(self, period: str) -> RunContext:
        if period == self.period:
            return self
        if period not in self.earlier:
            start, end = period_bounds(self.site, period)
            self.earlier[period] = replace(
                self,
                period=period,
                starts_on=start.date(),
                ends_on=end.date(),
                common_area_shares=common_area_shares(self.site, period),
                earlier={},
            )
        return self.earlier[period]


def run_context(site_id: int, period: str, numbers: BillNumbers | None = None) -> RunContext:
    site = Site.objects.select_related("tenant").get(pk=site_id)
    start, end = period_bounds(site, period)
    tenant = site.tenant
    settings = BillingSettings.for_tenant(tenant)
    versions = Versions(
        Version(v.pk, v.tariff_id, v.effective_from, Spec.parse(v.spec))
        for v in TariffVersion.objects.all()
    )
    return RunContext(
        tenant,
        site,
        period,
        start.date(),
        end.date(),
        settings,
        class_assignments(site.pk),
        versions,
        common_area_shares(site, period),
        site_start(site, settings),
        numbers or BillNumbers(tenant),
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


def _history(account_ids: Sequence[int], period: str, keep: int) -> dict[int, Decimal]:
    """The average of each account's last ``keep`` issued bills before this period."""
    totals: dict[int, list[Decimal]] = defaultdict(list)
    rows = (
        Bill.objects.filter(
            account_id__any=list(account_ids),
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
    starts_on = max(ctx.starts_on, account.opened_on)
    key = (account.customer_class, account.utility, starts_on, ctx.ends_on)
    segments = None if own else ctx.class_segments.get(key)
    if segments is None:
        segments = tuple(
            tariff_segments(
                account.pk,
                account.customer_class,
                starts_on,
                ctx.ends_on,
                [*(a for a in ctx.assignments if a.utility == account.utility), *own],
                ctx.versions,
            )
        )
        if not own:
            ctx.class_segments[key] = segments
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
    ctx: RunContext
    reason: str = ""
    cause: int | None = None


def draft_rows(
    actor: Principal,
    drafts: Sequence[Draft],
    *,
    run: BillRun | None,
    kind: str = BillKind.BILL,
    corrects: dict[int, int] | None = None,
) -> list[int]:
    """Write draft bills, their lines and the review rows of flagged drafts; returns the bill
    ids. Numbers come from the context's supply (``billing.runs.numbers``); a voided draft
    keeps its number."""
    if not drafts:
        return []
    ctx = drafts[0].ctx
    bill_ids = allocate_ids(Bill, len(drafts))
    numbers = ctx.numbers.take(len(drafts))
    now = timezone.now()
    supplementary = bool(run and run.supplementary)
    # Identity numbers are decrypted only for organisations (the fapiao's buyer tax id).
    organisations = dict(
        Customer.objects.filter(
            pk__any=list({d.account.customer_id for d in drafts}),
            kind=CustomerKind.ORGANISATION,
        ).values_list("pk", "id_number")
    )
    zone = ctx.tenant.zone
    insert_rows(
        Bill,
        ["id", "tenant_id", "site_id", "account_id", "run_id", "period", "kind", "state",
         "corrects_id", "utility", "starts_on", "ends_on", "total", "tax_total", "consumption",
         "opening", "closing", "annual_quantities", "checks", "buyer_name", "buyer_tax_id",
         "tax_code", "payment_reference", "created_by_kind", "created_by_id",
         "created_by_label", "created_at", "number", "reason", "approved_by_label", "posting",
         "supplementary", "cause_id", "tariff_versions"],
        (
            (bill_id, ctx.tenant.pk, ctx.site.pk, d.account.pk, run.pk if run else None,
             d.ctx.period, kind, BillState.DRAFT, (corrects or {}).get(d.account.pk),
             d.account.utility, d.period.starts_at.astimezone(zone).date(),
             d.period.ends_at.astimezone(zone).date() - timedelta(days=1), d.priced.total,
             d.priced.tax, _consumption(d.period, d.ctx), d.period.opening, d.period.closing,
             {year: str(kwh) for year, kwh in d.priced.annual_quantities.items()},
             ",".join(d.checks), d.account.customer_name[:200],
             organisations.get(d.account.customer_id, ""),
             d.ctx.settings.tax_code(d.account.utility), payment_reference(number, kind),
             actor.kind, actor.id, actor.label[:200], now, number, d.reason[:300], "",
             posting(d.priced), supplementary, d.cause, d.priced.tariff_versions)
            for bill_id, number, d in zip(bill_ids, numbers, drafts, strict=True)
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
            key: tenant_ledger_account(
                self.tenant, key[0], utility=key[1], component=key[2], name=_ledger_name(*key)
            ).pk
            for key in sorted(self.amounts)
        }
        return sorted((ledger_ids[key], amount) for key, amount in self.amounts.items() if amount)


def _ledger_name(kind: str, utility: str, component: str) -> str:
    """ "收入 电 电度电费", "应交增值税 电": the credit side's accounts in the books' language."""
    with records_language():
        utility_label = Utility(utility).label if utility in Utility.values else utility
        parts = [LedgerKind(kind).label, utility_label]
        if component:
            labels = {**LABELS, **(WATER_LABELS if utility == Utility.WATER else {})}
            key, _sep, n = component.rpartition("_")
            if component not in labels and key in labels and n.isdigit():  # tier_2
                component, number = key, n
            else:
                number = ""
            zh, en = labels.get(component, (component, component))
            parts.append((zh if in_chinese() else en).format(n=number))
        return " ".join(str(part) for part in parts)


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
) -> tuple[dict[str, str], int]:
    """Price a chunk of the run's accounts in one go and write their drafts; returns the held
    back (account number → reason) and how many accounts the chunk billed or held (an account
    whose period is billed already is skipped). A run holds an account back while an earlier
    period is not billed; a supplementary run bills those periods first, in order
    (``billing.runs.order``)."""
    ids = [account.pk for account in batch]
    bills = account_bills(ids, ctx.period)
    held: dict[str, str] = {}
    plans: dict[int, list[str]] = {}
    for account in batch:
        mine = bills[account.pk]
        if ctx.period in mine.live:
            continue
        first = first_period(ctx.site, ctx.start, account.opened_on, ctx.period)
        missing, waiting = unbilled_before(mine, first, ctx.period)
        if waiting:
            held[account.number] = waiting
        elif missing and not run.supplementary:
            held[account.number] = not_billed_reason(missing)
        else:
            plans[account.pk] = [*missing, ctx.period]
    # A later period billed already (an earlier one was credited and is billed again here):
    # its bill is re-priced once this one is drafted; a later draft must be settled first.
    later = _later_bills(list(plans), ctx.period)
    for account in batch:
        waiting_later = later.get(account.pk, {}).get(BillState.DRAFT)
        if account.pk in plans and waiting_later:
            del plans[account.pk]
            held[account.number] = _("the bill of the later period %(period)s awaits approval") % {
                "period": waiting_later
            }
    periods = {
        (row[0], row[-1]): _period_row(row)
        for row in PeriodConsumption.objects.filter(
            account_id__any=list(plans), period__in={p for plan in plans.values() for p in plan}
        )
        .annotate(opening_text=JSONText("opening"), closing_text=JSONText("closing"))
        .values_list(*PERIOD_FIELDS)
    }  # fmt: skip
    own = account_assignments(list(plans))
    history = _history(list(plans), ctx.period, ctx.settings.history_bills)
    drafts: list[Draft] = []
    for account in batch:
        plan = plans.get(account.pk, [])
        chained: dict[int, Decimal] = defaultdict(Decimal)  # this chain's kWh, per year
        for position, period_name in enumerate(plan):
            label = "" if period_name == ctx.period else f"{period_name}: "
            period = periods.get((account.pk, period_name))
            if period is None or period.status != PeriodStatus.COMPUTED:
                why = period.hold_reason if period else ""
                held[account.number] = label + (
                    why or (_("held back in verification") if period else
                            _("no period consumption computed"))
                )  # fmt: skip
                break
            ytd = bills[account.pk].year_to_date(period_name)
            for year, kwh in chained.items():
                ytd[year] += kwh
            period_ctx = ctx.for_period(period_name)
            try:
                priced = price_account(period_ctx, account, period, own.get(account.pk, []), ytd)
            except PricingError as exc:
                held[account.number] = label + str(exc)
                break
            checks = bill_checks(priced.total, history.get(account.pk), ctx.settings.history_factor)
            drafts.append(Draft(account, period, priced, checks, period_ctx))
            for year_name, kwh in priced.annual_quantities.items():
                chained[int(year_name)] += Decimal(kwh)
            if checks and position < len(plan) - 1:
                held[account.number] = _(
                    "the bill of the earlier period %(period)s awaits review"
                ) % {"period": period_name}
                break
    bill_ids = draft_rows(actor, drafts, run=run)
    if later:
        _reprice_later_bills(actor, drafts, bill_ids, later)
    record_audit(
        actor,
        AuditAction.BILL_RUN_PRICED,
        run,
        object_type="billing.bill",
        object_ids=bill_ids,
        after={"run": run.pk, "chunk_after": ids[0] - 1, "held_back": held},
    )
    considered = len(plans) + sum(1 for account in batch if account.pk not in plans
                                  and account.number in held)  # fmt: skip
    # The run's counters (and when it last made progress) move last, so the run row is locked
    # only while the chunk commits.
    BillRun.objects.filter(pk=run.pk).update(
        progressed_at=timezone.now(),
        done=F("done") + considered,
        bills=F("bills") + len(drafts),
        flagged=F("flagged") + sum(1 for d in drafts if d.checks),
        amount=F("amount") + sum((d.priced.total for d in drafts), Decimal(0)),
    )
    return held, considered


def _later_bills(account_ids: list[int], period: str) -> dict[int, dict[str, str]]:
    """Per account, the earliest later period with a bill or re-bill not void, by state."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    rows = (
        Bill.objects.filter(account_id__any=account_ids, period__gt=period)
        .exclude(state=BillState.VOID)
        .exclude(kind=BillKind.CREDIT_NOTE)
        .order_by("period")
        .values_list("account_id", "state", "period")
    )
    for account_id, state, later_period in rows:
        found[account_id].setdefault(state, later_period)
    return found


def _reprice_later_bills(
    actor: Principal, drafts: Sequence[Draft], bill_ids: Sequence[int],
    later: dict[int, dict[str, str]],
) -> None:  # fmt: skip
    """Re-price the later issued bills of each account billed here out of order (its last
    draft is the cause the re-pricing waits for)."""
    from billing.bills.corrections import reprice_later

    last: dict[int, int] = {}
    for draft, bill_id in zip(drafts, bill_ids, strict=True):
        if BillState.ISSUED in later.get(draft.account.pk, {}):
            last[draft.account.pk] = bill_id
    contexts: dict[str, RunContext] = {}
    for bill in Bill.objects.filter(pk__any=list(last.values())):
        reprice_later(actor, bill, bill, contexts)


def revenue_component(component: str) -> str:
    """Revenue accounts by charge: TOU and tier lines are all energy revenue."""
    if component.startswith("tou_") or component in ("tier_surcharge", "free_allowance"):
        return "energy"
    return component
