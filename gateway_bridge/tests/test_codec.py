"""Registers to values and back, for every type and word order."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_bridge.codec import EncodeError, decode_block, decode_value, encode_value
from metering.meter_profiles import BlockSpec, ValueSpec, get_profile

RANGES = {
    "UINT16": (0, 0xFFFF),
    "INT16": (-0x8000, 0x7FFF),
    "UINT32": (0, 0xFFFFFFFF),
    "INT32": (-0x80000000, 0x7FFFFFFF),
}
SCALES = [Decimal("1"), Decimal("0.1"), Decimal("0.01"), Decimal("0.001"), Decimal("10")]


@given(
    kind=st.sampled_from(sorted(RANGES)),
    word_order=st.sampled_from(["big", "little"]),
    scale=st.sampled_from(SCALES),
    data=st.data(),
)
def test_integers_round_trip_exactly(
    kind: str, word_order: str, scale: Decimal, data: st.DataObject
) -> None:
    low, high = RANGES[kind]
    raw = data.draw(st.integers(low, high))
    spec = ValueSpec("v", 0, kind, scale, word_order=word_order)
    value = Decimal(raw) * scale
    words = encode_value(spec, value)
    assert all(0 <= word <= 0xFFFF for word in words)
    assert len(words) == spec.words
    assert decode_value(spec, words) == value


@given(
    words=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2),
    kind=st.sampled_from(["UINT32", "INT32"]),
    word_order=st.sampled_from(["big", "little"]),
)
def test_any_register_pair_decodes_and_encodes_back_to_itself(
    words: list[int], kind: str, word_order: str
) -> None:
    spec = ValueSpec("v", 0, kind, Decimal("0.01"), word_order=word_order)
    assert encode_value(spec, decode_value(spec, words)) == words


@given(
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32),
    word_order=st.sampled_from(["big", "little"]),
)
def test_float32_keeps_seven_significant_digits(value: float, word_order: str) -> None:
    spec = ValueSpec("flow", 0, "FLOAT32", Decimal(1), word_order=word_order)
    decoded = decode_value(spec, encode_value(spec, Decimal(repr(value))))
    assert abs(float(decoded) - value) <= abs(value) * 1e-6 + 1e-30


def test_a_total_of_1000_kwh_as_the_ddsy1352_sends_it() -> None:
    # 1,000.00 kWh at 0.01 kWh is 100,000 = 0x0001_86A0, high word first.
    total = get_profile("DDSY1352").value("total")
    assert total is not None
    assert decode_value(total, [0x0001, 0x86A0]) == Decimal("1000.00")
    little = ValueSpec("total", 0, "UINT32", Decimal("0.01"), word_order="little")
    assert decode_value(little, [0x86A0, 0x0001]) == Decimal("1000.00")


def test_negative_power_and_power_factor_are_signed() -> None:
    profile = get_profile("DDSY1352")
    assert decode_value(profile.value("power"), [0xFFFF]) == Decimal("-0.001")  # type: ignore[arg-type]
    assert decode_value(profile.value("power_factor"), [0xFC18]) == Decimal("-1.000")  # type: ignore[arg-type]


def test_a_block_decodes_every_value_at_its_offset() -> None:
    block = BlockSpec(
        3,
        100,
        4,
        (ValueSpec("a", 100, "UINT16", Decimal(1)), ValueSpec("b", 102, "UINT32", Decimal("0.1"))),
    )
    assert decode_block(block, [7, 0, 0, 12345]) == {"a": Decimal(7), "b": Decimal("1234.5")}
    with pytest.raises(ValueError, match="expected 4 registers"):
        decode_block(block, [1, 2])


def test_values_the_register_cannot_hold_are_refused() -> None:
    spec = ValueSpec("v", 0, "UINT16", Decimal("0.01"))
    with pytest.raises(EncodeError, match="multiple"):
        encode_value(spec, Decimal("1.005"))
    with pytest.raises(EncodeError, match="does not fit"):
        encode_value(spec, Decimal("655.36"))
    with pytest.raises(EncodeError, match="does not fit"):
        encode_value(spec, Decimal("-0.01"))
