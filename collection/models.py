"""Payments, their allocation to bills, reversals, receipts and the attempts that failed.

A payment is money received for one account (户号) through one channel: the counter (cash or a
bank card), a bank collecting on the utility's behalf (代收) or debiting by agreement (代扣), an
online provider, a self-service terminal or a recharge card. It is posted once
(``collection.services.payments.post_payment``): the money is allocated to the account's
oldest open bills (each bill's late fee before its principal), any surplus goes to the wallet
(a prepaid account's balance, a postpaid account's credit on account), one journal entry
records it and a receipt number is taken.

Everything here is append-only, as money is: a payment, its allocations and its receipt are
never changed or deleted (on PostgreSQL triggers refuse it). A reversal (冲正) is a row of its
own that points to the payment, with reversing allocation rows (negative) and a reversing
journal entry; the receipt is void while its payment is reversed, and keeps its number. A
reprint is a row of its own too. ``PaymentAttempt`` keeps every attempt that failed, with its
reason, so finance can trace a payment that a customer or a bank says was made.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import pgtrigger
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing.models import Bill, OpeningBalance
from customers.models import Account
from ledger.models import MONEY, JournalEntry
from tenancy.models import Site, User
from tenancy.scoping import TenantOwned, TenantQuerySet, TenantSettings


class Channel(models.TextChoices):
    COUNTER_CASH = "counter_cash", _("Counter, cash")
    COUNTER_CARD = "counter_card", _("Counter, bank card")
    BANK_COLLECTION = "bank_collection", _("Bank collection (代收)")
    BANK_DEBIT = "bank_debit", _("Bank direct debit (代扣)")
    ONLINE = "online", _("Online payment")
    TERMINAL = "terminal", _("Self-service terminal")
    VOUCHER = "voucher", _("Recharge card")


# Who takes which channel: staff at the counter; integrations (a bank, an online provider's
# notifications, a terminal) through the API with a token. Recharge cards are redeemed with
# their PIN, not posted as payments.
COUNTER_CHANNELS = frozenset({Channel.COUNTER_CASH, Channel.COUNTER_CARD})
INTEGRATION_CHANNELS = frozenset(
    {Channel.BANK_COLLECTION, Channel.BANK_DEBIT, Channel.ONLINE, Channel.TERMINAL}
)


def append_only(name: str) -> pgtrigger.Protect:
    return pgtrigger.Protect(name=name, operation=pgtrigger.Update | pgtrigger.Delete)


# What the amount and the credit used were allocated to: bills' principal and late fees, and
# the surplus to the wallet.
PARTS = (
    models.F("principal") + models.F("late_fees") + models.F("surplus") - models.F("credit_used")
)
HALF_FEN = models.Value(Decimal("0.005"))


class PaymentState(models.TextChoices):
    POSTED = "posted", _("Posted")
    REVERSED = "reversed", _("Reversed")


class PaymentQuerySet(TenantQuerySet["Payment"]):
    def standing(self) -> PaymentQuerySet:
        """Payments not reversed."""
        return self.filter(reversals__isnull=True)

    def reversed(self) -> PaymentQuerySet:
        return self.filter(reversals__isnull=False)


PaymentManager = models.Manager.from_queryset(PaymentQuerySet)


class Payment(TenantOwned):
    site = models.ForeignKey(  # the account's, copied: lists and grants filter on it
        Site, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    amount = models.DecimalField(_("amount"), **MONEY)
    principal = models.DecimalField(
        _("bills' principal paid"), help_text=_("Allocated to bills' principal."), **MONEY
    )
    late_fees = models.DecimalField(
        _("late fees paid"), help_text=_("Allocated to bills' late fees."), **MONEY
    )
    credit_used = models.DecimalField(
        _("credit used"),
        help_text=_("The account's credit allocated with the payment."),
        **MONEY,
    )
    surplus = models.DecimalField(
        _("surplus"),
        help_text=_("To the wallet: a prepaid balance, or credit on a postpaid account."),
        **MONEY,
    )
    external_reference = models.CharField(
        _("external reference"),
        max_length=64,
        blank=True,
        help_text=_("The bank's, provider's or terminal's own reference of the payment."),
    )
    provider = models.CharField(
        _("online provider"), max_length=32, blank=True, help_text=_("wechat, alipay, …")
    )
    source = models.CharField(
        _("source"),
        max_length=48,
        help_text=_("Who sent it: a cashier (user:12), an API client (client:3), an online "
                    "provider (provider:wechat). Idempotency keys are unique per source."),
    )  # fmt: skip
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    digest = models.CharField(
        max_length=64, help_text=_("Hash of the request, to refuse a key reused for another.")
    )
    paid_on = models.DateField(_("business day"), help_text=_("In the tenant's time zone."))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("taken by"), max_length=200)
    shift = models.ForeignKey(
        "Shift",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        db_index=False,
        help_text=_("The cashier's shift a counter payment was taken in."),
    )

    objects: ClassVar[PaymentManager] = PaymentManager()
    dangerously_unscoped: ClassVar[models.Manager[Payment]] = models.Manager()

    site_path = "site"

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "source", "idempotency_key"],
                name="payment_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_positive"),
            models.CheckConstraint(
                condition=models.Q(
                    principal__gte=0, late_fees__gte=0, credit_used__gte=0, surplus__gte=0
                ),
                name="payment_parts_not_negative",
            ),
            # Within half a fen, not equal: SQLite computes with floats (PostgreSQL is exact,
            # and parts of two decimals that differ at all differ by a fen).
            models.CheckConstraint(
                condition=models.Q(amount__gt=PARTS - HALF_FEN, amount__lt=PARTS + HALF_FEN),
                name="payment_parts_add_up",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "id"], name="payment_tenant_id"),
            models.Index(fields=["tenant", "account", "id"], name="payment_account"),
            models.Index(fields=["tenant", "paid_on"], name="payment_paid_on"),
            models.Index(
                fields=["tenant", "shift"],
                condition=models.Q(shift__isnull=False),
                name="payment_shift",
            ),
        ]
        triggers = [append_only("payment_append_only")]

    def __str__(self) -> str:
        return f"{self.channel} {self.amount}"


class PaymentReversal(TenantOwned):
    """冲正: a payment undone, with the reason and who did it. A payment is reversed once."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="reversals", db_index=False
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    reason = models.CharField(_("reason"), max_length=300)
    reversed_on = models.DateField(_("business day"))
    reversed_at = models.DateTimeField(default=timezone.now)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("reversed by"), max_length=200)

    site_path = "site"

    class Meta:
        verbose_name = _("payment reversal")
        verbose_name_plural = _("payment reversals")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "payment"], name="payment_reversed_once"),
        ]
        triggers = [append_only("payment_reversal_append_only")]


class PaymentAllocation(TenantOwned):
    """What a payment paid of one bill (or of the go-live arrears): its late fee and principal.
    A reversal adds the same row negated, naming the reversal, so an item's open amount is its
    total less the sum of its rows."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="allocations", db_index=False
    )
    reversal = models.ForeignKey(
        PaymentReversal,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="allocations",
        db_index=False,
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    bill = models.ForeignKey(
        Bill, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    opening = models.ForeignKey(
        OpeningBalance,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The go-live arrears, paid like the oldest bill."),
    )
    late_fee = models.DecimalField(_("late fee"), **MONEY)
    principal = models.DecimalField(_("principal"), **MONEY)

    site_path = "payment__site"

    class Meta:
        verbose_name = _("payment allocation")
        verbose_name_plural = _("payment allocations")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(bill__isnull=False, opening__isnull=True)
                | models.Q(bill__isnull=True, opening__isnull=False),
                name="allocation_one_item",
            ),
            models.CheckConstraint(
                condition=models.Q(reversal__isnull=True, late_fee__gte=0, principal__gte=0)
                | models.Q(reversal__isnull=False, late_fee__lte=0, principal__lte=0),
                name="allocation_sign",
            ),
            models.CheckConstraint(
                condition=~models.Q(late_fee=0, principal=0), name="allocation_not_zero"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "id"], name="allocation_account"),
            models.Index(fields=["tenant", "payment"], name="allocation_payment"),
        ]
        triggers = [append_only("payment_allocation_append_only")]


class Receipt(TenantOwned):
    """The receipt of a payment, numbered per tenant without gaps. It is void (作废) while its
    payment is reversed, and keeps its number."""

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="receipts", db_index=False
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    number = models.PositiveBigIntegerField(_("receipt number"))
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)

    site_path = "site"

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="receipt_number"),
            models.UniqueConstraint(fields=["tenant", "payment"], name="receipt_per_payment"),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="receipt_tenant_id")]
        triggers = [append_only("receipt_append_only")]

    def __str__(self) -> str:
        return self.display_number

    @property
    def display_number(self) -> str:
        return f"{self.number:010d}"


class DocumentPrint(TenantOwned):
    """A recorded print of a receipt (a payment's or a deposit's), numbered per document: copy 0
    is the original, printed once; copies 1, 2, … are reprints (重打), marked with their number.
    Only the copies of a recorded print are unmarked; any other view of the document is marked
    view-only (仅供查看). Who printed it and when; audited, append-only."""

    copy = models.PositiveIntegerField(
        _("print number"), help_text=_("0: the original; 1, 2, …: the reprints (重打).")
    )
    printed_at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("printed by"), max_length=200)

    class Meta:
        abstract = True

    @property
    def is_original(self) -> bool:
        return self.copy == 0


class ReceiptPrint(DocumentPrint):
    """A print of a payment's receipt: the original (copy 0) or a reprint (重打)."""

    receipt = models.ForeignKey(
        Receipt, on_delete=models.PROTECT, related_name="prints", db_index=False
    )

    site_path = "receipt__site"

    class Meta:
        verbose_name = _("receipt print")
        verbose_name_plural = _("receipt prints")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "receipt", "copy"], name="receipt_reprint"),
        ]
        triggers = [append_only("receipt_print_append_only")]


class AttemptOutcome(models.TextChoices):
    INVALID = "invalid", _("Invalid request")
    REFUSED = "refused", _("Refused by a rule")
    CONFLICT = "conflict", _("Idempotency key reused for another payment")
    REJECTED = "rejected", _("Rejected by the bank or provider")


class PaymentAttempt(TenantOwned):
    """A payment that did not happen: a request refused (bad input, a rule, a key reused for
    another payment) or a rejection a bank or provider reported. Written outside the failed
    transaction, so it survives the rollback; what was sent is kept as text, as sent."""

    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The payment posted first under the same key."),
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=AttemptOutcome.choices)
    code = models.CharField(_("code"), max_length=64)
    reason = models.CharField(_("reason"), max_length=500)
    fields = models.JSONField(_("field errors"), default=dict, blank=True)
    channel = models.CharField(_("channel"), max_length=32, blank=True)
    account_number = models.CharField(_("account number"), max_length=32, blank=True)
    amount = models.CharField(_("amount"), max_length=32, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, blank=True)
    external_reference = models.CharField(_("external reference"), max_length=64, blank=True)
    source = models.CharField(_("source"), max_length=48, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("by"), max_length=200)
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)

    site_path = "site"

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        indexes = [
            models.Index(fields=["tenant", "id"], name="payment_attempt_tenant_id"),
            models.Index(fields=["tenant", "account", "id"], name="payment_attempt_account"),
        ]
        triggers = [append_only("payment_attempt_append_only")]


# Cashier shifts


class ShiftState(models.TextChoices):
    OPEN = "open", pgettext_lazy("shift", "Open")
    PENDING = "pending", _("Difference awaiting approval")
    RECOUNT = "recount", _("Count rejected, to count again")
    CLOSED = "closed", pgettext_lazy("shift", "Closed")


class Shift(TenantOwned):
    """A cashier's shift at a site (日结): opened with a float (备用金), closed with the cash
    counted against what the ledger expects (see ``collection.services.shifts``).

    The figures fixed at close (expected, counted, differences) and the decision on a
    difference are kept on the row; every step is in the audit trail."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier_label = models.CharField(_("cashier"), max_length=200)
    state = models.CharField(
        _("state"), max_length=16, choices=ShiftState.choices, default=ShiftState.OPEN
    )
    float_amount = models.DecimalField(
        _("float"), help_text=_("备用金: change at opening."), **MONEY
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    drawer_start = models.DecimalField(
        help_text=_("The cashier's cash movements before the shift (ledger), its starting mark."),
        **MONEY,
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    drawer_end = models.DecimalField(null=True, blank=True, **MONEY)
    expected_cash = models.DecimalField(_("expected cash"), null=True, blank=True, **MONEY)
    expected_card = models.DecimalField(_("expected card"), null=True, blank=True, **MONEY)
    cash_payments = models.PositiveIntegerField(_("cash payments"), null=True, blank=True)
    card_payments = models.PositiveIntegerField(_("card payments"), null=True, blank=True)
    counted_cash = models.DecimalField(_("counted cash"), null=True, blank=True, **MONEY)
    counted_card = models.DecimalField(
        _("card settlement"),
        null=True,
        blank=True,
        help_text=_("The card terminal's settlement total."),
        **MONEY,
    )
    difference_cash = models.DecimalField(
        _("cash difference"), null=True, blank=True, help_text=_("Counted less expected."), **MONEY
    )
    difference_card = models.DecimalField(_("card difference"), null=True, blank=True, **MONEY)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    count_note = models.CharField(_("count note"), max_length=300, blank=True)
    counted_by_kind = models.CharField(max_length=16, blank=True)
    counted_by_id = models.BigIntegerField(null=True, blank=True)
    counted_by_label = models.CharField(_("counted by"), max_length=200, blank=True)
    decision_note = models.CharField(_("supervisor's note"), max_length=300, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by_kind = models.CharField(max_length=16, blank=True)
    decided_by_id = models.BigIntegerField(null=True, blank=True)
    decided_by_label = models.CharField(_("decided by"), max_length=200, blank=True)
    difference_entry = models.ForeignKey(
        JournalEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    site_path = "site"

    class Meta:
        verbose_name = _("cashier shift")
        verbose_name_plural = _("cashier shifts")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "cashier"],
                condition=models.Q(state="open"),
                name="shift_one_open_per_cashier",
            ),
            models.CheckConstraint(condition=models.Q(float_amount__gte=0), name="shift_float"),
        ]
        indexes = [
            models.Index(fields=["tenant", "id"], name="shift_tenant_id"),
            models.Index(fields=["tenant", "cashier", "id"], name="shift_cashier"),
        ]

    def __str__(self) -> str:
        return f"{self.cashier_label} {self.opened_at:%Y-%m-%d}"


class CashHandover(TenantOwned):
    """Cash handed to the bank (解款/缴存): Dr the bank's clearing account, Cr the cashier's
    cash on hand, once per bank slip."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier_label = models.CharField(_("cashier"), max_length=200)
    amount = models.DecimalField(_("amount"), **MONEY)
    bank = models.CharField(_("bank"), max_length=32, help_text=_("The bank's code: icbc, ccb…"))
    slip_reference = models.CharField(_("bank slip"), max_length=64)
    handed_on = models.DateField(_("handed over on"))
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("recorded by"), max_length=200)

    site_path = "site"

    class Meta:
        verbose_name = _("cash hand-over")
        verbose_name_plural = _("cash hand-overs")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "bank", "slip_reference"], name="cash_handover_slip"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="cash_handover_positive"),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="cash_handover_tenant_id")]
        triggers = [append_only("cash_handover_append_only")]


class CashApproval(TenantOwned):
    """A supervisor's approval of one cash top-up on a day the bank is closed (the holiday
    cash rule): for one account, cashier, business day and amount at most; used by one
    payment."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", db_index=False)
    cashier_label = models.CharField(_("cashier"), max_length=200)
    amount = models.DecimalField(_("amount"), help_text=_("The most the payment may be."), **MONEY)
    business_day = models.DateField(_("business day"))
    reason = models.CharField(_("reason"), max_length=300)
    created_at = models.DateTimeField(_("approved at"), default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("approved by"), max_length=200)
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The payment that used the approval."),
    )
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    site_path = "site"

    class Meta:
        verbose_name = _("holiday cash approval")
        verbose_name_plural = _("holiday cash approvals")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="cash_approval_positive"),
            models.UniqueConstraint(
                fields=["tenant", "payment"],
                condition=models.Q(payment__isnull=False),
                name="cash_approval_used_once",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="cash_approval_tenant_id")]


class CollectionPolicy(TenantSettings):
    """A tenant's cash rules: the holiday cash rule's cap a transaction and whether a cash
    top-up on a day the bank is closed needs a supervisor's approval."""

    holiday_cash_cap = models.DecimalField(
        _("holiday cash cap"),
        default=Decimal("5000.00"),
        help_text=_("The most a cash top-up may be when the bank is closed."),
        **MONEY,
    )
    holiday_cash_approval = models.BooleanField(
        _("holiday cash needs approval"),
        default=True,
        help_text=_("A cash top-up when the bank is closed needs a supervisor's approval."),
    )

    class Meta:
        verbose_name = _("collection policy")
        verbose_name_plural = _("collection policies")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(holiday_cash_cap__gt=0), name="collection_policy_cap"
            ),
        ]


# Deposits, refunds and account closings live in a module of their own (loaded here, so Django
# finds them with the app's other models).
from collection.deposit_models import (  # noqa: E402, F401
    AccountClosing,
    ClosingState,
    Deposit,
    DepositPolicy,
    DepositPrint,
    Refund,
    RefundChannel,
    RefundState,
)

# Recharge cards


class VoucherBatchState(models.TextChoices):
    GENERATED = "generated", _("Generated, not released")
    RELEASED = "released", _("Released for sale")
    VOID = "void", _("Void")


class VoucherCardState(models.TextChoices):
    UNREDEEMED = "unredeemed", _("Unredeemed")
    REDEEMED = "redeemed", _("Redeemed")
    VOID = "void", _("Void")
    EXPIRED = "expired", _("Expired")


class VoucherBatch(TenantOwned):
    """A batch of recharge cards (充值卡) of one face value, generated by a tenant
    administrator (see ``collection.services.vouchers``). The cards are a liability from the
    batch's release for sale until each is redeemed, voided or expires."""

    number = models.PositiveIntegerField(_("batch number"))
    face_value = models.DecimalField(_("face value"), **MONEY)
    count = models.PositiveIntegerField(_("number of cards"))
    expires_on = models.DateField(
        _("expires on"), help_text=_("The last day a card of the batch may be redeemed.")
    )
    utility = models.CharField(
        _("utility"),
        max_length=16,
        blank=True,
        help_text=_("The accounts the cards may be redeemed to; blank: any."),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=VoucherBatchState.choices,
        default=VoucherBatchState.GENERATED,
    )
    created_at = models.DateTimeField(_("generated at"), default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("generated by"), max_length=200)
    pins_downloaded_at = models.DateTimeField(_("PIN file downloaded at"), null=True, blank=True)
    pins_downloaded_by = models.CharField(_("PIN file downloaded by"), max_length=200, blank=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)
    released_by = models.CharField(_("released by"), max_length=200, blank=True)
    released_entry = models.ForeignKey(
        JournalEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    void_reason = models.CharField(_("reason voided"), max_length=300, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recharge card batch")
        verbose_name_plural = _("recharge card batches")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="voucher_batch_number"),
            models.CheckConstraint(
                condition=models.Q(face_value__gt=0), name="voucher_batch_face_value_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(count__gte=1, count__lte=10_000), name="voucher_batch_count"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="voucher_batch_tenant_id")]

    def __str__(self) -> str:
        return f"{self.number:06d}"


class VoucherPinFile(TenantOwned):
    """The serials and PINs of a batch, encrypted, kept only until the administrator who
    generated the batch downloads them once for printing: the row is deleted then."""

    batch = models.ForeignKey(
        VoucherBatch, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    content = models.TextField()

    class Meta:
        verbose_name = _("recharge card PIN file")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "batch"], name="voucher_pin_file_per_batch")
        ]


class VoucherCard(TenantOwned):
    """One recharge card: a printed serial (with a check digit) and a secret PIN, of which
    only a keyed hash is stored."""

    batch = models.ForeignKey(
        VoucherBatch, on_delete=models.PROTECT, related_name="cards", db_index=False
    )
    serial = models.CharField(_("serial"), max_length=16)
    pin_hash = models.CharField(max_length=64)
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=VoucherCardState.choices,
        default=VoucherCardState.UNREDEEMED,
    )
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The payment the card was redeemed as."),
    )
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    unlocked_at = models.DateTimeField(
        _("unlocked at"),
        null=True,
        blank=True,
        help_text=_("An administrator cleared the wrong PINs counted before this time."),
    )
    void_reason = models.CharField(_("reason voided"), max_length=300, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    expired_on = models.DateField(_("expired on"), null=True, blank=True)

    class Meta:
        verbose_name = _("recharge card")
        verbose_name_plural = _("recharge cards")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "serial"], name="voucher_card_serial"),
            models.CheckConstraint(
                condition=models.Q(state="redeemed", payment__isnull=False)
                | ~models.Q(state="redeemed"),
                name="voucher_card_redeemed_has_payment",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "batch", "state"], name="voucher_card_batch_state"),
            models.Index(fields=["tenant", "id"], name="voucher_card_tenant_id"),
        ]

    def __str__(self) -> str:
        return self.serial


class VoucherPinFailure(TenantOwned):
    """A wrong PIN (or a serial that does not exist) at a redemption: counted per serial to
    lock a card, and per actor to stop one person or client sweeping serials."""

    serial = models.CharField(_("serial"), max_length=32)
    card = models.ForeignKey(
        VoucherCard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    failed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("wrong recharge card PIN")
        indexes = [
            models.Index(fields=["tenant", "serial", "failed_at"], name="voucher_failure_serial"),
            models.Index(
                fields=["tenant", "actor_kind", "actor_id", "failed_at"],
                name="voucher_failure_actor",
            ),
        ]
        triggers = [append_only("voucher_pin_failure_append_only")]
