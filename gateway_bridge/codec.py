"""Registers to values and back, as a meter profile describes them.

Modbus registers are 16-bit words sent big-endian. A 32-bit value spans two registers; which
comes first is the value's word order ("big": high word first, as Acrel meters send it). A
value is the raw number times its scale (0.01 kWh, 0.1 V…), kept as ``Decimal``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from decimal import Decimal

from metering.meter_profiles import RAW_RANGES, BlockSpec, ValueSpec, WriteSpec

_FORMATS = {"UINT16": ">H", "INT16": ">h", "UINT32": ">I", "INT32": ">i", "FLOAT32": ">f"}


class EncodeError(ValueError):
    """A value that the register cannot hold."""


def _words_to_bytes(words: Sequence[int], word_order: str) -> bytes:
    ordered = list(words) if word_order == "big" else list(reversed(words))
    return struct.pack(f">{len(ordered)}H", *ordered)


def decode_value(spec: ValueSpec | WriteSpec, words: Sequence[int]) -> Decimal:
    word_order = getattr(spec, "word_order", "big")
    (raw,) = struct.unpack(_FORMATS[spec.type], _words_to_bytes(words, word_order))
    if spec.type == "FLOAT32":
        return Decimal(format(raw, ".7g")) * spec.scale
    return Decimal(raw) * spec.scale


class BlockDecoder:
    """Decodes every value of a block with one ``struct.unpack`` (the poller's hot path).

    The block's registers are laid out as one big-endian struct, with pad bytes over unused
    registers; values in little word order are decoded one by one.
    """

    def __init__(self, block: BlockSpec) -> None:
        self.count = block.count
        layout = []  # (address, format, spec) for big word order values
        self.swapped = []
        for spec in sorted(block.values, key=lambda v: v.address):
            if spec.words == 2 and spec.word_order == "little":
                self.swapped.append((spec, spec.address - block.address))
            else:
                layout.append(spec)
        fmt, position = ">", block.address
        self.fields: list[tuple[str, Decimal | None, bool]] = []  # name, scale unless 1, float
        for spec in layout:
            fmt += "x" * 2 * (spec.address - position) + _FORMATS[spec.type][1]
            position = spec.address + spec.words
            # Multiplying by a scale of exactly 1 changes nothing, not even the exponent.
            scale = None if spec.scale.as_tuple() == (0, (1,), 0) else spec.scale
            self.fields.append((spec.name, scale, spec.type == "FLOAT32"))
        fmt += "x" * 2 * (block.address + block.count - position)
        self.struct = struct.Struct(fmt)
        self.words = struct.Struct(f">{block.count}H")

    def decode(self, registers: Sequence[int]) -> dict[str, Decimal]:
        if len(registers) < self.count:
            raise ValueError(f"expected {self.count} registers, got {len(registers)}")
        raws = self.struct.unpack(self.words.pack(*registers[: self.count]))
        values = {}
        for (name, scale, is_float), raw in zip(self.fields, raws, strict=True):
            value = Decimal(format(raw, ".7g")) if is_float else Decimal(raw)
            values[name] = value if scale is None else value * scale
        for spec, offset in self.swapped:
            values[spec.name] = decode_value(spec, registers[offset : offset + spec.words])
        return values


# Keyed by identity (hashing a block's specs costs more than decoding it); the block is kept
# beside its decoder so a reused id can never find another block's decoder.
_DECODERS: dict[int, tuple[BlockSpec, BlockDecoder]] = {}


def decode_block(block: BlockSpec, registers: Sequence[int]) -> dict[str, Decimal]:
    """Every value of a block, from the registers one read of it returned."""
    entry = _DECODERS.get(id(block))
    if entry is None or entry[0] is not block:
        entry = _DECODERS[id(block)] = (block, BlockDecoder(block))
    return entry[1].decode(registers)


def encode_value(spec: ValueSpec | WriteSpec, value: Decimal) -> list[int]:
    """The registers that hold ``value`` (a multiple of the spec's scale)."""
    word_order = getattr(spec, "word_order", "big")
    if spec.type == "FLOAT32":
        packed = struct.pack(">f", float(value / spec.scale))
    else:
        raw = value / spec.scale
        if raw != raw.to_integral_value():
            raise EncodeError(f"{value} is not a multiple of the scale {spec.scale}")
        low, high = RAW_RANGES[spec.type]
        if not low <= int(raw) <= high:
            raise EncodeError(f"{value} does not fit a {spec.type} register at scale {spec.scale}")
        packed = struct.pack(_FORMATS[spec.type], int(raw))
    words = list(struct.unpack(f">{len(packed) // 2}H", packed))
    return words if word_order == "big" else list(reversed(words))
