"""The whole chain with real parts, nothing simulated but the USB hardware (umockdev):

    pantau-agent run (subprocess, real pyusb/libusb/udev under umockdev)
      -> mosquitto -> collector (MQTT ingest, fleet state, /metrics)
      -> Prometheus (scrape + pantau's generated alert rules) -> Alertmanager -> webhook

Steps: unplug the camera -> ``pantau_peripheral_present`` goes 0 in Prometheus and Alertmanager
delivers the firing PantauPeripheralMissing notice; plug it back -> resolved; kill -9 the agent
-> the station goes down through its Last Will; restart the collector -> its state comes back from
the broker's retained messages.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import Alertmanager, Mosquitto, Prometheus, UsbBus

from pantau.collector.config import CollectorConfig, FleetConfig, HttpConfig, MqttConfig
from pantau.collector.service import Collector
from pantau.contract.inventory import parse_inventory
from pantau.dashboards.prometheus_rules import write_rules_file

STATION = "3310-e2e-juwiring-01"
JOB = "pantau-e2e"
INVENTORY = parse_inventory(
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    f"{STATION},33,3310,Juwiring,camera;signature\n"
)
CAMERA = (0x04A9, 0x3218, 0, 6, "Canon Inc.", "Canon EOS 1300D", "C1")
PAD = (0x06A8, 0x0057, 0, 3, "Topaz Systems", "SignatureGem", "T1")


def agent_config(tmp_path: Path, broker: Mosquitto) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[station]
id = "{STATION}"
provinsi = "33"
kabkota = "3310"
kecamatan = "Juwiring"

[mqtt]
host = "{broker.host}"
port = {broker.port}
tls = false
keepalive_s = 5
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[spool]
path = "{tmp_path / "spool.sqlite"}"

[intervals]
state_s = 30.0
poll_s = 30.0   # only udev hotplug can report the unplug in time

[[devices]]
device_class = "camera"
vid = 0x04a9
interface_class = 6
name = "Canon EOS camera"

[[devices]]
device_class = "signature"
vid = 0x06a8
name = "Topaz signature pad"
""",
        encoding="utf-8",
    )
    return path


def collector(broker: Mosquitto) -> Collector:
    config = CollectorConfig(
        mqtt=MqttConfig(host=broker.host, port=broker.port, reconnect_max_s=0.5),
        http=HttpConfig(host="127.0.0.1", port=0),
        fleet=FleetConfig(stale_after_intervals=3.0),
    )
    return Collector(config, inventory=INVENTORY).start()


def series(name: str, **labels: str) -> str:
    matchers = ",".join(f'{k}="{v}"' for k, v in {"job": JOB, "station": STATION, **labels}.items())
    return f"{name}{{{matchers}}}"


def value_is(expected: str):  # type: ignore[no-untyped-def]
    return lambda result: len(result) == 1 and result[0]["value"][1] == expected


@pytest.mark.slow
def test_unplug_alert_resolve_will_and_retained_restore(
    tmp_path: Path,
    usb_bus: UsbBus,
    mosquitto: Mosquitto,
    prometheus: Prometheus,
    alertmanager: Alertmanager,
) -> None:
    camera = usb_bus.plug(*CAMERA)
    usb_bus.plug(*PAD)
    rules = write_rules_file(tmp_path / "pantau-e2e.rules.yml", for_override="1s", interval="1s")
    loaded = prometheus.load_rules([rules])
    c = collector(mosquitto)
    proc: subprocess.Popen[bytes] | None = None
    try:
        host, port = c.http_address
        log = (tmp_path / "agent.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pantau.agent.cli", "run",
                "--config", str(agent_config(tmp_path, mosquitto)),
            ],
            env=usb_bus.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        prometheus.scrape(JOB, [f"{host}:{port}"])
        present = series("pantau_peripheral_present", device_class="camera")
        prometheus.wait_until(present, value_is("1"), timeout=40)
        prometheus.wait_until(series("pantau_station_up"), value_is("1"), timeout=20)

        # 1. unplug the camera: Prometheus sees it, Alertmanager delivers the firing notice.
        mark = alertmanager.mark()
        usb_bus.unplug(camera)
        prometheus.wait_until(present, value_is("0"), timeout=30)
        fired = alertmanager.wait_for(
            "PantauPeripheralMissing",
            "firing",
            labels={"station": STATION, "device_class": "camera"},
            timeout=60,
            since=mark,
        )
        assert "Kamera tidak terdeteksi di Kecamatan Juwiring" in fired["annotations"]["summary"]
        assert fired["labels"]["kecamatan"] == "Juwiring"
        assert fired["labels"]["severity"]

        # 2. plug it back: resolved.
        usb_bus.plug(*CAMERA)
        prometheus.wait_until(present, value_is("1"), timeout=30)
        alertmanager.wait_for(
            "PantauPeripheralMissing",
            "resolved",
            labels={"station": STATION, "device_class": "camera"},
            timeout=60,
            since=mark,
        )

        # 3. the agent dies abruptly: the broker sends its will, the station goes down.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        prometheus.wait_until(series("pantau_station_up"), value_is("0"), timeout=30)

        # 4. restart the collector: everything it knew comes back from retained messages.
        c.stop()
        c = collector(mosquitto)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            views = {v.station: v for v in c.snapshot().stations}
            view = views.get(STATION)
            if view is not None and view.report is not None:
                break
            time.sleep(0.1)
        assert view is not None, "station not restored"
        assert view.report is not None, "retained state not restored"
        presence = {p.device_class: p.present for p in view.presence}
        assert presence == {"camera": True, "signature": True}
        assert view.state_rx > 0
        from pantau.collector.fleet import station_status

        snap = c.snapshot()
        assert station_status(view, snap.now, snap.stale_after_intervals) != "up"  # retained will
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        c.stop()
        prometheus.unscrape(JOB)
        prometheus.unload_rules(loaded)
