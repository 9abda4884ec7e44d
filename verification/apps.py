"""Verification: checks of every reading (VEE rules), the verifiers' queue, corrections and
estimates, effective readings, period consumption and line loss (the verify stage, 核)."""

from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class VerificationConfig(AppConfig):
    name = "verification"
    verbose_name = _("Verification")
    periodic_jobs = (
        PeriodicJob(
            name="validate readings",
            task="verification.validate_all_readings",
            every=timedelta(minutes=5),
        ),
    )

    def ready(self) -> None:
        # Register this app's tasks in every process (web included), so a task another stage
        # sends by name runs here in eager mode, as it would on a worker.
        import verification.tasks  # noqa: F401
