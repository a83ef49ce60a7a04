"""The real USB path under umockdev: libusb + pyusb enumerate, names from sysfs, udev hotplug.

umockdev fakes /sys, /dev and uevents for this process (pytest re-execs itself under its preload
library; see tests/conftest.py) and for subprocesses given ``usb_bus.env``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_support import ROOT, Inbox, Running, config
from harness import Mosquitto, MqttClient, UsbBus

from pantau.agent.service import build_agent
from pantau.contract import wire

CANON = {"manufacturer": "Canon Inc.", "product": "Canon EOS 1300D"}


def plug_kit(usb_bus: UsbBus) -> tuple[str, str]:
    camera = usb_bus.plug(0x04A9, 0x3218, 0, 6, CANON["manufacturer"], CANON["product"], "C1")
    pad = usb_bus.plug(0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T1")
    return camera, pad


def test_unplugged_camera_reaches_the_broker_via_udev(
    tmp_path: Path, usb_bus: UsbBus, mosquitto: Mosquitto
) -> None:
    camera, _pad = plug_kit(usb_bus)
    cfg = config(tmp_path, mosquitto)  # poll_s = 30: only udev can report the unplug in time
    with MqttClient(mosquitto.host, mosquitto.port, client_id="umockdev-watcher") as sub:
        sub.connect()
        sub.subscribe(f"{ROOT}/#")
        inbox = Inbox(sub)
        run = Running(build_agent(cfg, hotplug=True))  # real pyusb, psutil and udev uevents
        try:
            state = inbox.next("state")
            cam = state.peripherals[0]
            assert (cam.device_class, cam.present) == ("camera", True)
            (device,) = cam.devices
            assert (device.vid, device.pid, device.bus) == (0x04A9, 0x3218, 1)
            assert (device.manufacturer, device.product) == (
                CANON["manufacturer"],
                CANON["product"],
            )
            assert device.port.startswith("1-")
            assert state.peripherals[1].present

            usb_bus.unplug(camera)
            removed = inbox.next("event", lambda e: e.kind != wire.EventKind.AGENT_STARTED)
            assert (removed.kind, removed.subject) == (wire.EventKind.PERIPHERAL_REMOVED, "camera")
            missing = inbox.next("state", lambda s: not s.peripherals[0].present)
            assert missing.peripherals[0].reason == "missing"
            assert missing.peripherals[1].present

            usb_bus.plug(0x04A9, 0x3218, 0, 6, CANON["manufacturer"], CANON["product"], "C1")
            added = inbox.next("event")
            assert (added.kind, added.detail) == (
                wire.EventKind.PERIPHERAL_ADDED,
                "found 04a9:3218",
            )
        finally:
            run.close()


def cli(usb_bus: UsbBus, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pantau.agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=usb_bus.env,
        check=False,
    )


def test_check_and_usb_commands_see_the_bus(tmp_path: Path, usb_bus: UsbBus) -> None:
    camera, _pad = plug_kit(usb_bus)
    path = tmp_path / "agent.toml"
    path.write_text(
        '[station]\nid = "3310-cawas-01"\nprovinsi = "33"\nkabkota = "3310"\n'
        '[[devices]]\ndevice_class = "camera"\nvid = 0x04a9\ninterface_class = 6\n'
        'name = "Canon EOS"\n'
        '[[devices]]\ndevice_class = "signature"\nvid = 0x06a8\n'
    )
    ok = cli(usb_bus, "check", "--config", str(path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "04a9:3218 Canon Inc. Canon EOS 1300D (port 1-" in ok.stdout
    assert "HASIL / RESULT: semua baik / all healthy" in ok.stdout

    listing = cli(usb_bus, "usb", "--json")
    rows: list[dict[str, Any]] = json.loads(listing.stdout)
    assert {(r["vid"], r["pid"], r["product"]) for r in rows} >= {
        ("04a9", "3218", "Canon EOS 1300D"),
        ("06a8", "0057", "SignatureGem"),
    }
    assert next(r for r in rows if r["vid"] == "04a9")["interface_classes"] == [6]
    assert "[catalog: camera, Canon]" in cli(usb_bus, "usb").stdout

    usb_bus.unplug(camera)
    bad = cli(usb_bus, "check", "--config", str(path), "--json")
    assert bad.returncode == 1
    doc = json.loads(bad.stdout)
    assert [(p["kind"], p["subject"]) for p in doc["problems"]] == [("peripheral", "camera")]
    assert doc["problems"][0]["hint_id"].startswith("Kamera tidak terdeteksi")
