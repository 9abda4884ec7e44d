"""Refunds (退款): of credit on account and of deposit money, with four eyes.

**What may be refunded.** Credit on account is the credit in the wallet of a postpaid account,
less what its open bills take first (credit pays bills before it is paid out); a prepaid
account's balance is refunded only when the account is closed (``closing=True``). Deposit money
is what the account's deposit ledger account holds. Refunds requested and not yet decided count
against both, so two requests can never promise the same yuan twice: every request and approval
locks the account's receivable, wallet and deposit rows (in key order, through the ledger's
helper) before it reads them.

**Steps.** Requested by staff with a reason and the payout channel (cash at the counter; a
bank transfer to the customer's bank account; back to the online provider that took the
money). Approved (or rejected, with a reason) by a second person: a supervisor (a site manager
of the account's site, or a tenant administrator) or the finance role (HQ finance), never the
person who requested it, never an integration. Approval posts ``("refund_approval", id)``:
Dr wallet and Dr deposit by the parts refunded, Cr refunds payable. Payment posts
``("refund_payment", id)``: Dr refunds payable, Cr the paying cashier's cash on hand, the
refunds' bank clearing account, or the provider's clearing account. Each step is audited; a
step taken twice is refused (409), and its posting is idempotent on its source.

**The payee's bank account** (a transfer's) is personal data: masked on every page, in the API
and in the audit trail. Whoever pays the approved transfer asks for it in full
(``reveal_payee_bank_account``), and each time is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.runs.services import FourEyesError, refuse_integration, same_actor
from collection.models import Channel, Refund, RefundChannel, RefundState
from collection.services.channels import receiving_account
from collection.services.counter_checks import counter_checks
from collection.services.deposits import deposit_required
from collection.services.errors import PaymentConflict, field_error
from collection.services.payments import MAX_PAYMENT
from customers.identifiers import normalise_bank_account
from customers.models import Account, PaymentMode
from ledger.models import LedgerAccount, LedgerKind
from ledger.services import (
    EntrySpec,
    customer_ledger_accounts,
    lock_ledger_accounts,
    post_entries,
    records_text,
    tenant_ledger_account,
)
from tenancy.audit import AuditAction, record_audit
from tenancy.models import ActorKind, Tenant
from tenancy.money import ZERO, Money
from tenancy.permissions import MATRIX
from tenancy.principal import Principal
from tenancy.roles import Role

SUPERVISORS = (Role.SITE_MANAGER, Role.TENANT_ADMIN)
FINANCE = (Role.HQ_FINANCE,)
BANK_TRANSFER_HOLDER = "refunds:bank_transfer"


@dataclass(frozen=True)
class Refundable:
    """What an account could have refunded now, and what is promised already."""

    wallet_credit: Decimal  # the wallet's credit (a prepaid balance, credit on account)
    bills_owed: Decimal  # the receivable's debit: what open bills take from credit first
    deposit_held: Decimal
    pending_wallet: Decimal  # in refunds requested, not yet decided
    pending_deposit: Decimal
    closing: bool = False
    prepaid: bool = False
    deposit_required: Decimal = ZERO  # by the tenant's policy, while the account is active

    @property
    def credit(self) -> Decimal:
        if self.prepaid and not self.closing:
            return ZERO
        return max(self.wallet_credit - self.bills_owed - self.pending_wallet, ZERO)

    @property
    def deposit(self) -> Decimal:
        """While the account is active only what is held above the policy's deposit comes
        back (money taken in excess); closing it returns the whole deposit."""
        kept = ZERO if self.closing else self.deposit_required
        return max(self.deposit_held - kept - self.pending_deposit, ZERO)


def customer_ledger_ids(tenant: Tenant, account: Account) -> dict[str, int]:
    """The account's receivable, wallet and deposit ledger accounts (created when missing)."""
    return {
        kind: customer_ledger_accounts(tenant, kind, [account.pk])[account.pk]
        for kind in (LedgerKind.RECEIVABLE, LedgerKind.WALLET, LedgerKind.DEPOSIT)
    }


def lock_account_ledgers(tenant: Tenant, account: Account) -> dict[str, Decimal]:
    """Lock the account's three ledger rows (key order) and return their balances by kind."""
    ids = customer_ledger_ids(tenant, account)
    balances = lock_ledger_accounts(tenant, ids.values())
    return {kind: balances[ledger_id] for kind, ledger_id in ids.items()}


def refundable(
    account: Account, balances: dict[str, Decimal], *, closing: bool = False
) -> Refundable:
    """What may be refunded given the balances (read under the lock when it matters)."""
    pending_wallet, pending_deposit = ZERO, ZERO
    for wallet_part, deposit_part in Refund.objects.filter(
        account=account, state=RefundState.REQUESTED
    ).values_list("from_wallet", "from_deposit"):
        pending_wallet += wallet_part
        pending_deposit += deposit_part
    return Refundable(
        wallet_credit=max(-balances[LedgerKind.WALLET], ZERO),
        bills_owed=max(balances[LedgerKind.RECEIVABLE], ZERO),
        deposit_held=max(-balances[LedgerKind.DEPOSIT], ZERO),
        pending_wallet=pending_wallet,
        pending_deposit=pending_deposit,
        closing=closing,
        prepaid=account.payment_mode == PaymentMode.PREPAID,
        deposit_required=ZERO if closing else deposit_required(account),
    )


def account_refundable(account: Account) -> Refundable:
    """What may be refunded now (read only, for pages and previews)."""
    balances: dict[str, Decimal] = {
        LedgerKind.RECEIVABLE: ZERO, LedgerKind.WALLET: ZERO, LedgerKind.DEPOSIT: ZERO,
    }  # fmt: skip
    rows = LedgerAccount.objects.filter(account=account, kind__in=list(balances))
    balances.update((str(kind), balance) for kind, balance in rows.values_list("kind", "balance"))
    return refundable(account, balances)


def _money(field: str, value: Decimal) -> Decimal:
    try:
        amount = Money(value)
    except (TypeError, ValueError) as exc:
        raise field_error(field, str(exc)) from exc
    if not ZERO <= amount <= MAX_PAYMENT:
        raise field_error(
            field, _("An amount is from 0.00 to %(max)s yuan.") % {"max": MAX_PAYMENT}
        )
    return amount


def check_payout(channel: str, payee_bank_account: str, provider: str) -> str:
    """Refuse a payout that cannot be made; answer the payee's bank account as stored (its
    digits only, see ``normalise_bank_account``), or "" when none was given."""
    if channel not in RefundChannel.values:
        raise field_error("channel", _("Choose how the refund is paid."))
    if channel == RefundChannel.BANK_TRANSFER and not payee_bank_account.strip():
        raise field_error(
            "payee_bank_account", _("A bank transfer needs the customer's bank account."),
            "required",
        )  # fmt: skip
    if channel == RefundChannel.ORIGINAL and not provider:
        raise field_error("provider", _("Name the online provider to refund through."), "required")
    if not payee_bank_account.strip():
        return ""
    try:
        return normalise_bank_account(payee_bank_account)
    except ValidationError as exc:
        raise field_error("payee_bank_account", exc.messages[0], "invalid_bank_account") from exc


def request_refund(
    actor: Principal,
    *,
    account: Account,
    from_wallet: Decimal = ZERO,
    from_deposit: Decimal = ZERO,
    channel: str,
    reason: str,
    payee_bank_account: str = "",
    payee_bank: str = "",
    provider: str = "",
    closing: bool = False,
    now: datetime | None = None,
) -> Refund:
    """Request a refund (see the module's overview); refused beyond what may be refunded."""
    tenant = actor.tenant
    assert tenant is not None
    if actor.kind != ActorKind.STAFF and actor.kind != ActorKind.SYSTEM:
        raise PermissionDenied(_("A refund is requested by staff."))
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    from_wallet = _money("from_wallet", from_wallet)
    from_deposit = _money("from_deposit", from_deposit)
    if from_wallet + from_deposit <= 0:
        raise field_error("amount", _("A refund is of at least 0.01 yuan."), "out_of_range")
    payee_bank_account = check_payout(channel, payee_bank_account, provider)
    with transaction.atomic():
        balances = lock_account_ledgers(tenant, account)
        can = refundable(account, balances, closing=closing)
        if from_wallet > can.credit:
            raise field_error(
                "from_wallet",
                _("At most %(amount)s yuan of credit can be refunded.") % {"amount": can.credit},
                "over_balance",
            )
        if from_deposit > can.deposit:
            message = _("At most %(amount)s yuan of deposit can be refunded.") % {
                "amount": can.deposit
            }
            if can.deposit_required:
                message += _(
                    " The account keeps the %(required)s yuan its deposit policy asks for while "
                    "it is open; closing it refunds the whole deposit."
                ) % {"required": can.deposit_required}
            raise field_error("from_deposit", message, "over_balance")
        refund = Refund.objects.create(
            tenant=tenant,
            site_id=account.site_id,
            account=account,
            from_wallet=from_wallet,
            from_deposit=from_deposit,
            amount=from_wallet + from_deposit,
            channel=channel,
            payee_bank_account=payee_bank_account,
            payee_bank=payee_bank.strip()[:100],
            provider=provider,
            reason=reason[:300],
            requested_at=now or timezone.now(),
            requested_by_kind=actor.kind,
            requested_by_id=actor.id,
            requested_by_label=actor.label[:200],
        )
        record_audit(
            actor,
            AuditAction.REFUND_REQUESTED,
            refund,
            after={"account": account.number, "from_wallet": from_wallet,
                   "from_deposit": from_deposit, "channel": channel, "reason": reason,
                   "payee_bank_account": refund.payee_bank_account_masked,
                   "payee_bank": refund.payee_bank},
        )  # fmt: skip
    return refund


def check_may_decide(actor: Principal, refund: Refund) -> None:
    """Four eyes: a supervisor of the account's site or finance, never the requester."""
    if same_actor(actor, refund.requested_by_kind, refund.requested_by_id):
        raise FourEyesError(_("Nobody approves or rejects a refund they requested."))
    refuse_integration(actor)
    if actor.site_scope(FINANCE).allows(refund.site_id):
        return
    if actor.site_scope(SUPERVISORS).allows(refund.site_id):
        return
    raise PermissionDenied(
        _("A refund is approved by a supervisor of the account's site or by finance.")
    )


def _locked(refund: Refund, state: str) -> Refund:
    refund = Refund.objects.select_for_update().select_related("account").get(pk=refund.pk)
    if refund.state != state:
        raise PaymentConflict(
            _("The refund is %(state)s already.") % {"state": RefundState(refund.state).label},
            code="refund_state",
        )
    return refund


def approve_refund(actor: Principal, refund: Refund, *, now: datetime | None = None) -> Refund:
    """Approve the refund and move its money to refunds payable."""
    tenant = actor.tenant
    assert tenant is not None
    now = now or timezone.now()
    with transaction.atomic():
        refund = Refund.objects.get(pk=refund.pk)
        check_may_decide(actor, refund)
        account = refund.account
        balances = lock_account_ledgers(tenant, account)
        refund = _locked(refund, RefundState.REQUESTED)
        wallet_credit = max(-balances[LedgerKind.WALLET], ZERO)
        held = max(-balances[LedgerKind.DEPOSIT], ZERO)
        if refund.from_wallet > wallet_credit or refund.from_deposit > held:
            raise field_error(
                "amount",
                _("The account no longer holds what this refund pays back; reject it."),
                "over_balance",
            )
        ids = customer_ledger_ids(tenant, account)
        payable = tenant_ledger_account(tenant, LedgerKind.REFUNDS_PAYABLE).pk
        lines: list[tuple[int, Decimal]] = []
        if refund.from_wallet:
            lines.append((ids[LedgerKind.WALLET], refund.from_wallet))
        if refund.from_deposit:
            lines.append((ids[LedgerKind.DEPOSIT], refund.from_deposit))
        lines.append((payable, -refund.amount))
        entry = EntrySpec(
            "refund_approval",
            str(refund.pk),
            lines,
            timezone.localdate(now, timezone=tenant.zone),
            memo=records_text(
                gettext_noop("Refund %(amount)s to account %(account)s approved"),
                amount=refund.amount,
                account=account.number,
            ),
            site_id=refund.site_id,
            references=[f"refund:{refund.pk}"] * len(lines),
        )
        entry_id = post_entries(actor, [entry])[entry.source_id]
        refund.state = RefundState.APPROVED
        refund.decided_at = now
        refund.decided_by_kind, refund.decided_by_id = actor.kind, actor.id
        refund.decided_by_label = actor.label[:200]
        refund.approval_entry_id = entry_id
        refund.save(
            update_fields=["state", "decided_at", "decided_by_kind", "decided_by_id",
                           "decided_by_label", "approval_entry"]
        )  # fmt: skip
        record_audit(
            actor,
            AuditAction.REFUND_APPROVED,
            refund,
            before={"state": RefundState.REQUESTED},
            after={"state": refund.state, "amount": refund.amount, "account": account.number},
        )
    return refund


def reject_refund(
    actor: Principal, refund: Refund, reason: str, *, now: datetime | None = None
) -> Refund:
    """Reject the refund with a reason: nothing moves."""
    reason = reason.strip()
    if not reason:
        raise field_error("reason", _("A reason is required."), "required")
    with transaction.atomic():
        refund = Refund.objects.get(pk=refund.pk)
        check_may_decide(actor, refund)
        refund = _locked(refund, RefundState.REQUESTED)
        refund.state = RefundState.REJECTED
        refund.rejection_reason = reason[:300]
        refund.decided_at = now or timezone.now()
        refund.decided_by_kind, refund.decided_by_id = actor.kind, actor.id
        refund.decided_by_label = actor.label[:200]
        refund.save(
            update_fields=["state", "rejection_reason", "decided_at", "decided_by_kind",
                           "decided_by_id", "decided_by_label"]
        )  # fmt: skip
        record_audit(
            actor,
            AuditAction.REFUND_REJECTED,
            refund,
            before={"state": RefundState.REQUESTED},
            after={"state": refund.state, "reason": reason},
        )
    return refund


def check_may_reveal_payee_bank_account(actor: Principal, refund: Refund) -> None:
    """The customer's bank account is personal data (PIPL): masked to everyone, and revealed only
    to whoever pays the transfer: staff who may pay refunds at the refund's site, while an
    approved bank-transfer refund waits to be paid. Refused (403) to anyone else; refused with
    the reason (400, or 409 once the refund is decided otherwise or paid) to them."""
    payers = actor.site_scope(MATRIX["refunds"]["reveal"])
    if actor.kind != ActorKind.STAFF or not payers.allows(refund.site_id):
        raise PermissionDenied(
            _("The full bank account is shown only to staff who pay refunds at the refund's site.")
        )
    if refund.channel != RefundChannel.BANK_TRANSFER:
        raise ValidationError(
            _("This refund is not paid by bank transfer: it has no bank account to show."),
            code="not_bank_transfer",
        )
    if refund.state != RefundState.APPROVED:
        raise PaymentConflict(
            _(
                "The full bank account is shown only while an approved refund waits for its "
                "transfer; this refund is %(state)s."
            )
            % {"state": str(RefundState(refund.state).label).lower()},
            code="refund_state",
        )


def may_reveal_payee_bank_account(actor: Principal, refund: Refund) -> bool:
    """Whether ``reveal_payee_bank_account`` would answer (the page offers its button)."""
    try:
        check_may_reveal_payee_bank_account(actor, refund)
    except (PermissionDenied, ValidationError):
        return False
    return True


def reveal_payee_bank_account(actor: Principal, refund: Refund) -> str:
    """The customer's bank account in full, for the person who pays the transfer. Every reveal
    is in the audit trail: who saw which refund's account (the number itself never is)."""
    check_may_reveal_payee_bank_account(actor, refund)
    record_audit(
        actor,
        AuditAction.REFUND_BANK_ACCOUNT_REVEALED,
        refund,
        after={"fields": ["payee_bank_account"], "account": refund.account.number},
    )
    return refund.payee_bank_account


def paying_account(tenant: Tenant, actor: Principal, refund: Refund) -> int:
    """The ledger account the refund is paid from (credited)."""
    if refund.channel == RefundChannel.CASH:
        return receiving_account(tenant, actor, Channel.COUNTER_CASH, "")
    if refund.channel == RefundChannel.ORIGINAL:
        return receiving_account(tenant, actor, Channel.ONLINE, refund.provider)
    name = records_text(gettext_noop("Clearing, refunds by bank transfer"))
    return tenant_ledger_account(
        tenant, LedgerKind.CLEARING, holder=BANK_TRANSFER_HOLDER, name=name
    ).pk


def pay_refund(
    actor: Principal, refund: Refund, *, payment_reference: str = "", now: datetime | None = None
) -> Refund:
    """Record the refund paid out by its channel and post it."""
    tenant = actor.tenant
    assert tenant is not None
    if actor.kind != ActorKind.STAFF:
        raise PermissionDenied(_("A refund is paid out by staff."))
    now = now or timezone.now()
    with transaction.atomic():
        refund = _locked(refund, RefundState.APPROVED)
        if refund.channel == RefundChannel.CASH:
            counter_checks(actor, refund.site_id)
        elif not payment_reference.strip():
            raise field_error(
                "payment_reference",
                _("A transfer is recorded with the bank's or provider's reference."),
                "required",
            )
        payable = tenant_ledger_account(tenant, LedgerKind.REFUNDS_PAYABLE).pk
        entry = EntrySpec(
            "refund_payment",
            str(refund.pk),
            [(payable, refund.amount), (paying_account(tenant, actor, refund), -refund.amount)],
            timezone.localdate(now, timezone=tenant.zone),
            memo=records_text(
                gettext_noop("Refund %(amount)s to account %(account)s paid (%(channel)s)"),
                amount=refund.amount,
                account=refund.account.number,
                channel=RefundChannel(refund.channel).label,
            ),
            site_id=refund.site_id,
            references=[f"refund:{refund.pk}"] * 2,
        )
        entry_id = post_entries(actor, [entry])[entry.source_id]
        refund.state = RefundState.PAID
        refund.paid_at = now
        refund.paid_by_kind, refund.paid_by_id = actor.kind, actor.id
        refund.paid_by_label = actor.label[:200]
        refund.payment_reference = payment_reference.strip()[:64]
        refund.payment_entry_id = entry_id
        refund.save(
            update_fields=["state", "paid_at", "paid_by_kind", "paid_by_id", "paid_by_label",
                           "payment_reference", "payment_entry"]
        )  # fmt: skip
        record_audit(
            actor,
            AuditAction.REFUND_PAID,
            refund,
            before={"state": RefundState.APPROVED},
            after={"state": refund.state, "amount": refund.amount, "channel": refund.channel,
                   "payee_bank_account": refund.payee_bank_account_masked,
                   "payment_reference": refund.payment_reference},
        )  # fmt: skip
    return refund
