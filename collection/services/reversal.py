"""Reversing a payment (冲正).

Who may: on the payment's own business day (the tenant's local date) a supervisor: a site
manager of the payment's site or a tenant administrator; on any day the finance role (HQ
finance). Never the person (or integration) who took the payment, and never an integration:
an approval is a person's. A payment is reversed once; a second attempt is a conflict.

What happens, in one transaction: the customer account's ledger rows are locked (as a payment
locks them), the payment's journal entry is posted again negated with the source
``("payment_reversal", id)``, each allocation gets its negated row (so the bills it paid are
open again, and their late fees count as if the payment never happened), and the reversal row
records who, when and why. The receipt is void from then on and keeps its number.

A prepaid top-up that has been consumed already leaves the wallet owing after its reversal;
that is the customer's debt, as it would be at the counter.
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.runs.services import FourEyesError, refuse_integration, same_actor
from collection.models import Channel, Payment, PaymentAllocation, PaymentReversal, Receipt
from collection.services.errors import PaymentConflict, field_error
from collection.services.payments import customer_ledgers
from collection.services.vouchers import reopen_redeemed_card
from ledger.models import JournalLine
from ledger.services import EntrySpec, lock_ledger_accounts, post_entries, records_text
from tenancy.audit import AuditAction, record_audit
from tenancy.principal import Principal
from tenancy.roles import Role

SUPERVISORS = (Role.SITE_MANAGER, Role.TENANT_ADMIN)
FINANCE = (Role.HQ_FINANCE,)


def check_may_reverse(actor: Principal, payment: Payment, today: date) -> None:
    """Segregation of duties and the business-day rule (see the module's overview)."""
    if same_actor(actor, payment.actor_kind, payment.actor_id):
        raise FourEyesError(_("Nobody reverses a payment they took."))
    refuse_integration(actor)
    if actor.site_scope(FINANCE).allows(payment.site_id):
        return
    if actor.site_scope(SUPERVISORS).allows(payment.site_id):
        if payment.paid_on == today:
            return
        raise PermissionDenied(
            _("A payment of an earlier business day is reversed by finance (HQ finance).")
        )
    raise PermissionDenied(
        _("A payment is reversed by a supervisor of its site on its business day, or by "
          "finance.")
    )  # fmt: skip


def reverse_payment(
    actor: Principal, payment: Payment, reason: str, *, now: datetime | None = None
) -> PaymentReversal:
    """Reverse the payment (see the module's overview)."""
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=tenant.zone)
    with transaction.atomic():
        payment = Payment.objects.select_related("account").get(pk=payment.pk)
        check_may_reverse(actor, payment, today)
        account_id = payment.account_id
        lock_ledger_accounts(tenant, customer_ledgers(tenant, payment.account))
        if PaymentReversal.objects.filter(payment=payment).exists():
            raise PaymentConflict(
                _("The payment is reversed already."), code="reversed", payment_id=payment.pk
            )
        lines = list(
            JournalLine.objects.filter(entry_id=payment.entry_id)
            .order_by("pk")
            .values_list("ledger_account_id", "amount", "reference")
        )
        receipt = Receipt.objects.filter(payment=payment).first()
        entry = EntrySpec(
            "payment_reversal",
            str(payment.pk),
            [(ledger_id, -amount) for ledger_id, amount, _reference in lines],
            today,
            memo=records_text(
                gettext_noop("Reversal of payment %(amount)s to account %(account)s: %(reason)s"),
                amount=payment.amount,
                account=payment.account.number,
                reason=reason,
            ),
            site_id=payment.site_id,
            references=[reference for _ledger, _amount, reference in lines],
        )
        entry_id = post_entries(actor, [entry])[entry.source_id]
        reversal = PaymentReversal.objects.create(
            tenant=tenant,
            payment=payment,
            site_id=payment.site_id,
            reason=reason[:300],
            reversed_on=today,
            reversed_at=now,
            entry_id=entry_id,
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:200],
        )
        PaymentAllocation.objects.bulk_create(
            PaymentAllocation(
                tenant=tenant, payment=payment, reversal=reversal, account_id=account_id,
                bill_id=part.bill_id, opening_id=part.opening_id, late_fee=-part.late_fee,
                principal=-part.principal,
            )
            for part in PaymentAllocation.objects.filter(payment=payment, reversal__isnull=True)
        )  # fmt: skip
        if payment.channel == Channel.VOUCHER:
            reopen_redeemed_card(actor, payment)
        record_audit(
            actor,
            AuditAction.PAYMENT_REVERSED,
            payment,
            after={"reason": reason, "amount": payment.amount, "account": payment.account.number,
                   "receipt": receipt.display_number if receipt else None,
                   "paid_on": payment.paid_on, "reversed_on": today},
        )  # fmt: skip
    return reversal
