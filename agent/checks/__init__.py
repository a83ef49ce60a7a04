"""Checks: one small interface, registered by name (``usb``, ``login``, ``host``, ...).

A check is an object with a ``name``, a ``timeout_s``, an ``interval_s`` (how often the service
runs it), ``background`` (True: it waits on the network, so the service runs it on its own thread
and a slow server never delays the report of an unplugged device) and two methods:
:meth:`Check.run` does its I/O (through an injectable reader) and returns :class:`Findings`;
:meth:`Check.failed` says what to report when ``run`` raised or hung (the runner,
:mod:`pantau.agent.runner`, decides that). Parsing and classification live in pure functions
next to each check and are tested on their own.

Checks register themselves the node_exporter way: a module of this package decorates a factory
with :func:`register`; :func:`build` imports every module of the package and makes the configured
checks from every registered factory, in ``order``. The service knows no check by name (docs/architecture.md has the recipe for adding
one).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from pantau.contract import wire

if TYPE_CHECKING:
    from pantau.agent.checks.host import HostReader
    from pantau.agent.checks.login import Prober
    from pantau.agent.checks.usb import UsbReader
    from pantau.agent.config import AgentConfig


@dataclass(frozen=True, slots=True)
class Findings:
    """What one check contributes to the state.

    ``problem`` is a partial failure (the check ran but could not see everything, e.g. a
    configured disk is missing): the check is reported not ok with this reason while its
    findings are still published. ``missing`` names, per absent device class, the expected
    devices not found (for people: the detail of a ``peripheral_removed`` event).
    """

    peripherals: tuple[wire.Peripheral, ...] = ()
    probes: tuple[wire.Probe, ...] = ()
    host: wire.Host | None = None
    problem: str = ""
    missing: Mapping[str, str] = field(default_factory=dict)
    #: The host check's boot identity (:attr:`pantau.agent.checks.host.HostSample.boot_id`).
    boot_id: str = ""


class Check(Protocol):
    """One check of the round."""

    @property
    def name(self) -> str: ...

    @property
    def timeout_s(self) -> float: ...

    @property
    def interval_s(self) -> float: ...

    @property
    def background(self) -> bool: ...

    def run(self) -> Findings:
        """Do the I/O and return findings; may raise or hang (the runner isolates both)."""
        ...

    def failed(self, exc: Exception | None) -> Findings:
        """Findings to publish when :meth:`run` raised ``exc`` or timed out (``exc`` None)."""
        ...


@dataclass(frozen=True, slots=True)
class Sources:
    """What checks read the machine and the network through (real ones, or a simulator's)."""

    usb_reader: UsbReader
    host_reader: HostReader
    prober: Prober
    agent_start_ts: float


#: ``(config, sources) -> the check, or None when the config asks for none of it``.
CheckFactory = Callable[["AgentConfig", Sources], "Check | None"]


@dataclass(frozen=True, slots=True)
class Registration:
    name: str
    factory: CheckFactory
    #: Report order (peripherals, probes and check runs appear in it); ties by name.
    order: int


#: Every registered check by name. Tests add a toy check with ``monkeypatch.setitem``.
REGISTRY: Final[dict[str, Registration]] = {}


def register(name: str, *, order: int = 100) -> Callable[[CheckFactory], CheckFactory]:
    """Decorator: make ``factory`` the builder of the check called ``name``."""

    def add(factory: CheckFactory) -> CheckFactory:
        if name in REGISTRY and REGISTRY[name].factory is not factory:
            raise ValueError(f"check {name!r} is registered twice")
        REGISTRY[name] = Registration(name, factory, order)
        return factory

    return add


def build(cfg: AgentConfig, sources: Sources) -> list[Check]:
    """The configured checks, in report order; every module of this package is imported (so
    its check registered) first."""
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        if not module.ispkg:
            importlib.import_module(module.name)
    checks: list[Check] = []
    for reg in sorted(REGISTRY.values(), key=lambda r: (r.order, r.name)):
        check = reg.factory(cfg, sources)
        if check is not None:
            checks.append(check)
    return checks
