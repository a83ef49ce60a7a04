"""USB hotplug notifications from udev (Linux), so a pulled cable is reported within a second.

:class:`UdevHotplug` listens to udev's uevents on a ``NETLINK_KOBJECT_UEVENT`` socket (the stdlib
``socket`` module, no pyudev: docs/performance.md) on its own thread and calls back on the ``usb``
subsystem's ``usb_device`` add/remove/bind/unbind; the service then runs the USB check.
Elsewhere (Windows) :func:`default_hotplug` returns None and the service polls
(``intervals.poll_s``).

Group: the socket joins the udev group (:data:`UDEV_GROUP`), where udevd re-broadcasts each
kernel uevent once its rules have run. That is what libudev monitors listen to (pyudev's default
and libusb's own, so libusb's device list is updated by the same message), and the only group
umockdev emulates: its preload library turns the socket into a Unix datagram socket and sends
every listener udev-format messages, whatever group it joined. Kernel-format messages (group 1,
``ACTION@DEVPATH``) are parsed too, but not subscribed to.

A message is only a hint to look again: what is plugged in always comes from libusb, so a
forged or malformed message costs at most one extra USB check (and only root can send to the
group). If the kernel drops messages because the socket's queue overflowed (ENOBUFS), the
callback runs anyway.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import struct
import sys
import threading
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

#: ``NETLINK_KOBJECT_UEVENT`` (linux/netlink.h); Python's socket module has no name for it.
NETLINK_KOBJECT_UEVENT: Final = 15
#: udevd's multicast group (libudev's ``UDEV_MONITOR_UDEV``); the kernel's own is 1.
UDEV_GROUP: Final = 2
#: libudev's message header: "libudev\0", magic (network order), then native-order sizes.
_UDEV_PREFIX: Final = b"libudev\x00"
_UDEV_MAGIC: Final = 0xFEEDCAFE
_UDEV_HEADER: Final = struct.Struct("=III")  # header_size, properties_off, properties_len
RECV_BYTES: Final = 16384
ACTIONS: Final = frozenset({"add", "remove", "bind", "unbind"})


def parse_uevent(data: bytes) -> dict[str, str]:
    """The ``KEY=VALUE`` properties of one uevent message, udev or kernel format; empty if the
    message is neither."""
    if data.startswith(_UDEV_PREFIX):
        if len(data) < 8 + 4 + _UDEV_HEADER.size:
            return {}
        (magic,) = struct.unpack_from("!I", data, 8)
        if magic != _UDEV_MAGIC:
            return {}
        _size, offset, length = _UDEV_HEADER.unpack_from(data, 12)
        body = data[offset : offset + length]
    else:
        head, _, body = data.partition(b"\x00")
        if b"@" not in head:
            return {}
    props: dict[str, str] = {}
    for field in body.split(b"\x00"):
        key, sep, value = field.partition(b"=")
        if sep:
            props[key.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return props


def is_usb_change(props: dict[str, str]) -> bool:
    """A USB device (not one of its interfaces) appeared, went away, or got or lost a driver."""
    return (
        props.get("SUBSYSTEM") == "usb"
        and props.get("DEVTYPE") == "usb_device"
        and props.get("ACTION") in ACTIONS
    )


class UdevHotplug:
    def __init__(self, group: int = UDEV_GROUP) -> None:
        self.group = group
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._wake_w: int | None = None

    def start(self, callback: Callable[[], None]) -> None:
        """Open and bind the socket (OSError if netlink is unavailable), then watch it."""
        if sys.platform == "win32":  # no netlink (and no select.poll): the agent polls there
            raise OSError("udev hotplug is Linux-only")
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
        try:
            sock.bind((0, self.group))
            wake_r, self._wake_w = os.pipe()
        except OSError:
            sock.close()
            raise
        thread = threading.Thread(
            target=self._watch, args=(sock, wake_r, callback), name="udev", daemon=True
        )
        try:
            thread.start()  # RuntimeError when the service's task limit is reached
        except RuntimeError:
            sock.close()
            os.close(wake_r)
            os.close(self._wake_w)
            self._wake_w = None
            raise
        self._sock = sock
        self._thread = thread

    def _watch(self, sock: socket.socket, wake_r: int, callback: Callable[[], None]) -> None:
        if sys.platform == "win32":
            return
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}  # no timeout: idle costs no wake-ups
                if wake_r in ready:
                    return
                try:
                    data = sock.recv(RECV_BYTES)
                except OSError as exc:
                    if exc.errno == errno.ENOBUFS:  # messages were dropped: look anyway
                        self._call(callback)
                        continue
                    log.warning("udev monitor stopped: %s", exc)  # polling still covers us
                    return
                if is_usb_change(parse_uevent(data)):
                    self._call(callback)
        finally:
            os.close(wake_r)

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("hotplug callback failed")

    def stop(self) -> None:
        """Stop the thread and close the socket at once (an unread socket only fills up)."""
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # the thread already stopped (closed its end)
                os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._wake_w is not None:
            os.close(self._wake_w)
            self._wake_w = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def default_hotplug() -> UdevHotplug | None:
    """udev on Linux; None (polling) elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    return UdevHotplug()
