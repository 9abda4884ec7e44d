"""Running simulated gateways in a background thread, for tests and benchmarks, and
registering them in a tenant's registry."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections.abc import Sequence
from typing import Any

from gateway_bridge.simulator import SimulatedGateway, build_gateways, serve_gateways
from metering.models import Gateway, Meter
from tenancy.models import Site


def free_port_range(count: int, low: int = 20000, high: int = 32000) -> int:
    """The first port of ``count`` consecutive free loopback ports."""
    rng = random.Random()
    for _attempt in range(200):
        base = rng.randrange(low, high - count)
        sockets = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
                sockets.append(probe)
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError("no free port range")


class SimulatorThread:
    """Simulated gateways served by an event loop of their own, in a daemon thread."""

    def __init__(self, gateways: list[SimulatedGateway]) -> None:
        self.gateways = gateways
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> SimulatorThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(serve_gateways(self.gateways), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            await asyncio.gather(*(gateway.stop() for gateway in self.gateways))

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def start_simulator(count: int, meters: int, **options: Any) -> SimulatorThread:
    base_port = options.pop("base_port", None) or free_port_range(count)
    return SimulatorThread(build_gateways(count, meters, base_port=base_port, **options))


def register_simulated(
    site: Site, gateways: Sequence[SimulatedGateway], *, timeout_ms: int = 1000, retries: int = 1
) -> list[Gateway]:
    """Gateway and meter rows for simulated gateways, in the site's tenant (bulk)."""
    rows = Gateway.objects.bulk_create(
        Gateway(
            tenant_id=site.tenant_id,
            site=site,
            name=f"SIM-{gateway.port}",
            host=gateway.host,
            port=gateway.port,
            framing=gateway.framing,
            timeout_ms=timeout_ms,
            retries=retries,
            baud_rate=gateway.baud,
        )
        for gateway in gateways
    )
    Meter.objects.bulk_create(
        Meter(
            tenant_id=site.tenant_id,
            site=site,
            serial_number=str(meter.serial),
            profile=meter.profile.name,
            utility=meter.profile.utility,
            gateway=row,
            unit_id=unit_id,
        )
        for row, gateway in zip(rows, gateways, strict=True)
        for unit_id, meter in gateway.meters.items()
    )
    return rows
