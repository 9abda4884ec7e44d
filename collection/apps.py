"""Collection: payments, receipts, wallets, cashier shifts and dunning (the collect stage, 收),
built on the ledger core in ``ledger``."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = _("Collection")
