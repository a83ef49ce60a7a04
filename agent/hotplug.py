"""USB hotplug notifications from udev (Linux), so a pulled cable is reported within a second.

:class:`UdevHotplug` watches the ``usb`` subsystem's ``usb_device`` add/remove uevents with a
pyudev monitor on its own thread and calls back; the service then runs the USB check. Elsewhere
(Windows) :func:`default_hotplug` returns None and the service polls (``intervals.poll_s``).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agent.hotplug")


class UdevHotplug:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitor: Any = None

    def start(self, callback: Callable[[], None]) -> None:
        import pyudev

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context)
        monitor.filter_by(subsystem="usb", device_type="usb_device")
        monitor.start()
        self._monitor = monitor
        self._thread = threading.Thread(
            target=self._watch, args=(monitor, callback), name="udev", daemon=True
        )
        self._thread.start()

    def _watch(self, monitor: Any, callback: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                device = monitor.poll(timeout=0.5)
            except OSError as exc:  # the netlink socket failed: polling still covers us
                log.warning("udev monitor stopped: %s", exc)
                return
            if device is not None and device.action in ("add", "remove", "bind", "unbind"):
                try:
                    callback()
                except Exception:
                    log.exception("hotplug callback failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        # Drop the monitor now so its netlink socket closes at once, not whenever the garbage
        # collector breaks the agent's reference cycles (an unread socket fills up meanwhile).
        self._monitor = None


def default_hotplug() -> UdevHotplug | None:
    """udev on Linux when pyudev is installed; None (polling) elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import pyudev  # noqa: F401
    except ImportError:
        return None
    return UdevHotplug()
