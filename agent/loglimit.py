"""Rate-limited logging for errors that repeat on every change (a full disk, a broken spool).

A station whose disk is full would otherwise log an error for every event it cannot spool, for
days. :class:`LogLimiter` lets the first line of a kind through, holds back the repeats for
``interval_s``, counts them, and says how many it held back in the next line it lets through.
The clock is passed in (``monotonic``), so the logic is tested without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

#: At most one line per kind this often (seconds).
DEFAULT_INTERVAL_S: Final = 300.0


class LogLimiter:
    """At most one log line per key every ``interval_s``; repeats are counted, not lost."""

    def __init__(
        self,
        log: logging.Logger,
        interval_s: float = DEFAULT_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        #: Lines held back since the start, over all keys.
        self.suppressed_total = 0

    def log_limited(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless a line of ``key`` was logged within ``interval_s``.

        Returns True if the line was logged. A logged line that follows held-back ones ends with
        ``(N more like this in the last S s)``.
        """
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            self.suppressed_total += 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            msg += " (%d more like this in the last %.0f s)"
            args = (*args, held, now - last if last is not None else 0.0)
        self.log.log(level, msg, *args)
        return True
