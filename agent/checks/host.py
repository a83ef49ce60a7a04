"""The ``host`` check: CPU, memory, configured disks, boot time and agent start time.

A :class:`HostReader` reads raw numbers into a :class:`HostSample`; :func:`to_host` (pure)
turns a sample into the wire :class:`~pantau.contract.wire.Host`. A reboot is not decided here: the
service compares ``boot_ts`` with the value it remembered (see :mod:`pantau.agent.changes`).

Two real readers, chosen by :func:`default_host_reader`:

- :class:`ProcReader` (Linux): ``/proc/stat``, ``/proc/meminfo`` and ``statvfs``, the same
  sources and formulas as psutil (CPU busy = total - idle - iowait, guest time not counted
  twice; ``MemAvailable``; free = blocks available to unprivileged users), parsed by the pure
  :func:`parse_cpu_times`, :func:`cpu_ratio`, :func:`parse_meminfo` and :func:`parse_btime`.
  It exists because importing psutil costs the service ~0.7 MB RSS (2-3% of its budget) for
  four numbers (docs/performance.md).
- :class:`PsutilReader` (elsewhere, i.e. Windows, or a Linux without a readable ``/proc``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from pantau.agent.checks import Findings, Sources, register
from pantau.agent.config import AgentConfig, system_disks
from pantau.contract import wire

MIN_CPU_WINDOW_S: Final = 0.1
#: /proc/stat's aggregate ``cpu`` fields: user nice system idle iowait irq softirq steal guest
#: guest_nice (older kernels give fewer). guest and guest_nice are already part of user/nice.
_IDLE, _IOWAIT, _GUEST, _GUEST_NICE = 3, 4, 8, 9


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
    #: Changes at every boot and only then (Linux: the kernel's random boot id; Windows: the
    #: boot counter); "" where the system offers none. Reboots are decided by it, not by
    #: ``boot_ts``, which is wall clock minus uptime and moves whenever the clock is stepped.
    boot_id: str = ""


class HostReader(Protocol):
    """Reads host numbers now (psutil in real life, anything in a simulator)."""

    def sample(self, disks: Sequence[str]) -> HostSample: ...


def _bytes(value: int) -> int:
    return min(wire.EXACT_INT_MAX, max(0, value))


def _timestamp(value: float) -> float:
    return min(wire.TIMESTAMP_MAX, max(0.0, value))


def to_host(sample: HostSample, agent_start_ts: float) -> tuple[wire.Host, str]:
    """Wire host health and a problem sentence ("" when every configured disk was read).

    Numbers are clamped to the wire contract's bounds: a PC whose clock stands at 1970 computes a
    boot time before the epoch, and one number out of bounds would have the whole state rejected.
    """
    host = wire.Host(
        cpu_ratio=min(1.0, max(0.0, sample.cpu_ratio)),
        mem_available_bytes=_bytes(sample.mem_available_bytes),
        mem_total_bytes=_bytes(sample.mem_total_bytes),
        boot_ts=_timestamp(sample.boot_ts),
        agent_start_ts=_timestamp(agent_start_ts),
        disks=tuple(
            wire.Disk(
                mount=d.mount[:128],
                free_bytes=_bytes(d.free_bytes),
                size_bytes=_bytes(d.size_bytes),
            )
            for d in sample.disks
            if not d.error
        ),
    )
    problem = "; ".join(f"disk {d.mount}: {d.error}" for d in sample.disks if d.error)
    return host, problem


def parse_cpu_times(stat: str) -> tuple[int, ...]:
    """The aggregate ``cpu`` line of ``/proc/stat`` as ticks (pure)."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return tuple(int(x) for x in fields[1:11])
    raise ValueError("/proc/stat has no aggregate cpu line")


def cpu_ratio(before: Sequence[int], after: Sequence[int]) -> float:
    """Busy share of CPU time between two :func:`parse_cpu_times` readings (pure).

    As psutil's ``cpu_percent``: a counter that went backwards counts as 0; busy is everything
    but idle and iowait; guest time is not counted twice; no time passed gives 0.0.
    """
    delta = [max(0, b - a) for a, b in zip(before, after, strict=False)]
    total = sum(delta) - sum(delta[i] for i in (_GUEST, _GUEST_NICE) if i < len(delta))
    idle = sum(delta[i] for i in (_IDLE, _IOWAIT) if i < len(delta))
    return (total - idle) / total if total > 0 else 0.0


def parse_meminfo(meminfo: str) -> tuple[int, int]:
    """``(available, total)`` bytes from ``/proc/meminfo`` (pure).

    ``MemAvailable`` (Linux >= 3.14); without it, ``MemFree + Buffers + Cached``.
    """
    kib: dict[str, int] = {}
    for line in meminfo.splitlines():
        name, _, rest = line.partition(":")
        value = rest.split()
        if value:
            kib[name] = int(value[0])
    if "MemTotal" not in kib:
        raise ValueError("/proc/meminfo has no MemTotal")
    available = kib.get("MemAvailable")
    if available is None:
        available = kib.get("MemFree", 0) + kib.get("Buffers", 0) + kib.get("Cached", 0)
    return available * 1024, kib["MemTotal"] * 1024


def parse_btime(stat: str) -> float:
    """Boot time (Unix seconds) from ``/proc/stat``'s ``btime`` line (pure)."""
    for line in stat.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise ValueError("/proc/stat has no btime line")


_BOOT_ID_RE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def parse_boot_id(text: str) -> str:
    """Linux's ``/proc/sys/kernel/random/boot_id`` (a UUID, new at every boot), or "" (pure)."""
    value = text.strip().lower()
    return value if _BOOT_ID_RE.match(value) else ""


def disk_sample(mount: str) -> DiskSample:
    """Free (for unprivileged users) and total bytes of ``mount`` (statvfs, as psutil)."""
    try:  # statvfs on POSIX: free = f_bavail * f_frsize, total = f_blocks * f_frsize
        usage = shutil.disk_usage(mount)
    except OSError as exc:
        return DiskSample(mount, error=exc.strerror or type(exc).__name__)
    return DiskSample(mount, usage.free, usage.total)


class ProcReader:
    """Linux :class:`HostReader` on ``/proc`` and ``statvfs`` (no psutil).

    CPU is the ratio since the previous sample (the first covers at least
    :data:`MIN_CPU_WINDOW_S` since the reader was made).
    """

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._cpu = parse_cpu_times(self._read("stat"))
        self._primed_at: float | None = time.monotonic()

    def _read(self, name: str) -> str:
        with open(os.path.join(self.proc, name), encoding="ascii") as f:
            return f.read()

    def sample(self, disks: Sequence[str]) -> HostSample:
        if self._primed_at is not None:
            time.sleep(max(0.0, self._primed_at + MIN_CPU_WINDOW_S - time.monotonic()))
            self._primed_at = None
        stat = self._read("stat")
        cpu = parse_cpu_times(stat)
        ratio, self._cpu = cpu_ratio(self._cpu, cpu), cpu
        available, total = parse_meminfo(self._read("meminfo"))
        return HostSample(
            cpu_ratio=ratio,
            mem_available_bytes=available,
            mem_total_bytes=total,
            boot_ts=parse_btime(stat),
            disks=tuple(disk_sample(mount) for mount in disks),
            boot_id=self._boot_id(),
        )

    def _boot_id(self) -> str:
        try:
            return parse_boot_id(self._read("sys/kernel/random/boot_id"))
        except (OSError, ValueError):
            return ""


def default_host_reader() -> HostReader:
    """:class:`ProcReader` on Linux (when ``/proc`` reads), else :class:`PsutilReader`."""
    if sys.platform.startswith("linux"):
        try:
            return ProcReader()
        except (OSError, ValueError):
            pass
    return PsutilReader()


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
            boot_id=self._boot_id(),
        )

    @staticmethod
    def _boot_id() -> str:
        if sys.platform == "win32":
            from pantau.agent.windows import read_boot_id

            return read_boot_id()
        return ""


class HostCheck:
    name: Final = "host"
    background: Final = False

    def __init__(
        self,
        reader: HostReader,
        disks: Sequence[str],
        agent_start_ts: float,
        timeout_s: float,
        interval_s: float = 10.0,
    ) -> None:
        self.reader = reader
        self.disks = tuple(disks)
        self.agent_start_ts = agent_start_ts
        self.timeout_s = timeout_s
        self.interval_s = interval_s

    def run(self) -> Findings:
        sample = self.reader.sample(self.disks)
        host, problem = to_host(sample, self.agent_start_ts)
        return Findings(host=host, problem=problem, boot_id=sample.boot_id)

    def failed(self, exc: Exception | None) -> Findings:  # noqa: ARG002 - protocol signature
        return Findings()


@register("host", order=30)
def _build(cfg: AgentConfig, sources: Sources) -> HostCheck:
    return HostCheck(
        sources.host_reader,
        system_disks(cfg),
        sources.agent_start_ts,
        cfg.intervals.check_timeout_s,
        cfg.intervals.poll_s,
    )
