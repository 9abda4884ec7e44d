"""Gateway bridge: the Modbus poller, command executor and meter simulator."""

from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from tenancy.periodic import PeriodicJob


class GatewayBridgeConfig(AppConfig):
    name = "gateway_bridge"
    verbose_name = _("Gateway bridge")
    periodic_jobs = (
        PeriodicJob(
            name="dispatch polling rounds",
            task="gateway_bridge.dispatch_polling_rounds",
            every=timedelta(minutes=1),
        ),
        PeriodicJob(
            name="expire meter commands",
            task="gateway_bridge.expire_meter_commands",
            every=timedelta(minutes=5),
        ),
    )

    def ready(self) -> None:
        # Register this app's tasks in every process (web included), so a task another stage
        # sends by name runs here in eager mode, as it would on a worker.
        import gateway_bridge.tasks  # noqa: F401
