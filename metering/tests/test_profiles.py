"""Meter profiles load from data and refuse to load when they are wrong, saying where."""

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from metering import meter_profiles
from metering.meter_profiles import ProfileError, all_profiles, get_profile, load_profile_file

BUILTIN = Path(meter_profiles.__file__).parent / "profiles"


def test_the_built_in_profiles_load() -> None:
    profiles = all_profiles()
    assert {"DDSY1352", "DTSY1352", "WATER-DN20"} <= set(profiles)
    ddsy = profiles["DDSY1352"]
    assert ddsy.wrap == Decimal("42949672.95")
    first = ddsy.blocks[0]
    assert (first.function, first.address, first.count) == (3, 0, 20)
    assert ddsy.value("total").type == "UINT32" and ddsy.value("total").scale == Decimal("0.01")  # type: ignore[union-attr]
    assert ddsy.relay.control.assumed and ddsy.value("relay_state").assumed  # type: ignore[union-attr]
    assert not ddsy.value("total").assumed  # type: ignore[union-attr]
    dtsy = profiles["DTSY1352"]
    assert {"voltage_a", "reactive_energy", "max_demand"} <= set(dtsy.value_names)
    water = profiles["WATER-DN20"]
    assert water.utility == "water" and water.unit == "m3" and water.blocks[0].function == 4


def _write(tmp_path: Path, changes: Callable[[dict[str, Any]], None]) -> Path:
    data = json.loads((BUILTIN / "DDSY1352.json").read_text())
    changes(data)
    path = tmp_path / "DDSY1352.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda d: d["blocks"][0]["values"][1].update(address=1),
            "DDSY1352.json: blocks[0].values[1].address: tou_spike overlaps total at register 1",
        ),
        (
            lambda d: d["blocks"][0]["values"][6].update(type="UINT24"),
            "DDSY1352.json: blocks[0].values[6].type: unknown type 'UINT24'",
        ),
        (
            lambda d: d["blocks"][0]["values"][7].update(scale="0"),
            "DDSY1352.json: blocks[0].values[7].scale: must not be 0",
        ),
        (
            lambda d: d["blocks"][0]["values"][10].update(address=20),
            "DDSY1352.json: blocks[0].values[10].address: power_factor (20..20) lies outside",
        ),
        (
            lambda d: d["blocks"][0].update(function=5),
            "DDSY1352.json: blocks[0].function: a read block uses function 3 or 4",
        ),
        (lambda d: d.update(wrap="-1"), "DDSY1352.json: wrap: must be above 0"),
        (lambda d: d.pop("unit"), "DDSY1352.json: unit: is missing"),
        (
            lambda d: d["relay"].update(state_value="nothing"),
            "DDSY1352.json: relay.state_value: names no value of the profile",
        ),
        (
            lambda d: d["blocks"].append({**d["blocks"][0], "values": [], "address": 10}),
            "DDSY1352.json: blocks: two blocks overlap at register 10",
        ),
    ],
)
def test_a_bad_profile_names_the_file_and_the_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ProfileError) as error:
        load_profile_file(_write(tmp_path, change))
    assert message in str(error.value)


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "BROKEN.json"
    path.write_text("{ not json")
    with pytest.raises(ProfileError, match=r"BROKEN\.json: not valid JSON"):
        load_profile_file(path)


def test_a_deployer_moves_the_assumed_relay_registers_without_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def move(data: dict[str, Any]) -> None:
        published = data["blocks"][0]
        prepaid = [v for v in published["values"] if v.get("assumed")]
        published["values"] = [v for v in published["values"] if not v.get("assumed")]
        published["count"] = 17
        prepaid[0]["address"], prepaid[1]["address"] = 256, 257
        data["blocks"].append({"function": 3, "address": 256, "count": 3, "values": prepaid})
        data["relay"]["control"]["address"] = 300

    _write(tmp_path, move)
    monkeypatch.setenv("BARS_METER_PROFILES_DIR", str(tmp_path))
    profile = get_profile("DDSY1352")
    assert profile.relay.control.address == 300  # type: ignore[union-attr]
    assert profile.value("relay_state").address == 256 and len(profile.blocks) == 2  # type: ignore[union-attr]
    assert profile.source == "DDSY1352.json"
    monkeypatch.delenv("BARS_METER_PROFILES_DIR")
    assert get_profile("DDSY1352").relay.control.address == 80  # type: ignore[union-attr]
