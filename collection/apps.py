"""Collection: payments, receipts, wallets, cashier shifts and dunning (the collect stage, 收),
built on the ledger core in ``ledger``."""

from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class CollectionConfig(AppConfig):
    name = "collection"
    verbose_name = _("Collection")
    periodic_jobs = (
        PeriodicJob(
            name="expire recharge cards",
            task="collection.expire_vouchers_due",
            every=timedelta(days=1),
        ),
    )

    def ready(self) -> None:
        # Register this app's tasks in every process (web included), as billing does.
        import collection.tasks  # noqa: F401
