"""The usb_bus fixture: real libusb (via pyusb), real pyudev, devices emulated by umockdev."""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import UsbBus
from harness.procs import wait_for
from harness.usb import (
    DISABLE_ENV,
    REEXEC_GUARD,
    UmockdevWarning,
    config_descriptor,
    device_descriptor,
)

FINGERPRINT = (0x27C6, 0x5395)  # vendor-specific interface, as most fingerprint readers
CAMERA = (0x046D, 0x0825)  # misc device class 0xEF, video interface 0x0E

TESTS = Path(__file__).parent


def _ids() -> set[tuple[int, int, int]]:
    import usb.core

    return {(d.idVendor, d.idProduct, d.bDeviceClass) for d in usb.core.find(find_all=True)}


def test_pyusb_sees_plugged_devices_and_their_removal(usb_bus: UsbBus) -> None:
    import usb.backend.libusb1
    import usb.core

    backend = usb.backend.libusb1.get_backend()
    assert backend is not None
    lib_name = str(usb.backend.libusb1._lib._name)
    assert "libusb_package" not in lib_name, f"hotplug needs Debian's libusb, got {lib_name}"

    finger = usb_bus.plug(*FINGERPRINT, manufacturer="Goodix", product="FingerPrint", serial="F1")
    camera = usb_bus.plug(*CAMERA, device_class=0xEF, interface_class=0x0E, product="Webcam C270")
    wait_for(
        lambda: {(*FINGERPRINT, 0), (*CAMERA, 0xEF)} <= _ids(), timeout=5, what="pyusb sees both"
    )

    dev = usb.core.find(idVendor=CAMERA[0], idProduct=CAMERA[1])
    assert dev is not None
    assert dev.bus == usb_bus.devices[camera].busnum
    assert dev.address == usb_bus.devices[camera].devnum
    assert dev.port_number == usb_bus.devices[camera].port
    assert [i.bInterfaceClass for i in dev.get_active_configuration()] == [0x0E]
    finger_dev = usb.core.find(idVendor=FINGERPRINT[0], idProduct=FINGERPRINT[1])
    assert finger_dev is not None
    assert [i.bInterfaceClass for i in finger_dev[0]] == [0xFF]

    usb_bus.unplug(finger)
    wait_for(lambda: (*FINGERPRINT, 0) not in _ids(), timeout=5, what="pyusb sees removal")
    assert (*CAMERA, 0xEF) in _ids()


def test_replug_reuses_the_port_and_is_seen_again(usb_bus: UsbBus) -> None:
    first = usb_bus.plug(*FINGERPRINT)
    wait_for(lambda: (*FINGERPRINT, 0) in _ids(), timeout=5, what="pyusb sees plug")
    usb_bus.unplug(first)
    wait_for(lambda: (*FINGERPRINT, 0) not in _ids(), timeout=5, what="pyusb sees unplug")
    again = usb_bus.plug(*FINGERPRINT)
    assert again == first
    wait_for(lambda: (*FINGERPRINT, 0) in _ids(), timeout=5, what="pyusb sees replug")


def test_pyudev_monitor_reports_add_and_remove(usb_bus: UsbBus) -> None:
    import pyudev

    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by("usb", device_type="usb_device")
    monitor.start()

    syspath = usb_bus.plug(*FINGERPRINT, manufacturer="Goodix", product="FingerPrint", serial="F1")
    added = monitor.poll(timeout=5)
    assert added is not None
    assert added.action == "add"
    assert added.sys_path == syspath
    assert added.properties["ID_VENDOR_ID"] == f"{FINGERPRINT[0]:04x}"
    assert added.attributes.asstring("idProduct") == f"{FINGERPRINT[1]:04x}"
    assert added.attributes.asstring("manufacturer") == "Goodix"
    assert added.attributes.asstring("serial") == "F1"
    listed = {d.sys_path for d in context.list_devices(subsystem="usb", DEVTYPE="usb_device")}
    assert syspath in listed

    usb_bus.unplug(syspath)
    removed = monitor.poll(timeout=5)
    assert removed is not None
    assert removed.action == "remove"
    assert removed.sys_path == syspath


def test_a_monitor_left_unread_does_not_stop_the_bus(
    usb_bus: UsbBus, recwarn: pytest.WarningsRecorder
) -> None:
    """umockdev 0.17 aborts the process when a listener's queue (11 datagrams) is full; the bus
    detaches such a listener instead, and every other listener keeps getting every uevent."""
    import pyudev

    usb_bus.drain_s = 0.2
    context = pyudev.Context()
    unread = pyudev.Monitor.from_netlink(context)  # as a monitor whose thread stopped
    unread.start()
    live = pyudev.Monitor.from_netlink(context)
    live.filter_by("usb", device_type="usb_device")
    live.start()

    for _ in range(4):  # 4 uevents a cycle (device + interface): 16 > 11
        syspath = usb_bus.plug(*FINGERPRINT)
        added = live.poll(timeout=5)
        assert (added.action, added.sys_path) == ("add", syspath)
        wait_for(lambda: (*FINGERPRINT, 0) in _ids(), timeout=5, what="pyusb sees plug")
        usb_bus.unplug(syspath)
        removed = live.poll(timeout=5)
        assert (removed.action, removed.sys_path) == ("remove", syspath)
        wait_for(lambda: (*FINGERPRINT, 0) not in _ids(), timeout=5, what="pyusb sees unplug")
    detached = [str(w.message) for w in recwarn if issubclass(w.category, UmockdevWarning)]
    assert len(detached) == 1, detached
    assert "read nothing for 0.2 s" in detached[0]
    assert unread.fileno() >= 0  # still open: detached, not closed under its owner


_BIND_AT_FD = textwrap.dedent(
    """\
    # Bind a udev (netlink uevent) socket at exactly fd TARGET, as libusb or pyudev would.
    import ctypes, os, socket, struct, sys

    target = int(sys.argv[1])
    held = []
    while (fd := os.open(sys.executable, os.O_RDONLY)) < target:
        held.append(fd)
    os.close(fd)
    libc = ctypes.CDLL(None, use_errno=True)
    sock = libc.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15)  # NETLINK_KOBJECT_UEVENT
    addr = struct.pack("=HHII", socket.AF_NETLINK, 0, 0, 2)
    ok = libc.bind(sock, ctypes.create_string_buffer(addr), len(addr)) == 0
    bound = os.path.exists(os.path.join(os.environ["UMOCKDEV_DIR"], f"event{sock}"))
    sys.exit(0 if (sock, ok, bound) == (target, True, True) else f"got fd {sock} {ok} {bound}")
    """
)


def _own_listener_fds(root: str) -> set[int]:
    """fds of this process's uevent listeners (the preload binds them as ``event<fd>``)."""
    inodes = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if m := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/self/fd/{fd}")):
                inodes[m.group(1)] = int(fd)
    bound = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and fields[7].startswith(f"{root}/event"):
            bound.add(inodes[fields[6]])
    return bound


def test_a_subprocess_monitor_on_our_fd_number_does_not_deafen_pyusb(usb_bus: UsbBus) -> None:
    """The preload's bind() unlinks ``event<fd>`` first: a subprocess whose monitor got the fd
    number of ours took our path over (and umockdev deleted it when the subprocess exited), so
    the session's libusb never heard another uevent."""
    _ids()  # pyusb's libusb is up (the harness starts it right after the testbed)
    fds = _own_listener_fds(os.environ["UMOCKDEV_DIR"])
    assert fds, "libusb's uevent listener not found"
    for fd in sorted(fds):  # inheriting os.environ, like any subprocess a test starts
        done = subprocess.run(
            [sys.executable, "-c", _BIND_AT_FD, str(fd)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    usb_bus.plug(*FINGERPRINT)
    wait_for(lambda: (*FINGERPRINT, 0) in _ids(), timeout=5, what="pyusb sees plug")


def test_subprocess_with_env_sees_the_bus(usb_bus: UsbBus) -> None:
    usb_bus.plug(*CAMERA, device_class=0xEF, interface_class=0x0E)
    code = (
        "import json, usb.core; "
        "print(json.dumps([[d.idVendor, d.idProduct] for d in usb.core.find(find_all=True)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=usb_bus.env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [list(CAMERA)]
    assert os.environ["UMOCKDEV_DIR"] == usb_bus.env["UMOCKDEV_DIR"]


def _nested_pytest(ci: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
    env.pop(REEXEC_GUARD, None)
    env.update({DISABLE_ENV: "1", "CI": ci})
    target = f"{Path(__file__).name}::test_pyudev_monitor_reports_add_and_remove"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", target],
        cwd=TESTS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(("ci", "rc", "says"), [("", 0, "1 skipped"), ("true", 1, "1 error")])
def test_missing_umockdev_skips_locally_and_fails_in_ci(ci: str, rc: int, says: str) -> None:
    result = _nested_pytest(ci)
    output = result.stdout + result.stderr
    assert result.returncode == rc, output
    assert says in output, output
    assert f"disabled by {DISABLE_ENV}=1" in output, output


def test_descriptors_parse_back() -> None:
    desc = device_descriptor(0x1234, 0xABCD, device_class=0xEF, strings=(True, False, True))
    fields = struct.unpack("<BBHBBBBHHHBBBB", desc)
    assert fields[0] == len(desc) == 18
    assert (fields[3], fields[7], fields[8]) == (0xEF, 0x1234, 0xABCD)
    assert fields[10:13] == (1, 0, 3)
    cfg = config_descriptor(0x0E)
    assert struct.unpack_from("<H", cfg, 2)[0] == len(cfg)
    assert cfg[9 + 5] == 0x0E  # bInterfaceClass of the first interface
