"""Helpers shared by the agent's integration tests (a real broker, an in-process agent)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from harness import Mosquitto
from harness.mqtt import MqttClient

from pantau.agent.config import AgentConfig, convert_config
from pantau.agent.service import Agent
from pantau.contract import wire

STATION = "3310-juwiring-01"
ROOT = f"pantau/v1/33/3310/{STATION}"


def wait_until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def config(tmp_path: Path, broker: Mosquitto, **mqtt_extra: Any) -> AgentConfig:
    mqtt_section = {
        "host": broker.host,
        "port": broker.port,
        "tls": False,
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "keepalive_s": 5,
        **mqtt_extra,
    }
    data = {
        "station": {"id": STATION, "provinsi": "33", "kabkota": "3310", "kecamatan": "Juwiring"},
        "mqtt": mqtt_section,
        "spool": {"path": str(tmp_path / "spool.sqlite")},
        "intervals": {"state_s": 30.0, "poll_s": 30.0},
        "devices": [
            {"device_class": "camera", "vid": 0x04A9, "interface_class": 6, "name": "Canon EOS"},
            {"device_class": "signature", "vid": 0x06A8},
        ],
    }
    return convert_config(data, "test")


class Running:
    """An in-process agent service on a thread."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=agent.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.agent.wake()
        self.thread.join(10)
        assert not self.thread.is_alive()


def decode(msg: mqtt.MQTTMessage) -> wire.Message:
    return wire.decode(msg.topic, msg.payload)[1]


class Inbox:
    """Messages of a subscriber sorted by kind; each ``next`` consumes in arrival order."""

    def __init__(self, sub: MqttClient) -> None:
        self.sub = sub
        self.seen: dict[str, list[Any]] = {"state": [], "status": [], "event": []}
        self.pos: dict[str, int] = dict.fromkeys(self.seen, 0)

    def next(self, kind: str, pred: Callable[[Any], bool] = lambda _m: True) -> Any:
        deadline = time.monotonic() + 10
        while True:
            items = self.seen[kind]
            while self.pos[kind] < len(items):
                message = items[self.pos[kind]]
                self.pos[kind] += 1
                if pred(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching {kind} message in 10 s")
            try:
                msg = self.sub.messages.get(timeout=left)
            except queue.Empty:
                continue
            self.seen[msg.topic.rsplit("/", 1)[1]].append(decode(msg))
