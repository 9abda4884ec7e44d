"""Console pages of the read stage (抄): meters, gateways, readings, meter commands."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _

from console.nav import Entry
from console.pages.meters import commands, gateways, imports, readings, registry

NAV = [
    Entry("read", _("Meters"), "console:meters", "meters"),
    Entry("read", _("Gateways"), "console:gateways", "gateways"),
    Entry(
        "read",
        _("Reading completeness"),
        "console:reading-completeness",
        "readings",
        "completeness",
    ),
    Entry("read", _("Meter commands"), "console:meter-commands", "meter_commands"),
    Entry("read", _("Import meters"), "console:meters-import", "meters", "import"),
]

urlpatterns: list[URLPattern] = [
    path("meters/", registry.meters, name="meters"),
    path("meters/<int:meter_id>/", registry.meter_page, name="meter"),
    path("meters/<int:meter_id>/readings/", registry.meter_readings, name="meter-readings"),
    path("meters/<int:meter_id>/readings/new/", readings.new_reading, name="meter-reading-new"),
    path(
        "meters/<int:meter_id>/commands/<slug:kind>/",
        commands.new_command,
        name="meter-command-new",
    ),
    path("meter-commands/", commands.commands, name="meter-commands"),
    path("meter-commands/<int:command_id>/", commands.command_page, name="meter-command"),
    path(
        "meter-commands/<int:command_id>/progress/",
        commands.command_progress,
        name="meter-command-progress",
    ),
    path("gateways/", gateways.gateways, name="gateways"),
    path("gateways/<int:gateway_id>/", gateways.gateway_page, name="gateway"),
    path("reading-completeness/", readings.completeness, name="reading-completeness"),
    path("meter-import/", imports.import_meters, name="meters-import"),
]
