"""The read stage (抄): gateways, meters, raw readings, meter events and meter commands.

Readings are raw and append-only: they keep the registers as the meter showed them (CT and PT
ratios are applied where consumption is computed, not here), one row per meter and scheduled
slot. Verification keeps its state beside them, never in them. Events record every failure
and anomaly of reading and commanding, so a round never stops for one bad meter and nothing
goes unexplained.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Account, Premise, Utility
from tenancy.models import Site, TransformerArea
from tenancy.money import DecimalShape, OptionalDecimalShape
from tenancy.scoping import TenantOwned

ENERGY: DecimalShape = {"max_digits": 16, "decimal_places": 3}
MEASURE: OptionalDecimalShape = {"max_digits": 12, "decimal_places": 3, "null": True, "blank": True}


class Framing(models.TextChoices):
    MODBUS_TCP = "tcp", _("Modbus TCP")
    RTU_OVER_TCP = "rtu", _("Modbus RTU frames over TCP")


class Gateway(TenantOwned):
    """A gateway that turns one RS485 bus into a TCP endpoint. One bus answers one request at a
    time, so everything sent to a gateway is strictly sequential."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="gateways")
    name = models.CharField(_("name"), max_length=100)
    host = models.CharField(_("host"), max_length=253)
    port = models.PositiveIntegerField(
        _("port"), default=502, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    framing = models.CharField(
        _("framing"), max_length=8, choices=Framing.choices, default=Framing.MODBUS_TCP
    )
    timeout_ms = models.PositiveIntegerField(
        _("answer timeout (ms)"),
        default=1000,
        validators=[MinValueValidator(50), MaxValueValidator(30000)],
    )
    retries = models.PositiveSmallIntegerField(
        _("retries"), default=2, validators=[MaxValueValidator(5)]
    )
    baud_rate = models.PositiveIntegerField(
        _("bus baud rate"),
        default=9600,
        validators=[MinValueValidator(1200), MaxValueValidator(115200)],
        help_text=_("For planning: one bus gives at most about 16 reads a second at 9600 baud."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    site_path = "site"

    class Meta:
        verbose_name = _("gateway")
        verbose_name_plural = _("gateways")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "host", "port"], name="gateway_address_unique"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="gateway_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


# A serial number is printed on the meter and travels into files, URLs and spreadsheets: plain
# letters, digits, -, _ and . only (nothing a spreadsheet would run as a formula).
validate_serial_number = RegexValidator(
    r"^[A-Za-z0-9._-]+\Z",
    _("A serial number has letters, digits, -, _ and . only."),
    code="serial_number",
)


class MeterStatus(models.TextChoices):
    ACTIVE = "active", _("In service")
    FAULTY = "faulty", _("Faulty")
    REMOVED = "removed", _("Removed")


class Meter(TenantOwned):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="meters")
    serial_number = models.CharField(
        _("serial number"), max_length=40, validators=[validate_serial_number]
    )
    profile = models.CharField(_("model profile"), max_length=40)
    utility = models.CharField(_("utility"), max_length=16, choices=Utility.choices)
    gateway = models.ForeignKey(
        Gateway, on_delete=models.PROTECT, null=True, blank=True, related_name="meters"
    )
    unit_id = models.PositiveSmallIntegerField(
        _("Modbus unit id"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(247)],
    )
    ct_ratio = models.DecimalField(
        _("CT ratio"),
        max_digits=8,
        decimal_places=2,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    pt_ratio = models.DecimalField(
        _("PT ratio"),
        max_digits=8,
        decimal_places=2,
        default=Decimal(1),
        validators=[MinValueValidator(Decimal("0.01"))],
    )
    wrap_value = models.DecimalField(
        _("counter wrap"),
        max_digits=16,
        decimal_places=3,
        null=True,
        blank=True,
        help_text=_("Where the counter rolls over, when it differs from the profile's."),
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="meters"
    )
    premise = models.ForeignKey(
        Premise, on_delete=models.PROTECT, null=True, blank=True, related_name="meters"
    )
    master_of = models.ForeignKey(
        TransformerArea,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="master_meters",
        help_text=_("The transformer area this meter measures as its master (总表)."),
    )
    installed_on = models.DateField(_("installed on"), default=timezone.localdate)
    removed_on = models.DateField(_("removed on"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=MeterStatus.choices, default=MeterStatus.ACTIVE
    )

    site_path = "site"

    class Meta:
        verbose_name = _("meter")
        verbose_name_plural = _("meters")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "serial_number"], name="meter_serial_unique"),
            models.UniqueConstraint(
                fields=["tenant", "gateway", "unit_id"],
                condition=~models.Q(status="removed"),
                name="meter_unit_per_gateway_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "master_of"],
                condition=models.Q(master_of__isnull=False) & ~models.Q(status="removed"),
                name="one_master_meter_per_area",
            ),
            models.CheckConstraint(
                condition=models.Q(gateway__isnull=True) | models.Q(unit_id__isnull=False),
                name="meter_on_gateway_has_unit_id",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "gateway", "status"], name="meter_tenant_gateway"),
            models.Index(fields=["tenant", "account"], name="meter_tenant_account"),
        ]

    def __str__(self) -> str:
        return self.serial_number


class ReadingSource(models.TextChoices):
    POLLED = "polled", _("Polled")
    PUSHED = "pushed", _("Pushed by an edge gateway")
    MANUAL = "manual", _("Read by hand")


class RelayState(models.TextChoices):
    CLOSED = "closed", _("Closed (supply on)")
    TRIPPED = "tripped", _("Tripped (supply off)")


class Reading(TenantOwned):
    """The registers of one meter at one scheduled slot, as the meter showed them. Append-only.

    ``taken_at`` is the slot of the round (so a retried round lands on the same row);
    ``read_at`` is when the meter answered.
    """

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="readings")
    taken_at = models.DateTimeField(_("slot"))
    read_at = models.DateTimeField(_("read at"))
    source = models.CharField(_("source"), max_length=8, choices=ReadingSource.choices)
    total = models.DecimalField(_("total"), **ENERGY)
    tou_spike = models.DecimalField(_("spike (尖)"), null=True, blank=True, **ENERGY)
    tou_peak = models.DecimalField(_("peak (峰)"), null=True, blank=True, **ENERGY)
    tou_flat = models.DecimalField(_("flat (平)"), null=True, blank=True, **ENERGY)
    tou_valley = models.DecimalField(_("valley (谷)"), null=True, blank=True, **ENERGY)
    voltage = models.DecimalField(_("voltage (V)"), **MEASURE)
    current = models.DecimalField(_("current (A)"), **MEASURE)
    power = models.DecimalField(_("active power (kW)"), **MEASURE)
    power_factor = models.DecimalField(_("power factor"), **MEASURE)
    relay_state = models.CharField(_("relay"), max_length=8, choices=RelayState.choices, blank=True)
    extra = models.JSONField(_("other values"), default=dict, blank=True)
    entered_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    site_path = "meter__site"

    class Meta:
        verbose_name = _("reading")
        verbose_name_plural = _("readings")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "meter", "taken_at"], name="reading_meter_slot_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="reading_tenant_id"),
            # One slot's readings of every meter (reading completeness, the dashboards): without
            # it the count of a slot reads the whole table.
            models.Index(fields=["tenant", "taken_at"], include=["meter"], name="reading_slot"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="reading_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]


class MeterEventKind(models.TextChoices):
    TIMEOUT = "timeout", _("No answer in time")
    EXCEPTION = "exception", _("Exception response")
    BAD_FRAME = "bad_frame", _("Corrupted frame (CRC or framing)")
    CONNECTION_REFUSED = "connection_refused", _("Gateway refused the connection")
    GATEWAY_UNREACHABLE = "gateway_unreachable", _("Gateway unreachable")
    IDENTITY_MISMATCH = "identity_mismatch", _("Another meter answered at this unit id")
    CONFLICTING_READING = "conflicting_reading", _("Second reading for a slot, with other values")
    COMMAND_FAILED = "command_failed", _("Command failed")
    COMMAND_CONFIRMED = "command_confirmed", _("Command confirmed")
    RELAY_MISMATCH = "relay_mismatch", _("Relay not in the commanded state")


class MeterEvent(TenantOwned):
    """Something that went wrong (or was done) while reading or commanding a meter. Append-only."""

    gateway = models.ForeignKey(
        Gateway, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=32, choices=MeterEventKind.choices)
    slot = models.DateTimeField(_("slot"), null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    site_path = "site"

    class Meta:
        verbose_name = _("meter event")
        verbose_name_plural = _("meter events")
        indexes = [
            models.Index(fields=["tenant", "-id"], name="meter_event_tenant_id"),
            models.Index(fields=["tenant", "meter", "-occurred_at"], name="meter_event_meter"),
            models.Index(fields=["tenant", "gateway", "-occurred_at"], name="meter_event_gateway"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="meter_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]


class PollRound(TenantOwned):
    """One gateway's part of a polling round: how many meters answered, and how fast.

    Gateway health and the sites' reading completeness are computed from these rows.
    """

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="rounds")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    slot = models.DateTimeField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    meters_total = models.PositiveIntegerField()
    meters_read = models.PositiveIntegerField()
    requests = models.PositiveIntegerField()
    failed_requests = models.PositiveIntegerField()
    response_ms_total = models.FloatField(help_text=_("Sum of the answered requests' times."))

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "gateway", "slot"], name="poll_round_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "site", "-slot"], name="poll_round_site_slot")]


class CommandKind(models.TextChoices):
    RELAY_TRIP = "relay_trip", _("Trip the relay (拉闸)")
    RELAY_CLOSE = "relay_close", _("Close the relay (合闸)")
    SETPOINT = "setpoint", _("Write a setpoint")


class CommandState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    CONFIRMED = "confirmed", _("Confirmed")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


OPEN_COMMAND_STATES = (CommandState.PENDING, CommandState.SENT)


class MeterCommand(TenantOwned):
    """A write to a meter (relay or setpoint), executed by the bridge between reads on its bus
    and confirmed by reading the register back."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="commands")
    kind = models.CharField(_("kind"), max_length=16, choices=CommandKind.choices)
    setpoint = models.CharField(_("setpoint"), max_length=40, blank=True)
    value = models.DecimalField(_("value"), max_digits=16, decimal_places=3, null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=300)
    requested_by_kind = models.CharField(max_length=16)
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    requested_by_label = models.CharField(max_length=200)
    state = models.CharField(
        _("state"), max_length=16, choices=CommandState.choices, default=CommandState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    site_path = "meter__site"

    class Meta:
        verbose_name = _("meter command")
        verbose_name_plural = _("meter commands")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "meter"],
                condition=models.Q(state__in=["pending", "sent"]),
                name="one_open_command_per_meter",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="meter_command_tenant_id"),
            models.Index(fields=["tenant", "state"], name="meter_command_state"),
        ]


class MeterReplacement(TenantOwned):
    """An old meter taken out and a new one put in its place, with the final reading of the
    old and the first of the new, so consumption is joined across the swap."""

    old_meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="replaced_by_record", db_index=False
    )
    new_meter = models.ForeignKey(
        Meter, on_delete=models.PROTECT, related_name="replaces_record", db_index=False
    )
    replaced_at = models.DateTimeField()
    old_final_reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="+")
    new_first_reading = models.ForeignKey(Reading, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    site_path = "old_meter__site"

    class Meta:
        verbose_name = _("meter replacement")
        verbose_name_plural = _("meter replacements")
        constraints = [
            # A meter is replaced once and replaces at most one (tenant first, as every key).
            models.UniqueConstraint(fields=["tenant", "old_meter"], name="replacement_old_once"),
            models.UniqueConstraint(fields=["tenant", "new_meter"], name="replacement_new_once"),
        ]


class RoundDispatch(TenantOwned):
    """A site's polling round for one slot, dispatched once however many schedulers run."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    slot = models.DateTimeField()
    dispatched_at = models.DateTimeField(default=timezone.now)
    gateways = models.PositiveIntegerField()

    site_path = "site"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "site", "slot"], name="round_dispatch_unique"
            ),
        ]
