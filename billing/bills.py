"""Bill runs: price a site's postpaid accounts for a period, check the drafts, and issue them.

A run goes running → drafted → issuing → issued. Pricing works in chunks of accounts in id
order; each chunk is one transaction that writes its bills, their lines, the verification items
of flagged drafts, one audit event, and the run's cursor. A run killed anywhere resumes after
the last committed chunk, so a restarted run gives the same bills as an uninterrupted one.
Issuing works the same way: each chunk numbers its bills, sets their due dates and posts them
to the ledger (idempotent per bill) in one transaction.

Only computed period consumption is billed (verification's output); an account held back there,
or one that cannot be priced (no tariff, no agency price for the month), is listed on the run
with its reason. Nobody approves a run they started (four eyes, enforced here).
"""

from __future__ import annotations

from collections import defaultdict, namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
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
    BillRunShard,
    BillState,
    CommonArea,
    CommonAreaMember,
    ItemKind,
    ItemState,
    PeriodConsumption,
    PeriodStatus,
    RunState,
    SharingMethod,
    TariffAssignment,
    TariffVersion,
    VerificationItem,
)
from billing.periods import period_bounds
from billing.tariffs import (
    KWH,
    AccountFacts,
    Assignment,
    Priced,
    PricingError,
    Usage,
    Version,
    price,
    tariff_segments,
)
from billing.tariffs import TariffSpec as Spec
from collection.ledger import EntrySpec, customer_ledger_accounts, post_entries
from collection.ledger import tenant_ledger_account as ledger_account
from collection.models import JournalEntry, LedgerKind
from customers.models import Account, Customer, CustomerKind, PaymentMode
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids, insert_rows, update_rows
from tenancy.calendar import calendar_overrides, is_working_day_in
from tenancy.models import Site, Tenant
from tenancy.principal import Principal

CHUNK = 2000
REGISTERS = ("total", "tou_spike", "tou_peak", "tou_flat", "tou_valley")
ISSUE_FIELDS = ("pk", "tenant_id", "site_id", "account_id", "run_id", "period", "kind",
                "utility", "total", "posting")  # fmt: skip
Progress = Callable[[BillRun], None]


ACCOUNT_FIELDS = {
    "pk": "pk", "number": "number", "customer_id": "customer_id",
    "customer_name": "customer__name", "utility": "utility",
    "customer_class": "customer_class", "household_size": "household_size",
    "minimum_living_support": "minimum_living_support",
    "contracted_capacity_kva": "contracted_capacity_kva", "opened_on": "opened_on",
}  # fmt: skip
AccountRow = namedtuple("AccountRow", list(ACCOUNT_FIELDS))
PERIOD_FIELDS = (
    "account_id", "status", "hold_reason", *REGISTERS, "reactive_energy", "max_demand",
    "estimated", "opening", "closing", "starts_at", "ends_at",
)  # fmt: skip
PeriodRow = namedtuple("PeriodRow", PERIOD_FIELDS)


class BillRow(namedtuple("BillRow", ISSUE_FIELDS)):
    """What issuing needs of a bill, without building a model instance per bill."""

    __slots__ = ()

    @property
    def source_type(self) -> str:
        return "credit_note" if self.kind == BillKind.CREDIT_NOTE else "bill"


def account_rows(accounts: QuerySet[Account]) -> list[AccountRow]:
    return [AccountRow(*row) for row in accounts.values_list(*ACCOUNT_FIELDS.values())]


class FourEyesError(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="four_eyes")


# --- the run -------------------------------------------------------------------------------


def billable_accounts(site: Site, starts_on: date, ends_on: date) -> QuerySet[Account]:
    """Postpaid accounts open during the period, except common-area accounts (their
    consumption is shared on their members' bills)."""
    shared = CommonArea.unscoped.filter(tenant=site.tenant_id, site=site).values_list(
        "account_id", flat=True
    )
    return (
        Account.unscoped.filter(
            tenant=site.tenant_id,
            site=site,
            payment_mode=PaymentMode.POSTPAID,
            opened_on__lt=ends_on,
        )
        .exclude(closed_on__lt=starts_on)
        .exclude(pk__in=list(shared))
    )


def _same_actor(actor: Principal, kind: str, actor_id: int | None) -> bool:
    return actor.kind == kind and actor.id == actor_id


def open_bill_run(actor: Principal, site: Site, period: str, shards: int = 1) -> BillRun:
    """Create the run of a site and period, or return it while it is still pricing (to resume
    it); a run past pricing is refused (correct its bills with credit notes and re-bills)."""
    start, end = period_bounds(site, period)
    with transaction.atomic():
        existing = BillRun.unscoped.select_for_update().filter(site=site, period=period).first()
        if existing is not None:
            if existing.state != RunState.RUNNING:
                raise ValidationError(
                    _("The bill run of this site and period exists already (%(state)s).")
                    % {"state": existing.get_state_display()},
                    code="exists",
                )
            return existing
        if not 1 <= shards <= 16:
            raise ValidationError(_("A run has 1 to 16 workers."), code="shards")
        run = BillRun.unscoped.create(
            tenant=site.tenant,
            site=site,
            period=period,
            shards=shards,
            total=billable_accounts(site, start.date(), end.date()).count(),
            started_by_kind=actor.kind,
            started_by_id=actor.id,
            started_by_label=actor.label[:200],
        )
        BillRunShard.unscoped.bulk_create(
            BillRunShard(tenant=site.tenant, run=run, shard=number) for number in range(shards)
        )
        record_audit(
            actor,
            AuditAction.BILL_RUN_STARTED,
            run,
            after={"site": site.pk, "period": period, "accounts": run.total},
        )
    return run


def start_bill_run(actor: Principal, site: Site, period: str, shards: int = 1) -> BillRun:
    """Open the run and price it as tasks (one per shard) once the transaction commits."""
    from billing.tasks import price_bill_run_task

    with transaction.atomic():
        run = open_bill_run(actor, site, period, shards)
        for number in range(run.shards):
            transaction.on_commit(
                lambda number=number: price_bill_run_task.delay(
                    tenant_id=site.tenant_id, run_id=run.pk, shard=number
                )
            )
    return run


@dataclass
class _RunContext:
    tenant: Tenant
    site: Site
    period: str
    starts_on: date
    ends_on: date
    settings: BillingSettings
    assignments: list[Assignment]
    versions: list[Version]
    common_area_shares: dict[int, Decimal]


def _context(site_id: int, period: str) -> _RunContext:
    site = Site.unscoped.select_related("tenant").get(pk=site_id)
    start, end = period_bounds(site, period)
    tenant = site.tenant
    assignments = [
        Assignment(a.tariff_id, a.account_id, a.customer_class, a.effective_from, a.effective_to)
        for a in TariffAssignment.unscoped.filter(tenant=tenant, account__isnull=True)
    ]
    versions = [
        Version(v.pk, v.tariff_id, v.effective_from, Spec.parse(v.spec))
        for v in TariffVersion.unscoped.filter(tenant=tenant)
    ]
    return _RunContext(
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
    areas = CommonArea.unscoped.filter(tenant=site.tenant_id, site=site)
    members = defaultdict(list)
    for area_id, account_id, floor_area in CommonAreaMember.unscoped.filter(
        common_area__in=areas
    ).values_list("common_area_id", "account_id", "account__premise__floor_area"):
        members[area_id].append((account_id, floor_area))
    used = dict(
        PeriodConsumption.unscoped.filter(
            account__common_area__in=areas, period=period, status=PeriodStatus.COMPUTED
        ).values_list("account__common_area__id", "total")
    )
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


def _year_to_date(
    account_ids: Sequence[int], starts_on: date, period: str
) -> dict[int, dict[int, Decimal]]:
    """kWh counted towards annual tiers before this period, per account and calendar year,
    from the account's bills of earlier periods (credit notes count negative)."""
    years = {starts_on.year - 1, starts_on.year}
    earliest = f"{min(years)}-01"
    found: dict[int, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    rows = Bill.unscoped.filter(
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
        Bill.unscoped.filter(
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
    return {key: sum(values) / len(values) for key, values in totals.items()}


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
    return Usage(
        period.total,
        {name: getattr(period, name) for name in REGISTERS[1:]},
        period.reactive_energy,
        period.max_demand,
        common_area,
    )


def _price_account(
    ctx: _RunContext,
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
    ctx: _RunContext,
    drafts: Sequence[Draft],
    *,
    run: BillRun | None,
    kind: str = BillKind.BILL,
    corrects: dict[int, int] | None = None,
) -> list[int]:
    """Write draft bills, their lines and the queue items of flagged drafts; returns the bill
    ids. A bill's number is the year and its id: unique, given without a lock that concurrent
    runs would queue on, and kept by a voided draft."""
    bill_ids = allocate_ids(Bill, len(drafts))
    year = timezone.localdate(timezone=ctx.tenant.zone).year
    now = timezone.now()
    # Identity numbers are decrypted only for organisations (the fapiao's buyer tax id).
    organisations = dict(
        Customer.unscoped.filter(
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
    VerificationItem.unscoped.bulk_create(
        [
            VerificationItem(
                tenant=ctx.tenant,
                site=ctx.site,
                kind=ItemKind.BILL,
                bill_id=bill_id,
                rule=d.checks[0],
                rules=",".join(d.checks),
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
        net_tax = sums.setdefault(_revenue_component(line.component), [Decimal(0), Decimal(0)])
        net_tax[0] += line.amount - line.tax
        net_tax[1] += line.tax
    return {component: [str(net), str(tax)] for component, (net, tax) in sums.items()}


def _consumption(period: PeriodRow | PeriodConsumption, ctx: _RunContext) -> dict[str, Any]:
    values = {name: getattr(period, name) for name in REGISTERS}
    values["reactive_energy"] = period.reactive_energy
    values["max_demand"] = period.max_demand
    values["common_area"] = ctx.common_area_shares.get(period.account_id)
    values["estimated"] = period.estimated
    return {key: str(value) for key, value in values.items() if value is not None}


def _shard_of(queryset: QuerySet, field: str, shards: int, number: int) -> QuerySet:
    if shards == 1:
        return queryset
    return queryset.annotate(_shard=F(field) % shards).filter(_shard=number)


def price_bill_run(
    actor: Principal,
    run_id: int,
    *,
    shard: int | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> BillRun:
    """Price the run's accounts (one shard's, or all shards in turn) chunk by chunk from where
    each stopped; drafts are written, flagged ones queued. Safe to call again at any time: a
    finished shard or run is left as it is."""
    run = BillRun.unscoped.get(pk=run_id)
    if run.state != RunState.RUNNING:
        return run
    ctx = _context(run.site_id, run.period)
    accounts = billable_accounts(ctx.site, ctx.starts_on, ctx.ends_on)
    for number in [shard] if shard is not None else range(run.shards):
        while True:
            with transaction.atomic():
                part = BillRunShard.unscoped.select_for_update().get(run_id=run_id, shard=number)
                if part.priced:
                    break
                todo = _shard_of(accounts.filter(pk__gt=part.cursor), "pk", run.shards, number)
                batch = account_rows(todo.order_by("pk")[:chunk])
                if not batch:
                    part.priced = True
                    part.save(update_fields=["priced"])
                    break
                part.held_back = {**part.held_back, **_price_chunk(actor, ctx, run, batch)}
                part.cursor = batch[-1].pk
                part.save(update_fields=["cursor", "held_back"])
            if progress is not None:
                progress(BillRun.unscoped.get(pk=run_id))
    return _finish_pricing(actor, run_id)


def _finish_pricing(actor: Principal, run_id: int) -> BillRun:
    """When the last shard is priced, the run is drafted (and waits for approval)."""
    with transaction.atomic():
        run = BillRun.unscoped.select_for_update().get(pk=run_id)
        parts = list(BillRunShard.unscoped.filter(run=run).order_by("shard"))
        if run.state != RunState.RUNNING or not all(part.priced for part in parts):
            return run
        run.held_back = {number: why for part in parts for number, why in part.held_back.items()}
        run.state = RunState.DRAFTED
        run.finished_at = timezone.now()
        run.save(update_fields=["held_back", "state", "finished_at"])
        record_audit(
            actor,
            AuditAction.BILL_RUN_PRICED,
            run,
            after={"bills": run.bills, "flagged": run.flagged,
                   "held_back": len(run.held_back), "amount": str(run.amount)},
        )  # fmt: skip
    return run


def _price_chunk(actor: Principal, ctx: _RunContext, run: BillRun, batch: list[AccountRow]) -> None:
    ids = [account.pk for account in batch]
    periods = {
        row[0]: PeriodRow(*row)
        for row in PeriodConsumption.unscoped.filter(
            account_id__in=ids, period=ctx.period
        ).values_list(*PERIOD_FIELDS)
    }
    own: dict[int, list[Assignment]] = defaultdict(list)
    for a in TariffAssignment.unscoped.filter(account_id__in=ids):
        own[a.account_id].append(
            Assignment(a.tariff_id, a.account_id, "", a.effective_from, a.effective_to)
        )
    ytd = _year_to_date(ids, ctx.starts_on, ctx.period)
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
            priced = _price_account(ctx, account, period, own[account.pk], ytd[account.pk])
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
    BillRun.unscoped.filter(pk=run.pk).update(
        done=F("done") + len(batch),
        bills=F("bills") + len(drafts),
        flagged=F("flagged") + sum(1 for d in drafts if d.checks),
        amount=F("amount") + sum((d.priced.total for d in drafts), Decimal(0)),
    )
    return held


# --- approval and issue --------------------------------------------------------------------


def due_date(tenant: Tenant, issued_on: date, term_days: int, overrides: dict[date, str]) -> date:
    """Issue date + the tenant's payment term, moved to the next working day (tenant calendar)."""
    day = issued_on + timedelta(days=term_days)
    while not is_working_day_in(day, overrides):
        day += timedelta(days=1)
    return day


def approve_run(actor: Principal, run_id: int) -> BillRun:
    """Approve a drafted run: the approver must not be who started it (four eyes)."""
    with transaction.atomic():
        run = BillRun.unscoped.select_for_update().get(pk=run_id)
        if _same_actor(actor, run.started_by_kind, run.started_by_id):
            raise FourEyesError(_("Nobody approves a bill run they started."))
        if run.state == RunState.RUNNING:
            raise ValidationError(_("The run is still pricing."), code="not_ready")
        if run.state == RunState.DRAFTED:
            run.state = RunState.ISSUING
            run.approved_by_kind, run.approved_by_id = actor.kind, actor.id
            run.approved_by_label = actor.label[:200]
            run.approved_at = timezone.now()
            run.save(
                update_fields=[
                    "state", "approved_by_kind", "approved_by_id", "approved_by_label",
                    "approved_at",
                ]
            )  # fmt: skip
            record_audit(actor, AuditAction.BILL_RUN_APPROVED, run, after={"bills": run.bills})
    return run


def start_approval(actor: Principal, run: BillRun) -> BillRun:
    """Approve the run now and issue its bills as a task once the approval commits."""
    from billing.tasks import issue_bill_run_task

    with transaction.atomic():
        run = approve_run(actor, run.pk)
        if run.state == RunState.ISSUING:
            for number in range(run.shards):
                transaction.on_commit(
                    lambda number=number: issue_bill_run_task.delay(
                        tenant_id=run.tenant_id, run_id=run.pk, shard=number
                    )
                )
    run.refresh_from_db()
    return run


def approve_bill_run(
    actor: Principal, run_id: int, *, chunk: int = CHUNK, progress: Progress | None = None
) -> BillRun:
    """Approve a drafted run and issue its unflagged drafts in the foreground."""
    approve_run(actor, run_id)
    return issue_bill_run(actor, run_id, chunk=chunk, progress=progress)


def issue_bill_run(
    actor: Principal,
    run_id: int,
    *,
    shard: int | None = None,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> BillRun:
    """Issue an approved run's unflagged drafts (one shard's, or all in turn) chunk by chunk;
    flagged ones wait in the queue. Resumable: a chunk issues its bills and posts them in one
    transaction."""
    run = BillRun.unscoped.get(pk=run_id)
    if run.state != RunState.ISSUING:
        return run
    tenant = Tenant.objects.get(pk=run.tenant_id)
    settings = BillingSettings.for_tenant(tenant)
    for number in [shard] if shard is not None else range(run.shards):
        after = 0
        while True:
            with transaction.atomic():
                part = BillRunShard.unscoped.select_for_update().get(run_id=run_id, shard=number)
                if part.issued:
                    break
                drafts = Bill.unscoped.filter(
                    tenant_id=run.tenant_id, run=run, state=BillState.DRAFT, pk__gt=after
                )
                drafts = _shard_of(drafts, "account_id", run.shards, number).order_by("pk")
                rows = [BillRow(*row) for row in drafts.values_list(*ISSUE_FIELDS)[:chunk]]
                if not rows:
                    part.issued = True
                    part.save(update_fields=["issued"])
                    break
                after = rows[-1].pk
                flagged = set(
                    VerificationItem.unscoped.filter(
                        bill_id__in=[row.pk for row in rows]
                    ).values_list("bill_id", flat=True)
                )
                batch = [row for row in rows if row.pk not in flagged]
                if batch:
                    issued = issue_bills(actor, tenant, settings, batch)
                    BillRun.unscoped.filter(pk=run_id).update(issued=F("issued") + issued)
            if progress is not None and batch:
                progress(BillRun.unscoped.get(pk=run_id))
    return _finish_issuing(run_id)


def _finish_issuing(run_id: int) -> BillRun:
    with transaction.atomic():
        run = BillRun.unscoped.select_for_update().get(pk=run_id)
        if (
            run.state == RunState.ISSUING
            and not BillRunShard.unscoped.filter(run=run, issued=False).exists()
        ):
            run.state = RunState.ISSUED
            run.finished_at = timezone.now()
            run.save(update_fields=["state", "finished_at"])
    return run


def issue_bills(
    actor: Principal, tenant: Tenant, settings: BillingSettings, bills: Sequence[Bill | BillRow]
) -> int:
    """Set the bills' issue and due dates and post them to the ledger in one journal entry: a
    line on each customer's receivable naming its bill, revenue per utility and component and
    VAT payable summed over the batch (the customers' receivables are the subledger; revenue is
    posted in summary, as utilities post to the general ledger). One audit event."""
    if not bills:
        return 0
    issued_on = timezone.localdate(timezone=tenant.zone)
    overrides = calendar_overrides(
        tenant, issued_on, issued_on + timedelta(days=tenant.payment_term_days + 40)
    )
    due = due_date(tenant, issued_on, tenant.payment_term_days, overrides)
    entry = bills_entry(tenant, bills, issued_on)
    entry_id = allocate_ids(JournalEntry, 1)[0] if entry else None
    now, label = timezone.now(), actor.label[:200]
    update_rows(
        Bill,
        ["state", "issue_date", "due_date", "issued_at", "approved_by_label", "entry"],
        [
            (bill.pk, BillState.ISSUED, issued_on,
             due if bill.kind != BillKind.CREDIT_NOTE else None, now, label, entry_id)
            for bill in bills
        ],
    )  # fmt: skip
    if entry is not None:
        entry.entry_id = entry_id
        posted = post_entries(actor, [entry])[entry.source_id]
        if posted != entry_id:  # posted before (a retried batch): name the first posting
            Bill.unscoped.filter(pk__in=[bill.pk for bill in bills]).update(entry_id=posted)
    record_audit(
        actor,
        AuditAction.BILLS_ISSUED,
        object_type="billing.bill",
        object_ids=[bill.pk for bill in bills],
        after={"issue_date": issued_on, "due_date": due, "entry": entry_id},
        site_id=bills[0].site_id,
    )
    return len(bills)


def bills_entry(
    tenant: Tenant, bills: Sequence[Bill | BillRow], booked_on: date
) -> EntrySpec | None:
    """The journal entry of a batch of bills (none when nothing in it moves money). Its source
    names the batch's bills, so posting the same batch again returns the first posting."""
    receivables = customer_ledger_accounts(
        tenant, LedgerKind.RECEIVABLE, {bill.account_id for bill in bills}
    )
    revenue: dict[tuple[str, str], int] = {}
    vat: dict[str, int] = {}
    summed: dict[int, Decimal] = defaultdict(Decimal)
    for bill in bills:
        utility = bill.utility
        if utility not in vat:
            vat[utility] = ledger_account(tenant, LedgerKind.VAT_PAYABLE, utility=utility).pk
        for component, (net, tax) in bill.posting.items():
            key = (utility, component)
            if key not in revenue:
                revenue[key] = ledger_account(
                    tenant, LedgerKind.REVENUE, utility=utility, component=component
                ).pk
            summed[revenue[key]] -= Decimal(net)
            summed[vat[utility]] -= Decimal(tax)
    lines = [(receivables[bill.account_id], bill.total) for bill in bills if bill.total]
    references = [f"{bill.source_type}:{bill.pk}" for bill in bills if bill.total]
    for ledger_id, amount in sorted(summed.items()):
        if amount:
            lines.append((ledger_id, amount))
            references.append("")
    if not lines:
        return None
    ids = sorted(bill.pk for bill in bills)
    return EntrySpec(
        "bills",
        f"{ids[0]}-{ids[-1]}:{len(ids)}",
        lines,
        booked_on,
        memo=f"{len(ids)} bills, {bills[0].period}",
        site_id=bills[0].site_id,
        references=references,
    )


def _revenue_component(component: str) -> str:
    """Revenue accounts by charge: TOU and tier lines are all energy revenue."""
    if component.startswith("tou_") or component in ("tier_surcharge", "free_allowance"):
        return "energy"
    return component


# --- flagged drafts, voids, credit notes and re-bills --------------------------------------


def _open_bill_item(bill: Bill) -> VerificationItem:
    item = VerificationItem.unscoped.select_for_update().filter(bill=bill).first()
    if item is None or item.state == ItemState.RESOLVED:
        raise ValidationError(_("The bill is not waiting in the verification queue."))
    return item


def _check_not_creator(actor: Principal, bill: Bill) -> None:
    run = BillRun.unscoped.filter(pk=bill.run_id).first() if bill.run_id else None
    if _same_actor(actor, bill.created_by_kind, bill.created_by_id) or (
        run is not None and _same_actor(actor, run.started_by_kind, run.started_by_id)
    ):
        raise FourEyesError(_("Nobody approves a bill they produced."))


def approve_bill(actor: Principal, bill: Bill) -> Bill:
    """Approve and issue one flagged draft (or a re-bill) from the verification queue."""
    with transaction.atomic():
        bill = Bill.unscoped.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.DRAFT:
            raise ValidationError(_("Only a draft bill can be approved."))
        item = _open_bill_item(bill)
        _check_not_creator(actor, bill)
        tenant = Tenant.objects.get(pk=bill.tenant_id)
        issue_bills(actor, tenant, BillingSettings.for_tenant(tenant), [bill])
        _resolve(item, actor, "approved")
        if bill.run_id:
            BillRun.unscoped.filter(pk=bill.run_id).update(issued=F("issued") + 1)
    bill.refresh_from_db()
    return bill


def void_bill(actor: Principal, bill: Bill, reason: str) -> Bill:
    """Void a draft that should not be issued (the account is corrected and re-billed)."""
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    with transaction.atomic():
        bill = Bill.unscoped.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.DRAFT:
            raise ValidationError(_("Only a draft bill can be voided; credit an issued one."))
        Bill.unscoped.filter(pk=bill.pk).update(state=BillState.VOID, reason=reason[:300])
        item = VerificationItem.unscoped.filter(bill=bill, state=ItemState.OPEN).first()
        if item is not None:
            _resolve(item, actor, "voided")
        record_audit(actor, AuditAction.BILL_VOIDED, bill, after={"reason": reason})
    bill.refresh_from_db()
    return bill


def _resolve(item: VerificationItem, actor: Principal, resolution: str) -> None:
    item.state = ItemState.RESOLVED
    item.resolution = resolution
    item.resolved_at = timezone.now()
    item.resolved_by_label = actor.label[:200]
    item.save(update_fields=["state", "resolution", "resolved_at", "resolved_by_label"])


def credit_bill(actor: Principal, bill: Bill, reason: str) -> Bill:
    """Issue a credit note that reverses an issued bill line by line (the bill itself is never
    edited), posted to the ledger at once."""
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    with transaction.atomic():
        bill = Bill.unscoped.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.ISSUED or bill.kind == BillKind.CREDIT_NOTE:
            raise ValidationError(_("Only an issued bill can be credited."))
        if Bill.unscoped.filter(
            corrects=bill, kind=BillKind.CREDIT_NOTE, state=BillState.ISSUED
        ).exists():
            raise ValidationError(_("The bill has been credited already."), code="credited")
        tenant = Tenant.objects.get(pk=bill.tenant_id)
        [note_id] = allocate_ids(Bill, 1)
        note = Bill.unscoped.get(pk=bill.pk)
        note.pk = note_id
        note.kind = BillKind.CREDIT_NOTE
        note.state = BillState.DRAFT
        note.corrects_id = bill.pk
        note.run_id = None
        note.number = f"{timezone.localdate(timezone=tenant.zone):%Y}{note_id:010d}"
        note.entry_id = None
        note.total, note.tax_total = -bill.total, -bill.tax_total
        note.annual_quantities = {y: str(-Decimal(q)) for y, q in bill.annual_quantities.items()}
        note.posting = {
            component: [str(-Decimal(net)), str(-Decimal(tax))]
            for component, (net, tax) in bill.posting.items()
        }
        note.checks = ""
        note.reason = reason[:300]
        note.created_by_kind, note.created_by_id = actor.kind, actor.id
        note.created_by_label = actor.label[:200]
        note.created_at = timezone.now()
        note.save(force_insert=True)
        lines = list(BillLine.unscoped.filter(bill=bill).order_by("position"))
        line_ids = allocate_ids(BillLine, len(lines))
        for line, line_id in zip(lines, line_ids, strict=True):
            line.pk, line.bill_id = line_id, note_id
            line.quantity, line.amount, line.tax = -line.quantity, -line.amount, -line.tax
        BillLine.unscoped.bulk_create(lines)
        issue_bills(actor, tenant, BillingSettings.for_tenant(tenant), [note])
        record_audit(
            actor, AuditAction.BILL_CREDITED, bill, after={"credit_note": note_id, "reason": reason}
        )
    return Bill.unscoped.get(pk=note_id)


def rebill(actor: Principal, bill: Bill, reason: str) -> tuple[Bill, Bill]:
    """Correct an issued bill: credit it, then draft a re-bill from the account's current
    period consumption (recomputed after the verifier's corrections). The re-bill waits in the
    queue for a second person."""
    with transaction.atomic():
        note = credit_bill(actor, bill, reason)
        [account] = account_rows(Account.unscoped.filter(pk=bill.account_id))
        period = PeriodConsumption.unscoped.filter(
            account_id=account.pk, period=bill.period
        ).first()
        if period is None or period.status != PeriodStatus.COMPUTED:
            raise ValidationError(
                _("The account's period consumption is not computed: %(reason)s")
                % {"reason": period.hold_reason if period else _("none")}
            )
        ctx = _context(bill.site_id, bill.period)
        own = [
            Assignment(a.tariff_id, a.account_id, "", a.effective_from, a.effective_to)
            for a in TariffAssignment.unscoped.filter(account_id=account.pk)
        ]
        ytd = _year_to_date([account.pk], ctx.starts_on, ctx.period)[account.pk]
        try:
            priced = _price_account(ctx, account, period, own, ytd)
        except PricingError as exc:
            raise ValidationError(str(exc)) from exc
        [new_id] = draft_rows(
            actor,
            ctx,
            [Draft(account, period, priced, [BillCheck.REBILL.value])],
            run=None,
            kind=BillKind.REBILL,
            corrects={account.pk: bill.pk},
        )
        record_audit(
            actor, AuditAction.BILL_REBILLED, bill, after={"credit_note": note.pk, "rebill": new_id}
        )
    return note, Bill.unscoped.get(pk=new_id)
