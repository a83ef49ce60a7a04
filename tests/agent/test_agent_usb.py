"""USB check: pure classification (no libusb needed) and the failure paths."""

from __future__ import annotations

import subprocess
import sys

from pantau.agent.checks.usb import (
    CHECK_FAILED,
    LIBUSB_UNAVAILABLE,
    UsbCheck,
    UsbDevice,
    classify,
    matches,
    rule_label,
)
from pantau.agent.config import DeviceRule
from pantau.agent.errors import UsbUnavailable

CANON = DeviceRule(device_class="camera", vid=0x04A9, interface_class=6, name="Canon EOS")
TOPAZ = DeviceRule(device_class="signature", vid=0x06A8)
FP_A = DeviceRule(device_class="fingerprint", vid=0x080B, pids=(0x0010, 0x0011))
FP_B = DeviceRule(device_class="fingerprint", vid=0x1491, usb_class=0xFF)

EOS = UsbDevice(0x04A9, 0x3218, 1, "1-2", 0, (6,), "Canon Inc.", "Canon Digital Camera")
CANON_PRINTER = UsbDevice(0x04A9, 0x1790, 1, "1-3", 0, (7,), "Canon", "PIXMA")
PAD = UsbDevice(0x06A8, 0x0057, 1, "1-4", 0, (3,))
CM = UsbDevice(0x080B, 0x0011, 1, "1-5", 0, (0xFF,))
FUTRONIC = UsbDevice(0x1491, 0x0020, 1, "1-6", 0xFF, (0xFF,))


def test_matches_on_vid_pids_and_classes() -> None:
    assert matches(CANON, EOS)
    assert not matches(CANON, CANON_PRINTER)  # interface class 7 (printer), not 6
    assert matches(FP_A, CM)
    assert not matches(FP_A, UsbDevice(0x080B, 0x0099))
    assert matches(FP_B, FUTRONIC)
    assert not matches(FP_B, UsbDevice(0x1491, 0x0020, device_class=0))
    assert matches(TOPAZ, PAD)


def test_classify_present_and_missing() -> None:
    statuses = classify([CANON, TOPAZ, FP_A, FP_B], [EOS, CANON_PRINTER, PAD, CM])
    by = {s.device_class: s for s in statuses}
    assert [s.device_class for s in statuses] == ["camera", "signature", "fingerprint"]
    assert by["camera"].present
    assert by["camera"].devices == (EOS,)
    assert by["signature"].present
    fp = by["fingerprint"]
    assert not fp.present
    assert fp.missing == (FP_B,)
    wire_fp = fp.to_wire()
    assert (wire_fp.present, wire_fp.expected, wire_fp.found, wire_fp.reason) == (
        False,
        2,
        1,
        "missing",
    )
    cam = by["camera"].to_wire()
    assert cam.devices[0].manufacturer == "Canon Inc."
    assert cam.devices[0].port == "1-2"
    assert cam.reason == ""


def test_classify_nothing_plugged() -> None:
    (cam,) = classify([CANON], [])
    assert not cam.present
    assert cam.to_wire().found == 0


def test_rule_label() -> None:
    assert rule_label(CANON) == "Canon EOS (04a9:*)"
    assert rule_label(FP_A) == "080b:0010|0011"


class Broken:
    def devices(self) -> list[UsbDevice]:
        raise UsbUnavailable("no libusb")


def test_failed_check_reports_every_class_with_reason() -> None:
    check = UsbCheck([CANON, FP_A, FP_B], Broken(), 1.0)
    found = check.failed(UsbUnavailable("x")).peripherals
    assert [(p.device_class, p.present, p.expected, p.reason) for p in found] == [
        ("camera", False, 1, LIBUSB_UNAVAILABLE),
        ("fingerprint", False, 2, LIBUSB_UNAVAILABLE),
    ]
    assert check.failed(RuntimeError("x")).peripherals[0].reason == CHECK_FAILED
    assert check.failed(None).peripherals[0].reason == CHECK_FAILED


def test_missing_libusb_is_a_clear_error() -> None:
    # Real pyusb told that no libusb library exists (a fresh interpreter: pyusb caches its
    # library per process).
    code = (
        "from pantau.agent.checks.usb import PyUsbReader\n"
        "from pantau.agent.errors import UsbUnavailable\n"
        "try:\n"
        "    PyUsbReader(find_library=lambda name: None).devices()\n"
        "except UsbUnavailable as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.startswith("libusb not found: install it (Debian/Ubuntu: apt-get install")
