"""Simulated gateways full of simulated meters, timed like a real RS485 bus.

Each gateway is a Modbus server on loopback (Modbus TCP, or RTU frames over TCP) with meters
at unit ids 1..M built from the meter profiles. A meter's energy grows with a daily load
profile while its relay is closed; its four time-of-use registers add up to the total; its
counters wrap where the profile says. Every request holds the gateway's one bus lock (shared
by all connections to that gateway) for the wire time of the request and the answer at the
bus's baud rate (8E1: 11 bits a character, a 3.5-character gap on each side), so timings are
physical: one bus answers about 16 reads of 17 registers a second at 9600 baud.

Faults are injected inside the simulator, per request at the given rate or forced on a meter:
no answer, an exception response, a corrupted frame, a swapped meter answering at the unit id,
a counter that jumps back. It answers any standard Modbus master (mbpoll, pymodbus…).

The server is written for this job rather than built on pymodbus's server: the bus timing and
lock, the frame-level faults and 32,000 meters in a couple of hundred megabytes all need control
that a generic server's datastore does not give. pymodbus's CRC is reused.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pymodbus.framer.rtu import FramerRTU

from metering.meter_profiles import MeterProfile, get_profile

if TYPE_CHECKING:
    from metering.meter_profiles import BlockSpec

CHAR_BITS = 11  # 8 data bits, even parity, one stop bit, plus the start bit
GAP_CHARS = 7  # 3.5 characters of silence before the request and before the answer
SILENCE_SECONDS = 0.2  # how long the gateway waits for a meter that does not answer
FAULTS = ("no_answer", "exception", "corrupted", "swapped", "jump_back")

ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
DEVICE_FAILURE = 0x04
TARGET_NO_RESPONSE = 0x0B


def wire_seconds(request_bytes: int, answer_bytes: int, baud: int) -> float:
    """Time on the bus for one request and its answer, with the silent gaps around them."""
    return (request_bytes + answer_bytes + GAP_CHARS) * CHAR_BITS / baud


def read_wire_seconds(count: int, baud: int) -> float:
    """A read of ``count`` registers: request 8 bytes, answer 5 + 2×count (RTU on the bus)."""
    return wire_seconds(8, 5 + 2 * count, baud)


# Time-of-use periods by hour of day, China time (a common Beijing-style schedule):
# valley 23-07, peak 10-15 and 18-21 with the spike at 19-21 inside it, flat otherwise.
def tou_period(hour: int) -> int:
    if hour >= 23 or hour < 7:
        return 3  # valley
    if hour in (19, 20):
        return 0  # spike
    if 10 <= hour < 15 or 18 <= hour < 21:
        return 1  # peak
    return 2  # flat


def load_shape(hour: float) -> float:
    """A household's daily shape: low at night, a morning bump, an evening peak."""
    morning = math.exp(-((hour - 8) ** 2) / 4)
    evening = math.exp(-((hour - 19.5) ** 2) / 6)
    return 0.25 + 0.5 * morning + 1.0 * evening


class SimulatedMeter:
    """One meter: energy counters in hundredths of the profile unit, a relay, a serial."""

    __slots__ = (
        "base_kw",
        "forced_fault",
        "profile",
        "relay_tripped",
        "resolution",
        "serial",
        "stuck_relay",
        "time_scale",
        "tou",
        "unit_id",
        "updated_at",
        "wrap",
        "writes",
    )

    def __init__(
        self,
        profile: MeterProfile,
        unit_id: int,
        serial: int,
        rng: random.Random,
        time_scale: float = 1.0,
        start_hundredths: int | None = None,
    ) -> None:
        self.profile = profile
        self.unit_id = unit_id
        self.serial = serial
        total = profile.value("total")
        self.resolution = int(1 / total.scale) if total is not None else 100
        self.wrap = int(profile.wrap * self.resolution)
        start = rng.randrange(100_000, 5_000_000) if start_hundredths is None else start_hundredths
        shares = [0.05, 0.3, 0.4, 0.25]
        self.tou = [int(start * share) for share in shares]
        self.tou[2] += start - sum(self.tou)
        self.base_kw = rng.uniform(0.3, 2.5) * (3 if profile.name.startswith("DT") else 1)
        self.relay_tripped = False
        self.stuck_relay = False
        self.forced_fault: str | None = None
        self.time_scale = time_scale
        self.updated_at = time.time()
        self.writes: dict[int, int] = {}

    # --- the physics ---------------------------------------------------------------------

    def power_kw(self, at: float) -> float:
        if self.relay_tripped:
            return 0.0
        return self.base_kw * load_shape(_china_hour(at))

    def advance(self, now: float) -> None:
        elapsed_hours = (now - self.updated_at) * self.time_scale / 3600
        self.updated_at = now
        if elapsed_hours <= 0 or self.relay_tripped:
            return
        added = int(self.power_kw(now) * elapsed_hours * self.resolution + random.random())
        self.tou[tou_period(int(_china_hour(now)))] += added

    def jump_back(self, hundredths: int) -> None:
        self.tou[2] = max(0, self.tou[2] - hundredths)

    @property
    def total(self) -> int:
        return sum(self.tou) % (self.wrap + 1)

    def values(self, now: float) -> dict[str, float | int]:
        """Every quantity a profile may ask for; energies as whole counter steps."""
        power = self.power_kw(now)
        voltage = 220.0 + 4 * math.sin(now / 600)
        power_factor = 0.95
        current = power * 1000 / (voltage * power_factor) if power else 0.0
        wrap = self.wrap + 1
        total = sum(self.tou) % wrap
        return {
            "total": total,
            "tou_spike": self.tou[0] % wrap,
            "tou_peak": self.tou[1] % wrap,
            "tou_flat": self.tou[2] % wrap,
            "tou_valley": self.tou[3] % wrap,
            "reactive_energy": total * 3 // 10,
            "voltage": voltage,
            "voltage_a": voltage,
            "voltage_b": voltage - 1,
            "voltage_c": voltage + 1,
            "current": current,
            "current_a": current / 3,
            "current_b": current / 3,
            "current_c": current / 3,
            "power": power,
            "apparent_power": power / power_factor,
            "reactive_power": power * 0.33,
            "power_factor": power_factor if power else 1.0,
            "frequency": 50.0,
            "max_demand": self.base_kw * 1.6,
            "flow_rate": power,
            "battery_voltage": 3.6,
            "relay_state": 1 if self.relay_tripped else 0,
            "serial_number": self.serial,
            "code": self.unit_id,
        }

    def registers(self, function: int, address: int, count: int, now: float) -> list[int] | int:
        """The registers a read returns, or an exception code."""
        self.advance(now)
        block = next(
            (
                b
                for b in self.profile.blocks
                if b.function == function
                and b.address <= address
                and address + count <= b.address + b.count
            ),
            None,
        )
        if block is None:
            return ILLEGAL_ADDRESS
        words = _encoder(block, self.resolution).encode(self.values(now))
        for register, value in self.writes.items():
            if block.address <= register < block.address + block.count:
                words[register - block.address] = value
        start = address - block.address
        return words[start : start + count]

    def write_register(self, address: int, value: int, now: float) -> int | None:
        """Apply a write; returns an exception code, or None when it was taken."""
        self.advance(now)
        relay = self.profile.relay
        if relay is not None and address == relay.control.address:
            if value not in (relay.trip_value, relay.close_value):
                return ILLEGAL_VALUE
            if not self.stuck_relay:
                self.relay_tripped = value == relay.trip_value
            return None
        setpoint = next((s for s in self.profile.setpoints if s.address == address), None)
        if setpoint is None:
            return ILLEGAL_ADDRESS
        self.writes[address] = value
        return None


ENERGIES = {"total", "tou_spike", "tou_peak", "tou_flat", "tou_valley", "reactive_energy"}
_LIMITS = {
    "UINT16": (0, 0xFFFF),
    "INT16": (-0x8000, 0x7FFF),
    "UINT32": (0, 0xFFFFFFFF),
    "INT32": (-0x80000000, 0x7FFFFFFF),
}
_PACK = {"UINT16": ">H", "INT16": ">h", "UINT32": ">I", "INT32": ">i", "FLOAT32": ">f"}


def _china_hour(at: float) -> float:
    return ((at + 8 * 3600) % 86400) / 3600


class BlockEncoder:
    """Writes a block's registers from the simulation's numbers, with integer arithmetic where
    the register is an energy counter (exact: the four time-of-use registers must add up).

    The block is laid out as one big-endian struct (profiles never overlap values), so a read
    costs one ``pack`` and one ``unpack``: the simulator answers thousands of reads a second on
    the machine that runs the poller too. 32-bit values in little word order are swapped after.
    """

    def __init__(self, block: BlockSpec, resolution: int) -> None:
        self.count = block.count
        # name, exact (an energy counter in whole steps), factor, limits (None for a float)
        self.fields: list[tuple[str, bool, float, tuple[int, int] | None]] = []
        self.swapped: list[int] = []  # offsets of 32-bit values in little word order
        fmt, position = ">", block.address
        for spec in sorted(block.values, key=lambda v: v.address):
            energy = spec.name in ENERGIES
            self.fields.append(
                (
                    spec.name,
                    energy and spec.scale * resolution == 1,
                    1 / (float(spec.scale) * (resolution if energy else 1)),
                    _LIMITS.get(spec.type),
                )
            )
            if spec.words == 2 and spec.word_order == "little":
                self.swapped.append(spec.address - block.address)
            fmt += "x" * 2 * (spec.address - position) + _PACK[spec.type][1]
            position = spec.address + spec.words
        fmt += "x" * 2 * (block.address + block.count - position)
        self.struct = struct.Struct(fmt)
        self.words = struct.Struct(f">{block.count}H")

    def encode(self, values: dict[str, float | int]) -> list[int]:
        raws: list[float | int] = []
        for name, exact, factor, limits in self.fields:
            value = values.get(name, 0)
            if limits is None:
                raws.append(float(value) * factor)
                continue
            raw = int(value) if exact else round(value * factor)
            low, high = limits
            raws.append(low if raw < low else high if raw > high else raw)
        words = list(self.words.unpack(self.struct.pack(*raws)))
        for offset in self.swapped:
            words[offset], words[offset + 1] = words[offset + 1], words[offset]
        return words


_ENCODERS: dict[tuple[int, int], tuple[object, BlockEncoder]] = {}


def _encoder(block: BlockSpec, resolution: int) -> BlockEncoder:
    entry = _ENCODERS.get((id(block), resolution))
    if entry is None or entry[0] is not block:
        entry = _ENCODERS[(id(block), resolution)] = (block, BlockEncoder(block, resolution))
    return entry[1]


@dataclass
class GatewayStats:
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    busy_seconds: float = 0.0


class SimulatedGateway:
    """One gateway: a TCP endpoint in front of one RS485 bus of meters."""

    def __init__(
        self,
        port: int,
        meters: Iterable[SimulatedMeter],
        *,
        baud: int = 9600,
        framing: str = "tcp",
        fault_rate: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.port = port
        self.host = host
        self.meters = {meter.unit_id: meter for meter in meters}
        self.baud = baud
        self.framing = framing
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        self.bus = asyncio.Lock()
        self.stats = GatewayStats()
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # --- framing -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                if self.framing == "tcp":
                    header = await reader.readexactly(7)
                    tid, _protocol, length, unit = struct.unpack(">HHHB", header)
                    if length < 2 or length > 260:
                        break
                    pdu = await reader.readexactly(length - 1)
                    wire_request = len(pdu) + 3
                else:
                    frame = await self._read_rtu_frame(reader)
                    if frame is None:
                        continue
                    unit, pdu, tid = frame[0], frame[1:-2], 0
                    wire_request = len(frame)
                answer = await self._handle(unit, pdu, wire_request)
                if answer is None:
                    continue
                writer.write(self._frame(tid, unit, answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _read_rtu_frame(self, reader: asyncio.StreamReader) -> bytes | None:
        head = await reader.readexactly(2)
        function = head[1]
        if function in (3, 4, 6):
            rest = await reader.readexactly(6)
        elif function == 16:
            fixed = await reader.readexactly(5)
            rest = fixed + await reader.readexactly(fixed[4] + 2)
        else:
            return None
        frame = head + rest
        crc = int.from_bytes(frame[-2:], "big")
        if FramerRTU.compute_CRC(frame[:-2]) != crc:
            return None  # a meter ignores a frame that fails its CRC
        return frame

    def _frame(self, tid: int, unit: int, answer: bytes | tuple[bytes, str]) -> bytes:
        corrupt = isinstance(answer, tuple)
        pdu = answer[0] if isinstance(answer, tuple) else answer
        if self.framing == "tcp":
            if corrupt:
                pdu = pdu[:2] + pdu[3:]  # a byte lost inside: the byte count no longer matches
            return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu
        frame = bytes([unit]) + pdu
        crc = FramerRTU.compute_CRC(frame)
        if corrupt:
            crc ^= 0x5A5A
        return frame + crc.to_bytes(2, "big")

    # --- the bus -------------------------------------------------------------------------

    def _draw_fault(self, meter: SimulatedMeter) -> str | None:
        if meter.forced_fault:
            return meter.forced_fault
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(FAULTS)
        return None

    async def _handle(
        self, unit: int, pdu: bytes, wire_request: int
    ) -> bytes | tuple[bytes, str] | None:
        function = pdu[0] if pdu else 0
        async with self.bus:
            self.stats.requests += 1
            meter = self.meters.get(unit)
            if meter is None:
                await self._hold_bus(wire_request * CHAR_BITS / self.baud + SILENCE_SECONDS)
                return bytes([function | 0x80, TARGET_NO_RESPONSE])
            fault = self._draw_fault(meter)
            if fault:
                self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1
            if fault == "no_answer":
                await self._hold_bus(wire_request * CHAR_BITS / self.baud + SILENCE_SECONDS)
                return None
            if fault == "exception":
                await self._hold_bus(wire_seconds(wire_request, 5, self.baud))
                return bytes([function | 0x80, DEVICE_FAILURE])
            if fault == "jump_back":
                meter.jump_back(self.rng.randrange(100, 10_000))
            answering = meter
            if fault == "swapped" and len(self.meters) > 1:
                others = [m for u, m in self.meters.items() if u != unit]
                answering = self.rng.choice(others)
            answer = self._answer(answering, pdu)
            await self._hold_bus(wire_seconds(wire_request, len(answer) + 3, self.baud))
            return (answer, "corrupted") if fault == "corrupted" else answer

    async def _hold_bus(self, seconds: float) -> None:
        self.stats.busy_seconds += seconds
        await asyncio.sleep(seconds)

    def _answer(self, meter: SimulatedMeter, pdu: bytes) -> bytes:
        function = pdu[0]
        now = time.time()
        if function in (3, 4) and len(pdu) == 5:
            address, count = struct.unpack(">HH", pdu[1:5])
            if not 1 <= count <= 125:
                return bytes([function | 0x80, ILLEGAL_VALUE])
            words = meter.registers(function, address, count, now)
            if isinstance(words, int):
                return bytes([function | 0x80, words])
            return bytes([function, 2 * count]) + struct.pack(f">{count}H", *words)
        if function == 6 and len(pdu) == 5:
            address, value = struct.unpack(">HH", pdu[1:5])
            error = meter.write_register(address, value, now)
            return bytes([function | 0x80, error]) if error else pdu
        if function == 16 and len(pdu) >= 6:
            address, count, size = struct.unpack(">HHB", pdu[1:6])
            values = struct.unpack(f">{count}H", pdu[6 : 6 + size])
            for offset, value in enumerate(values):
                error = meter.write_register(address + offset, value, now)
                if error:
                    return bytes([function | 0x80, error])
            return pdu[:5]
        return bytes([function | 0x80, ILLEGAL_FUNCTION])


def simulated_serial(port: int, unit_id: int) -> int:
    """The serial a simulated meter reports: its port and unit id, e.g. 15020 001 → 15020001."""
    return port * 1000 + unit_id


def build_gateways(
    count: int,
    meters_per_gateway: int,
    *,
    base_port: int,
    profiles: list[str],
    baud: int = 9600,
    framing: str = "tcp",
    fault_rate: float = 0.0,
    seed: int = 1,
    time_scale: float = 1.0,
    host: str = "127.0.0.1",
) -> list[SimulatedGateway]:
    rng = random.Random(seed)
    loaded = [get_profile(name) for name in profiles]
    gateways = []
    for index in range(count):
        port = base_port + index
        meters = [
            SimulatedMeter(
                loaded[(index * meters_per_gateway + unit - 1) % len(loaded)],
                unit,
                simulated_serial(port, unit),
                rng,
                time_scale=time_scale,
            )
            for unit in range(1, meters_per_gateway + 1)
        ]
        gateways.append(
            SimulatedGateway(
                port,
                meters,
                baud=baud,
                framing=framing,
                fault_rate=fault_rate,
                seed=seed + index,
                host=host,
            )
        )
    return gateways


async def serve_gateways(gateways: list[SimulatedGateway]) -> None:
    await asyncio.gather(*(gateway.start() for gateway in gateways))
