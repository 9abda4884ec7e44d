"""The double-entry ledger every amount of money lands in.

Ledger accounts belong to a tenant: per customer account (户号) a receivable, a wallet (the
prepaid balance, or a postpaid account's credit on account) and a deposit; revenue per utility
and component, VAT payable per utility; and the accounts of the collect stage, each named by
its ``holder``: cash on hand per cashier, clearing per bank or terminal (its API client) and per
online provider, voucher liability, refunds payable and late-fee revenue.

A journal entry is a set of lines that sum to zero; it is written only by
``ledger.services.post_entry`` (or its bulk twin for bill runs), which is idempotent on (tenant,
source type, source id): a retry returns the first posting, a different payload under the same
source is refused.

Amounts are signed: a debit is positive, a credit negative. A receivable's balance is what the
customer owes; a wallet's balance is negative while the customer has credit (the utility owes
it). The cached ``balance`` on a ledger account is a convenience: it is always re-derivable from
the lines, and ``manage.py ledger_check`` proves it.

On PostgreSQL the database enforces what the service checks: a deferred constraint trigger sums
each entry's lines once at commit (not once per line), lines can only be added to an entry in
the transaction that created it (migration 0002 writes these insert triggers in plain PL/pgSQL:
they run for every posting, and pgtrigger's wrapper opens a subtransaction each call, which cost
0.35 ms an entry), and neither entries nor lines can be updated or deleted (pgtrigger Protect).
"""

from __future__ import annotations

import pgtrigger
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Account
from tenancy.models import Site, Tenant
from tenancy.money import DecimalShape
from tenancy.scoping import TenantOwned

MONEY: DecimalShape = {"max_digits": 16, "decimal_places": 2}


class LedgerKind(models.TextChoices):
    RECEIVABLE = "receivable", _("Customer receivable")
    WALLET = "wallet", _("Customer wallet")
    DEPOSIT = "deposit", _("Customer deposit")
    REVENUE = "revenue", _("Revenue")
    VAT_PAYABLE = "vat_payable", _("VAT payable")
    CLEARING = "clearing", _("Clearing")
    CASH = "cash", _("Cash on hand")
    VOUCHER = "voucher", _("Voucher liability")
    REFUNDS_PAYABLE = "refunds_payable", _("Refunds payable")
    LATE_FEES = "late_fees", _("Late-fee revenue")
    CASH_OVER_SHORT = "cash_over_short", _("Cash over and short")


class LedgerAccount(TenantOwned):
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerKind.choices)
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_accounts",
        help_text=_("The customer account of a receivable, wallet or deposit."),
    )
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    utility = models.CharField(_("utility"), max_length=16, blank=True)
    component = models.CharField(_("component"), max_length=32, blank=True)
    holder = models.CharField(
        _("holder"),
        max_length=64,
        blank=True,
        help_text=_(
            "Who holds the money of a cash or clearing account: a cashier (user:12), a bank or "
            "terminal (client:3), an online provider (provider:wechat) or the card acquirer."
        ),
    )
    name = models.CharField(_("name"), max_length=200)
    balance = models.DecimalField(
        _("balance"), default=0, help_text=_("Debit positive; re-derivable from lines."), **MONEY
    )

    site_path = "site"

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "account"],
                condition=models.Q(account__isnull=False),
                name="ledger_account_customer_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "kind", "utility", "component", "holder"],
                condition=models.Q(account__isnull=True),
                name="ledger_account_tenant_unique",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="ledger_account_tenant_id")]

    def __str__(self) -> str:
        return self.name


class JournalEntry(TenantOwned):
    source_type = models.CharField(_("source type"), max_length=32)
    source_id = models.CharField(_("source id"), max_length=80)
    digest = models.CharField(
        max_length=64,
        help_text=_("Hash of the lines, to refuse a retry that posts something else."),
    )
    site = models.ForeignKey(  # copied from the source (a bill's site); no key check a row
        Site,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    memo = models.CharField(_("memo"), max_length=200, blank=True)
    booked_on = models.DateField(_("booking date"))
    posted_at = models.DateTimeField(default=timezone.now)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    txid = models.BigIntegerField(
        null=True, blank=True, editable=False, help_text="Set by the database on PostgreSQL."
    )

    site_path = "site"

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source_type", "source_id"], name="journal_entry_source_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="journal_entry_tenant_id")]
        triggers = [
            pgtrigger.Protect(
                name="journal_entry_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id}"


class JournalLine(TenantOwned):
    # The tenant is copied from the entry, whose key guarantees it: one key check less a line.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="lines")
    ledger_account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="lines", db_index=False
    )
    amount = models.DecimalField(
        _("amount"), help_text=_("Debit positive, credit negative."), **MONEY
    )
    reference = models.CharField(
        _("reference"), max_length=32, blank=True, help_text=_('The document, e.g. "bill:42".')
    )

    site_path = "entry__site"

    class Meta:
        verbose_name = _("journal line")
        verbose_name_plural = _("journal lines")
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="journal_line_not_zero"),
        ]
        indexes = [
            models.Index(fields=["tenant", "ledger_account", "id"], name="journal_line_account"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="journal_line_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ledger_account_id} {self.amount}"
