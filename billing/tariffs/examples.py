"""Tariff specifications as Chinese utilities publish them, used by the demo, the benchmark and
the tests (whose worked examples quote these prices)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Beijing residential (阶梯): 2,880 / 4,800 kWh a year; five or more people get 1,200 kWh more
# in each tier; households on minimum living support get 10 kWh a month free.
BEIJING_RESIDENTIAL: dict[str, Any] = {
    "energy": {
        "kind": "tiered",
        "cumulation": "year",
        "tiers": [
            {"up_to": "2880", "price": "0.4883"},
            {"up_to": "4800", "price": "0.5383"},
            {"up_to": None, "price": "0.7883"},
        ],
    },
    "large_household": {"min_members": 5, "extra": ["1200", "1200"]},
    "free_allowance_kwh_per_month": "10",
}

TOU_SEASONS: list[dict[str, Any]] = [
    {"name": "summer", "months": [7, 8],
     "prices": {"spike": "1.2", "peak": "0.9", "flat": "0.6", "valley": "0.3"}},
    {"name": "other", "months": [1, 2, 3, 4, 5, 6, 9, 10, 11, 12],
     "prices": {"spike": "1.1", "peak": "0.85", "flat": "0.55", "valley": "0.28"}},
]  # fmt: skip

# Commercial time of use (峰谷): the meter sorts energy into four registers by this schedule.
TOU_COMMERCIAL: dict[str, Any] = {
    "energy": {
        "kind": "tou",
        "seasons": TOU_SEASONS,
        "schedule": [
            {"from": "00:00", "to": "08:00", "register": "valley"},
            {"from": "08:00", "to": "10:00", "register": "flat"},
            {"from": "10:00", "to": "12:00", "register": "spike"},
            {"from": "12:00", "to": "23:00", "register": "peak"},
            {"from": "23:00", "to": "24:00", "register": "valley"},
        ],
    }
}

# Time of use with annual tier surcharges on top (阶梯 + 峰谷).
TOU_WITH_SURCHARGES: dict[str, Any] = {
    "energy": {
        **TOU_COMMERCIAL["energy"],
        "tier_surcharges": {
            "cumulation": "year",
            "tiers": [
                {"up_to": "2880", "surcharge": "0"},
                {"up_to": "4800", "surcharge": "0.05"},
                {"up_to": None, "surcharge": "0.30"},
            ],
        },
    }
}


def two_part_industrial(months: Iterable[str]) -> dict[str, Any]:
    """Large industry (两部制): distribution price, capacity charge by contracted kVA, the
    agency purchase price of each month, government funds, power factor against 0.90."""
    return {
        "energy": {"kind": "flat", "price": "0.1856"},
        "capacity_charge_per_kva": "30",
        "power_factor_standard": "0.90",
        "agency_purchase_prices": {month: "0.4123" for month in months},
        "funds_per_kwh": "0.029",
    }
