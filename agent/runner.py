"""Run checks, each timed and isolated (node_exporter's per-collector success and duration).

Every check runs in its own daemon thread; the round waits for each until its ``timeout_s``
(counted from the start of the round, so checks overlap). A check that raises is reported failed
with ``<ExceptionType>: <message>``; one that does not finish in time with ``timeout``; the
others' findings are published all the same. A hung check's thread cannot be killed: it is left
running and the check is reported ``hung`` (not started again) until that thread ends, so a
stuck check never piles up threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from agent.checks import Check, Findings
from pantau import wire

TIMEOUT: Final = "timeout"
HUNG: Final = "hung: the previous run has not returned yet"
_MAX_REASON: Final = 256


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check's result in a round."""

    name: str
    ok: bool
    duration_s: float
    reason: str
    findings: Findings

    def to_wire(self) -> wire.CheckRun:
        return wire.CheckRun(
            name=self.name, ok=self.ok, duration_s=self.duration_s, reason=self.reason
        )


class _Job:
    __slots__ = ("duration", "error", "findings", "thread")

    def __init__(self, check: Check) -> None:
        self.findings: Findings | None = None
        self.error: Exception | None = None
        self.duration = 0.0
        self.thread = threading.Thread(
            target=self.work, args=(check,), name=f"check-{check.name}", daemon=True
        )

    def work(self, check: Check) -> None:
        started = time.perf_counter()
        try:
            self.findings = check.run()
        except Exception as exc:  # noqa: BLE001 - isolation is the point: report, never die
            self.error = exc
        finally:
            self.duration = time.perf_counter() - started


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_REASON]


class Runner:
    """Runs rounds of checks; remembers threads of hung checks across rounds."""

    def __init__(self) -> None:
        self._hung: dict[str, threading.Thread] = {}

    def run(self, checks: Sequence[Check]) -> list[Outcome]:
        start = time.perf_counter()
        jobs: list[tuple[Check, _Job | None]] = []
        for check in checks:
            stuck = self._hung.get(check.name)
            if stuck is not None and stuck.is_alive():
                jobs.append((check, None))
                continue
            self._hung.pop(check.name, None)
            new = _Job(check)
            new.thread.start()
            jobs.append((check, new))
        outcomes = []
        for check, job in jobs:
            if job is None:
                outcomes.append(Outcome(check.name, False, 0.0, HUNG, check.failed(None)))
                continue
            job.thread.join(max(0.0, start + check.timeout_s - time.perf_counter()))
            if job.thread.is_alive():
                self._hung[check.name] = job.thread
                elapsed = time.perf_counter() - start
                outcomes.append(Outcome(check.name, False, elapsed, TIMEOUT, check.failed(None)))
            elif job.error is not None:
                reason = _reason(job.error)
                findings = check.failed(job.error)
                outcomes.append(Outcome(check.name, False, job.duration, reason, findings))
            else:
                findings = job.findings or Findings()
                ok = not findings.problem
                reason = findings.problem[:_MAX_REASON]
                outcomes.append(Outcome(check.name, ok, job.duration, reason, findings))
        return outcomes
