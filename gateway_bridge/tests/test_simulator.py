"""The simulator answers standard Modbus masters, keeps the meters' physics, and times its bus
like a real RS485 line."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ModbusPDU

from gateway_bridge.codec import decode_block
from gateway_bridge.simulator import (
    SimulatedGateway,
    SimulatedMeter,
    read_wire_seconds,
    wire_seconds,
)
from gateway_bridge.testing import SimulatorThread, free_port_range, start_simulator
from metering.meter_profiles import get_profile


def _mbpoll(*args: str) -> list[int]:
    output = subprocess.run(
        ["mbpoll", "-1", "-0", "-t", "4", "-o", "1", *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    return [int(value) for value in re.findall(r"^\[\d+\]:\s+(\d+)", output, re.M)]


def test_mbpoll_reads_a_meter_over_modbus_tcp() -> None:
    with start_simulator(1, 2, profiles=["DDSY1352"], baud=115200) as sim:
        port = sim.gateways[0].port
        words = _mbpoll("-m", "tcp", "-p", str(port), "-a", "2", "-r", "0", "-c", "20", "127.0.0.1")
        identity = _mbpoll(
            "-m", "tcp", "-p", str(port), "-a", "2", "-r", "18", "-c", "2", "127.0.0.1"
        )
    assert len(words) == 20
    values = decode_block(get_profile("DDSY1352").blocks[0], words)
    tou = values["tou_spike"] + values["tou_peak"] + values["tou_flat"] + values["tou_valley"]
    assert abs(tou - values["total"]) <= Decimal("0.04")  # four registers, one rounding each
    assert Decimal("200") < values["voltage"] < Decimal("240")
    assert (identity[0] << 16) + identity[1] == port * 1000 + 2


@pytest.mark.skipif(not shutil.which("socat"), reason="needs socat (make test installs it)")
def test_mbpoll_reads_rtu_frames_through_a_serial_line(tmp_path: Path) -> None:
    tty = tmp_path / "ttyV0"
    with start_simulator(1, 1, profiles=["DDSY1352"], framing="rtu", baud=115200) as sim:
        bridge = subprocess.Popen(
            ["socat", f"pty,link={tty},raw,echo=0", f"tcp:127.0.0.1:{sim.gateways[0].port}"]
        )
        try:
            for _wait in range(50):
                if tty.exists():
                    break
                time.sleep(0.1)
            words = _mbpoll(
                "-m", "rtu", "-b", "9600", "-P", "even", "-a", "1", "-r", "0", "-c", "10", str(tty)
            )
        finally:
            bridge.terminate()
    assert len(words) == 10
    assert sum((words[i] << 16) + words[i + 1] for i in (2, 4, 6, 8)) == (words[0] << 16) + words[1]


async def _read(port: int, framing: FramerType, unit: int, address: int, count: int) -> ModbusPDU:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, framer=framing, timeout=2, retries=0)
    await client.connect()
    try:
        return await client.read_holding_registers(address, count=count, device_id=unit)
    finally:
        client.close()


def test_tripping_the_relay_cuts_the_load() -> None:
    with start_simulator(1, 1, profiles=["DDSY1352"], baud=115200) as sim:
        port = sim.gateways[0].port

        async def scenario() -> tuple[Sequence[int], Sequence[int], Sequence[int], ModbusPDU]:
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
            await client.connect()
            before = await client.read_holding_registers(17, count=1, device_id=1)
            await client.write_register(80, 1, device_id=1)
            after = await client.read_holding_registers(17, count=1, device_id=1)
            power = await client.read_holding_registers(13, count=1, device_id=1)
            refused = await client.write_register(80, 9, device_id=1)
            client.close()
            return before.registers, after.registers, power.registers, refused

        before, after, power, refused = asyncio.run(scenario())
    assert before == [0] and after == [1]
    assert power == [0]
    assert refused.isError() and refused.exception_code == 3


def test_counters_wrap_and_the_time_of_use_registers_still_add_up() -> None:
    profile = get_profile("DDSY1352")
    start = int(profile.wrap * 100) - 50
    meter = SimulatedMeter(profile, 1, 1, random.Random(1), start_hundredths=start)
    now = time.time()
    meter.updated_at = now - 3600 * 5  # five hours of load
    words = meter.registers(3, 0, 20, now)
    assert isinstance(words, list)
    values = decode_block(profile.blocks[0], words)
    assert values["total"] < Decimal("100")  # rolled over 42,949,672.95
    wrap = profile.wrap + Decimal("0.01")
    tou_sum = sum(values[name] for name in ("tou_spike", "tou_peak", "tou_flat", "tou_valley"))
    assert tou_sum % wrap == values["total"]


def test_an_unknown_unit_gets_the_gateway_exception_and_a_bad_address_its_own() -> None:
    with start_simulator(1, 2, profiles=["DDSY1352"], baud=115200) as sim:
        port = sim.gateways[0].port
        missing = asyncio.run(_read(port, FramerType.SOCKET, 9, 0, 17))
        bad_address = asyncio.run(_read(port, FramerType.SOCKET, 1, 200, 4))
    assert missing.isError() and missing.exception_code == 0x0B
    assert bad_address.isError() and bad_address.exception_code == 0x02


def test_the_bus_takes_the_wire_time_at_9600_baud_and_serves_one_request_at_a_time() -> None:
    """Physical timing: 17 registers are 62 ms on the wire at 9600 baud (8E1), and two masters
    on one gateway share its one bus."""
    reads = 8
    ideal = reads * read_wire_seconds(17, 9600)
    assert round(read_wire_seconds(17, 9600) * 1000, 1) == 61.9
    port = free_port_range(1)
    profile = get_profile("DDSY1352")
    gateway_meters = [SimulatedMeter(profile, unit, unit, random.Random(unit)) for unit in (1, 2)]
    with SimulatorThread([SimulatedGateway(port, gateway_meters, baud=9600)]):

        async def master(unit: int, count: int) -> None:
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
            await client.connect()
            for _ in range(count):
                response = await client.read_holding_registers(0, count=17, device_id=unit)
                assert not response.isError()
            client.close()

        started = time.perf_counter()
        asyncio.run(master(1, reads))
        alone = time.perf_counter() - started
        started = time.perf_counter()

        async def two_masters() -> None:
            await asyncio.gather(master(1, reads // 2), master(2, reads // 2))

        asyncio.run(two_masters())
        shared = time.perf_counter() - started
    assert ideal <= alone < 2 * ideal, (alone, ideal)
    assert ideal <= shared < 2 * ideal, (shared, ideal)
    assert wire_seconds(8, 8, 9600) < read_wire_seconds(17, 9600)
