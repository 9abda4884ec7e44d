import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway_bridge import rounds
from metering.models import Gateway
from metering.slots import current_slot
from tenancy.cli import resolve_tenant
from tenancy.context import use_tenant


class Command(BaseCommand):
    help = "Run one polling round now, in the foreground, with a progress line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="tenant slug (needed when there are several)")
        parser.add_argument("--site", help="site code: poll only its gateways")
        parser.add_argument("--gateway", help="gateway name: poll only this gateway")
        parser.add_argument("--slot", help="the slot to read (ISO time); default: the current one")

    def handle(self, *args: object, **options: object) -> None:
        tenant = resolve_tenant(options.get("tenant"))
        with use_tenant(tenant):
            gateways = Gateway.objects.filter(is_active=True)
            if options.get("site"):
                gateways = gateways.filter(site__code=options["site"])
            if options.get("gateway"):
                gateways = gateways.filter(name=options["gateway"])
            gateway_ids = list(gateways.order_by("id").values_list("id", flat=True))
            if not gateway_ids:
                raise CommandError("no gateway matches; see the gateways in the console or API")
            try:
                slot = (
                    datetime.fromisoformat(str(options["slot"]))
                    if options.get("slot")
                    else current_slot(tenant)
                )
            except ValueError as exc:
                raise CommandError(f"--slot: {exc}") from exc
            self.stdout.write(f"polling {len(gateway_ids)} gateways for slot {slot.isoformat()}")
            summary = rounds.run_round(tenant, gateway_ids, slot, self._progress)
        self.stdout.write("")
        self.stdout.write(
            f"gateways {summary.gateways}/{len(gateway_ids)}, {summary.meters} meters: "
            f"{summary.read} read, {summary.stored} stored, {summary.duplicates} duplicates, "
            f"{summary.conflicts} conflicts, {summary.failures} failures; commands "
            f"{summary.commands_confirmed} confirmed, {summary.commands_failed} failed"
        )

    def _progress(self, done: int, total: int) -> None:
        self.stdout.write(f"\rgateways {done}/{total}", ending="")
        if self.stdout.isatty() if hasattr(self.stdout, "isatty") else False:
            sys.stdout.flush()
