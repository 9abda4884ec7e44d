"""Tenants, their sites and calendar, staff and API clients with role grants, and the audit trail.

A tenant is one operator (a utility company or a property group). Every row another app owns
carries ``tenant_id``, and every unique constraint and hot index starts with it, so the schema
can later be distributed by tenant. Staff users belong to one tenant; platform operators
(superusers of the admin) belong to none.
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from typing import Any, ClassVar, NoReturn, Self

import pgtrigger
from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.roles import Role
from tenancy.scoping import TenantManager, TenantOwned, TenantQuerySet


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(zone)s"), params={"zone": value})


READING_INTERVALS = (1, 5, 15, 30, 60)


# The days a tenant's calendar covers: due dates and working days are asked of these only.
EARLIEST_CALENDAR_DAY = date(2000, 1, 1)
LATEST_CALENDAR_DAY = date(2099, 12, 31)


class Language(models.TextChoices):
    ZH_HANS = "zh-hans", "简体中文"
    EN = "en", "English"


def second_factor_default() -> bool:
    """On in production; off in the demo and debug settings, where nobody has an app."""
    return bool(settings.BARS_SECOND_FACTOR_DEFAULT)


class Tenant(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone]
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="CNY",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("A three-letter ISO 4217 code."))],
    )
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.ZH_HANS
    )
    payment_term_days = models.PositiveSmallIntegerField(
        _("payment term (days)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
    )
    reading_interval_minutes = models.PositiveSmallIntegerField(
        _("reading interval (minutes)"),
        choices=[(minutes, f"{minutes}") for minutes in READING_INTERVALS],
        default=15,
        help_text=_("How often the meters are polled; each round reads one slot."),
    )
    earliest_reading_on = models.DateField(
        _("earliest reading date"),
        null=True,
        blank=True,
        validators=[MinValueValidator(date(2000, 1, 1))],
        help_text=_(
            "Readings for slots before this day are refused (readings before 2000 always are)."
        ),
    )
    require_second_factor = models.BooleanField(
        _("second factor required"),
        default=second_factor_default,
        help_text=_(
            "Staff who approve or correct money, and tenant administrators, sign in with a "
            "one-time code from an authenticator app."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def local_today(self) -> date:
        return timezone.now().astimezone(self.zone).date()


class Site(TenantOwned):
    """A property or supply station. Its reading day (抄表例日) closes each billing period."""

    code = models.CharField(
        _("code"),
        max_length=32,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", _("Letters, digits, - and _ only."))],
    )
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("address"), max_length=300, blank=True)
    reading_day = models.PositiveSmallIntegerField(
        _("scheduled reading day"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text=_("Day of the month on which the billing period closes (1–28)."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    site_path = "pk"

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="site_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class TransformerArea(TenantOwned):
    """台区: the customers fed by one distribution transformer, measured by a master meter."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="transformer_areas")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    capacity_kva = models.DecimalField(
        _("capacity (kVA)"),
        max_digits=10,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )

    site_path = "site"

    class Meta:
        verbose_name = _("transformer area")
        verbose_name_plural = _("transformer areas")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="transformer_area_code_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class CalendarDayKind(models.TextChoices):
    HOLIDAY = "holiday", _("Public holiday")
    WORKDAY = "workday", _("Make-up working day (调休)")


class CalendarDay(TenantOwned):
    """A day that differs from the weekly pattern: a holiday, or a weekend day worked (调休)."""

    date = models.DateField(
        _("date"),
        validators=[
            MinValueValidator(EARLIEST_CALENDAR_DAY),
            MaxValueValidator(LATEST_CALENDAR_DAY),
        ],
    )
    kind = models.CharField(_("kind"), max_length=16, choices=CalendarDayKind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "date"],
                name="calendar_day_unique",
                violation_error_message=_("This day is in the calendar already."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


class User(AbstractUser):
    """A staff user of one tenant (or, with no tenant, a platform operator)."""

    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="staff"
    )
    display_name = models.CharField(_("display name"), max_length=100, blank=True)

    objects: ClassVar[UserManager[Self]] = UserManager()
    tenant_staff = TenantManager()

    site_path = None

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")
        default_manager_name = "objects"

    @property
    def label(self) -> str:
        return self.display_name or self.get_full_name() or self.username


class ApiClient(TenantOwned):
    """An integration (edge gateway, bank, ERP) that calls the API with a token.

    Only a SHA-256 hash of the token is stored; the token itself is shown once, when it is
    issued. Tokens are 256-bit random, so a plain hash is enough to make a stolen table useless.
    """

    name = models.CharField(_("name"), max_length=100)
    key_prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="api_client_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    # DRF reads these on request.user.
    is_authenticated = True
    is_anonymous = False

    @property
    def label(self) -> str:
        return self.name


class RoleGrant(TenantOwned):
    """A role held by a staff user or an API client, for one site or (site empty) all sites."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    api_client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    site = models.ForeignKey(
        Site, on_delete=models.CASCADE, null=True, blank=True, related_name="grants"
    )

    class Meta:
        verbose_name = _("role grant")
        verbose_name_plural = _("role grants")
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(user__isnull=False) & models.Q(api_client__isnull=True))
                | (models.Q(user__isnull=True) & models.Q(api_client__isnull=False)),
                name="role_grant_one_holder",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user", "role", "site"],
                condition=models.Q(site__isnull=False, user__isnull=False),
                name="role_grant_user_site_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "user", "role"],
                condition=models.Q(site__isnull=True, user__isnull=False),
                name="role_grant_user_all_sites_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "api_client", "role", "site"],
                condition=models.Q(site__isnull=False, api_client__isnull=False),
                name="role_grant_client_site_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "api_client", "role"],
                condition=models.Q(site__isnull=True, api_client__isnull=False),
                name="role_grant_client_all_sites_unique",
            ),
        ]


class Sequence(TenantOwned):
    """A gap-free counter per tenant (account numbers, later receipt numbers).

    Taken under a row lock inside the caller's transaction, so a rolled-back transaction gives
    its number back and two concurrent callers never get the same one.
    """

    name = models.CharField(max_length=50)
    next_value = models.BigIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="sequence_name_unique"),
        ]


class ActorKind(models.TextChoices):
    STAFF = "staff", _("Staff user")
    API_CLIENT = "api_client", _("API client")
    BANK_CLIENT = "bank_client", _("Bank client")
    CUSTOMER = "customer", _("Customer")
    SYSTEM = "system", _("System")


class AppendOnlyError(RuntimeError):
    """An append-only row (audit event) was about to be changed or deleted."""


class AuditEventQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")

    _update = update  # type: ignore[assignment]


class UnscopedAuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")


class AuditEvent(TenantOwned):
    """Who did what to which object, with the values before and after. Append-only.

    Written only by ``tenancy.audit`` (``record_audit``, or ``audit_event_insert`` inside a hot
    path's own statement). There is no update or delete path in the
    code or the admin, and on PostgreSQL a trigger refuses both.
    """

    # A plain id, not a foreign key: the trail outlives the objects it names.
    site_id = models.BigIntegerField(null=True, blank=True)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_ids = models.JSONField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects: ClassVar[TenantManager] = TenantManager.from_queryset(AuditEventQuerySet)()
    dangerously_unscoped: ClassVar[models.Manager[AuditEvent]] = models.Manager.from_queryset(
        UnscopedAuditEventQuerySet
    )()

    site_path = "site_id"

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["tenant", "-id"], name="audit_tenant_id"),
            models.Index(fields=["tenant", "object_type", "object_id"], name="audit_object"),
            models.Index(fields=["tenant", "action", "-id"], name="audit_action"),
            # The staff KPIs count a month's events of one action.
            models.Index(fields=["tenant", "action", "created_at"], name="audit_action_time"),
            models.Index(fields=["tenant", "actor_kind", "actor_id", "-id"], name="audit_actor"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="audit_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit events cannot be deleted.")
