"""Correcting an issued bill: a credit note that reverses it line by line, and a re-bill from
the corrected consumption (an issued bill is never edited). The re-bill is flagged for a
second person to approve (``billing.bills.review``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    Bill,
    BillCheck,
    BillKind,
    BillLine,
    BillState,
    FlaggedBill,
)
from billing.runs.drafting import (
    AccountRow,
    Draft,
    PeriodRow,
    RunContext,
    account_rows,
    draft_rows,
    price_account,
    run_context,
)
from billing.runs.numbers import BillNumbers, payment_reference
from billing.runs.order import account_bills
from billing.tariffs.pricing import Priced
from billing.tariffs.services import account_assignments
from billing.tariffs.spec import (
    PricingError,
)
from customers.models import Account
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids
from tenancy.models import Tenant
from tenancy.principal import Principal
from verification.models import PeriodConsumption, PeriodStatus


def credit_bill(
    actor: Principal, bill: Bill, reason: str, *, cause: Bill | None = None, reprice: bool = True
) -> Bill:
    """Draft a credit note that reverses an issued bill line by line (the bill itself is never
    edited). It is flagged for review: a second person approves it, which issues it and posts
    it to the ledger (``billing.bills.review``); until then the bill stands. Crediting a bill
    changes its tier year's consumption, so the later bills of that year are re-priced."""
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    with transaction.atomic():
        bill = Bill.objects.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.ISSUED or bill.kind == BillKind.CREDIT_NOTE:
            raise ValidationError(_("Only an issued bill can be credited."))
        notes = Bill.objects.filter(corrects=bill, kind=BillKind.CREDIT_NOTE)
        if notes.filter(state=BillState.ISSUED).exists():
            raise ValidationError(_("The bill has been credited already."), code="credited")
        if notes.filter(state=BillState.DRAFT).exists():
            raise ValidationError(
                _("A credit note of this bill awaits approval."), code="credit_pending"
            )
        tenant = Tenant.objects.get(pk=bill.tenant_id)
        [note_id] = allocate_ids(Bill, 1)
        note = Bill.objects.get(pk=bill.pk)
        note.pk = note_id
        note.kind = BillKind.CREDIT_NOTE
        note.state = BillState.DRAFT
        note.corrects_id = bill.pk
        note.cause_id = cause.pk if cause else None
        note.run_id = None
        note.supplementary = False
        [note.number] = BillNumbers(tenant).take(1)
        note.payment_reference = payment_reference(note.number, BillKind.CREDIT_NOTE)
        note.entry_id = None
        note.issue_date = note.due_date = note.issued_at = None
        note.approved_by_label = ""
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
        lines = list(BillLine.objects.filter(bill=bill).order_by("position"))
        line_ids = allocate_ids(BillLine, len(lines))
        for line, line_id in zip(lines, line_ids, strict=True):
            line.pk, line.bill_id = line_id, note_id
            line.quantity, line.amount, line.tax = -line.quantity, -line.amount, -line.tax
        BillLine.objects.bulk_create(lines)
        check = BillCheck.CREDIT_NOTE.value
        FlaggedBill.objects.create(
            tenant=tenant, site_id=bill.site_id, bill=note, first_check=check, checks=check
        )
        record_audit(
            actor, AuditAction.BILL_CREDITED, bill, after={"credit_note": note_id, "reason": reason}
        )
        if reprice and cause is None and bill.annual_quantities:
            reprice_later(actor, bill, note, {})
    return Bill.objects.get(pk=note_id)


def rebill(actor: Principal, bill: Bill, reason: str) -> tuple[Bill, Bill]:
    """Correct an issued bill: draft its credit note, then a re-bill from the account's current
    period consumption (recomputed after the verifier's corrections). Both wait for a second
    person: the credit note first, then the re-bill. Where the re-bill changes the tier year's
    consumption, the later bills of that year are re-priced too."""
    with transaction.atomic():
        note = credit_bill(actor, bill, reason, reprice=False)
        [account] = account_rows(Account.objects.filter(pk=bill.account_id))
        period = PeriodConsumption.objects.filter(account_id=account.pk, period=bill.period).first()
        if period is None or period.status != PeriodStatus.COMPUTED:
            raise ValidationError(
                _("The account's period consumption is not computed: %(reason)s")
                % {"reason": period.hold_reason if period else _("none")}
            )
        ctx = run_context(bill.site_id, bill.period)
        priced = _price(ctx, account, period)
        [new_id] = draft_rows(
            actor,
            [Draft(account, period, priced, [BillCheck.REBILL.value], ctx, reason=reason)],
            run=None,
            kind=BillKind.REBILL,
            corrects={account.pk: bill.pk},
        )
        record_audit(
            actor, AuditAction.BILL_REBILLED, bill, after={"credit_note": note.pk, "rebill": new_id}
        )
        new = Bill.objects.get(pk=new_id)
        if new.annual_quantities != bill.annual_quantities:
            reprice_later(actor, bill, note, {bill.period: ctx})
    return note, new


def _price(ctx: RunContext, account: AccountRow, period: PeriodRow | PeriodConsumption) -> Priced:
    """Price an account's period with the year's consumption as it stands now (corrections
    awaiting approval counted as approved)."""
    own = account_assignments([account.pk]).get(account.pk, [])
    ytd = account_bills([account.pk], ctx.period)[account.pk].year_to_date(ctx.period)
    try:
        return price_account(ctx, account, period, own, ytd)
    except PricingError as exc:
        raise ValidationError(str(exc)) from exc


def _as_period(bill: Bill, zone: ZoneInfo) -> PeriodRow:
    """A bill's own priced determinants, to price them again."""
    used = bill.consumption

    def number(name: str) -> Decimal | None:
        return Decimal(used[name]) if used.get(name) is not None else None

    return PeriodRow(
        bill.account_id, PeriodStatus.COMPUTED, "", number("total"), number("tou_spike"),
        number("tou_peak"), number("tou_flat"), number("tou_valley"),
        number("reactive_energy"), number("max_demand"), bool(used.get("estimated")),
        bill.opening, bill.closing, datetime.combine(bill.starts_on, time(), zone),
        datetime.combine(bill.ends_on + timedelta(days=1), time(), zone), bill.period,
    )  # fmt: skip


def reprice_later(
    actor: Principal, corrected: Bill, note: Bill, contexts: dict[str, RunContext]
) -> list[Bill]:
    """Re-price the account's later issued bills of the corrected bill's tier years, in period
    order, from their own priced determinants and the year's consumption as the correction
    leaves it: each whose amount changes gets a credit note and a re-bill for a second person
    (``cause`` names the correction's credit note). A later bill of the year still in draft is
    refused: approve or void it first."""
    years = set(corrected.annual_quantities)
    later = [
        bill
        for bill in Bill.objects.filter(
            account_id=corrected.account_id, period__gt=corrected.period
        )
        .exclude(kind=BillKind.CREDIT_NOTE)
        .exclude(state=BillState.VOID)
        .order_by("period", "pk")
        if years & set(bill.annual_quantities)
    ]
    credited = set(
        Bill.objects.filter(corrects__in=later, kind=BillKind.CREDIT_NOTE)
        .exclude(state=BillState.VOID)
        .values_list("corrects_id", flat=True)
    )
    live = [bill for bill in later if bill.pk not in credited]
    for bill in live:
        if bill.state == BillState.DRAFT:
            raise ValidationError(
                _("The bill of the later period %(period)s awaits approval; approve or void it "
                  "before correcting an earlier period of its tier year.")
                % {"period": bill.period},
                code="later_draft",
            )  # fmt: skip
    [account] = account_rows(Account.objects.filter(pk=corrected.account_id))
    zone = Tenant.objects.get(pk=corrected.tenant_id).zone
    reason = _("Re-priced: the tier year's consumption changed with the correction of bill "
               "%(number)s") % {"number": corrected.number}  # fmt: skip
    made = []
    for bill in live:
        if bill.period not in contexts:
            contexts[bill.period] = run_context(bill.site_id, bill.period)
        shares = {account.pk: Decimal(bill.consumption.get("common_area") or 0)}
        ctx = replace(contexts[bill.period], common_area_shares=shares)
        period = _as_period(bill, zone)
        priced = _price(ctx, account, period)
        if priced.total == bill.total:
            continue
        credit_bill(actor, bill, reason, cause=note)
        [new_id] = draft_rows(
            actor,
            [Draft(account, period, priced, [BillCheck.REBILL.value], ctx, reason, note.pk)],
            run=None,
            kind=BillKind.REBILL,
            corrects={account.pk: bill.pk},
        )
        made.append(Bill.objects.get(pk=new_id))
    if made:
        record_audit(
            actor,
            AuditAction.BILLS_REPRICED,
            corrected,
            after={"credit_note": note.pk, "rebills": [bill.pk for bill in made]},
        )
    return made
