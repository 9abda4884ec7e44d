"""Collection: the ledger, payments, receipts, wallets and dunning (the collect stage, 收)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = _("Collection")
