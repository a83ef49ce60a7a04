"""udev hotplug on a raw netlink socket: message parsing, and the real socket under umockdev."""

from __future__ import annotations

import struct
import threading

from agent_support import wait_until
from harness import UsbBus

from pantau.agent.hotplug import UdevHotplug, is_usb_change, parse_uevent

DEVPATH = "/devices/pci0000:00/0000:00:14.0/usb1/1-2"


def udev_message(props: list[str], magic: int = 0xFEEDCAFE) -> bytes:
    """A message as udevd (and umockdev) sends it: libudev header, then NUL-ended properties."""
    body = b"".join(p.encode() + b"\x00" for p in props)
    header_size = 40
    header = b"libudev\x00" + struct.pack("!I", magic)
    header += struct.pack("=IIIIIII", header_size, header_size, len(body), 0, 0, 0, 0)
    return header + body


def test_udev_format() -> None:
    msg = udev_message(
        ["ACTION=remove", f"DEVPATH={DEVPATH}", "SUBSYSTEM=usb", "SEQNUM=7", "DEVTYPE=usb_device"]
    )
    props = parse_uevent(msg)
    assert props["ACTION"] == "remove"
    assert props["DEVPATH"] == DEVPATH
    assert is_usb_change(props)


def test_kernel_format() -> None:
    msg = f"add@{DEVPATH}\x00ACTION=add\x00DEVPATH={DEVPATH}\x00SUBSYSTEM=usb\x00"
    msg += "DEVTYPE=usb_device\x00PRODUCT=4a9/3218/100\x00"
    props = parse_uevent(msg.encode())
    assert props["PRODUCT"] == "4a9/3218/100"
    assert is_usb_change(props)


def test_what_is_not_a_usb_device_change() -> None:
    base = {"ACTION": "add", "SUBSYSTEM": "usb", "DEVTYPE": "usb_device"}
    assert is_usb_change(base)
    assert not is_usb_change({**base, "DEVTYPE": "usb_interface"})  # each device has some
    assert not is_usb_change({**base, "SUBSYSTEM": "input"})
    assert not is_usb_change({**base, "ACTION": "change"})
    assert not is_usb_change({})


def test_malformed_messages_are_empty() -> None:
    assert parse_uevent(b"") == {}
    assert parse_uevent(b"libudev\x00\x00") == {}  # header cut short
    assert parse_uevent(udev_message(["ACTION=add"], magic=0x12345678)) == {}
    assert parse_uevent(b"ACTION=add\x00SUBSYSTEM=usb\x00") == {}  # no ACTION@DEVPATH head
    assert parse_uevent(b"add@/x\x00\xff\xfe=\xff\x00noequals\x00") == {"\ufffd\ufffd": "\ufffd"}


def test_netlink_socket_reports_plug_and_unplug_under_umockdev(usb_bus: UsbBus) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def callback() -> None:
        with lock:
            calls.append(1)

    hotplug = UdevHotplug()
    hotplug.start(callback)
    try:
        syspath = usb_bus.plug(0x04A9, 0x3218, 0, 6)  # uevents: usb_device, then usb_interface
        wait_until(lambda: len(calls) >= 1, 5, "add reported")
        usb_bus.unplug(syspath)  # uevents: usb_interface, then usb_device
        wait_until(lambda: len(calls) >= 2, 5, "remove reported")
    finally:
        hotplug.stop()
    assert len(calls) == 2  # the interfaces' uevents were not reported
    # stopped: its socket is closed at once, so the next uevents find no listener to fill up
    usb_bus.plug(0x04A9, 0x3218, 0, 6)
    assert len(calls) == 2


def test_stop_twice(usb_bus: UsbBus) -> None:
    hotplug = UdevHotplug()
    hotplug.start(lambda: None)
    hotplug.stop()
    hotplug.stop()


def test_a_thread_that_cannot_start_leaks_no_descriptor(usb_bus: UsbBus, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The unit's TasksMax can refuse a thread: the socket and the wake pipe must not leak."""
    import os

    import pytest

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError):
        UdevHotplug().start(lambda: None)
    monkeypatch.undo()
    assert set(os.listdir("/proc/self/fd")) == before
