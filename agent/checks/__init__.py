"""Checks: one small interface, three implementations (``usb``, ``login``, ``host``).

A check is an object with a ``name``, a ``timeout_s`` and two methods: :meth:`Check.run` does
its I/O (through an injectable reader) and returns :class:`Findings`; :meth:`Check.failed`
says what to report when ``run`` raised or hung (the runner, :mod:`pantau.agent.runner`, decides that).
Parsing and classification live in pure functions next to each check and are tested on their
own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pantau.contract import wire


@dataclass(frozen=True, slots=True)
class Findings:
    """What one check contributes to the state.

    ``problem`` is a partial failure (the check ran but could not see everything, e.g. a
    configured disk is missing): the check is reported not ok with this reason while its
    findings are still published.
    """

    peripherals: tuple[wire.Peripheral, ...] = ()
    probes: tuple[wire.Probe, ...] = ()
    host: wire.Host | None = None
    problem: str = ""


class Check(Protocol):
    """One check of the round."""

    @property
    def name(self) -> str: ...

    @property
    def timeout_s(self) -> float: ...

    def run(self) -> Findings:
        """Do the I/O and return findings; may raise or hang (the runner isolates both)."""
        ...

    def failed(self, exc: Exception | None) -> Findings:
        """Findings to publish when :meth:`run` raised ``exc`` or timed out (``exc`` None)."""
        ...
