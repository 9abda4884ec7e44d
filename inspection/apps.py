"""Inspection (稽查): samples of readings and bills drawn for re-check, the findings recorded on
them and sent to the person responsible, and the staff KPIs those findings count in."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InspectionConfig(AppConfig):
    name = "inspection"
    verbose_name = _("Inspection")
