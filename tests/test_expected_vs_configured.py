"""Expected vs configured: a default-provisioned station whose devices are all plugged in reads
"not configured" for the class its config has no rule for (everywhere alike: ``pantau-agent
check``, the collector's API, metrics and board), and turns green once the rule is added.

Real parts: ``pantau provision`` (the CLI), the agent code built from the provisioned
``agent.toml`` (simulated USB with all four devices plugged in), a real mosquitto, the real
collector service (API, /metrics, board).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
from harness import Mosquitto

from pantau.agent import report
from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import load_config
from pantau.agent.service import build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedUsb
from pantau.collector.config import CollectorConfig, FleetConfig, HttpConfig, MqttConfig
from pantau.collector.service import Collector
from pantau.contract.inventory import load_inventory

STATION = "3310-wedi-01"
INVENTORY = (
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    f"{STATION},33,3310,Wedi,fingerprint;iris;camera;signature\n"
)
IRIS_RULE = '\n[[devices]]\ndevice_class = "iris"\nvid = 0x0bd8\nname = "Iris scanner"\n'


def plugged(cfg: Any) -> list[UsbDevice]:
    """Every device of the kit: the catalog's rules' devices plus the iris scanner."""
    devices = [
        UsbDevice(
            vid=rule.vid,
            pid=rule.pids[0] if rule.pids else 1,
            port=f"1-{i + 2}",
            device_class=rule.usb_class or 0,
            interface_classes=(rule.interface_class,) if rule.interface_class else (),
        )
        for i, rule in enumerate(cfg.devices)
    ]
    return [*devices, UsbDevice(vid=0x0BD8, pid=0x0001, port="1-9")]


def local(cfg: Any, broker: Mosquitto) -> Any:
    """The provisioned config pointed at the test broker (no TLS or password here)."""
    mqtt = msgspec.structs.replace(
        cfg.mqtt, host=broker.host, port=broker.port, tls=False, ca_file="", password_file=""
    )
    return msgspec.structs.replace(cfg, mqtt=mqtt)


def station_json(c: Collector) -> dict[str, Any]:
    host, port = c.http_address
    with urllib.request.urlopen(f"http://{host}:{port}/api/stations", timeout=5) as r:
        (station,) = json.load(r)["stations"]
    return dict(station)


def get(c: Collector, path: str) -> str:
    host, port = c.http_address
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
        return str(r.read().decode())


def run_agent(cfg: Any, tmp_path: Path, name: str) -> Any:
    usb = SimulatedUsb(plugged(cfg))
    agent = build_agent(
        cfg,
        usb_reader=usb,
        hotplug=None,
        host_reader=SimulatedHost(),
        spool_path=str(tmp_path / f"{name}.sqlite"),
    )
    agent.start()
    state = agent.round()
    return agent, state


def wait_for(pred: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_not_configured_everywhere_then_green_once_the_rule_is_added(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(INVENTORY)
    out = tmp_path / "provisioned"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pantau.tools.cli", "provision", str(inventory),
            "--out", str(out), "--broker-host", "mqtt.example", "--no-tls",
            "--iterations", "1000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no USB rule for device class 'iris'" in proc.stderr  # the catalog has no iris
    toml = out / "stations" / STATION / "agent.toml"
    cfg = load_config(toml)
    assert "iris" in cfg.station.expects
    assert "iris" not in cfg.device_classes

    collector = Collector(
        CollectorConfig(
            mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port, reconnect_max_s=0.3),
            http=HttpConfig(host="127.0.0.1", port=0),
            fleet=FleetConfig(),
        ),
        inventory=load_inventory(inventory),
    ).start()
    try:
        # 1. Default provisioning, every device plugged in: iris is "not configured".
        agent, state = run_agent(local(cfg, mosquitto), tmp_path, "before")
        try:
            text = report.render_text(state, cfg)
            assert "[BELUM DIATUR / NOT CONFIGURED] Pemindai iris / Iris scanner" in text
            assert "[HILANG]" not in text
            wait_for(lambda: station_json(collector)["status"] == "up")
            station = station_json(collector)
            iris = next(p for p in station["peripherals"] if p["device_class"] == "iris")
            assert (iris["present"], iris["reason"]) == (False, "not_configured")
            codes = {(i["code"], i["subject"]) for i in station["issues"]}
            assert codes == {("not_configured", "iris")}
            assert station["problems"] == ["iris scanner not configured (no [[devices]] rule)"]
            metrics = get(collector, "/metrics")
            assert f'pantau_peripheral_configured{{station="{STATION}"' in metrics
            assert 'device_class="iris"} 0' in metrics
            present = [x for x in metrics.splitlines() if x.startswith("pantau_peripheral_present")]
            assert not [x for x in present if 'device_class="iris"' in x]  # nobody looks for it
            board = get(collector, "/")
            assert "pemindai iris belum dikonfigurasi (tidak ada aturan [[devices]])" in board
            assert "hilang" not in board.split("Masalah", 1)[1].split("</table>", 1)[0]
        finally:
            agent.close()

        # 2. The operator adds the iris rule (docs/agent.md "Expected vs configured") and
        #    restarts the agent: the station is ready.
        toml.write_text(toml.read_text() + IRIS_RULE)
        cfg = load_config(toml)
        agent, state = run_agent(local(cfg, mosquitto), tmp_path, "after")
        try:
            assert report.problems(state, cfg) == []
            wait_for(lambda: not station_json(collector)["issues"])
            station = station_json(collector)
            assert station["status"] == "up"
            assert station["problems"] == []
            board = get(collector, "/")
            assert "Semua stasiun siap" in board
            assert 'device_class="iris"} 1' in get(collector, "/metrics")
        finally:
            agent.close()
    finally:
        collector.stop()
