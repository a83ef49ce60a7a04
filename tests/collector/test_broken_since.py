"""Broken since: a problem's first-seen time survives collector and broker restarts.

Real mosquitto, the real collector service (MQTT ingest, HTTP, /metrics); the station's agent is
played by an MQTT client publishing what an agent publishes (birth, retained state). The broker
runs without persistence, so after its restart nothing retained is left: the time must come from
the collector's ``fleet.state_file``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import Mosquitto
from harness.mqtt import MqttClient

from pantau.collector.config import CollectorConfig, FleetConfig, HttpConfig, MqttConfig
from pantau.collector.service import Collector, since_path
from pantau.contract import wire
from pantau.contract.inventory import parse_inventory

INVENTORY = parse_inventory(
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,fingerprint;camera\n"
    "3310-cawas-01,33,3310,Cawas,fingerprint;camera\n"
)
JUW = "3310-juwiring-01"


def collector(broker: Mosquitto, state_file: str) -> Collector:
    cfg = CollectorConfig(
        mqtt=MqttConfig(host=broker.host, port=broker.port, reconnect_max_s=0.3),
        http=HttpConfig(host="127.0.0.1", port=0),
        fleet=FleetConfig(state_file=state_file),
    )
    return Collector(cfg, inventory=INVENTORY).start()


def publish_state(broker: Mosquitto, session: str, seq: int) -> None:
    state = wire.State(
        station=JUW,
        agent_version="0.1.0",
        session=session,
        seq=seq,
        ts=time.time(),
        kecamatan="Juwiring",
        peripherals=(
            wire.Peripheral(device_class="fingerprint", present=True, found=1),
            wire.Peripheral(device_class="camera", present=False, reason="missing"),
        ),
    )
    with MqttClient(broker.host, broker.port) as client:
        client.connect()
        client.publish(wire.topic("33", "3310", JUW, "state"), wire.encode(state), retain=True)


def issues(c: Collector) -> dict[tuple[str, str, str], Any]:
    host, port = c.http_address
    with urllib.request.urlopen(f"http://{host}:{port}/api/stations", timeout=5) as r:
        doc = json.load(r)
    return {
        (s["station"], i["code"], i["subject"]): i for s in doc["stations"] for i in s["issues"]
    }


def since_metric(c: Collector) -> dict[tuple[str, str], float]:
    host, port = c.http_address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("pantau_station_problem_since_timestamp_seconds{"):
            labels, value = line.rsplit(" ", 1)
            station = labels.split('station="')[1].split('"')[0]
            problem = labels.split('problem="')[1].split('"')[0]
            out[(station, problem)] = float(value)
    return out


def wait_for(pred: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_first_seen_survives_collector_and_broker_restarts(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    (tmp_path / "state").mkdir()
    state_file = str(tmp_path / "state" / "collector-state.json")
    first = collector(mosquitto, state_file)
    try:
        wait_for(lambda: first.fleet.mqtt_connected)
        publish_state(mosquitto, "s1", 5)
        camera = wait_for(lambda: issues(first).get((JUW, "peripheral_missing", "camera")))
        never = issues(first)[("3310-cawas-01", "never_reported", "")]
        assert camera["since"]
        assert never["since"]
        assert camera["text_id"].startswith("kamera hilang sejak ")
        assert camera["text_en"].startswith("camera missing for ")
        metric = since_metric(first)
        assert metric[(JUW, "peripheral_missing")] == camera["since"]
        assert metric[("3310-cawas-01", "never_reported")] == never["since"]
    finally:
        first.stop()  # writes the state file
    assert Path(since_path(state_file)).exists()  # next to the event counts' state file

    time.sleep(1.1)  # anything first seen from now on has a visibly later time
    mosquitto.restart()  # no persistence: every retained message is gone
    second = collector(mosquitto, state_file)
    try:
        wait_for(lambda: second.fleet.mqtt_connected)
        publish_state(mosquitto, "s2", 1)  # the agent reconnects (a new process) and reports again
        again = wait_for(lambda: issues(second).get((JUW, "peripheral_missing", "camera")))
        assert again["since"] == camera["since"]
        assert issues(second)[("3310-cawas-01", "never_reported", "")]["since"] == never["since"]
        assert since_metric(second)[(JUW, "peripheral_missing")] == camera["since"]
    finally:
        second.stop()

    # Control: without the state file the same restart starts every "since" afresh.
    mosquitto.restart()
    third = collector(mosquitto, "")
    try:
        wait_for(lambda: third.fleet.mqtt_connected)
        publish_state(mosquitto, "s3", 1)
        fresh = wait_for(lambda: issues(third).get((JUW, "peripheral_missing", "camera")))
        assert fresh["since"] > camera["since"] + 1
    finally:
        third.stop()


def test_a_problem_that_ended_while_the_collector_was_down_starts_afresh(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    state_file = str(tmp_path / "collector-state.json")
    first = collector(mosquitto, state_file)
    try:
        wait_for(lambda: first.fleet.mqtt_connected)
        publish_state(mosquitto, "s1", 5)
        camera = wait_for(lambda: issues(first).get((JUW, "peripheral_missing", "camera")))
    finally:
        first.stop()
    time.sleep(1.1)
    second = collector(mosquitto, state_file)
    try:
        wait_for(lambda: second.fleet.mqtt_connected)
        # The camera came back while the collector was down: the first report has it present.
        state = wire.State(
            station=JUW,
            agent_version="0.1.0",
            session="s1",
            seq=9,
            ts=time.time(),
            peripherals=(
                wire.Peripheral(device_class="fingerprint", present=True, found=1),
                wire.Peripheral(device_class="camera", present=True, found=1),
            ),
        )
        with MqttClient(mosquitto.host, mosquitto.port) as client:
            client.connect()
            client.publish(wire.topic("33", "3310", JUW, "state"), wire.encode(state), retain=True)
        wait_for(lambda: not issues(second).get((JUW, "peripheral_missing", "camera")))
        publish_state(mosquitto, "s1", 10)  # and is unplugged again: a new problem
        again = wait_for(lambda: issues(second).get((JUW, "peripheral_missing", "camera")))
        assert again["since"] > camera["since"] + 1
    finally:
        second.stop()
