"""Request budgets in fixed windows: N requests per second, minute, hour or day.

A window is one counter in the shared cache that expires with the window, so every process
counts against the same budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Window:
    allowed: int
    seconds: int
    index: int
    ends_in: float

    def counter(self, scope: str, ident: str) -> str:
        return f"throttle:{scope}:{ident}:{self.index}"


def current_window(rate: str) -> Window:
    """The window now for a rate written as DRF writes it (``6000/min``, ``10/s``)."""
    count, _slash, period = rate.partition("/")
    seconds = _PERIODS[period[0]]
    now = time.time()
    index = int(now // seconds)
    return Window(int(count), seconds, index, (index + 1) * seconds - now)
