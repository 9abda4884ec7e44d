"""Customers, their accounts (户号), the premises supplied, and how to reach them.

A customer (a person or an organisation) is registered at a site and holds one account per
supply (electricity or water) at a premise. Identity numbers and contact values are personal
data: stored encrypted, searched by a keyed hash, shown masked unless revealed (audited).
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.identifiers import mask_email, mask_identifier, mask_mobile
from tenancy.fields import EncryptedCharField
from tenancy.models import Site, TransformerArea
from tenancy.scoping import TenantOwned


class CustomerKind(models.TextChoices):
    PERSON = "person", _("Person")
    ORGANISATION = "organisation", _("Organisation")


class Customer(TenantOwned):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="customers")
    kind = models.CharField(_("kind"), max_length=16, choices=CustomerKind.choices)
    name = models.CharField(_("name"), max_length=200)
    id_number = EncryptedCharField(
        _("identity card number or unified social credit code"), mask=mask_identifier
    )
    id_number_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    site_path = "site"

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "id_number_hash"],
                condition=~models.Q(id_number_hash=""),
                name="customer_id_number_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "id"], name="customer_tenant_id"),
            models.Index(fields=["tenant", "name"], name="customer_tenant_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def id_number_masked(self) -> str:
        return mask_identifier(self.id_number) if self.id_number else ""


class Premise(TenantOwned):
    """The place supplied: an address with building (楼栋), unit (单元) and room."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="premises")
    transformer_area = models.ForeignKey(
        TransformerArea,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="premises",
    )
    address = models.CharField(_("address"), max_length=300)
    building = models.CharField(_("building"), max_length=50, blank=True)
    unit = models.CharField(_("unit"), max_length=50, blank=True)
    room = models.CharField(_("room"), max_length=50, blank=True)
    floor_area = models.DecimalField(
        _("floor area (m²)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Used to share common-area (公摊) consumption by area."),
    )

    site_path = "site"

    class Meta:
        verbose_name = _("premise")
        verbose_name_plural = _("premises")
        indexes = [models.Index(fields=["tenant", "id"], name="premise_tenant_id")]

    def __str__(self) -> str:
        parts = [self.address, self.building, self.unit, self.room]
        return " ".join(part for part in parts if part)


class PaymentMode(models.TextChoices):
    PREPAID = "prepaid", _("Prepaid")
    POSTPAID = "postpaid", _("Postpaid")


class CustomerClass(models.TextChoices):
    RESIDENTIAL = "residential", _("Residential")
    COMMERCIAL = "commercial", _("Commercial")
    INDUSTRIAL = "industrial", _("Industrial")


class Utility(models.TextChoices):
    ELECTRICITY = "electricity", _("Electricity")
    WATER = "water", _("Water")


class AccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


class Account(TenantOwned):
    """户号: one supply of one customer at one premise, billed prepaid or postpaid."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="accounts")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    premise = models.ForeignKey(Premise, on_delete=models.PROTECT, related_name="accounts")
    number = models.CharField(_("account number"), max_length=20)
    utility = models.CharField(
        _("utility"), max_length=16, choices=Utility.choices, default=Utility.ELECTRICITY
    )
    payment_mode = models.CharField(_("payment mode"), max_length=16, choices=PaymentMode.choices)
    customer_class = models.CharField(
        _("customer class"), max_length=16, choices=CustomerClass.choices
    )
    status = models.CharField(
        _("status"), max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE
    )
    opened_on = models.DateField(_("opened on"))
    closed_on = models.DateField(_("closed on"), null=True, blank=True)
    household_size = models.PositiveSmallIntegerField(
        _("household size"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(99)],
        help_text=_("Large households (一户多人口) get larger tier limits."),
    )
    minimum_living_support = models.BooleanField(
        _("minimum living support (低保)"),
        default=False,
        help_text=_("Households on minimum living support get a free monthly allowance."),
    )
    contracted_capacity_kva = models.DecimalField(
        _("contracted capacity (kVA)"),
        max_digits=10,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("For large users on a two-part tariff."),
    )

    site_path = "site"

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="account_number_unique"),
            models.CheckConstraint(
                condition=models.Q(closed_on__isnull=True)
                | models.Q(closed_on__gte=models.F("opened_on")),
                name="account_closed_after_opened",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "id"], name="account_tenant_id"),
            models.Index(fields=["tenant", "customer"], name="account_tenant_customer"),
            models.Index(fields=["tenant", "site", "status"], name="account_tenant_site"),
        ]

    def __str__(self) -> str:
        return self.number


class ContactKind(models.TextChoices):
    MOBILE = "mobile", _("Mobile phone")
    EMAIL = "email", _("E-mail")


class ContactSource(models.TextChoices):
    COUNTER = "counter", _("Service counter")
    PORTAL = "portal", _("Customer portal")
    FIELD_VISIT = "field_visit", _("Field visit")
    BANK = "bank", _("Bank")
    IMPORT = "import", _("Data import")
    OTHER = "other", _("Other")


def mask_contact_value(value: str) -> str:
    return mask_email(value) if "@" in value else mask_mobile(value)


class Contact(TenantOwned):
    """A mobile number or e-mail of a customer, with where it came from and when it was last
    confirmed: numbers go stale when tenants move, and dunning must not reach a stranger."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    kind = models.CharField(_("kind"), max_length=16, choices=ContactKind.choices)
    value = EncryptedCharField(_("value"), mask=mask_contact_value)
    value_hash = models.CharField(max_length=64, editable=False)
    source = models.CharField(_("source"), max_length=16, choices=ContactSource.choices)
    last_confirmed_at = models.DateTimeField(_("last confirmed"), null=True, blank=True)
    sms_consent = models.BooleanField(_("consents to SMS"), default=False)
    is_primary = models.BooleanField(_("primary"), default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    site_path = "customer__site"

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "customer", "value_hash"], name="contact_value_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="mobile") | models.Q(sms_consent=False),
                name="contact_sms_consent_mobile_only",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "value_hash"], name="contact_tenant_value"),
        ]

    @property
    def value_masked(self) -> str:
        return mask_contact_value(self.value) if self.value else ""
