"""Bill runs: price a site's postpaid accounts for a period, check the drafts, and issue them.

A run goes running → drafted → issuing → issued. Pricing works in chunks of accounts in id
order; each chunk is one transaction that writes its bills, their lines, the review rows
of flagged drafts, one audit event, the shard's cursor and the run's ``progressed_at``. A run
killed anywhere resumes after the last committed chunk, so a restarted run gives the same bills
as an uninterrupted one; a run with no progress for ``BARS_STALL_MINUTES`` counts as stalled,
and ``resume_bill_run`` queues its stage's tasks again without waiting for the broker.
Issuing works the same way: each chunk numbers its bills, sets their due dates and posts them
to the ledger (idempotent per bill) in one transaction.

Only computed period consumption is billed (verification's output); an account held back there,
or one that cannot be priced (no tariff, no agency price for the month), is listed on the run
with its reason. Nobody approves a run they started (four eyes, enforced here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, F, Func, JSONField, QuerySet, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.models import (
    Bill,
    BillingSettings,
    BillKind,
    BillRun,
    BillRunShard,
    BillState,
    CommonArea,
    RunState,
)
from billing.runs.drafting import (
    BillRow,
    RevenueCredits,
    account_rows,
    issue_rows,
    price_chunk,
    run_context,
)
from customers.models import Account, PaymentMode
from ledger.models import JournalEntry, LedgerKind
from ledger.services import EntrySpec, customer_ledger_accounts, post_entries, records_text
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids
from tenancy.calendar import calendar_overrides, is_working_day_in
from tenancy.models import ActorKind, Site, Tenant
from tenancy.principal import Principal
from tenancy.progress import stall_minutes
from verification.periods import period_bounds

CHUNK = 2000


Progress = Callable[[BillRun], None]


class FourEyesError(ValidationError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="four_eyes")


def billable_accounts(site: Site, starts_on: date, ends_on: date) -> QuerySet[Account]:
    """Postpaid accounts open during the period, except common-area accounts (their
    consumption is shared on their members' bills)."""
    shared = CommonArea.objects.filter(site=site).values_list("account_id", flat=True)
    return (
        Account.objects.filter(site=site, payment_mode=PaymentMode.POSTPAID, opened_on__lt=ends_on)
        .exclude(closed_on__lt=starts_on)
        .exclude(pk__in=list(shared))
    )


def same_actor(actor: Principal, kind: str, actor_id: int | None) -> bool:
    return actor.kind == kind and actor.id == actor_id


def refuse_integration(actor: Principal) -> None:
    """Approvals are a person's: an API client is an integration that anyone with the right
    to issue tokens could hold, so it would let one person be both pairs of eyes."""
    if actor.kind == ActorKind.API_CLIENT:
        raise FourEyesError(_("Approvals are made by staff, not by an API client."))


def billed_account_count(site: Site, period: str) -> int:
    """How many accounts of the site have an issued bill for the period (a bill, or the
    re-bill that replaced a credited one), as the dashboards and the periods page count.

    A credit note credits one issued bill of its own account and period, so an account is
    billed while it has more issued bills and re-bills than issued credit notes. That is
    counted per account from ``bill_site_period`` alone (account, state and kind are in it),
    in the index's order: on 100,000 accounts, asking which bills the notes correct read every
    bill row (270 ms); this reads the index (about 60 ms)."""
    per_account = (
        Bill.objects.filter(site=site, period=period, state=BillState.ISSUED)
        .order_by()
        .values("account_id")
        .annotate(live=Sum(Case(When(kind=BillKind.CREDIT_NOTE, then=-1), default=1)))
        .filter(live__gt=0)
    )
    return per_account.count()


def unbilled_accounts(site: Site, period: str) -> QuerySet[Account]:
    """The site's billable accounts of the period with no live bill for it (none, or only
    void or credited ones): what a supplementary run bills."""
    start, end = period_bounds(site, period)
    bills = Bill.objects.filter(site=site, period=period).exclude(state=BillState.VOID)
    credited = bills.filter(kind=BillKind.CREDIT_NOTE).values("corrects_id")
    live = bills.exclude(kind=BillKind.CREDIT_NOTE).exclude(pk__in=credited)
    return billable_accounts(site, start.date(), end.date()).exclude(
        pk__in=live.values("account_id")
    )


def open_bill_run(
    actor: Principal, site: Site, period: str, shards: int = 1, *, supplementary: bool = False
) -> BillRun:
    """Create the run of a site and period, or return it while it is still pricing (to resume
    it); a run past pricing is refused (correct its bills with credit notes and re-bills, bill
    what it held back with a supplementary run). A supplementary run follows the period's
    issued run, one at a time. A run with no account to bill is refused (``nothing_to_bill``):
    it would only wait for an approval that issues nothing."""
    period_bounds(site, period)  # refuses a malformed period
    if not 1 <= shards <= 16:
        raise ValidationError(_("A run has 1 to 16 workers."), code="shards")
    with transaction.atomic():
        runs = BillRun.objects.select_for_update().filter(site=site, period=period)
        main = runs.filter(supplementary=False).first()
        if supplementary:
            if main is None or main.state != RunState.ISSUED:
                raise ValidationError(
                    _("A supplementary run follows the issued bill run of the site and period."),
                    code="no_issued_run",
                )
            existing = runs.filter(supplementary=True).exclude(state=RunState.ISSUED).first()
        else:
            existing = main
        if existing is not None:
            if existing.state != RunState.RUNNING:
                raise ValidationError(
                    _("The bill run of this site and period exists already (%(state)s).")
                    % {"state": existing.get_state_display()},
                    code="exists",
                )
            return existing
        total = unbilled_accounts(site, period).count()
        if not total:
            raise ValidationError(
                _("No account of the site is left to bill for this period."),
                code="nothing_to_bill",
            )
        run = BillRun.objects.create(
            tenant=site.tenant,
            site=site,
            period=period,
            shards=shards,
            supplementary=supplementary,
            total=total,
            started_by_kind=actor.kind,
            started_by_id=actor.id,
            started_by_label=actor.label[:200],
        )
        BillRunShard.objects.bulk_create(
            BillRunShard(tenant=site.tenant, run=run, shard=number) for number in range(shards)
        )
        record_audit(
            actor,
            AuditAction.BILL_RUN_STARTED,
            run,
            after={"site": site.pk, "period": period, "accounts": run.total,
                   "supplementary": supplementary},
        )  # fmt: skip
    return run


def start_bill_run(
    actor: Principal, site: Site, period: str, shards: int = 1, *, supplementary: bool = False
) -> BillRun:
    """Open the run (or find it still pricing) and price it as tasks once the transaction
    commits."""
    with transaction.atomic():
        run = open_bill_run(actor, site, period, shards, supplementary=supplementary)
        _queue_stage(run)
    return run


def _queue_stage(run: BillRun) -> None:
    """Queue the tasks of the run's stage, one per shard, for when the transaction commits:
    pricing while it runs, issuing once approved. Each resumes its shard after its last
    committed chunk, and a second task of the same shard waits for the shard's lock and finds
    the chunk done, so queueing them again never bills an account twice."""
    from billing.tasks import issue_bill_run_task, price_bill_run_task

    task = price_bill_run_task if run.state == RunState.RUNNING else issue_bill_run_task
    for number in range(run.shards):
        transaction.on_commit(
            lambda number=number: task.delay(  # type: ignore[misc]
                tenant_id=run.tenant_id, run_id=run.pk, shard=number
            )
        )


def resume_bill_run(actor: Principal, run_id: int) -> BillRun:
    """Start a stalled run's stage again (its worker died and the broker has not delivered its
    task again yet): the same tasks as starting or approving it queue, and each resumes its
    shard after the last committed chunk, so the run ends with the same bills as one never
    interrupted. Refused for a run that is not pricing or issuing, or that is still making
    progress. Restarting counts as progress, so the page watches it closely again and does not
    offer a second restart at once."""
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        if run.state not in (RunState.RUNNING, RunState.ISSUING):
            raise ValidationError(
                _("Only a run that is pricing or issuing is started again (this one is %(state)s).")
                % {"state": run.get_state_display()},
                code="not_active",
            )
        if not run.stalled:
            raise ValidationError(
                _("The run made progress within the last %(minutes)s minutes; it is not stalled.")
                % {"minutes": stall_minutes()},
                code="not_stalled",
            )
        last_progress = run.progressed_at
        run.progressed_at = timezone.now()
        run.save(update_fields=["progressed_at"])
        record_audit(
            actor,
            AuditAction.BILL_RUN_RESUMED,
            run,
            before={"progressed_at": last_progress},
            after={"state": run.state, "done": run.done, "issued": run.issued},
        )
        _queue_stage(run)
    return run


class JSONMerge(Func):
    """The keys of a JSON object added to another's, in the database."""

    arg_joiner = " || "
    template = "(%(expressions)s)"
    output_field = JSONField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            function="json_patch",
            template="%(function)s(%(expressions)s)",
            arg_joiner=", ",
            **extra,
        )


def _shard_of(queryset: QuerySet[Any], field: str, shards: int, number: int) -> QuerySet[Any]:
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
    each stopped; drafts are written, flagged ones held for review. Safe to call again at any
    time: a finished shard or run is left as it is."""
    run = BillRun.objects.get(pk=run_id)
    if run.state != RunState.RUNNING:
        return run
    ctx = run_context(run.site_id, run.period)
    accounts = billable_accounts(ctx.site, ctx.starts_on, ctx.ends_on)
    share = -(-run.total // run.shards)  # this shard's accounts, rounded up
    for number in [shard] if shard is not None else range(run.shards):
        while True:
            # Numbers for the chunk, taken before its transaction (see billing.runs.numbers).
            ctx.numbers.reserve(min(chunk, share))
            with transaction.atomic():
                # The shard's held-back accounts are not read: they grow all run long.
                part = (
                    BillRunShard.objects.select_for_update()
                    .only("pk", "priced", "cursor")
                    .get(run_id=run_id, shard=number)
                )
                if part.priced:
                    break
                todo = _shard_of(accounts.filter(pk__gt=part.cursor), "pk", run.shards, number)
                batch = account_rows(todo.order_by("pk")[:chunk])
                if not batch:
                    part.priced = True
                    part.save(update_fields=["priced"])
                    break
                held, considered = price_chunk(actor, ctx, run, batch)
                share = max(share - considered, 1)
                # The chunk's holds are added in the database (jsonb ||), not read and written
                # back whole by every chunk.
                BillRunShard.objects.filter(pk=part.pk).update(
                    cursor=batch[-1].pk,
                    held_back=JSONMerge(F("held_back"), Value(held, JSONField())),
                )
            if progress is not None:
                progress(BillRun.objects.get(pk=run_id))
    return _finish_pricing(actor, run_id)


def _finish_pricing(actor: Principal, run_id: int) -> BillRun:
    """When the last shard is priced, the run is drafted (and waits for approval)."""
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        parts = list(BillRunShard.objects.filter(run=run).order_by("shard"))
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


def due_date(issued_on: date, term_days: int, overrides: dict[date, str]) -> date:
    """Issue date + the tenant's payment term, moved to the next working day (tenant calendar)."""
    day = issued_on + timedelta(days=term_days)
    while not is_working_day_in(day, overrides):
        day += timedelta(days=1)
    return day


def approve_run(actor: Principal, run_id: int) -> BillRun:
    """Approve a drafted run: the approver must not be who started it (four eyes)."""
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        refuse_integration(actor)
        if same_actor(actor, run.started_by_kind, run.started_by_id):
            raise FourEyesError(_("Nobody approves a bill run they started."))
        if run.state == RunState.RUNNING:
            raise ValidationError(_("The run is still pricing."), code="not_ready")
        if run.state == RunState.DRAFTED:
            run.state = RunState.ISSUING
            run.approved_by_kind, run.approved_by_id = actor.kind, actor.id
            run.approved_by_label = actor.label[:200]
            run.approved_at = run.progressed_at = timezone.now()
            run.save(
                update_fields=[
                    "state", "approved_by_kind", "approved_by_id", "approved_by_label",
                    "approved_at", "progressed_at",
                ]
            )  # fmt: skip
            record_audit(actor, AuditAction.BILL_RUN_APPROVED, run, after={"bills": run.bills})
    return run


def start_approval(actor: Principal, run: BillRun) -> BillRun:
    """Approve the run now and issue its bills as a task once the approval commits."""
    if run.state == RunState.ISSUED:  # a second approval is a mistake, not a retry
        raise ValidationError(_("The run is issued already."), code="issued")
    with transaction.atomic():
        run = approve_run(actor, run.pk)
        if run.state == RunState.ISSUING:
            _queue_stage(run)
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
    run = BillRun.objects.get(pk=run_id)
    if run.state != RunState.ISSUING:
        return run
    tenant = Tenant.objects.get(pk=run.tenant_id)
    settings = BillingSettings.for_tenant(tenant)
    for number in [shard] if shard is not None else range(run.shards):
        after = 0
        while True:
            with transaction.atomic():
                # Not its held-back accounts: as in pricing, they are not needed here.
                part = (
                    BillRunShard.objects.select_for_update()
                    .only("pk", "issued")
                    .get(run_id=run_id, shard=number)
                )
                if part.issued:
                    break
                drafts = Bill.objects.filter(run=run, state=BillState.DRAFT, pk__gt=after)
                in_shard = _shard_of(drafts, "account_id", run.shards, number).order_by("pk")
                rows = issue_rows(in_shard, chunk)
                if not rows:
                    part.issued = True
                    part.save(update_fields=["issued"])
                    break
                after = rows[-1].pk
                # A run's draft is flagged (a FlaggedBill waits in the queue) exactly when a
                # check fired on it, so the drafts' own checks say which wait.
                batch = [row for row in rows if not row.checks]
                issued = issue_bills(actor, tenant, settings, batch) if batch else 0
                BillRun.objects.filter(pk=run_id).update(
                    issued=F("issued") + issued, progressed_at=timezone.now()
                )
            if progress is not None and batch:
                progress(BillRun.objects.get(pk=run_id))
    return _finish_issuing(run_id)


def _finish_issuing(run_id: int) -> BillRun:
    with transaction.atomic():
        run = BillRun.objects.select_for_update().get(pk=run_id)
        if (
            run.state == RunState.ISSUING
            and not BillRunShard.objects.filter(run=run, issued=False).exists()
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
    due = due_date(issued_on, tenant.payment_term_days, overrides)
    entry = bills_entry(tenant, bills, issued_on)
    entry_id = allocate_ids(JournalEntry, 1)[0] if entry else None
    now, label = timezone.now(), actor.label[:200]
    # One statement: every bill of the batch gets the same dates and entry (a credit note has
    # no due date).
    Bill.objects.filter(pk__any=list(bill.pk for bill in bills)).update(
        state=BillState.ISSUED,
        issue_date=issued_on,
        due_date=Case(When(kind=BillKind.CREDIT_NOTE, then=None), default=Value(due)),
        issued_at=now,
        approved_by_label=label,
        entry_id=entry_id,
    )
    if entry is not None:
        entry.entry_id = entry_id
        posted = post_entries(actor, [entry])[entry.source_id]
        if posted != entry_id:  # posted before (a retried batch): name the first posting
            Bill.objects.filter(pk__any=list(bill.pk for bill in bills)).update(entry_id=posted)
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
    credits = RevenueCredits(tenant)
    for bill in bills:
        credits.add(bill.utility, bill.posting)
    lines = [(receivables[bill.account_id], bill.total) for bill in bills if bill.total]
    references = [f"{bill.source_type}:{bill.pk}" for bill in bills if bill.total]
    for line in credits.lines():
        lines.append(line)
        references.append("")
    if not lines:
        return None
    ids = sorted(bill.pk for bill in bills)
    return EntrySpec(
        "bills",
        f"{ids[0]}-{ids[-1]}:{len(ids)}",
        lines,
        booked_on,
        memo=records_text(
            gettext_noop("%(count)s bills of %(period)s"), count=len(ids), period=bills[0].period
        ),
        site_id=bills[0].site_id,
        references=references,
    )
