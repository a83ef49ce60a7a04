"""Simulated hardware for the real agent code: the demo, the fleet simulator and tests.

Each class implements the interface the real reader implements, so
:func:`pantau.agent.service.build_agent` runs unchanged on top of them::

    usb = SimulatedUsb([camera, fingerprint])          # UsbReader + Hotplug
    agent = build_agent(cfg, usb_reader=usb, hotplug=usb, host_reader=SimulatedHost(),
                        prober=SimulatedProber(), spool_path=":memory:")
    threading.Thread(target=agent.run, args=(stop,), daemon=True).start()
    usb.unplug(0x04A9)     # the agent sees it at once, as with udev

All classes are thread-safe (the agent reads them from its check threads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from pantau.agent.checks.host import DiskSample, HostSample
from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import ProbeSettings
from pantau.contract import wire


class SimulatedUsb:
    """A USB bus you plug devices into. Also a hotplug source: plug/unplug notify the agent."""

    def __init__(self, devices: Iterable[UsbDevice] = ()) -> None:
        self._lock = threading.Lock()
        self._devices = list(devices)
        self._callback: Callable[[], None] | None = None
        #: Set to an exception to make enumeration fail (e.g. ``UsbUnavailable(...)``).
        self.error: Exception | None = None

    # UsbReader
    def devices(self) -> Sequence[UsbDevice]:
        with self._lock:
            if self.error is not None:
                raise self.error
            return tuple(self._devices)

    # Hotplug
    def start(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def stop(self) -> None:
        self._callback = None

    def _notify(self) -> None:
        if self._callback is not None:
            self._callback()

    def plug(self, device: UsbDevice) -> None:
        with self._lock:
            self._devices.append(device)
        self._notify()

    def unplug(self, vid: int, pid: int | None = None) -> int:
        """Remove every device with this vid (and pid); returns how many were removed."""
        with self._lock:
            keep = [d for d in self._devices if not (d.vid == vid and pid in (None, d.pid))]
            removed = len(self._devices) - len(keep)
            self._devices = keep
        self._notify()
        return removed


class SimulatedHost:
    """Fixed or settable host numbers."""

    def __init__(
        self,
        *,
        cpu_ratio: float = 0.1,
        mem_available_bytes: int = 4 << 30,
        mem_total_bytes: int = 8 << 30,
        boot_ts: float | None = None,
        disk_free_bytes: int = 100 << 30,
        disk_size_bytes: int = 250 << 30,
    ) -> None:
        self.cpu_ratio = cpu_ratio
        self.mem_available_bytes = mem_available_bytes
        self.mem_total_bytes = mem_total_bytes
        self.boot_ts = time.time() - 3600 if boot_ts is None else boot_ts
        self.disk_free_bytes = disk_free_bytes
        self.disk_size_bytes = disk_size_bytes

    def sample(self, disks: Sequence[str]) -> HostSample:
        return HostSample(
            cpu_ratio=self.cpu_ratio,
            mem_available_bytes=self.mem_available_bytes,
            mem_total_bytes=self.mem_total_bytes,
            boot_ts=self.boot_ts,
            disks=tuple(DiskSample(m, self.disk_free_bytes, self.disk_size_bytes) for m in disks),
        )


class SimulatedProber:
    """Login probes answered from a table: target name -> reason (``ok`` unless set)."""

    def __init__(self, reasons: dict[str, str] | None = None, duration_s: float = 0.02) -> None:
        self._lock = threading.Lock()
        self._reasons = dict(reasons or {})
        self.duration_s = duration_s

    def set(self, target: str, reason: str) -> None:
        with self._lock:
            self._reasons[target] = reason

    def __call__(self, settings: ProbeSettings) -> wire.Probe:
        with self._lock:
            reason = self._reasons.get(settings.name, "ok")
        return wire.Probe(
            target=settings.name,
            kind=settings.kind,
            up=reason == "ok",
            duration_s=self.duration_s if reason == "ok" else settings.timeout_s,
            reason=reason,
        )
