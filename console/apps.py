from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = _("Staff console")
    periodic_jobs = (
        PeriodicJob(
            name="refresh dashboards",
            task="console.refresh_dashboards",
            every=timedelta(minutes=5),
        ),
    )

    def ready(self) -> None:
        import console.tasks  # noqa: F401
