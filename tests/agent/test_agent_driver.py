""" "Present but driver failed": a device on USB whose driver does not work is its own reason.

- Linux, for real: libusb, pyusb and sysfs under umockdev, with and without a kernel driver
  bound to the device's interface (the ``driver`` link umockdev creates in its sysfs), through
  the reader, the check, and the ``pantau-agent check`` command.
- Windows: the Device Manager problem codes come from cfgmgr32, which cannot run here, so that
  call is mocked with recorded-format device nodes (tests/fixtures/windows/usb-devnodes.json)
  while the devices themselves are enumerated for real on a umockdev bus.
- The classification and the event detail, pure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import UsbBus

from pantau.agent import windows
from pantau.agent.changes import Baseline, Snapshot, advance
from pantau.agent.checks.usb import (
    DRIVER_FAILED,
    MISSING,
    NO_KERNEL_DRIVER,
    PyUsbReader,
    UsbCheck,
    UsbDevice,
    classify,
)
from pantau.agent.config import DeviceRule
from pantau.contract.vocabulary import PeripheralReason
from pantau.contract.wire import EventKind

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "windows" / "usb-devnodes.json"

PAD_RULE = DeviceRule(device_class="signature", vid=0x06A8, needs_driver=True, name="Topaz")
CAMERA_RULE = DeviceRule(device_class="camera", vid=0x04A9)  # driven through libusb: no driver
FINGER_RULE = DeviceRule(device_class="fingerprint", vid=0x08FF)


def test_vocabulary_has_the_reason() -> None:
    assert PeripheralReason.DRIVER_FAILED == "driver_failed" == DRIVER_FAILED


# --------------------------------------------------------------------------- pure


def test_classification() -> None:
    bound = UsbDevice(0x06A8, 0x0057, port="1-3", driver_bound=True)
    unbound = UsbDevice(0x06A8, 0x0057, port="1-4", driver_bound=False)
    unknown = UsbDevice(0x06A8, 0x0057, port="1-5", driver_bound=None)
    camera_unbound = UsbDevice(0x04A9, 0x3218, port="1-2", driver_bound=False)
    broken = UsbDevice(0x08FF, 0x0009, port="1-6", problem=10)

    [pad] = classify([PAD_RULE], [unbound])
    assert (pad.present, pad.reason, pad.to_wire().found) == (False, DRIVER_FAILED, 0)
    assert pad.to_wire().devices[0].port == "1-4"  # the device is listed: it is on USB
    assert pad.detail() == f"06a8:0057 ({NO_KERNEL_DRIVER})"
    # a working device of the rule besides a failed one satisfies it; unknown counts as working
    assert classify([PAD_RULE], [unbound, bound])[0].present
    assert classify([PAD_RULE], [unknown])[0].present
    # without needs_driver, Linux's missing interface driver is normal (libusb-driven devices)
    assert classify([CAMERA_RULE], [camera_unbound])[0].present
    # Windows' problem codes count for every rule
    [finger] = classify([FINGER_RULE], [broken])
    assert (finger.reason, finger.detail()) == (DRIVER_FAILED, "08ff:0009 (code 10: cannot start)")
    # two rules of a class: a missing one is reported first (the cable before the driver)
    two = DeviceRule(device_class="signature", vid=0x056A, name="Wacom")
    [both] = classify([PAD_RULE, two], [unbound])
    assert (both.reason, both.detail()) == (MISSING, "Wacom (056a:*)")


def test_the_event_says_driver_failed_with_the_device() -> None:
    present = classify([FINGER_RULE], [UsbDevice(0x08FF, 0x0009)])[0]
    failed = classify([FINGER_RULE], [UsbDevice(0x08FF, 0x0009, problem=43)])[0]
    base, _ = advance(Baseline(), Snapshot(peripherals=[present.to_wire()]))
    _, changes = advance(
        base,
        Snapshot(peripherals=[failed.to_wire()], missing={"fingerprint": failed.detail()}),
    )
    [change] = changes
    assert change.kind == EventKind.PERIPHERAL_REMOVED
    assert change.detail == "driver_failed 08ff:0009 (code 43: stopped after it reported problems)"


# --------------------------------------------------------------------------- Linux, umockdev


@pytest.mark.umockdev
def test_linux_sysfs_with_and_without_a_bound_driver(usb_bus: UsbBus) -> None:
    usb_bus.plug(0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T1")  # no driver
    reader = PyUsbReader()
    pad = next(d for d in reader.devices() if d.vid == 0x06A8)
    assert pad.driver_bound is False
    check = UsbCheck([PAD_RULE, CAMERA_RULE], reader, timeout_s=5)
    usb_bus.plug(0x04A9, 0x3218, 0, 6, "Canon Inc.", "Canon EOS 1300D", "C1")  # no driver: fine
    by_class = {p.device_class: p for p in check.run().peripherals}
    assert (by_class["signature"].present, by_class["signature"].reason) == (False, DRIVER_FAILED)
    assert by_class["camera"].present

    usb_bus.unplug_all()
    usb_bus.plug(0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T2", driver="usbhid")
    pad = next(d for d in reader.devices() if d.vid == 0x06A8)
    assert pad.driver_bound is True
    assert [(p.present, p.reason) for p in UsbCheck([PAD_RULE], reader, 5).run().peripherals] == [
        (True, "")
    ]


@pytest.mark.umockdev
def test_check_command_reports_driver_failed(tmp_path: Path, usb_bus: UsbBus) -> None:
    usb_bus.plug(0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T3")
    path = tmp_path / "agent.toml"
    path.write_text(
        '[station]\nid = "3310-cawas-01"\nprovinsi = "33"\nkabkota = "3310"\n'
        '[[devices]]\ndevice_class = "signature"\nvid = 0x06a8\nneeds_driver = true\n'
    )
    cmd = [sys.executable, "-m", "pantau.agent.cli", "check", "--config", str(path)]
    env = {**usb_bus.env, "PYTHONPATH": os.pathsep.join(sys.path)}
    text = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert text.returncode == 1, text.stderr
    assert (
        "[GAGAL]  Alat tanda tangan (signature pad) / Signature pad: driver_failed" in text.stdout
    )
    assert "06a8:0057 Topaz Systems SignatureGem (port 1-" in text.stdout  # the device is there
    assert "drivernya gagal" in text.stdout
    assert "its driver failed" in text.stdout
    doc = json.loads(
        subprocess.run(
            [*cmd, "--json"], capture_output=True, text=True, env=env, timeout=60, check=False
        ).stdout
    )
    [problem] = doc["problems"]
    assert (problem["kind"], problem["subject"]) == ("peripheral", "signature")
    assert problem["summary"].startswith("driver_failed")


# --------------------------------------------------------------------------- Windows, mocked API


@pytest.mark.umockdev
def test_windows_problem_codes_on_a_real_enumeration(usb_bus: UsbBus) -> None:
    """Devices enumerated for real (umockdev), Device Manager's answer mocked with the recorded
    device nodes: the fingerprint scanner (code 10) and the signature pad (its interface, code
    43) are driver_failed, the camera is present."""
    usb_bus.plug(0x04A9, 0x3218, 0, 6, "Canon Inc.", "Canon EOS 1300D", "C2")
    usb_bus.plug(0x08FF, 0x0009, 0, 0xFF, "AuthenTec", "Fingerprint Sensor", "F1")
    usb_bus.plug(0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T4", driver="usbhid")
    nodes = [windows.DevNode(**n) for n in json.loads(FIXTURE.read_text())["nodes"]]
    reader = PyUsbReader(problems=lambda: windows.driver_problems(nodes))
    rules = [CAMERA_RULE, FINGER_RULE, DeviceRule(device_class="signature", vid=0x06A8)]
    got = {
        p.device_class: (p.present, p.reason) for p in UsbCheck(rules, reader, 5).run().peripherals
    }
    assert got == {
        "camera": (True, ""),
        "fingerprint": (False, DRIVER_FAILED),
        "signature": (False, DRIVER_FAILED),
    }

    def unavailable() -> dict[tuple[int, int], int]:
        raise OSError("CM_Get_Device_ID_List_SizeW: CONFIGRET 13")

    # Device Manager cannot be asked: presence alone, as before
    reader = PyUsbReader(problems=unavailable)
    assert all(p.present for p in UsbCheck(rules, reader, 5).run().peripherals)
