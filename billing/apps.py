"""Billing: tariffs, bill runs, bills and their corrections, prepaid charging (核: bill)."""

from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")
    periodic_jobs = (
        PeriodicJob(
            name="charge prepaid accounts",
            task="billing.charge_prepaid_due",
            every=timedelta(minutes=5),
        ),
    )

    def ready(self) -> None:
        # Register this app's tasks in every process (web included), so a task another stage
        # sends by name runs here in eager mode, as it would on a worker.
        import billing.tasks  # noqa: F401
