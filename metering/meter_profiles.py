"""Meter models as data: which registers to read, how to decode them, what can be written.

A profile is a JSON file in ``metering/profiles/`` (a deployer adds or overrides files in the
directory named by ``BARS_METER_PROFILES_DIR``). It lists the register blocks a read takes
(function code, address, count), every value inside them (type, word order, scale, unit), the
counter's wrap, the relay (the register that reports it and the one that drives it) and any
setpoints. Registers the vendor does not publish are marked ``"assumed": true``.

Profiles are validated when loaded; a bad one stops the load with an error that names the file
and the field (``DDSY1352.json: blocks[0].values[3].scale: must not be 0``).
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"

TYPES = {"UINT16": 1, "INT16": 1, "UINT32": 2, "INT32": 2, "FLOAT32": 2}
# The raw values each integer type holds (a value is its raw value times the scale).
RAW_RANGES = {
    "UINT16": (0, 0xFFFF),
    "INT16": (-0x8000, 0x7FFF),
    "UINT32": (0, 0xFFFFFFFF),
    "INT32": (-0x80000000, 0x7FFFFFFF),
}
FLOAT32_MAX = Decimal("3.4028234e38")
WORD_ORDERS = {"big", "little"}
READ_FUNCTIONS = {3, 4}
WRITE_FUNCTIONS = {6, 16}
# Values with a column of their own on a reading; every other value goes into its ``extra``.
READING_COLUMNS = (
    "total",
    "tou_spike",
    "tou_peak",
    "tou_flat",
    "tou_valley",
    "voltage",
    "current",
    "power",
    "power_factor",
)
TOU_REGISTERS = ("tou_spike", "tou_peak", "tou_flat", "tou_valley")
RELAY_STATES = {"closed", "tripped"}


class ProfileError(ValueError):
    """A meter profile that cannot be used, with the file and field at fault."""


@dataclass(frozen=True)
class ValueSpec:
    name: str
    address: int
    type: str
    scale: Decimal
    unit: str = ""
    word_order: str = "big"
    assumed: bool = False

    @property
    def words(self) -> int:
        return TYPES[self.type]


@dataclass(frozen=True)
class BlockSpec:
    function: int
    address: int
    count: int
    values: tuple[ValueSpec, ...]
    assumed: bool = False


@dataclass(frozen=True)
class WriteSpec:
    """A register the platform writes: the relay control, or a setpoint."""

    name: str
    function: int
    address: int
    type: str = "UINT16"
    scale: Decimal = Decimal(1)
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    assumed: bool = False


@dataclass(frozen=True)
class RelaySpec:
    state_value: str
    states: dict[int, str]
    control: WriteSpec
    trip_value: int
    close_value: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MeterProfile:
    name: str
    description: str
    utility: str
    unit: str
    wrap: Decimal
    blocks: tuple[BlockSpec, ...]
    relay: RelaySpec | None
    identity_value: str | None
    setpoints: tuple[WriteSpec, ...]
    source: str

    def value(self, name: str) -> ValueSpec | None:
        for block in self.blocks:
            for spec in block.values:
                if spec.name == name:
                    return spec
        return None

    def setpoint(self, name: str) -> WriteSpec | None:
        return next((s for s in self.setpoints if s.name == name), None)

    @property
    def value_names(self) -> list[str]:
        return [spec.name for block in self.blocks for spec in block.values]

    @property
    def extra_values(self) -> dict[str, ValueSpec]:
        """The values a reading keeps in ``extra``: those with no column of their own, less
        the relay's state and the meter's identity (both read into their own places)."""
        kept_apart = {*READING_COLUMNS, self.identity_value}
        if self.relay is not None:
            kept_apart.add(self.relay.state_value)
        return {
            spec.name: spec
            for block in self.blocks
            for spec in block.values
            if spec.name not in kept_apart
        }


def value_error(spec: ValueSpec, value: Decimal) -> str | None:
    """Why ``value`` cannot be what the register holds (None: it can): out of the type's range
    at the scale, or not a multiple of the scale for an integer register."""
    if not value.is_finite():
        return _("not a number")
    if spec.type == "FLOAT32":
        return None if abs(value) <= FLOAT32_MAX * abs(spec.scale) else _("out of range")
    raw = value / spec.scale
    if raw != raw.to_integral_value():
        return _("not a multiple of %(step)s") % {"step": spec.scale}
    low, high = RAW_RANGES[spec.type]
    if not low <= raw <= high:
        return _("out of range (%(low)s to %(high)s)") % {
            "low": low * spec.scale,
            "high": high * spec.scale,
        }
    return None


class _Reader:
    """Pulls typed fields out of the parsed JSON, naming the path when one is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ProfileError:
        return ProfileError(f"{self.source}: {path}: {message}")

    def get(self, data: dict[str, Any], key: str, path: str, kind: type, default: Any = ...) -> Any:
        if key not in data:
            if default is ...:
                raise self.fail(f"{path}{key}", "is missing")
            return default
        value = data[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(f"{path}{key}", f"must be a whole number, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise self.fail(f"{path}{key}", f"must be {kind.__name__}, got {value!r}")
        return value

    def decimal(self, data: dict[str, Any], key: str, path: str, default: Any = ...) -> Any:
        if key not in data and default is not ...:
            return default
        raw = self.get(data, key, path, str)
        try:
            value = Decimal(raw)
        except InvalidOperation as exc:
            raise self.fail(f"{path}{key}", f"must be a decimal number, got {raw!r}") from exc
        if not value.is_finite():
            raise self.fail(f"{path}{key}", f"must be finite, got {raw!r}")
        return value

    def register_type(self, data: dict[str, Any], path: str) -> str:
        kind = self.get(data, "type", path, str, "UINT16")
        if kind not in TYPES:
            raise self.fail(f"{path}type", f"unknown type {kind!r} (known: {', '.join(TYPES)})")
        return kind

    def scale(self, data: dict[str, Any], path: str) -> Decimal:
        scale = self.decimal(data, "scale", path, Decimal(1))
        if scale == 0:
            raise self.fail(f"{path}scale", "must not be 0")
        return scale

    def address(self, data: dict[str, Any], key: str, path: str) -> int:
        value = self.get(data, key, path, int)
        if not 0 <= value <= 0xFFFF:
            raise self.fail(f"{path}{key}", f"must be a register address 0-65535, got {value}")
        return value


def _parse_value(reader: _Reader, data: dict[str, Any], path: str) -> ValueSpec:
    word_order = reader.get(data, "word_order", path, str, "big")
    if word_order not in WORD_ORDERS:
        raise reader.fail(f"{path}word_order", f"must be big or little, got {word_order!r}")
    return ValueSpec(
        name=reader.get(data, "name", path, str),
        address=reader.address(data, "address", path),
        type=reader.register_type(data, path),
        scale=reader.scale(data, path),
        unit=reader.get(data, "unit", path, str, ""),
        word_order=word_order,
        assumed=reader.get(data, "assumed", path, bool, False),
    )


def _parse_block(reader: _Reader, data: dict[str, Any], path: str) -> BlockSpec:
    function = reader.get(data, "function", path, int)
    if function not in READ_FUNCTIONS:
        raise reader.fail(f"{path}function", f"a read block uses function 3 or 4, got {function}")
    address = reader.address(data, "address", path)
    count = reader.get(data, "count", path, int)
    if not 1 <= count <= 125:
        raise reader.fail(f"{path}count", f"one read takes 1 to 125 registers, got {count}")
    raw_values = reader.get(data, "values", path, list)
    values = tuple(
        _parse_value(reader, item, f"{path}values[{index}].")
        for index, item in enumerate(raw_values)
    )
    taken: dict[int, str] = {}
    for index, value in enumerate(values):
        end = value.address + value.words
        if value.address < address or end > address + count:
            raise reader.fail(
                f"{path}values[{index}].address",
                f"{value.name} ({value.address}..{end - 1}) lies outside the block "
                f"{address}..{address + count - 1}",
            )
        for register in range(value.address, end):
            if register in taken:
                raise reader.fail(
                    f"{path}values[{index}].address",
                    f"{value.name} overlaps {taken[register]} at register {register}",
                )
            taken[register] = value.name
    return BlockSpec(
        function=function,
        address=address,
        count=count,
        values=values,
        assumed=reader.get(data, "assumed", path, bool, False),
    )


def _parse_write(reader: _Reader, data: dict[str, Any], path: str, name: str) -> WriteSpec:
    function = reader.get(data, "function", path, int)
    if function not in WRITE_FUNCTIONS:
        raise reader.fail(f"{path}function", f"a write uses function 6 or 16, got {function}")
    return WriteSpec(
        name=reader.get(data, "name", path, str, name),
        function=function,
        address=reader.address(data, "address", path),
        type=reader.register_type(data, path),
        scale=reader.scale(data, path),
        minimum=reader.decimal(data, "min", path, None),
        maximum=reader.decimal(data, "max", path, None),
        assumed=reader.get(data, "assumed", path, bool, False),
    )


def _parse_relay(reader: _Reader, data: dict[str, Any], values: set[str]) -> RelaySpec:
    state_value = reader.get(data, "state_value", "relay.", str)
    if state_value not in values:
        raise reader.fail("relay.state_value", f"names no value of the profile: {state_value!r}")
    raw_states = reader.get(data, "states", "relay.", dict)
    states: dict[int, str] = {}
    for raw, state in raw_states.items():
        if state not in RELAY_STATES or not raw.isdigit():
            raise reader.fail(f"relay.states.{raw}", "maps a register value to closed or tripped")
        states[int(raw)] = state
    control_data = reader.get(data, "control", "relay.", dict)
    return RelaySpec(
        state_value=state_value,
        states=states,
        control=_parse_write(reader, control_data, "relay.control.", "relay"),
        trip_value=reader.get(control_data, "trip", "relay.control.", int),
        close_value=reader.get(control_data, "close", "relay.control.", int),
        labels=reader.get(data, "labels", "relay.", dict, {}),
    )


def parse_profile(data: dict[str, Any], source: str) -> MeterProfile:
    reader = _Reader(source)
    if not isinstance(data, dict):
        raise reader.fail("(top)", "a profile is a JSON object")
    blocks = tuple(
        _parse_block(reader, item, f"blocks[{index}].")
        for index, item in enumerate(reader.get(data, "blocks", "", list))
    )
    if not blocks:
        raise reader.fail("blocks", "a profile reads at least one block")
    names = [value.name for block in blocks for value in block.values]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise reader.fail("blocks", f"value names appear twice: {', '.join(sorted(duplicates))}")
    if "total" not in names:
        raise reader.fail("blocks", "a profile must read a 'total' register")
    ranges = sorted((b.function, b.address, b.address + b.count) for b in blocks)
    for (fa, _sa, end_a), (fb, start_b, _eb) in itertools.pairwise(ranges):
        if fa == fb and start_b < end_a:
            raise reader.fail("blocks", f"two blocks overlap at register {start_b}")
    wrap = reader.decimal(data, "wrap", "")
    if wrap <= 0:
        raise reader.fail("wrap", "must be above 0")
    utility = reader.get(data, "utility", "", str)
    if utility not in {"electricity", "water"}:
        raise reader.fail("utility", f"must be electricity or water, got {utility!r}")
    identity = reader.get(data, "identity_value", "", str, None)
    if identity is not None and identity not in names:
        raise reader.fail("identity_value", f"names no value of the profile: {identity!r}")
    relay_data = reader.get(data, "relay", "", dict, None)
    setpoints = tuple(
        _parse_write(reader, item, f"setpoints[{index}].", "")
        for index, item in enumerate(reader.get(data, "setpoints", "", list, []))
    )
    return MeterProfile(
        name=reader.get(data, "name", "", str),
        description=reader.get(data, "description", "", str, ""),
        utility=utility,
        unit=reader.get(data, "unit", "", str),
        wrap=wrap,
        blocks=blocks,
        relay=_parse_relay(reader, relay_data, set(names)) if relay_data else None,
        identity_value=identity,
        setpoints=setpoints,
        source=source,
    )


def load_profile_file(path: Path) -> MeterProfile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path.name}: not valid JSON: {exc}") from exc
    profile = parse_profile(data, path.name)
    if profile.name != path.stem:
        raise ProfileError(f"{path.name}: name: {profile.name!r} must match the file name")
    return profile


def profile_dirs() -> list[Path]:
    extra = os.environ.get("BARS_METER_PROFILES_DIR", "")
    return [BUILTIN_DIR, *([Path(extra)] if extra else [])]


@lru_cache(maxsize=1)
def _load_all(dirs: tuple[Path, ...]) -> dict[str, MeterProfile]:
    profiles: dict[str, MeterProfile] = {}
    for directory in dirs:
        for path in sorted(directory.glob("*.json")):
            profile = load_profile_file(path)
            profiles[profile.name] = profile  # a later directory overrides a built-in profile
    return profiles


def all_profiles() -> dict[str, MeterProfile]:
    return _load_all(tuple(profile_dirs()))


def get_profile(name: str) -> MeterProfile:
    try:
        return all_profiles()[name]
    except KeyError as exc:
        raise ProfileError(f"no meter profile named {name!r}") from exc
