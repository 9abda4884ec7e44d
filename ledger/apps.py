"""Ledger: the double-entry money core (ledger accounts, journal entries, posting, the ledger
check) that billing and collection both post to."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = _("Ledger")
