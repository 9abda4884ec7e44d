"""Verification (核): the checks beside each raw reading, the verifiers' queue, corrections
(edits and estimates) and the consumption each account is billed for.

Raw readings are never edited. A reading's check (which rules fired, valid or suspect) lives in
``ReadingCheck``; a verifier's edit or an estimate is a ``ReadingCorrection`` of its own that
points to the slot (and the raw reading, if there is one) it stands in for. The effective
reading of a slot is an approved correction if there is one, else the raw reading when its
check passed or a verifier approved it.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Account
from metering.models import ENERGY, Meter, Reading
from tenancy.models import Site, Tenant, TransformerArea
from tenancy.progress import is_stalled
from tenancy.scoping import TenantOwned, TenantSettings, WorkItem


class VerificationSettings(TenantSettings):
    """The thresholds of the validation rules and of line loss, per tenant."""

    spike_factor = models.DecimalField(
        _("spike factor"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("5.00"),
        validators=[MinValueValidator(Decimal("1.01"))],
        help_text=_("A reading is a spike above this many times the meter's recent hourly rate."),
    )
    spike_min_consumption = models.DecimalField(
        _("spike floor"),
        max_digits=12,
        decimal_places=3,
        default=Decimal("5.000"),
        validators=[MinValueValidator(0)],
        help_text=_("Consumption below this between two readings is never a spike."),
    )
    history_readings = models.PositiveIntegerField(
        _("history (readings)"),
        default=96,
        validators=[MinValueValidator(4), MaxValueValidator(2880)],
        help_text=_("How many earlier readings of the meter make its history."),
    )
    tou_tolerance = models.DecimalField(
        _("TOU tolerance"),
        max_digits=8,
        decimal_places=3,
        default=Decimal("0.050"),
        validators=[MinValueValidator(0)],
        help_text=_("How far the four TOU registers may sum away from the total."),
    )
    zero_power_threshold = models.DecimalField(
        _("power for the zero rule (kW)"),
        max_digits=8,
        decimal_places=3,
        default=Decimal("0.100"),
        validators=[MinValueValidator(0)],
        help_text=_("No consumption while the meter shows more power than this is suspect."),
    )
    future_tolerance_minutes = models.PositiveIntegerField(
        _("clock tolerance (min)"), default=5, validators=[MaxValueValidator(1440)]
    )
    gap_hours = models.PositiveIntegerField(
        _("gap (hours)"),
        default=48,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 31)],
        help_text=_("A reading this long after the one before it is noted as following a gap."),
    )
    closing_window_hours = models.PositiveIntegerField(
        _("closing window (hours)"),
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 7)],
        help_text=_(
            "The first valid reading this long after 00:00 of the reading day opens and closes "
            "a period; later than that, the boundary is interpolated and marked estimated."
        ),
    )
    expected_line_loss = models.DecimalField(
        _("expected line loss"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.0800"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("A transformer area losing more than this share is flagged."),
    )

    class Meta:
        verbose_name = _("verification settings")
        verbose_name_plural = _("verification settings")

    def __str__(self) -> str:
        return f"verification settings of tenant {self.tenant_id}"


class Rule(models.TextChoices):
    """The validation rules. Suspect rules hold a reading back from billing; notices do not."""

    FUTURE = "future", _("Timestamp in the future")
    DUPLICATE = "duplicate", _("Same answer as the reading before")
    OUT_OF_ORDER = "out_of_order", _("Read before the reading of the slot before")
    BACKWARDS = "backwards", _("Counter went backwards (not a wrap)")
    SPIKE = "spike", _("Consumption far above the meter's history")
    ZERO_WITH_POWER = "zero_with_power", _("No consumption while power flows")
    TOU_MISMATCH = "tou_mismatch", _("TOU registers do not add up to the total")
    AFTER_REMOVAL = "after_removal", _("Read after the meter was replaced")
    BEFORE_INSTALLATION = "before_installation", _("Read before the meter was installed")
    IMPLAUSIBLE_TIME = "implausible_time", _("Slot or answer time outside any plausible span")
    CANNOT_CHECK = "cannot_check", _("The checks could not judge this reading")
    WRAP = "wrap", _("Counter wrapped (noted)")
    GAP = "gap", _("Follows a gap (noted)")


NOTICE_RULES = {Rule.WRAP, Rule.GAP}


class CheckStatus(models.TextChoices):
    VALID = "valid", _("Valid")
    SUSPECT = "suspect", _("Suspect")
    APPROVED = "approved", _("Approved by a verifier")
    REPLACED = "replaced", _("Replaced by a correction")


class ReadingCheck(TenantOwned):
    """What validation found on one raw reading, kept beside it."""

    reading = models.ForeignKey(
        Reading, on_delete=models.PROTECT, related_name="checks", db_index=False
    )
    # The tenant, meter and site are copied from the reading (the validation statement selects
    # them from it); the reading's own keys guarantee them, so they carry no constraint of their
    # own: checking four more keys a row would triple the cost of validating a million readings.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    meter = models.ForeignKey(
        Meter, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    site = models.ForeignKey(
        Site, on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    taken_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    rules = models.CharField(max_length=200, blank=True, help_text=_("Comma-separated."))
    previous_reading = models.ForeignKey(
        Reading,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    consumption = models.DecimalField(null=True, blank=True, **ENERGY)
    checked_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        constraints = [
            # One check per reading; tenant first, like every unique key of a tenant's table.
            models.UniqueConstraint(fields=["tenant", "reading"], name="check_one_per_reading"),
        ]
        indexes = [
            models.Index(fields=["tenant", "meter", "taken_at"], name="check_meter_slot"),
        ]

    @property
    def rule_list(self) -> list[str]:
        return [rule for rule in self.rules.split(",") if rule]


class CorrectionKind(models.TextChoices):
    EDIT = "edit", _("Edited by a verifier")
    ESTIMATE = "estimate", _("Estimated")


class CorrectionState(models.TextChoices):
    PROPOSED = "proposed", _("Awaiting a second verifier")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SUPERSEDED = "superseded", _("Superseded by a real reading")


class EstimateMethod(models.TextChoices):
    LAST_YEAR = "last_year", _("Same period last year")
    DAILY_AVERAGE = "daily_average", _("Recent daily average")
    INTERPOLATION = "interpolation", _("Between the readings around it")


# What a verifier can ask for (interpolation is the period computation's own).
REQUESTABLE_ESTIMATES = [
    (EstimateMethod.LAST_YEAR.value, EstimateMethod.LAST_YEAR.label),
    (EstimateMethod.DAILY_AVERAGE.value, EstimateMethod.DAILY_AVERAGE.label),
]


class ReadingCorrection(TenantOwned):
    """An edit or an estimate standing in for a slot's raw reading (or for a missing one).

    Approved by a second verifier before it counts (four eyes); an estimate is superseded when
    a real reading for its slot arrives and checks valid.
    """

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="corrections")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    taken_at = models.DateTimeField(_("slot"))
    reading = models.ForeignKey(
        Reading,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrections",
        help_text=_("The raw reading it stands in for; empty for a missing slot."),
    )
    kind = models.CharField(max_length=16, choices=CorrectionKind.choices)
    method = models.CharField(max_length=16, choices=EstimateMethod.choices, blank=True)
    total = models.DecimalField(**ENERGY)
    tou_spike = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_peak = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_flat = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_valley = models.DecimalField(null=True, blank=True, **ENERGY)
    reason = models.CharField(_("reason"), max_length=300)
    state = models.CharField(
        max_length=16, choices=CorrectionState.choices, default=CorrectionState.PROPOSED
    )
    created_by_kind = models.CharField(max_length=16)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_by_label = models.CharField(max_length=200)
    approved_by_id = models.BigIntegerField(null=True, blank=True)
    approved_by_label = models.CharField(max_length=200, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        Reading, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "meter", "taken_at"],
                condition=models.Q(state__in=["proposed", "approved"]),
                name="one_live_correction_per_slot",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "meter", "taken_at"], name="correction_slot")]


class ItemState(models.TextChoices):
    OPEN = "open", _("Open")
    AWAITING_APPROVAL = "awaiting_approval", _("Correction awaiting approval")
    RESOLVED = "resolved", _("Resolved")


class VerificationItem(TenantOwned, WorkItem):
    """A suspect reading waiting for a verifier (flagged draft bills wait in billing's review
    list, ``billing.FlaggedBill``)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    reading = models.ForeignKey(
        Reading, on_delete=models.PROTECT, related_name="verification_items", db_index=False
    )
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=32, help_text=_("The first suspect rule, for filtering."))
    rules = models.CharField(max_length=200)
    state = models.CharField(max_length=20, choices=ItemState.choices, default=ItemState.OPEN)
    correction = models.ForeignKey(
        ReadingCorrection, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "reading"], name="verification_one_per_reading"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "-id"], name="verification_open"),
            models.Index(fields=["tenant", "site", "rule"], name="verification_rule"),
            # The staff KPIs read a month's resolved items (the verification turnaround).
            models.Index(fields=["tenant", "resolved_at"], name="verification_resolved"),
        ]


class PeriodStatus(models.TextChoices):
    COMPUTED = "computed", _("Computed")
    HELD_BACK = "held_back", _("Held back")


class PeriodConsumption(TenantOwned):
    """What an account consumed in one billing period: the determinants a bill prices."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="periods")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.CharField(_("period"), max_length=7, help_text="YYYY-MM")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=PeriodStatus.choices)
    hold_reason = models.CharField(max_length=500, blank=True)
    total = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_spike = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_peak = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_flat = models.DecimalField(null=True, blank=True, **ENERGY)
    tou_valley = models.DecimalField(null=True, blank=True, **ENERGY)
    reactive_energy = models.DecimalField(null=True, blank=True, **ENERGY)
    max_demand = models.DecimalField(null=True, blank=True, **ENERGY)
    estimated = models.BooleanField(default=False)
    opening = models.JSONField(default=list, help_text=_("The opening reading of each meter."))
    closing = models.JSONField(default=list, help_text=_("The closing reading of each meter."))
    computed_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account", "period"], name="period_unique"),
        ]
        indexes = [
            # Status and estimated too: a period page counts them from the index alone.
            models.Index(
                fields=["tenant", "site", "period"],
                include=["status", "estimated"],
                name="period_site",
            )
        ]


class LineLoss(TenantOwned):
    """台区线损: the master meter's consumption against the sum of its customers'."""

    transformer_area = models.ForeignKey(
        TransformerArea, on_delete=models.PROTECT, related_name="line_losses"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.CharField(max_length=7)
    master_consumption = models.DecimalField(null=True, blank=True, **ENERGY)
    customers_consumption = models.DecimalField(**ENERGY)
    loss = models.DecimalField(null=True, blank=True, **ENERGY)
    loss_rate = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    expected_rate = models.DecimalField(max_digits=5, decimal_places=4)
    flagged = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "transformer_area", "period"], name="line_loss_unique"
            ),
        ]


class ComputationState(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class PeriodComputation(TenantOwned):
    """One computation of a site's period, run as a task: its progress (accounts done of
    total, and the last account computed, from which a task delivered again resumes) for the
    page that watches it, and its outcome."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    period = models.CharField(_("period"), max_length=7)
    state = models.CharField(
        max_length=16, choices=ComputationState.choices, default=ComputationState.RUNNING
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    computed = models.PositiveIntegerField(default=0)
    held_back = models.PositiveIntegerField(default=0)
    line_losses = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    started_by_kind = models.CharField(max_length=16)
    started_by_id = models.BigIntegerField(null=True, blank=True)
    started_by_label = models.CharField(max_length=200)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    cursor = models.BigIntegerField(default=0, help_text="The last account computed.")
    progressed_at = models.DateTimeField(
        default=timezone.now,
        help_text="When a chunk of accounts was last computed (or the computation started).",
    )

    site_path = "site"

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "site", "period", "-id"], name="period_computation"),
        ]

    @property
    def stalled(self) -> bool:
        """Running, with no chunk committed for longer than the stall threshold
        (``tenancy.progress``): its worker most likely died."""
        return self.state == ComputationState.RUNNING and is_stalled(self.progressed_at)
