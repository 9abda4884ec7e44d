"""Deposits (押金), refunds (退款) and account closings (销户): the models.

Kept apart from ``collection.models`` (payments and receipts) and loaded by it, so the app's
models stay one import away.

- A ``DepositPolicy`` says, per utility and customer class, how much deposit an account needs
  (non-residential electricity: 2,000 yuan, say). A ``Deposit`` is money taken at the counter
  and held on the account's deposit ledger account; it is append-only, with its own gap-free
  receipt number (see ``collection.services.deposits``).
- A ``Refund`` pays back credit on account (the wallet) and deposit money. It moves through
  requested → approved → paid, or requested → rejected; each step names who did it. The
  postings are journal entries of their own (approval: Dr wallet and deposit, Cr refunds
  payable; payment: Dr refunds payable, Cr cash on hand or a clearing account).
- The customer's bank account a transfer refund is paid to is personal data: stored encrypted
  (``tenancy.fields``) and shown masked (``6222 **** **** 1234``) to everyone; the person who
  pays the approved transfer reveals it in full, and every reveal is audited. A closing's payout
  keeps it encrypted too until its refund is requested.
- An ``AccountClosing`` records the closing of an account in its steps (final reading taken,
  then the final bill, the settlement and the refund in one transaction) so a closing waiting
  for its final reading's verification resumes where it stopped, never half done.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from billing.models import Bill, PrepaidCharge
from collection.models import Channel, DocumentPrint, append_only
from customers.identifiers import mask_bank_account
from customers.models import Account, CustomerClass, Utility
from ledger.models import MONEY, JournalEntry
from metering.models import Reading
from tenancy.fields import EncryptedCharField
from tenancy.models import Site
from tenancy.scoping import TenantOwned

DEPOSIT_CHANNELS = (Channel.COUNTER_CASH, Channel.COUNTER_CARD)
DEPOSIT_CHANNEL_CHOICES = [(channel.value, channel.label) for channel in DEPOSIT_CHANNELS]


class DepositPolicy(TenantOwned):
    """How much deposit an account of a utility and customer class needs (tenant-wide)."""

    utility = models.CharField(_("utility"), max_length=16, choices=Utility.choices)
    customer_class = models.CharField(
        _("customer class"), max_length=16, choices=CustomerClass.choices
    )
    amount = models.DecimalField(_("deposit required"), **MONEY)
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    site_path = None

    class Meta:
        verbose_name = _("deposit policy")
        verbose_name_plural = _("deposit policies")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "utility", "customer_class"], name="deposit_policy_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="deposit_policy_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.utility} {self.customer_class} {self.amount}"


class Deposit(TenantOwned):
    """A deposit taken at the counter: Dr the receiving account, Cr the account's deposit."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=DEPOSIT_CHANNEL_CHOICES)
    amount = models.DecimalField(_("amount"), **MONEY)
    external_reference = models.CharField(
        _("external reference"),
        max_length=64,
        blank=True,
        help_text=_("The card terminal's slip reference of a card deposit."),
    )
    shift = models.ForeignKey(
        "Shift",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The cashier's shift the deposit was taken in (日结)."),
    )
    source = models.CharField(_("source"), max_length=48)
    idempotency_key = models.CharField(_("idempotency key"), max_length=64)
    digest = models.CharField(max_length=64)
    receipt_number = models.PositiveBigIntegerField(_("receipt number"))
    taken_on = models.DateField(_("business day"))
    taken_at = models.DateTimeField(_("taken at"), default=timezone.now)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("taken by"), max_length=200)

    site_path = "site"

    class Meta:
        verbose_name = _("deposit")
        verbose_name_plural = _("deposits")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source", "idempotency_key"], name="deposit_idempotency_key"
            ),
            models.UniqueConstraint(
                fields=["tenant", "receipt_number"], name="deposit_receipt_number"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="deposit_positive"),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "id"], name="deposit_account"),
            models.Index(
                fields=["tenant", "shift"],
                condition=models.Q(shift__isnull=False),
                name="deposit_shift",
            ),
        ]
        triggers = [append_only("deposit_append_only")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount}"

    @property
    def display_receipt_number(self) -> str:
        """Deposit receipts are numbered apart from payment receipts, marked Y (押)."""
        return f"Y{self.receipt_number:010d}"


class DepositPrint(DocumentPrint):
    """A print of a deposit's receipt: the original (copy 0) or a reprint (重打)."""

    deposit = models.ForeignKey(
        Deposit, on_delete=models.PROTECT, related_name="prints", db_index=False
    )

    site_path = "deposit__site"

    class Meta:
        verbose_name = _("deposit receipt print")
        verbose_name_plural = _("deposit receipt prints")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "deposit", "copy"], name="deposit_receipt_print"
            ),
        ]
        triggers = [append_only("deposit_print_append_only")]


class RefundState(models.TextChoices):
    REQUESTED = "requested", pgettext_lazy("refund", "Requested")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    PAID = "paid", pgettext_lazy("refund", "Paid")


class RefundChannel(models.TextChoices):
    CASH = "cash", _("Cash at the counter")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer to the customer")
    ORIGINAL = "original", _("Back to the online provider")


class Refund(TenantOwned):
    """A refund of credit on account (from the wallet) and of deposit money."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    from_wallet = models.DecimalField(
        _("credit refunded"), help_text=_("From the wallet: credit on account."), **MONEY
    )
    from_deposit = models.DecimalField(_("deposit refunded"), **MONEY)
    amount = models.DecimalField(_("amount"), **MONEY)
    channel = models.CharField(_("refund method"), max_length=16, choices=RefundChannel.choices)
    payee_bank_account = EncryptedCharField(
        _("customer's bank account"), mask=mask_bank_account
    )  # personal data: stored encrypted, shown masked, revealed (audited) to whoever pays it
    payee_bank = models.CharField(_("customer's bank"), max_length=100, blank=True)
    provider = models.CharField(_("online provider"), max_length=32, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    state = models.CharField(
        _("state"), max_length=16, choices=RefundState.choices, default=RefundState.REQUESTED
    )
    requested_at = models.DateTimeField(default=timezone.now)
    requested_by_kind = models.CharField(max_length=16)
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    requested_by_label = models.CharField(_("requested by"), max_length=200)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by_kind = models.CharField(max_length=16, blank=True)
    decided_by_id = models.BigIntegerField(null=True, blank=True)
    decided_by_label = models.CharField(_("approved or rejected by"), max_length=200, blank=True)
    rejection_reason = models.CharField(_("why rejected"), max_length=300, blank=True)
    approval_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by_kind = models.CharField(max_length=16, blank=True)
    paid_by_id = models.BigIntegerField(null=True, blank=True)
    paid_by_label = models.CharField(_("paid by"), max_length=200, blank=True)
    payment_reference = models.CharField(
        _("payment reference"),
        max_length=64,
        blank=True,
        help_text=_("The bank's or provider's reference of the payout."),
    )
    payment_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip

    site_path = "site"

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(from_wallet__gte=0, from_deposit__gte=0, amount__gt=0),
                name="refund_parts_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(amount=models.F("from_wallet") + models.F("from_deposit")),
                name="refund_parts_add_up",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "state"], name="refund_account_state"),
            models.Index(fields=["tenant", "state", "id"], name="refund_state"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount} {self.state}"

    @property
    def payee_bank_account_masked(self) -> str:
        return mask_bank_account(self.payee_bank_account) if self.payee_bank_account else ""


class ClosingState(models.TextChoices):
    STARTED = "started", _("Final reading taken, settlement pending")
    CLOSED = "closed", pgettext_lazy("account closing", "Closed")
    CANCELLED = "cancelled", pgettext_lazy("account closing", "Cancelled")


class AccountClosing(TenantOwned):
    """销户: an account's closing, its final reading, final bill and settlement."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=False)
    reason = models.CharField(_("reason"), max_length=300)
    state = models.CharField(_("state"), max_length=24, choices=ClosingState.choices)
    final_reading = models.ForeignKey(
        Reading, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    final_taken_at = models.DateTimeField(_("final reading taken at"))
    bill = models.ForeignKey(
        Bill, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    prepaid_charge = models.ForeignKey(
        PrepaidCharge, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    settlement_entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_index=False,
    )  # fmt: skip
    refund = models.ForeignKey(
        Refund, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    hold_reason = models.CharField(
        _("why it waits"),
        max_length=500,
        blank=True,
        help_text=_("What stops the settlement: the final reading awaiting verification, …"),
    )
    payout = models.JSONField(
        _("refund payout"),
        default=dict,
        blank=True,
        help_text=_("How a refund left over is to be paid: channel, bank account, provider."),
    )
    figures = models.JSONField(
        _("final figures"),
        default=dict,
        blank=True,
        help_text=_("Owed, credit and deposit applied, refund and arrears left."),
    )
    started_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(_("closed by"), max_length=200)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)
    cancelled_by_label = models.CharField(_("cancelled by"), max_length=200, blank=True)

    site_path = "site"

    class Meta:
        verbose_name = _("account closing")
        verbose_name_plural = _("account closings")
        constraints = [
            # One closing under way or done per account; a cancelled one leaves room for another.
            models.UniqueConstraint(
                fields=["tenant", "account"],
                condition=~models.Q(state="cancelled"),
                name="account_closed_once",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="account_closing_tenant_id")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.state}"
