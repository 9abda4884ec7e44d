"""Posting a payment: one action, one transaction, one journal entry, one receipt.

``post_payment`` runs in this order, each step inside the payment's transaction:

1. the customer account's receivable and wallet rows are locked, in primary-key order, through
   the ledger's helper: payments on one account queue here, so none works from a balance or
   an open amount another is changing (concurrent payments never lose an update);
2. a payment already posted under the same idempotency key (unique per tenant, channel and
   source) is answered again if the request is the same, refused (409) if it is not; a closed
   account takes no new payment (its status read under the lock);
3. the account's open items and credit are read and the amount allocated
   (``collection.services.allocation``);
4. one journal entry is posted through ``ledger.services.post_entries`` with the source
   ``("payment", id)``: Dr the receiving account (the cashier's cash, a clearing account), Cr
   the receivable per item paid (its reference names the bill), Cr late-fee revenue per item,
   Dr the receivable or the wallet for credit used, Cr the wallet for the surplus;
5. the payment and its allocations are written and an audit event recorded;
6. last, the receipt number is taken from the tenant's counter row, which stays locked only
   from there to the commit.

A refused request (a rule, a reused key) is recorded as a ``PaymentAttempt`` after its
transaction has rolled back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from collection.models import AttemptOutcome, Channel, Payment, PaymentAllocation
from collection.services.allocation import (
    AccountPosition,
    AllocationPlan,
    account_position,
    plan_allocation,
)
from collection.services.attempts import AttemptRequest, Failure, record_failed_attempt
from collection.services.channels import check_channel, payment_source, receiving_account
from collection.services.errors import PaymentConflict, field_error
from collection.services.receipts import issue_receipt
from customers.models import Account, AccountStatus
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
from tenancy.bulk import allocate_ids
from tenancy.models import Tenant
from tenancy.money import Money
from tenancy.principal import Principal

# What a counter or bank could take in one payment: more is a typing error.
MAX_PAYMENT = Decimal("99999999.99")


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    created: bool  # False: a retry answered with the payment posted first


@dataclass(frozen=True)
class PaymentRequest:
    account: Account
    channel: str
    amount: Decimal
    idempotency_key: str
    external_reference: str = ""
    provider: str = ""

    @property
    def digest(self) -> str:
        """What makes two requests under one key the same payment."""
        canonical = "|".join(
            [self.channel, self.account.number, str(self.amount), self.external_reference,
             self.provider]
        )  # fmt: skip
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_attempt(self) -> AttemptRequest:
        return AttemptRequest.of(
            channel=self.channel, account_number=self.account.number, amount=self.amount,
            idempotency_key=self.idempotency_key, external_reference=self.external_reference,
            provider=self.provider,
        )  # fmt: skip


def post_payment(
    actor: Principal,
    *,
    account: Account,
    channel: str,
    amount: Decimal,
    idempotency_key: str,
    external_reference: str = "",
    provider: str = "",
    now: datetime | None = None,
) -> PaymentResult:
    """Post a payment to the account (see the module's overview), or answer a retry with the
    payment posted first under the same key. A refusal is recorded as a failed attempt."""
    request = PaymentRequest(
        account, channel, amount, idempotency_key, external_reference, provider
    )
    source = ""
    try:
        _check(actor, request)
        source = payment_source(actor, channel, provider)
        return _post(actor, request, source, now or timezone.now())
    except PaymentConflict as exc:
        record_failed_attempt(
            actor, request.as_attempt(), AttemptOutcome.CONFLICT, Failure.of(exc),
            account=account, payment_id=exc.payment_id, source=source,
        )  # fmt: skip
        raise
    except ValidationError as exc:
        record_failed_attempt(
            actor, request.as_attempt(), AttemptOutcome.REFUSED, Failure.of(exc),
            account=account, source=source,
        )  # fmt: skip
        raise


def _check(actor: Principal, request: PaymentRequest) -> None:
    """The rules a request must meet before anything is locked."""
    try:
        amount = Money(request.amount)
    except (TypeError, ValueError) as exc:
        raise field_error("amount", str(exc)) from exc
    if not Decimal("0.01") <= amount <= MAX_PAYMENT:
        raise field_error(
            "amount",
            _("A payment is from 0.01 to %(max)s yuan.") % {"max": MAX_PAYMENT},
            "out_of_range",
        )
    if not request.idempotency_key:
        raise field_error("idempotency_key", _("A payment needs an idempotency key."), "required")
    check_channel(actor, request.channel, request.provider)


def post_redemption(
    actor: Principal, request: PaymentRequest, source: str, now: datetime, *, receiving: int
) -> PaymentResult:
    """Post a recharge card's redemption as a payment of the ``voucher`` channel, through the
    same steps as any payment, with the voucher liability (``receiving``) debited in place of
    cash or a clearing account. Only ``collection.services.vouchers`` calls it, under the
    card's row lock and after checking its PIN; ``check_channel`` keeps refusing the channel to
    anyone posting it as a payment."""
    return _post(actor, request, source, now, receiving=receiving)


def _post(
    actor: Principal,
    request: PaymentRequest,
    source: str,
    now: datetime,
    *,
    receiving: int | None = None,
) -> PaymentResult:
    tenant = actor.tenant
    assert tenant is not None
    account = request.account
    same_key = Payment.objects.filter(
        channel=request.channel, source=source, idempotency_key=request.idempotency_key
    )
    try:
        with transaction.atomic():
            ledger_ids = customer_ledgers(tenant, account)
            balances = lock_ledger_accounts(tenant, ledger_ids)
            first = same_key.first()
            if first is not None:
                return PaymentResult(_replayed(first, request), created=False)
            # Read under the lock: closing an account locks the same rows.
            status = Account.objects.filter(pk=account.pk).values_list("status", flat=True)
            if status.get() == AccountStatus.CLOSED:
                raise field_error(
                    "account", _("The account is closed: it takes no payments."), "closed_account"
                )
            paid_on = timezone.localdate(now, timezone=tenant.zone)
            position = account_position(
                account, balances[ledger_ids[0]], balances[ledger_ids[1]], paid_on
            )
            plan = plan_allocation(
                position.items, request.amount, position.receivable_credit, position.wallet_credit
            )
            [payment_id] = allocate_ids(Payment, 1)
            entry = _entry(tenant, actor, request, payment_id, plan, ledger_ids, paid_on, receiving)
            entry_id = post_entries(actor, [entry])[entry.source_id]
            payment = Payment.objects.create(
                pk=payment_id,
                tenant=tenant,
                site_id=account.site_id,
                account=account,
                channel=request.channel,
                amount=request.amount,
                principal=plan.principal,
                late_fees=plan.late_fees,
                credit_used=plan.credit_used,
                surplus=plan.surplus,
                external_reference=request.external_reference,
                provider=request.provider,
                source=source,
                idempotency_key=request.idempotency_key,
                digest=request.digest,
                paid_on=paid_on,
                received_at=now,
                entry_id=entry_id,
                actor_kind=actor.kind,
                actor_id=actor.id,
                actor_label=actor.label[:200],
            )
            PaymentAllocation.objects.bulk_create(
                PaymentAllocation(
                    tenant=tenant, payment=payment, account=account,
                    bill_id=part.item.bill_id, opening_id=part.item.opening_id,
                    late_fee=part.late_fee, principal=part.principal,
                )
                for part in plan.allocations
            )  # fmt: skip
            receipt = issue_receipt(tenant, payment, now)
            audited = _audited(payment, plan, position)
            audited["receipt"] = receipt.display_number
            record_audit(actor, AuditAction.PAYMENT_POSTED, payment, after=audited)
            return PaymentResult(payment, created=True)
    except IntegrityError:
        # The key was taken meanwhile by a payment naming another account (one naming the same
        # account waited on its lock above and was answered there).
        first = same_key.first()
        if first is None:
            raise
        return PaymentResult(_replayed(first, request), created=False)


def customer_ledgers(tenant: Tenant, account: Account) -> tuple[int, int]:
    """The account's receivable and wallet ledger accounts (one query once they exist)."""
    kinds = (LedgerKind.RECEIVABLE, LedgerKind.WALLET)
    found = dict(
        LedgerAccount.objects.filter(account=account, kind__in=kinds).values_list("kind", "pk")
    )
    for kind in kinds:
        if kind not in found:
            found[kind] = customer_ledger_accounts(tenant, kind, [account.pk])[account.pk]
    return found[LedgerKind.RECEIVABLE], found[LedgerKind.WALLET]


def _replayed(first: Payment, request: PaymentRequest) -> Payment:
    if first.digest != request.digest:
        raise PaymentConflict(
            _("This idempotency key was used for another payment."),
            code="idempotency_conflict",
            payment_id=first.pk,
        )
    return first


def _entry(
    tenant: Tenant,
    actor: Principal,
    request: PaymentRequest,
    payment_id: int,
    plan: AllocationPlan,
    ledger_ids: tuple[int, int],
    paid_on: date,
    receiving: int | None = None,
) -> EntrySpec:
    """The payment's journal entry (see the module's overview)."""
    receivable, wallet = ledger_ids
    account = request.account
    debit = receiving or receiving_account(tenant, actor, request.channel, request.provider)
    lines: list[tuple[int, Decimal]] = [(debit, request.amount)]
    references = [""]
    late_fees = None
    for part in plan.allocations:
        if part.principal:
            lines.append((receivable, -part.principal))
            references.append(part.item.reference)
        if part.late_fee:
            if late_fees is None:
                late_fees = tenant_ledger_account(
                    tenant, LedgerKind.LATE_FEES, utility=account.utility
                ).pk
            lines.append((late_fees, -part.late_fee))
            references.append(part.item.reference)
    if plan.receivable_credit_used:
        lines.append((receivable, plan.receivable_credit_used))
        references.append("credit")
    wallet_movement = plan.wallet_credit_used - plan.surplus
    if wallet_movement:
        lines.append((wallet, wallet_movement))
        references.append("credit" if wallet_movement > 0 else "surplus")
    return EntrySpec(
        "payment",
        str(payment_id),
        lines,
        paid_on,
        memo=records_text(
            gettext_noop("Payment %(amount)s to account %(account)s (%(channel)s)"),
            amount=request.amount,
            account=account.number,
            channel=Channel(request.channel).label,
        ),
        site_id=account.site_id,
        references=references,
    )


def _audited(
    payment: Payment, plan: AllocationPlan, position: AccountPosition
) -> dict[str, object]:
    return {
        "account": payment.account.number,
        "channel": payment.channel,
        "amount": payment.amount,
        "external_reference": payment.external_reference,
        "allocations": [
            {"item": part.item.reference, "late_fee": part.late_fee, "principal": part.principal}
            for part in plan.allocations
        ],
        "credit_used": plan.credit_used,
        "surplus": plan.surplus,
        "owed_before": position.principal + position.late_fees,
    }
