"""Gateway bridge: the Modbus poller, command executor and meter simulator."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayBridgeConfig(AppConfig):
    name = "gateway_bridge"
    verbose_name = _("Gateway bridge")
