"""The usb_bus fixture: real libusb (via pyusb), real pyudev, devices emulated by umockdev."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from harness import UsbBus
from harness.procs import wait_for
from harness.usb import DISABLE_ENV, REEXEC_GUARD, config_descriptor, device_descriptor

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
