"""The ``host`` check: CPU, memory, configured disks, boot time and agent start time.

:class:`PsutilReader` reads raw numbers into a :class:`HostSample`; :func:`to_host` (pure)
turns a sample into the wire :class:`~pantau.wire.Host`. A reboot is not decided here: the
service compares ``boot_ts`` with the value it remembered (see :mod:`agent.changes`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from agent.checks import Findings
from pantau import wire

MIN_CPU_WINDOW_S: Final = 0.1


@dataclass(frozen=True, slots=True)
class DiskSample:
    mount: str
    free_bytes: int = 0
    size_bytes: int = 0
    #: Non-empty when the mount could not be read (then the sizes are meaningless).
    error: str = ""


@dataclass(frozen=True, slots=True)
class HostSample:
    cpu_ratio: float
    mem_available_bytes: int
    mem_total_bytes: int
    boot_ts: float
    disks: tuple[DiskSample, ...] = ()


class HostReader(Protocol):
    """Reads host numbers now (psutil in real life, anything in a simulator)."""

    def sample(self, disks: Sequence[str]) -> HostSample: ...


def to_host(sample: HostSample, agent_start_ts: float) -> tuple[wire.Host, str]:
    """Wire host health and a problem sentence ("" when every configured disk was read)."""
    host = wire.Host(
        cpu_ratio=min(1.0, max(0.0, sample.cpu_ratio)),
        mem_available_bytes=max(0, sample.mem_available_bytes),
        mem_total_bytes=max(0, sample.mem_total_bytes),
        boot_ts=sample.boot_ts,
        agent_start_ts=agent_start_ts,
        disks=tuple(
            wire.Disk(mount=d.mount[:128], free_bytes=d.free_bytes, size_bytes=d.size_bytes)
            for d in sample.disks
            if not d.error
        ),
    )
    problem = "; ".join(f"disk {d.mount}: {d.error}" for d in sample.disks if d.error)
    return host, problem


class PsutilReader:
    """psutil-based :class:`HostReader`. CPU is the ratio since the previous sample."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval to measure
        self._primed_at: float | None = time.monotonic()

    def sample(self, disks: Sequence[str]) -> HostSample:
        ps = self._psutil
        if self._primed_at is not None:  # first sample: let the CPU ratio cover >= 0.1 s
            time.sleep(max(0.0, self._primed_at + MIN_CPU_WINDOW_S - time.monotonic()))
            self._primed_at = None
        mem = ps.virtual_memory()
        out = []
        for mount in disks:
            try:
                usage = ps.disk_usage(mount)
            except OSError as exc:
                out.append(DiskSample(mount, error=exc.strerror or type(exc).__name__))
            else:
                out.append(DiskSample(mount, usage.free, usage.total))
        return HostSample(
            cpu_ratio=ps.cpu_percent(interval=None) / 100.0,
            mem_available_bytes=mem.available,
            mem_total_bytes=mem.total,
            boot_ts=ps.boot_time(),
            disks=tuple(out),
        )


class HostCheck:
    name: Final = "host"

    def __init__(
        self, reader: HostReader, disks: Sequence[str], agent_start_ts: float, timeout_s: float
    ) -> None:
        self.reader = reader
        self.disks = tuple(disks)
        self.agent_start_ts = agent_start_ts
        self.timeout_s = timeout_s

    def run(self) -> Findings:
        host, problem = to_host(self.reader.sample(self.disks), self.agent_start_ts)
        return Findings(host=host, problem=problem)

    def failed(self, exc: Exception | None) -> Findings:  # noqa: ARG002 - protocol signature
        return Findings()
