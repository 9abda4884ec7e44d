"""Tariffs as data: a tariff has versions with effective dates, each a JSON specification
checked by ``billing.tariffs.TariffSpec`` (flat, tiered, time of use, fees, two-part charges,
power factor, agency purchase price, funds and surcharges, resale cap). Tariffs are assigned to
a customer class or to one account for a span of dates; an account's own assignment wins.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Account, CustomerClass, Utility
from tenancy.models import Site
from tenancy.scoping import TenantOwned, TenantSettings


class Tariff(TenantOwned):
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=200)
    utility = models.CharField(_("utility"), max_length=16, choices=Utility.choices)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("tariff")
        verbose_name_plural = _("tariffs")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="tariff_code_unique"),
        ]
        indexes = [models.Index(fields=["tenant", "id"], name="tariff_tenant_id")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class TariffVersion(TenantOwned):
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="versions")
    effective_from = models.DateField(_("effective from"))
    spec = models.JSONField(_("specification"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by_label = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("tariff version")
        verbose_name_plural = _("tariff versions")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "tariff", "effective_from"], name="tariff_version_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff_id} from {self.effective_from}"


class TariffAssignment(TenantOwned):
    """Which tariff applies: to every account of a customer class and utility, or to one
    account (which wins over its class), from a date and optionally until one (exclusive)."""

    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="assignments")
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    customer_class = models.CharField(
        _("customer class"), max_length=16, choices=CustomerClass.choices, blank=True
    )
    effective_from = models.DateField(_("effective from"))
    effective_to = models.DateField(_("effective to (exclusive)"), null=True, blank=True)
    sites = models.ManyToManyField(
        Site,
        blank=True,
        related_name="+",
        help_text=_("A class's assignment limited to these sites wins there over the class's "
                    "assignment for every site; none: every site."),
    )  # fmt: skip

    class Meta:
        verbose_name = _("tariff assignment")
        verbose_name_plural = _("tariff assignments")
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(account__isnull=True) & ~models.Q(customer_class=""))
                | (models.Q(account__isnull=False) & models.Q(customer_class="")),
                name="tariff_assignment_one_target",
            ),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True)
                | models.Q(effective_to__gt=models.F("effective_from")),
                name="tariff_assignment_dates",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "account"], name="tariff_assignment_account")]


class SharingMethod(models.TextChoices):
    FLOOR_AREA = "floor_area", _("By floor area")
    EQUAL = "equal", _("Equally")


class CommonArea(TenantOwned):
    """公摊: a common-area meter's account whose consumption is shared among member accounts,
    each bill showing its share as a line of its own."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text=_("The account of the common-area meter; it is not billed itself."),
    )
    method = models.CharField(_("sharing method"), max_length=16, choices=SharingMethod.choices)

    site_path = "site"

    class Meta:
        verbose_name = _("common area")
        verbose_name_plural = _("common areas")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "account"], name="common_area_account_once"),
        ]

    def __str__(self) -> str:
        return self.name


class CommonAreaMember(TenantOwned):
    common_area = models.ForeignKey(CommonArea, on_delete=models.CASCADE, related_name="members")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")

    site_path = "common_area__site"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "common_area", "account"], name="common_area_member_unique"
            ),
        ]


# The tax classification code (税收分类编码) printed on a fapiao: 19 digits.
TAX_CODE = RegexValidator(r"^\d{19}$", _("A tax classification code is 19 digits."))


class BillingSettings(TenantSettings):
    """A tenant's billing rules: VAT rates and tax codes, bill checks, the prepaid charging
    interval (the payment term is the tenant's own)."""

    vat_rate_electricity = models.DecimalField(
        _("VAT rate, electricity"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.13"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    vat_rate_water = models.DecimalField(
        _("VAT rate, water"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.09"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    tax_code_electricity = models.CharField(
        _("tax classification code, electricity"),
        max_length=19,
        default="1100101000000000000",
        validators=[TAX_CODE],
    )
    tax_code_water = models.CharField(
        _("tax classification code, water"),
        max_length=19,
        default="1100301010000000000",
        validators=[TAX_CODE],
    )
    history_factor = models.DecimalField(
        _("bill check: factor from history"),
        max_digits=6,
        decimal_places=2,
        default=Decimal("3.00"),
        validators=[MinValueValidator(Decimal("1.01"))],
        help_text=_("A bill above this many times (or below its inverse) the account's recent "
                    "average is flagged for review."),
    )  # fmt: skip
    history_bills = models.PositiveIntegerField(
        _("bill check: bills of history"),
        default=6,
        validators=[MinValueValidator(1), MaxValueValidator(36)],
    )
    prepaid_charge_interval_minutes = models.PositiveIntegerField(
        _("prepaid charging interval (min)"),
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(1440)],
    )

    go_live_on = models.DateField(
        _("go-live date"),
        null=True,
        blank=True,
        validators=[MinValueValidator(date(2000, 1, 1)), MaxValueValidator(date(2099, 12, 31))],
        help_text=_("The first day billed here. Each account's periods are billed in order "
                    "from the later of this day and its opening; unset, a site's first bill "
                    "run starts it."),
    )  # fmt: skip

    prepaid_charged_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When prepaid accounts were last charged."
    )

    def __str__(self) -> str:
        return f"billing settings of tenant {self.tenant_id}"

    def vat_rate(self, utility: str) -> Decimal:
        return self.vat_rate_water if utility == Utility.WATER else self.vat_rate_electricity

    def tax_code(self, utility: str) -> str:
        return self.tax_code_water if utility == Utility.WATER else self.tax_code_electricity
