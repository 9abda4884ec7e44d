"""Inspection (稽查): a sample of a period's readings and bills drawn for re-check, its items,
and the finding an inspector records on each item.

A sample is reproducible: it keeps the seed it was drawn with and, item by item, the ids of the
readings and bills chosen. Each item names the person responsible for the object as it stands
(who entered the reading by hand, who approved it in the verification queue, who approved the
correction standing in for it, who approved the bill run); a finding is addressed to that
person, who sees it among "my findings" and acknowledges it, and it counts in their KPIs.
Findings are never deleted: an acknowledgement is added to them.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import Bill
from metering.models import Reading
from tenancy.models import Site
from tenancy.scoping import TenantOwned
from verification.models import ReadingCorrection

MAX_SAMPLE_PART = 100


class SampleState(models.TextChoices):
    OPEN = "open", _("Being checked")
    COMPLETED = "completed", _("Every item checked")


class InspectionSample(TenantOwned):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.CharField(_("period"), max_length=7, help_text="YYYY-MM")
    staff_id = models.BigIntegerField(_("staff member"), null=True, blank=True)
    staff_label = models.CharField(_("staff member"), max_length=200, blank=True)
    readings_asked = models.PositiveSmallIntegerField(
        _("readings asked for"), validators=[MaxValueValidator(MAX_SAMPLE_PART)]
    )
    bills_asked = models.PositiveSmallIntegerField(
        _("bills asked for"), validators=[MaxValueValidator(MAX_SAMPLE_PART)]
    )
    seed = models.BigIntegerField(
        _("seed"), help_text=_("Drawing again with this seed from the same data picks the same.")
    )
    size = models.PositiveSmallIntegerField(_("items"), default=0)
    checked = models.PositiveSmallIntegerField(_("items checked"), default=0)
    findings = models.PositiveSmallIntegerField(_("findings"), default=0)
    state = models.CharField(
        _("state"), max_length=16, choices=SampleState.choices, default=SampleState.OPEN
    )
    drawn_by_kind = models.CharField(max_length=16)
    drawn_by_id = models.BigIntegerField(null=True, blank=True)
    drawn_by_label = models.CharField(_("drawn by"), max_length=200)
    drawn_at = models.DateTimeField(_("drawn at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    site_path = "site"

    class Meta:
        verbose_name = _("inspection sample")
        verbose_name_plural = _("inspection samples")
        indexes = [
            models.Index(fields=["tenant", "-id"], name="inspection_sample_id"),
            models.Index(fields=["tenant", "site", "-id"], name="inspection_sample_site"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(checked__lte=models.F("size")), name="sample_checked_le_size"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pk} {self.period}"

    @property
    def percent_checked(self) -> int:
        return round(100 * self.checked / self.size) if self.size else 100


class ItemKind(models.TextChoices):
    READING = "reading", _("Reading")
    BILL = "bill", _("Bill")


class Responsibility(models.TextChoices):
    """Why a person answers for an object: what they did to it."""

    ENTERED = "entered", _("Entered the reading by hand")
    APPROVED = "approved", _("Approved the suspect reading")
    CORRECTED = "corrected", _("Approved the correction")
    BILL_RUN_APPROVED = "bill_run_approved", _("Approved the bill run")
    NOBODY = "", _("Nobody (read and checked automatically)")


# Findings on these count as "corrections later found wrong" in the KPIs.
VERIFIER_RESPONSIBILITIES = (Responsibility.APPROVED, Responsibility.CORRECTED)


class ItemState(models.TextChoices):
    PENDING = "pending", _("To check")
    CHECKED = "checked", _("Checked")


class SampleItem(TenantOwned):
    """One reading or bill of a sample, with the person who answers for it."""

    sample = models.ForeignKey(
        InspectionSample, on_delete=models.PROTECT, related_name="items", db_index=False
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    position = models.PositiveSmallIntegerField(_("number"))
    kind = models.CharField(_("kind"), max_length=8, choices=ItemKind.choices)
    reading = models.ForeignKey(
        Reading, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    correction = models.ForeignKey(
        ReadingCorrection,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text=_("The approved correction standing in for the reading, if any."),
    )
    bill = models.ForeignKey(
        Bill, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    responsible_id = models.BigIntegerField(null=True, blank=True)
    responsible_label = models.CharField(_("responsible"), max_length=200, blank=True)
    responsibility = models.CharField(
        _("responsible for"), max_length=20, choices=Responsibility.choices, blank=True
    )
    state = models.CharField(
        _("state"), max_length=8, choices=ItemState.choices, default=ItemState.PENDING
    )

    site_path = "site"

    class Meta:
        verbose_name = _("sample item")
        verbose_name_plural = _("sample items")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sample", "position"], name="sample_item_position"
            ),
            models.CheckConstraint(
                condition=(models.Q(kind="bill") & models.Q(bill__isnull=False))
                | (
                    models.Q(kind="reading")
                    & (models.Q(reading__isnull=False) | models.Q(correction__isnull=False))
                ),
                name="sample_item_names_its_object",
            ),
        ]


class Outcome(models.TextChoices):
    OK = "ok", _("No finding")
    FINDING = "finding", _("Finding")


class Category(models.TextChoices):
    MISREAD = "misread", _("Value misread or mistyped")
    WRONG_APPROVAL = "wrong_approval", _("Suspect reading approved without cause")
    WRONG_CORRECTION = "wrong_correction", _("Correction or estimate wrong")
    MISSING_REASON = "missing_reason", _("Reason missing or not convincing")
    WRONG_TARIFF = "wrong_tariff", _("Wrong tariff or price")
    WRONG_AMOUNT = "wrong_amount", _("Wrong quantity or amount")
    OTHER = "other", _("Other")


class Severity(models.TextChoices):
    MINOR = "minor", _("Minor")
    MAJOR = "major", _("Major")
    CRITICAL = "critical", _("Critical")


class FindingState(models.TextChoices):
    CLOSED = "closed", _("Closed (no finding)")
    OPEN = "open", _("Awaiting acknowledgement")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


class Finding(TenantOwned):
    """What an inspector found on one item: nothing (ok), or a finding with a category and a
    severity, addressed to the person responsible for the item."""

    item = models.ForeignKey(
        SampleItem, on_delete=models.PROTECT, related_name="findings", db_index=False
    )
    sample = models.ForeignKey(
        InspectionSample, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(_("kind"), max_length=8, choices=ItemKind.choices)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, blank=True)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, blank=True)
    note = models.TextField(_("note"), max_length=2000, blank=True)
    responsible_id = models.BigIntegerField(null=True, blank=True)
    responsible_label = models.CharField(_("responsible"), max_length=200, blank=True)
    responsibility = models.CharField(
        _("responsible for"), max_length=20, choices=Responsibility.choices, blank=True
    )
    state = models.CharField(_("state"), max_length=16, choices=FindingState.choices)
    recorded_by_kind = models.CharField(max_length=16)
    recorded_by_id = models.BigIntegerField(null=True, blank=True)
    recorded_by_label = models.CharField(_("inspector"), max_length=200)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    response = models.TextField(_("response"), max_length=2000, blank=True)

    site_path = "site"

    class Meta:
        verbose_name = _("finding")
        verbose_name_plural = _("findings")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "item"], name="finding_one_per_item"),
            models.CheckConstraint(
                condition=(models.Q(outcome="ok") & models.Q(severity="") & models.Q(category=""))
                | (models.Q(outcome="finding") & ~models.Q(severity="") & ~models.Q(category="")),
                name="finding_severity_only_on_findings",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="finding_id"),
            models.Index(
                fields=["tenant", "responsible_id", "state", "-id"], name="finding_responsible"
            ),
            models.Index(fields=["tenant", "recorded_at"], name="finding_recorded_at"),
        ]


__all__ = [
    "MAX_SAMPLE_PART",
    "Category",
    "Finding",
    "FindingState",
    "InspectionSample",
    "ItemKind",
    "ItemState",
    "Outcome",
    "Responsibility",
    "SampleItem",
    "SampleState",
    "Severity",
]
