"""The clock the agent reads timestamps from (injectable for simulations and tests).

Durations of real work (a probe, a check) are measured with :func:`time.perf_counter` and waits
use real time: only what ends up in a payload (``ts``, event times) comes from the clock.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock Unix seconds (goes into payloads)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()
