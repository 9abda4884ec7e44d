"""Correcting an issued bill: a credit note that reverses it line by line, and a re-bill from
the corrected consumption (an issued bill is never edited). The re-bill is flagged for a
second person to approve (``billing.bills.review``)."""

from __future__ import annotations

from decimal import Decimal

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
    TariffAssignment,
)
from billing.runs.drafting import (
    Draft,
    account_rows,
    draft_rows,
    price_account,
    run_context,
    year_to_date,
)
from billing.tariffs.pricing import (
    Assignment,
)
from billing.tariffs.spec import (
    PricingError,
)
from customers.models import Account
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids
from tenancy.models import Tenant
from tenancy.principal import Principal
from verification.models import PeriodConsumption, PeriodStatus


def credit_bill(actor: Principal, bill: Bill, reason: str) -> Bill:
    """Draft a credit note that reverses an issued bill line by line (the bill itself is never
    edited). It is flagged for review: a second person approves it, which issues it and posts
    it to the ledger (``billing.bills.review``); until then the bill stands."""
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
    return Bill.objects.get(pk=note_id)


def rebill(actor: Principal, bill: Bill, reason: str) -> tuple[Bill, Bill]:
    """Correct an issued bill: draft its credit note, then a re-bill from the account's current
    period consumption (recomputed after the verifier's corrections). Both wait for a second
    person: the credit note first, then the re-bill."""
    with transaction.atomic():
        note = credit_bill(actor, bill, reason)
        [account] = account_rows(Account.objects.filter(pk=bill.account_id))
        period = PeriodConsumption.objects.filter(account_id=account.pk, period=bill.period).first()
        if period is None or period.status != PeriodStatus.COMPUTED:
            raise ValidationError(
                _("The account's period consumption is not computed: %(reason)s")
                % {"reason": period.hold_reason if period else _("none")}
            )
        ctx = run_context(bill.site_id, bill.period)
        own = [
            Assignment(a.tariff_id, a.account_id, "", a.effective_from, a.effective_to)
            for a in TariffAssignment.objects.filter(account_id=account.pk)
        ]
        ytd = year_to_date([account.pk], ctx.starts_on, ctx.period)[account.pk]
        try:
            priced = price_account(ctx, account, period, own, ytd)
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
    return note, Bill.objects.get(pk=new_id)
