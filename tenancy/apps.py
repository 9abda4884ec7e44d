from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = _("Tenancy")
    periodic_jobs = (
        PeriodicJob(
            name="clear expired sessions",
            task="tenancy.clear_expired_sessions",
            every=timedelta(hours=24),
        ),
    )

    def ready(self) -> None:
        # Register this app's tasks in every process (web included), so a task another stage
        # sends by name runs here in eager mode, as it would on a worker.
        # And the ``__any`` lookup (one array parameter for many ids) on every field.
        import tenancy.bulk
        import tenancy.tasks  # noqa: F401
