"""Reviewing flagged draft bills: a draft that failed an automatic check (zero, negative, far
from the account's history) or a re-bill waits as a ``FlaggedBill`` until a verifier approves
it (it is issued and posted) or voids it. Four eyes: nobody approves a bill they produced or
whose run they started."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils.translation import gettext as _

from billing.models import (
    Bill,
    BillingSettings,
    BillKind,
    BillRun,
    BillState,
    FlaggedBill,
    ReviewState,
    RunState,
)
from billing.runs.services import FourEyesError, issue_bills, refuse_integration, same_actor
from tenancy.audit import AuditAction, record_audit
from tenancy.batches import all_or_none
from tenancy.context import get_current_tenant
from tenancy.principal import Principal


def _open_flag(bill: Bill) -> FlaggedBill:
    flag = FlaggedBill.objects.select_for_update().filter(bill=bill).first()
    if flag is None or flag.state == ReviewState.RESOLVED:
        raise ValidationError(_("The bill is not waiting for review."), code="not_flagged")
    return flag


def _check_approvable(actor: Principal, bill: Bill) -> None:
    """Four eyes (not who produced the bill or started its run), and a bill of a run waits
    for the run's approval: the run's second person sees every bill before any is issued."""
    refuse_integration(actor)
    run = BillRun.objects.filter(pk=bill.run_id).first() if bill.run_id else None
    if same_actor(actor, bill.created_by_kind, bill.created_by_id) or (
        run is not None and same_actor(actor, run.started_by_kind, run.started_by_id)
    ):
        raise FourEyesError(_("Nobody approves a bill they produced."))
    if run is not None and run.state in (RunState.RUNNING, RunState.DRAFTED):
        raise ValidationError(
            _("Approve the bill run first; its flagged bills are approved after it."),
            code="run_not_approved",
        )


def approve_bill(actor: Principal, bill: Bill) -> Bill:
    """Approve and issue one flagged draft, credit note or re-bill. A re-bill waits for the
    credit note of the bill it replaces, so the customer never owes both."""
    with transaction.atomic():
        bill = Bill.objects.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.DRAFT:
            raise ValidationError(_("Only a draft bill can be approved."))
        flag = _open_flag(bill)
        _check_approvable(actor, bill)
        if bill.cause_id is not None:
            cause = Bill.objects.get(pk=bill.cause_id)
            if cause.state != BillState.ISSUED:
                raise ValidationError(
                    _("Approve bill %(number)s first: this re-pricing follows it.")
                    % {"number": cause.number},
                    code="cause_pending",
                )
        if (
            bill.kind == BillKind.REBILL
            and not Bill.objects.filter(
                corrects_id=bill.corrects_id, kind=BillKind.CREDIT_NOTE, state=BillState.ISSUED
            ).exists()
        ):
            raise ValidationError(
                _("Approve the credit note of the replaced bill first."), code="credit_pending"
            )
        tenant = get_current_tenant()
        issue_bills(actor, tenant, BillingSettings.for_tenant(tenant), [bill])
        flag.resolve(actor, "approved")
        if bill.run_id:
            BillRun.objects.filter(pk=bill.run_id).update(issued=F("issued") + 1)
    bill.refresh_from_db()
    return bill


def approve_flagged_bills(actor: Principal, flags: Sequence[FlaggedBill]) -> int:
    """Approve many flagged bills at once, in id order; all or none: any refusal (a bill the
    actor produced, one already resolved) refuses the batch, naming each flagged bill at fault
    and why."""
    ordered = sorted(flags, key=lambda flag: flag.pk)
    all_or_none(
        ordered, lambda flag: approve_bill(actor, flag.bill), lambda flag: flag.bill.number, "ids"
    )
    return len(flags)


def void_bill(actor: Principal, bill: Bill, reason: str) -> Bill:
    """Void a draft that should not be issued (the account is corrected and re-billed). A
    correction is voided whole: its credit note and re-bill while in draft, and the
    re-pricing of later bills it caused; a re-pricing is voided only with its correction."""
    if not reason.strip():
        raise ValidationError({"reason": _("A reason is required.")})
    with transaction.atomic():
        bill = Bill.objects.select_for_update().get(pk=bill.pk)
        if bill.state != BillState.DRAFT:
            raise ValidationError(_("Only a draft bill can be voided; credit an issued one."))
        if bill.cause_id is not None:
            cause = Bill.objects.get(pk=bill.cause_id)
            raise ValidationError(
                _("This re-pricing follows the correction of bill %(number)s; void that "
                  "correction instead.") % {"number": cause.number},
                code="caused",
            )  # fmt: skip
        group = [bill.pk]
        group += list(
            Bill.objects.filter(cause=bill, state=BillState.DRAFT).values_list("pk", flat=True)
        )
        if bill.kind in (BillKind.CREDIT_NOTE, BillKind.REBILL):
            partners = Bill.objects.filter(
                corrects_id=bill.corrects_id,
                kind__in=[BillKind.CREDIT_NOTE, BillKind.REBILL],
                state=BillState.DRAFT,
            )
            group += list(partners.exclude(pk=bill.pk).values_list("pk", flat=True))
            notes = Bill.objects.filter(corrects_id=bill.corrects_id, kind=BillKind.CREDIT_NOTE)
            caused = Bill.objects.filter(cause__in=notes, state=BillState.DRAFT)
            group += list(caused.values_list("pk", flat=True))
        voided = Bill.objects.filter(pk__in=group, state=BillState.DRAFT)
        by_run = (
            voided.filter(run__isnull=False)
            .values("run_id")
            .annotate(count=Count("pk"), amount=Sum("total"))
        )
        for row in by_run:
            BillRun.objects.filter(pk=row["run_id"]).update(
                voided=F("voided") + row["count"], amount=F("amount") - row["amount"]
            )
        voided.update(state=BillState.VOID, reason=reason[:300])
        for flag in FlaggedBill.objects.filter(bill_id__in=group, state=ReviewState.OPEN):
            flag.resolve(actor, "voided")
        record_audit(
            actor, AuditAction.BILL_VOIDED, bill, after={"reason": reason, "bills": sorted(group)}
        )
    bill.refresh_from_db()
    return bill
