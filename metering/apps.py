"""Metering: meters, gateways, readings and meter commands (the read stage, 抄)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MeteringConfig(AppConfig):
    name = "metering"
    verbose_name = _("Metering")
