"""Bill runs, bills and their lines, and prepaid charges.

A bill is priced from one PeriodConsumption and never edited once issued: a correction is a
credit note (the bill's lines negated) and, where the consumption changed, a re-bill. Draft
bills that fail an automatic check wait as ``FlaggedBill`` rows for a verifier to approve or
void.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Account
from ledger.models import MONEY, JournalEntry
from metering.models import ENERGY
from tenancy.models import Site, Tenant
from tenancy.money import DecimalShape
from tenancy.progress import is_stalled
from tenancy.scoping import TenantOwned, WorkItem

PRICE: DecimalShape = {"max_digits": 12, "decimal_places": 6}


class RunState(models.TextChoices):
    RUNNING = "running", _("Pricing")
    DRAFTED = "drafted", _("Drafted, awaiting approval")
    ISSUING = "issuing", _("Approved, issuing")
    ISSUED = "issued", _("Issued")


class BillRun(TenantOwned):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    period = models.CharField(_("period"), max_length=7)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.RUNNING)
    total = models.PositiveIntegerField(_("accounts"), default=0)
    done = models.PositiveIntegerField(_("accounts done"), default=0)
    bills = models.PositiveIntegerField(_("bills"), default=0)
    flagged = models.PositiveIntegerField(_("bills flagged"), default=0)
    issued = models.PositiveIntegerField(_("bills issued"), default=0)
    voided = models.PositiveIntegerField(
        _("bills voided"),
        default=0,
        help_text=_("Drafts of the run voided since; the amount no longer counts them."),
    )
    shards = models.PositiveSmallIntegerField(
        _("workers"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(16)],
        help_text=_("Shares of the accounts priced and issued side by side."),
    )
    held_back = models.JSONField(_("held back"), default=dict, blank=True)
    amount = models.DecimalField(_("amount"), default=0, **MONEY)
    supplementary = models.BooleanField(
        _("supplementary"),
        default=False,
        help_text=_("A catch-up run: bills the accounts of the site and period that have no "
                    "bill yet (held back before, or added since), earlier periods first."),
    )  # fmt: skip
    started_by_kind = models.CharField(max_length=16)
    started_by_id = models.BigIntegerField(null=True, blank=True)
    started_by_label = models.CharField(max_length=200)
    approved_by_kind = models.CharField(max_length=16, blank=True)
    approved_by_id = models.BigIntegerField(null=True, blank=True)
    approved_by_label = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(
        _("last progress"),
        default=timezone.now,
        help_text=_("When a chunk of accounts was last priced or issued (or the stage began)."),
    )

    site_path = "site"

    class Meta:
        verbose_name = _("bill run")
        verbose_name_plural = _("bill runs")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "site", "period"],
                condition=models.Q(supplementary=False),
                name="bill_run_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site_id} {self.period}"

    @property
    def stalled(self) -> bool:
        """Pricing or issuing, with no chunk committed for longer than the stall threshold
        (``tenancy.progress``): its worker most likely died."""
        return self.state in (RunState.RUNNING, RunState.ISSUING) and is_stalled(self.progressed_at)


class BillRunShard(TenantOwned):
    """One share of a run's accounts (account id modulo the run's shards), priced and issued by
    a worker of its own: each worker locks only its own shard, so shards run side by side, and
    a worker that stops resumes after its shard's cursor."""

    run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="parts")
    shard = models.PositiveSmallIntegerField()
    cursor = models.BigIntegerField(default=0, help_text="The last account priced.")
    held_back = models.JSONField(default=dict, blank=True)
    priced = models.BooleanField(default=False)
    issued = models.BooleanField(default=False)

    site_path = "run__site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "run", "shard"], name="bill_run_shard"),
        ]


class IdListField(models.JSONField):
    """A JSON list of ids, with ``field__includes=id``: whether the list holds ``id``."""


@IdListField.register_lookup
class Includes(models.Lookup):
    """``field__includes=id`` on a JSON list of ids: jsonb containment on PostgreSQL; on SQLite,
    where Django has no ``contains`` for JSON, a look through ``json_each``."""

    lookup_name = "includes"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        wanted = int(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} @> %s::jsonb", (*lhs_params, json.dumps([wanted]))
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)",  # noqa: S608 - a column
            (*lhs_params, wanted),
        )


class BillKind(models.TextChoices):
    BILL = "bill", _("Bill")
    CREDIT_NOTE = "credit_note", _("Credit note")
    REBILL = "rebill", _("Re-bill")


class BillState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    VOID = "void", _("Void")


class Bill(TenantOwned):
    # Tenant and site are copied from the account, whose own keys guarantee them; a bill run
    # writes a hundred thousand bills, and each key checked costs a lookup a row at commit.
    # Indexes: the composite ones below serve tenant, site and run lookups; every extra index
    # is maintained on each of a run's inserts and issues.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    site = models.ForeignKey(
        Site, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="bills")
    run = models.ForeignKey(
        BillRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    period = models.CharField(_("period"), max_length=7)
    kind = models.CharField(max_length=16, choices=BillKind.choices, default=BillKind.BILL)
    state = models.CharField(max_length=16, choices=BillState.choices, default=BillState.DRAFT)
    corrects = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        db_index=False,
    )
    number = models.CharField(
        _("bill number"),
        max_length=20,
        help_text=_("Given when drafted (year and the tenant's serial); a void keeps it."),
    )
    supplementary = models.BooleanField(
        _("supplementary"), default=False, help_text=_("Billed by a catch-up run.")
    )
    cause = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The correction of an earlier period whose change of the tier year's "
                    "consumption re-priced this bill."),
    )  # fmt: skip
    utility = models.CharField(max_length=16)
    starts_on = models.DateField()
    ends_on = models.DateField()
    total = models.DecimalField(_("amount due"), **MONEY)
    tax_total = models.DecimalField(_("tax"), **MONEY)
    consumption = models.JSONField(default=dict, help_text=_("The priced determinants."))
    tariff_versions = IdListField(
        default=list,
        blank=True,
        help_text=_("The tariff versions that priced the bill's days, in their order."),
    )
    opening = models.JSONField(default=list)
    closing = models.JSONField(default=list)
    annual_quantities = models.JSONField(
        default=dict, help_text=_("kWh counted towards annual tiers, by calendar year.")
    )
    posting = models.JSONField(
        default=dict,
        help_text=_("Net amount and tax per revenue component: what issuing posts."),
    )
    checks = models.CharField(_("checks that fired"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    buyer_name = models.CharField(max_length=200)
    buyer_tax_id = models.CharField(
        _("buyer's unified social credit code"), max_length=18, blank=True
    )
    tax_code = models.CharField(_("tax classification code"), max_length=19)
    payment_reference = models.CharField(
        _("payment reference"),
        max_length=32,
        blank=True,
        help_text=_("The bill number and a check digit: what a payer quotes (none on a credit "
                    "note)."),
    )  # fmt: skip
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    entry = models.ForeignKey(
        JournalEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,  # set with the entry it names, in the same transaction
        help_text=_("The journal entry that posted the bill (with the others of its batch)."),
    )
    created_by_kind = models.CharField(max_length=16)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_by_label = models.CharField(max_length=200)
    approved_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    issued_at = models.DateTimeField(null=True, blank=True)

    site_path = "site"

    class Meta:
        verbose_name = _("bill")
        verbose_name_plural = _("bills")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "run", "account", "period"],
                condition=models.Q(run__isnull=False),
                name="bill_one_per_account_and_run",
            ),
            models.UniqueConstraint(fields=["tenant", "number"], name="bill_number"),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "period"], name="bill_account_period"),
            # The account, state, kind and corrected bill too: a period page counts the accounts
            # billed (credit notes netted out) from the index alone, not by reading every bill;
            # and the days and tariff versions: so are the issued bills a backdated tariff
            # version would leave at the old prices.
            models.Index(
                fields=["tenant", "site", "period", "account"],
                include=["state", "kind", "corrects", "starts_on", "ends_on", "tariff_versions"],
                name="bill_site_period",
            ),
            # A run's bills in id order: issuing walks them from a cursor, chunk by chunk.
            models.Index(fields=["tenant", "run", "id"], name="bill_run_id"),
        ]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"

    @property
    def source_type(self) -> str:
        return "credit_note" if self.kind == BillKind.CREDIT_NOTE else "bill"


class BillLine(TenantOwned):
    tenant = models.ForeignKey(  # copied from the bill (see Bill.tenant)
        Tenant, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    # Written only with its bill, in the same statement batch (``draft_rows``, credit notes),
    # and bills are never deleted: a key check per line at commit would cost a run more than
    # pricing the line.
    bill = models.ForeignKey(
        Bill, on_delete=models.DO_NOTHING, related_name="lines", db_constraint=False
    )
    position = models.PositiveSmallIntegerField()
    component = models.CharField(max_length=32)
    label = models.CharField(max_length=100)
    label_en = models.CharField(max_length=100)
    quantity = models.DecimalField(**ENERGY)
    unit = models.CharField(max_length=8)
    unit_price = models.DecimalField(**PRICE)
    amount = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    tax = models.DecimalField(**MONEY)
    starts_on = models.DateField()
    ends_on = models.DateField()

    site_path = "bill__site"

    class Meta:
        ordering = ["bill", "position"]


class BillCheck(models.TextChoices):
    """Automatic checks of a draft bill; one that fires flags the bill for review."""

    ZERO_BILL = "zero_bill", _("Zero bill")
    NEGATIVE_BILL = "negative_bill", _("Negative bill")
    FAR_FROM_HISTORY = "far_from_history", _("Far from the account's history")
    REBILL = "rebill", _("Re-bill to approve")
    CREDIT_NOTE = "credit_note", _("Credit note to approve")


class ReviewState(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class FlaggedBill(TenantOwned, WorkItem):
    """A draft bill held for a verifier's review: a check fired (zero, negative, far from the
    account's history) or it is a re-bill. Approving issues it; voiding closes it. Verifiers
    review these beside the suspect readings of the verification queue."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="+", db_index=False)
    first_check = models.CharField(
        _("check"), max_length=32, help_text=_("The first check that fired, for filtering.")
    )
    checks = models.CharField(_("checks that fired"), max_length=100)
    state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.OPEN)

    site_path = "site"

    class Meta:
        verbose_name = _("flagged bill")
        verbose_name_plural = _("flagged bills")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "bill"], name="flagged_bill_once"),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "-id"], name="flagged_bill_open"),
            models.Index(fields=["tenant", "site", "first_check"], name="flagged_bill_check"),
        ]


class PrepaidCharge(TenantOwned):
    """One priced stretch of a prepaid account's validated consumption: the reading pair is the
    source, so the same consumption is never charged twice."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="prepaid_charges")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    from_taken_at = models.DateTimeField()
    to_taken_at = models.DateTimeField()
    opening = models.JSONField()
    closing = models.JSONField()
    consumption = models.JSONField()
    lines = models.JSONField()
    amount = models.DecimalField(**MONEY)
    tax = models.DecimalField(**MONEY)
    annual_quantities = models.JSONField(default=dict)
    tariff_versions = IdListField(
        default=list,
        blank=True,
        help_text=_("The tariff versions that priced the charge's days, in their order."),
    )
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    charged_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        verbose_name = _("prepaid charge")
        verbose_name_plural = _("prepaid charges")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "from_taken_at"], name="prepaid_charge_pair_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(to_taken_at__gt=models.F("from_taken_at")),
                name="prepaid_charge_forward",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "-to_taken_at"], name="prepaid_charge_last"),
            # What a new tariff version from a day finds priced from that day on (backdating,
            # removal), without reading every charge of the tenant.
            models.Index(
                fields=["tenant", "to_taken_at"],
                include=["from_taken_at", "tariff_versions"],
                name="prepaid_charge_to",
            ),
        ]


class OpeningBalance(TenantOwned):
    """What the previous system says of an account at go-live: its arrears (negative: credit
    on account), posted to its receivable, and the kWh it had used in the tier year, which
    annual tiers count before the first bill here."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    arrears = models.DecimalField(_("opening arrears"), **MONEY)
    tier_year = models.PositiveSmallIntegerField(_("tier year"))
    tier_kwh = models.DecimalField(_("tier year consumption before go-live"), **ENERGY)
    entry = models.ForeignKey(
        JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    imported_by_label = models.CharField(max_length=200)
    imported_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        verbose_name = _("opening balance")
        verbose_name_plural = _("opening balances")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account"], name="opening_balance_once"),
        ]
