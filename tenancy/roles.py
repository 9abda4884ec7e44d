"""Staff roles. What each role may do is in ``tenancy.permissions.MATRIX``."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    TENANT_ADMIN = "tenant_admin", _("Tenant administrator")
    HQ_FINANCE = "hq_finance", _("HQ finance")
    SITE_MANAGER = "site_manager", _("Site manager")
    METER_READER = "meter_reader", _("Meter reader")
    VERIFIER = "verifier", _("Verifier")
    CASHIER = "cashier", _("Cashier")
    COLLECTOR = "collector", _("Collector")
    INSPECTOR = "inspector", _("Inspector")


ALL_ROLES: frozenset[str] = frozenset(Role.values)
