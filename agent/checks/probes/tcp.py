"""The ``tcp`` probe kind: connect to ``host:port`` (the server listens: up)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from pantau.agent.checks.login import probe_result, reason_for
from pantau.agent.checks.probes import Mistake, ProbeKind, register
from pantau.agent.config import ProbeSettings, split_host_port
from pantau.contract import wire
from pantau.contract.vocabulary import ProbeReason


@dataclass(frozen=True, slots=True)
class TcpSettings:
    """A tcp probe's settings: ``target`` is ``host:port`` (``[::1]:443`` for IPv6)."""

    host: str
    port: int
    timeout_s: float

    @classmethod
    def parse(cls, settings: ProbeSettings) -> TcpSettings:
        """Raises ``ValueError`` (the message names what is expected)."""
        host, port = split_host_port(settings.target)
        return cls(host, port, settings.timeout_s)


def validate_host_port(settings: ProbeSettings) -> list[Mistake]:
    try:
        split_host_port(settings.target)
    except ValueError as exc:
        return [("target", f"{exc}, got {settings.target!r}")]
    return []


def probe_tcp(settings: ProbeSettings) -> wire.Probe:
    target = TcpSettings.parse(settings)
    started = time.perf_counter()
    try:
        with socket.create_connection((target.host, target.port), timeout=target.timeout_s):
            pass
    except OSError as exc:
        return probe_result(settings, started, reason_for(exc))
    return probe_result(settings, started, ProbeReason.OK)


KIND = register(ProbeKind("tcp", probe_tcp, validate_host_port))
