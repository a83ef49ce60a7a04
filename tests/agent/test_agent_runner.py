"""Runner: every check timed and isolated; a raising or hanging check does not stop the others."""

from __future__ import annotations

import threading
import time

from pantau.agent.checks import Findings
from pantau.agent.runner import HUNG, TIMEOUT, Runner
from pantau.contract import wire


class Fake:
    def __init__(self, name: str, behaviour: str, timeout_s: float = 5.0) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.behaviour = behaviour
        self.release = threading.Event()
        self.failed_with: list[Exception | None] = []

    def run(self) -> Findings:
        if self.behaviour == "raise":
            raise ValueError("sensor exploded")
        if self.behaviour == "hang":
            self.release.wait(30)
        if self.behaviour == "partial":
            return Findings(problem="disk D:\\: not found")
        return Findings(probes=(wire.Probe(target=self.name, kind="tcp", up=True, duration_s=0.0),))

    def failed(self, exc: Exception | None) -> Findings:
        self.failed_with.append(exc)
        return Findings(problem="fallback")


def test_raise_and_hang_are_isolated() -> None:
    ok, boom, stuck = Fake("ok", "ok"), Fake("boom", "raise"), Fake("stuck", "hang", 0.05)
    runner = Runner()
    outcomes = {o.name: o for o in runner.run([ok, boom, stuck])}
    assert outcomes["ok"].ok
    assert outcomes["ok"].findings.probes[0].target == "ok"
    assert not outcomes["boom"].ok
    assert outcomes["boom"].reason == "ValueError: sensor exploded"
    assert isinstance(boom.failed_with[0], ValueError)
    assert not outcomes["stuck"].ok
    assert outcomes["stuck"].reason == TIMEOUT
    assert stuck.failed_with == [None]
    wire_run = outcomes["boom"].to_wire()
    assert (wire_run.name, wire_run.ok) == ("boom", False)

    # Next round: the stuck thread is still running, so it is not started again.
    again = {o.name: o for o in runner.run([ok, stuck])}
    assert again["stuck"].reason == HUNG
    assert again["ok"].ok
    assert runner.running("stuck")
    stuck.behaviour = "ok"
    stuck.release.set()
    deadline = time.monotonic() + 5
    while runner.running("stuck") and time.monotonic() < deadline:
        time.sleep(0.005)
    assert {o.name: o for o in runner.run([stuck])}["stuck"].ok
    runner.close()


def test_partial_problem_keeps_findings_but_is_not_ok() -> None:
    (outcome,) = Runner().run([Fake("host", "partial")])
    assert not outcome.ok
    assert outcome.reason == "disk D:\\: not found"
    assert outcome.findings.problem
