"""Run checks, each timed and isolated (node_exporter's per-collector success and duration).

Every check has its own worker thread (started on first use, idle between rounds); a round hands
each worker its job and waits for all of them until each check's ``timeout_s`` (counted from the
start of the round, so checks overlap). A check that raises is reported failed with
``<ExceptionType>: <message>``; one that does not finish in time with ``timeout``; the others'
findings are published all the same. A hung check's thread cannot be killed: while it is stuck
the check is reported ``hung`` and not started again, so a stuck check never piles up threads.
Persistent workers cost a queue hand-off per round instead of a thread start (about a tenth of
the CPU; see bench/agent_footprint.py).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pantau.agent.checks import Check, Findings
from pantau.contract import wire

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
    __slots__ = ("done", "duration", "error", "findings")

    def __init__(self) -> None:
        self.findings: Findings | None = None
        self.error: Exception | None = None
        self.duration = 0.0
        self.done = threading.Event()


class _Worker:
    """One check's thread: runs jobs from its queue, one at a time."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.current: _Job | None = None
        self.thread = threading.Thread(target=self._loop, name=f"check-{check.name}", daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        return self.current is not None and not self.current.done.is_set()

    def submit(self) -> _Job:
        job = _Job()
        self.current = job
        self.jobs.put(job)
        return job

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            started = time.perf_counter()
            try:
                job.findings = self.check.run()
            except Exception as exc:  # noqa: BLE001 - isolation is the point: report, never die
                job.error = exc
            finally:
                job.duration = time.perf_counter() - started
                job.done.set()


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:_MAX_REASON]


class Runner:
    """Runs rounds of checks; keeps one worker thread per check across rounds."""

    def __init__(self) -> None:
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()  # rounds of different checks may run on two threads

    def running(self, name: str) -> bool:
        """True while a check's last job has not returned (it is running or hung)."""
        worker = self._workers.get(name)
        return worker is not None and worker.busy

    def _worker(self, check: Check) -> _Worker:
        worker = self._workers.get(check.name)
        if worker is None or worker.check is not check:
            if worker is not None:
                worker.jobs.put(None)
            worker = self._workers[check.name] = _Worker(check)
        return worker

    def run(self, checks: Sequence[Check]) -> list[Outcome]:
        start = time.perf_counter()
        jobs: list[tuple[Check, _Job | None]] = []
        with self._lock:
            for check in checks:
                worker = self._worker(check)
                jobs.append((check, None if worker.busy else worker.submit()))
        outcomes = []
        for check, job in jobs:
            if job is None:
                outcomes.append(Outcome(check.name, False, 0.0, HUNG, check.failed(None)))
            elif not job.done.wait(max(0.0, start + check.timeout_s - time.perf_counter())):
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

    def close(self) -> None:
        """Let idle workers end (a hung one ends when its check returns; threads are daemons)."""
        with self._lock:
            for worker in self._workers.values():
                worker.jobs.put(None)
            self._workers.clear()
