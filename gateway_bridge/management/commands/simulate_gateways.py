import asyncio
import resource
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateway_bridge.simulator import SimulatedGateway, build_gateways, serve_gateways
from metering.meter_profiles import ProfileError, all_profiles


class Command(BaseCommand):
    help = (
        "Serve simulated Modbus gateways on loopback: gateway i listens on base-port + i with "
        "meters at unit ids 1..M, on a bus timed at the given baud rate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--gateways", type=int, default=1)
        parser.add_argument("--meters-per-gateway", type=int, default=32)
        parser.add_argument("--baud", type=int, default=9600)
        parser.add_argument("--faults", type=float, default=0.0, help="fault rate per request, 0-1")
        parser.add_argument("--framing", choices=["tcp", "rtu"], default="tcp")
        parser.add_argument("--base-port", type=int, default=15020)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--profiles",
            default="DDSY1352",
            help="comma-separated meter profiles, dealt round-robin over the meters",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--time-scale", type=float, default=1.0, help="simulated seconds per real second"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        gateways_count = int(options["gateways"])
        meters = int(options["meters_per_gateway"])
        if not 1 <= meters <= 247:
            raise CommandError("--meters-per-gateway must be 1 to 247 (Modbus unit ids)")
        if gateways_count < 1 or not 0 <= float(options["faults"]) <= 1:
            raise CommandError("--gateways must be at least 1 and --faults between 0 and 1")
        profiles = [name.strip() for name in str(options["profiles"]).split(",") if name.strip()]
        unknown = [name for name in profiles if name not in all_profiles()]
        if unknown:
            raise CommandError(f"unknown profiles: {', '.join(unknown)} ({ProfileError.__name__})")
        gateways = build_gateways(
            gateways_count,
            meters,
            base_port=int(options["base_port"]),
            profiles=profiles,
            baud=int(options["baud"]),
            framing=str(options["framing"]),
            fault_rate=float(options["faults"]),
            seed=int(options["seed"]),
            time_scale=float(options["time_scale"]),
            host=str(options["host"]),
        )
        asyncio.run(self.serve(gateways, meters))

    async def serve(self, gateways: list[SimulatedGateway], meters: int) -> None:
        try:
            await serve_gateways(gateways)
        except OSError as exc:
            raise CommandError(f"cannot listen: {exc}") from exc
        for index, gateway in enumerate(gateways):
            self.stdout.write(
                f"gateway {index} listening on {gateway.host}:{gateway.port} "
                f"({gateway.framing}, {gateway.baud} baud) units 1-{meters}"
            )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stdout.write(f"serving {len(gateways) * meters} meters, {rss_mb:.0f} MB")
        self.stdout.flush()
        await asyncio.Event().wait()
