"""Posting a payment: one action, one transaction, one journal entry, one receipt.

``post_payment`` runs in this order, each step inside the payment's transaction:

1. the customer account's receivable and wallet rows are locked, in primary-key order, through
   the ledger's helper (``lock_customer_ledgers``, which reads the ids of the receiving and
   late-fee accounts in the same statement): payments on one account queue here, so none
   works from a balance or an open amount another is changing (concurrent payments never lose
   an update);
2. a payment already posted under the same idempotency key (unique per tenant, channel and
   source) is answered again if the request is the same, refused (409) if it is not; a closed
   account takes no new payment (its status read under the lock); a counter payment joins
   the cashier's open shift at the account's site, whose row it locks so the shift cannot
   close meanwhile (``collection.services.shifts``: none open, ``no_open_shift``); a cash
   top-up on a day the bank is closed meets the holiday cash rule
   (``collection.services.cash_rules``) and uses up its approval;
3. the account's open items and credit are read and the amount allocated
   (``collection.services.allocation``);
4. one journal entry is posted through ``ledger.services.post_entries`` with the source
   ``("payment", id)``: Dr the receiving account (the cashier's cash, a clearing account), Cr
   the receivable per item paid (its reference names the bill), Cr late-fee revenue per item,
   Dr the receivable or the wallet for credit used, Cr the wallet for the surplus. Its balance
   step (lock the entry's ledger accounts, move their cached balances) is deferred to step 6:
   the receiving and late-fee accounts are shared by every payment of a bank (one API client,
   one clearing account) or of the tenant, and locked here they would be held through the
   rest of the payment;
5. the payment and its allocations are written;
6. last, one round trip: the entry's ledger accounts locked in primary-key order and their
   balances moved (the customer's rows are already held since step 1: only the shared ones
   are waited for), then the checks deferred to the commit (foreign keys, the entry's zero
   sum; after the lock, because the lines' foreign-key checks take key-share locks on their
   ledger accounts, and two payments each holding one while waiting to lock the other's
   deadlock), then one statement that takes the receipt number from the tenant's counter
   row, writes the receipt and the audit event (built before, given the number there). The
   shared accounts' rows and the counter's stay locked only from there to the commit. Lock
   order, the same in every payment: the customer's rows, the cashier's shift, the shared
   ledger accounts by primary key, the receipt counter.

Nothing reads a cached balance of the entry's accounts between steps 4 and 6 (the customer's
were read under their lock at step 3, before the posting), and the ledger check holds at the
commit: every balance moved by its lines.

A refused request (a rule, a reused key) is recorded as a ``PaymentAttempt`` after its
transaction has rolled back.

Six round trips a payment between BEGIN and COMMIT (``test_payment_statements`` pins them):
the lock (with the receiving and late-fee ids), the account's status with the key's earlier
payment and two new ids, its open items, the entry and its lines, the payment with its
allocations, and the entry's ledger accounts locked and moved with the deferred checks and
the receipt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
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
from collection.services.cash_rules import check_holiday_cash, use_approval
from collection.services.channels import (
    check_channel,
    payment_source,
    receiving_account,
    receiving_key,
)
from collection.services.errors import PaymentConflict, field_error
from collection.services.receipts import issue_receipt
from collection.services.shifts import counter_shift
from customers.models import Account, AccountStatus
from ledger.models import JournalEntry, LedgerAccount, LedgerKind
from ledger.services import (
    CustomerLedgers,
    EntrySpec,
    customer_ledger_accounts,
    lock_customer_ledgers,
    post_entries,
    records_text,
    tenant_ledger_account,
)
from tenancy import prepared
from tenancy.audit import AuditAction, audit_event
from tenancy.bulk import allocate_ids, insert_together
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
    cash_approval: int | None = None  # the holiday cash rule's approval; not in the digest

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
    cash_approval: int | None = None,
    now: datetime | None = None,
) -> PaymentResult:
    """Post a payment to the account (see the module's overview), or answer a retry with the
    payment posted first under the same key. A refusal is recorded as a failed attempt."""
    request = PaymentRequest(
        account, channel, amount, idempotency_key, external_reference, provider, cash_approval
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
    if request.channel == Channel.COUNTER_CARD and not request.external_reference.strip():
        # Without it the card takings cannot be matched to the acquirer's settlement.
        raise field_error(
            "external_reference",
            _("A card payment records the reference on the terminal's slip."),
            "required",
        )


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
    try:
        with transaction.atomic():
            ledgers = _lock_ledgers(tenant, actor, request, receiving_known=receiving is not None)
            status, first_id, first_digest, payment_id, entry_id = _account_state(
                tenant, request, source
            )
            if first_id is not None:
                if first_digest != request.digest:
                    raise _key_conflict(first_id)
                return PaymentResult(Payment.objects.get(pk=first_id), created=False)
            # Read under the lock: closing an account locks the same rows.
            if status == AccountStatus.CLOSED:
                raise field_error(
                    "account", _("The account is closed: it takes no payments."), "closed_account"
                )
            paid_on = timezone.localdate(now, timezone=tenant.zone)
            shift = counter_shift(actor, request.channel, account.site_id)
            approval = check_holiday_cash(
                actor, account, request.channel, request.amount, paid_on, request.cash_approval
            )
            position = account_position(
                account,
                ledgers.locked[LedgerKind.RECEIVABLE][1],
                ledgers.locked[LedgerKind.WALLET][1],
                paid_on,
            )
            plan = plan_allocation(
                position.items, request.amount, position.receivable_credit, position.wallet_credit
            )
            entry = _entry(tenant, actor, request, payment_id, plan, ledgers, paid_on, receiving)
            entry.entry_id = entry_id
            # Its source is the new payment's id. The balance step waits for the receipt.
            movements: dict[int, Decimal] = {}
            post_entries(actor, [entry], new_sources=True, defer_balances=movements)
            payment = Payment(
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
                shift=shift,
            )
            _insert(payment, plan)
            use_approval(approval, payment, now)
            audit = audit_event(
                actor, AuditAction.PAYMENT_POSTED, payment, after=_audited(payment, plan, position)
            )
            # Last, with the balance step: see the module's overview.
            issue_receipt(tenant, payment, now, audit, balances=movements)
            return PaymentResult(payment, created=True)
    except IntegrityError:
        # The key was taken meanwhile by a payment naming another account (one naming the same
        # account waited on its lock above and was answered there).
        first = Payment.objects.filter(
            channel=request.channel, source=source, idempotency_key=request.idempotency_key
        ).first()
        if first is None:
            raise
        if first.digest != request.digest:
            raise _key_conflict(first.pk) from None
        return PaymentResult(first, created=False)


CUSTOMER_KINDS = (LedgerKind.RECEIVABLE, LedgerKind.WALLET)


def _lock_ledgers(
    tenant: Tenant, actor: Principal, request: PaymentRequest, *, receiving_known: bool = False
) -> CustomerLedgers:
    """The account's receivable and wallet locked (their balances read under the lock), with
    the ids of the receiving account (unless the caller names it: a redemption's voucher
    liability) and the late-fee revenue: one statement once they all exist; the first payment
    that needs one creates it, and reads again."""
    account = request.account
    late_fees = (LedgerKind.LATE_FEES, account.utility, "")
    receiving: tuple[str, str, str] | None = None
    if not receiving_known:
        kind, holder = receiving_key(actor, request.channel, request.provider)
        receiving = (kind, "", holder)
    keys = [late_fees] if receiving is None else [receiving, late_fees]
    ledgers = lock_customer_ledgers(tenant, account.pk, CUSTOMER_KINDS, keys)
    missing = [kind for kind in CUSTOMER_KINDS if kind not in ledgers.locked]
    if not missing and (receiving is None or receiving in ledgers.tenant_ids):
        return ledgers
    for kind in missing:
        customer_ledger_accounts(tenant, kind, [account.pk])
    if receiving is not None and receiving not in ledgers.tenant_ids:
        receiving_account(tenant, actor, request.channel, request.provider)
    return lock_customer_ledgers(tenant, account.pk, CUSTOMER_KINDS, keys)


def _account_state(
    tenant: Tenant, request: PaymentRequest, source: str
) -> tuple[str, int | None, str | None, int, int]:
    """The account's status, the payment posted before under the request's key (its id and
    digest), and ids for a new payment and its journal entry (a request answered otherwise
    leaves two unused ids: ids need not be gap-free), in one statement."""
    if connection.vendor != "postgresql":
        status = Account.objects.filter(pk=request.account.pk).values_list("status", flat=True)
        first = (
            Payment.objects.filter(
                channel=request.channel, source=source, idempotency_key=request.idempotency_key
            )
            .values_list("pk", "digest")
            .first()
        )
        payment_id, entry_id = allocate_ids(Payment, 1)[0], allocate_ids(JournalEntry, 1)[0]
        return status.get(), *(first or (None, None)), payment_id, entry_id
    with connection.cursor() as cursor:
        prepared.execute(
            cursor,
            f"SELECT a.status, p.id, p.digest, "  # noqa: S608 - model names
            "nextval(pg_get_serial_sequence(%s, 'id')), "
            "nextval(pg_get_serial_sequence(%s, 'id')) "
            f"FROM {Account._meta.db_table} a "
            f"LEFT JOIN {Payment._meta.db_table} p ON p.tenant_id = a.tenant_id "
            "AND p.channel = %s AND p.source = %s AND p.idempotency_key = %s "
            "WHERE a.tenant_id = %s AND a.id = %s",
            [Payment._meta.db_table, JournalEntry._meta.db_table, request.channel, source,
             request.idempotency_key, tenant.pk, request.account.pk],
        )  # fmt: skip
        status, first_id, first_digest, payment_id, entry_id = cursor.fetchone()
    return status, first_id, first_digest, payment_id, entry_id


PAYMENT_FIELDS = [
    "id", "tenant_id", "site_id", "account_id", "channel", "amount", "principal", "late_fees",
    "credit_used", "surplus", "external_reference", "provider", "source", "idempotency_key",
    "digest", "paid_on", "received_at", "entry_id", "actor_kind", "actor_id", "actor_label",
    "shift_id",
]  # fmt: skip
ALLOCATION_FIELDS = [
    "tenant_id", "payment_id", "account_id", "bill_id", "opening_id", "late_fee", "principal"
]  # fmt: skip


def _insert(payment: Payment, plan: AllocationPlan) -> None:
    """Write the payment and its allocations, in one statement."""
    allocations = [
        (payment.tenant_id, payment.pk, payment.account_id, part.item.bill_id,
         part.item.opening_id, part.late_fee, part.principal)
        for part in plan.allocations
    ]  # fmt: skip
    insert_together(
        [
            (Payment, PAYMENT_FIELDS, [[getattr(payment, name) for name in PAYMENT_FIELDS]]),
            (PaymentAllocation, ALLOCATION_FIELDS, allocations),
        ]
    )
    payment._state.adding, payment._state.db = False, connection.alias


def _key_conflict(payment_id: int) -> PaymentConflict:
    return PaymentConflict(
        _("This idempotency key was used for another payment."),
        code="idempotency_conflict",
        payment_id=payment_id,
    )


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


def _entry(
    tenant: Tenant,
    actor: Principal,
    request: PaymentRequest,
    payment_id: int,
    plan: AllocationPlan,
    ledgers: CustomerLedgers,
    paid_on: date,
    receiving: int | None = None,
) -> EntrySpec:
    """The payment's journal entry (see the module's overview)."""
    receivable, wallet = (ledgers.locked[kind][0] for kind in CUSTOMER_KINDS)
    account = request.account
    if receiving is None:
        kind, holder = receiving_key(actor, request.channel, request.provider)
        debit = ledgers.tenant_ids[(kind, "", holder)]
    else:
        debit = receiving  # a recharge card's redemption: the voucher liability
    lines: list[tuple[int, Decimal]] = [(debit, request.amount)]
    references = [""]
    late_fees = ledgers.tenant_ids.get((LedgerKind.LATE_FEES, account.utility, ""))
    for part in plan.allocations:
        if part.principal:
            lines.append((receivable, -part.principal))
            references.append(part.item.reference)
        if part.late_fee:
            if late_fees is None:  # the tenant's first late fee creates the account
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
