"""Deposits (押金): what an account needs by policy, and taking one at the counter.

A tenant's ``DepositPolicy`` rows say how much deposit an account of a utility and customer
class needs (non-residential electricity: 2,000 yuan, say); an account with no policy row
needs none. What an account holds is its deposit ledger account's balance (a credit: the
utility owes it back), less nothing: a refund of deposit moves the money out of it when it is
approved.

``take_deposit`` posts one deposit in one transaction, as a payment is posted: the account's
deposit ledger row is locked; a deposit already taken under the same idempotency key (unique
per tenant and cashier) is answered again, or refused (409) when the request differs; a closed
account takes none; the journal entry ``("deposit", id)`` is Dr the receiving account (cash:
the cashier's cash on hand; card: the card acquirer's clearing, as
``collection.services.channels.receiving_account`` says), Cr the account's deposit; last, the
receipt number is taken.

**Receipt numbers.** A deposit gets a receipt too, from the same gap-free counter mechanism as
payments (``tenancy.sequences.take_next``, taken last in the transaction, so a failed deposit
takes no number), but from its own sequence ``deposit_receipt``, shown as ``Y0000000001``. It
cannot share the payments' ``Receipt`` rows or sequence: a ``Receipt`` belongs to a payment
(its allocations, its voiding by reversal), and numbers taken by deposits from the payments'
sequence would show as gaps in the payment receipts the gap checks and the auditors read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from collection.deposit_models import DEPOSIT_CHANNELS
from collection.models import Channel, Deposit, DepositPolicy
from collection.services.channels import receiving_account
from collection.services.counter_checks import counter_checks
from collection.services.errors import PaymentConflict, field_error
from collection.services.payments import MAX_PAYMENT
from customers.models import Account, AccountStatus
from ledger.models import LedgerAccount, LedgerKind
from ledger.services import (
    EntrySpec,
    customer_ledger_accounts,
    lock_ledger_accounts,
    post_entries,
    records_text,
)
from tenancy.audit import AuditAction, record_audit
from tenancy.bulk import allocate_ids
from tenancy.models import ActorKind
from tenancy.money import ZERO, Money
from tenancy.principal import Principal
from tenancy.sequences import take_next

DEPOSIT_RECEIPT_SEQUENCE = "deposit_receipt"


@dataclass(frozen=True)
class DepositStatus:
    """What an account needs, holds and misses of its deposit."""

    required: Decimal
    held: Decimal

    @property
    def missing(self) -> Decimal:
        return max(self.required - self.held, ZERO)


def deposit_required(account: Account) -> Decimal:
    policy = DepositPolicy.objects.filter(
        utility=account.utility, customer_class=account.customer_class
    ).first()
    return policy.amount if policy is not None else ZERO


def deposit_held(account: Account) -> Decimal:
    """The deposit the account holds: its deposit ledger account's credit."""
    balance = (
        LedgerAccount.objects.filter(account=account, kind=LedgerKind.DEPOSIT)
        .values_list("balance", flat=True)
        .first()
    )
    return -(balance or ZERO)


def deposit_status(account: Account) -> DepositStatus:
    return DepositStatus(deposit_required(account), deposit_held(account))


def set_deposit_policy(
    actor: Principal, *, utility: str, customer_class: str, amount: Decimal, note: str = ""
) -> DepositPolicy:
    """Set (create or change) the deposit a utility and customer class need."""
    try:
        amount = Money(amount)
    except (TypeError, ValueError) as exc:
        raise field_error("amount", str(exc)) from exc
    if not Decimal("0.01") <= amount <= MAX_PAYMENT:
        raise field_error(
            "amount", _("A deposit is from 0.01 to %(max)s yuan.") % {"max": MAX_PAYMENT}
        )
    with transaction.atomic():
        policy = (
            DepositPolicy.objects.select_for_update()
            .filter(utility=utility, customer_class=customer_class)
            .first()
        )
        before = {"amount": policy.amount, "note": policy.note} if policy else None
        if policy is None:
            policy = DepositPolicy(
                tenant=actor.tenant, utility=utility, customer_class=customer_class
            )
        policy.amount, policy.note, policy.updated_at = amount, note, timezone.now()
        policy.full_clean(exclude=["tenant"], validate_unique=False)
        policy.save()
        record_audit(
            actor,
            AuditAction.DEPOSIT_POLICY_CHANGED,
            policy,
            before=before,
            after={"utility": utility, "customer_class": customer_class, "amount": amount,
                   "note": note},
        )  # fmt: skip
    return policy


@dataclass(frozen=True)
class DepositResult:
    deposit: Deposit
    created: bool  # False: a retry answered with the deposit taken first


def take_deposit(
    actor: Principal,
    *,
    account: Account,
    channel: str,
    amount: Decimal,
    idempotency_key: str,
    external_reference: str = "",
    now: datetime | None = None,
) -> DepositResult:
    """Take a deposit at the counter (see the module's overview). A card deposit records the
    reference on the terminal's slip, as a card payment does: without it the card takings
    cannot be matched to the acquirer's settlement."""
    tenant = actor.tenant
    assert tenant is not None
    if actor.kind != ActorKind.STAFF:
        raise PermissionDenied(_("A deposit is taken at the counter, by staff."))
    if channel not in DEPOSIT_CHANNELS:
        raise field_error(
            "channel", _("A deposit is taken in cash or by bank card at the counter."),
            "channel_not_allowed",
        )  # fmt: skip
    try:
        amount = Money(amount)
    except (TypeError, ValueError) as exc:
        raise field_error("amount", str(exc)) from exc
    if not Decimal("0.01") <= amount <= MAX_PAYMENT:
        raise field_error(
            "amount", _("A deposit is from 0.01 to %(max)s yuan.") % {"max": MAX_PAYMENT},
            "out_of_range",
        )  # fmt: skip
    if not idempotency_key:
        raise field_error("idempotency_key", _("A deposit needs an idempotency key."), "required")
    external_reference = external_reference.strip()[:64]
    if channel == Channel.COUNTER_CARD and not external_reference:
        raise field_error(
            "external_reference",
            _("A card deposit records the reference on the terminal's slip."),
            "required",
        )
    now = now or timezone.now()
    source = f"user:{actor.id}"
    # the reference joins the digest only when given: deposits taken before it existed replay
    typed = f"{account.number}|{channel}|{amount}"
    if external_reference:
        typed += f"|{external_reference}"
    digest = hashlib.sha256(typed.encode()).hexdigest()
    same_key = Deposit.objects.filter(source=source, idempotency_key=idempotency_key)
    try:
        with transaction.atomic():
            deposit_ledger = customer_ledger_accounts(tenant, LedgerKind.DEPOSIT, [account.pk])[
                account.pk
            ]
            lock_ledger_accounts(tenant, [deposit_ledger])
            first = same_key.first()
            if first is not None:
                return DepositResult(_replayed(first, digest), created=False)
            status = Account.objects.filter(pk=account.pk).values_list("status", flat=True).get()
            if status == AccountStatus.CLOSED:
                raise field_error(
                    "account", _("The account is closed: it takes no deposit."), "closed_account"
                )
            shift = counter_checks(actor, account.site_id)
            taken_on = timezone.localdate(now, timezone=tenant.zone)
            [deposit_id] = allocate_ids(Deposit, 1)
            entry = EntrySpec(
                "deposit",
                str(deposit_id),
                [
                    (receiving_account(tenant, actor, channel, ""), amount),
                    (deposit_ledger, -amount),
                ],
                taken_on,
                memo=records_text(
                    gettext_noop("Deposit %(amount)s for account %(account)s (%(channel)s)"),
                    amount=amount,
                    account=account.number,
                    channel=Channel(channel).label,
                ),
                site_id=account.site_id,
                references=["", f"deposit:{deposit_id}"],
            )
            entry_id = post_entries(actor, [entry])[entry.source_id]
            number = take_next(tenant, DEPOSIT_RECEIPT_SEQUENCE)
            deposit = Deposit.objects.create(
                pk=deposit_id,
                tenant=tenant,
                site_id=account.site_id,
                account=account,
                channel=channel,
                amount=amount,
                external_reference=external_reference,
                shift=shift,
                source=source,
                idempotency_key=idempotency_key,
                digest=digest,
                receipt_number=number,
                taken_on=taken_on,
                taken_at=now,
                entry_id=entry_id,
                actor_kind=actor.kind,
                actor_id=actor.id,
                actor_label=actor.label[:200],
            )
            record_audit(
                actor,
                AuditAction.DEPOSIT_TAKEN,
                deposit,
                after={"account": account.number, "channel": channel, "amount": amount,
                       "external_reference": external_reference,
                       "receipt": deposit.display_receipt_number},
            )  # fmt: skip
            return DepositResult(deposit, created=True)
    except IntegrityError:
        first = same_key.first()
        if first is None:
            raise
        return DepositResult(_replayed(first, digest), created=False)


def _replayed(first: Deposit, digest: str) -> Deposit:
    if first.digest != digest:
        raise PaymentConflict(
            _("This idempotency key was used for another deposit."), code="idempotency_conflict"
        )
    return first
