"""Helpers for the deploy tests: a real mosquitto from a given config, and small paho clients."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

TIMEOUT = 10.0


@contextmanager
def mosquitto(
    conf: str, workdir: Path, port: int
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run ``mosquitto -c`` on ``conf`` (text) until the context ends; yields (process, log)."""
    conf_path = workdir / "mosquitto.conf"
    conf_path.write_text(conf, encoding="utf-8")
    log = workdir / "mosquitto.log"
    proc = procs.spawn(["mosquitto", "-c", str(conf_path)], log)
    try:
        procs.wait_for(
            lambda: procs.port_open("127.0.0.1", port),
            timeout=TIMEOUT,
            what=f"mosquitto on port {port}",
            alive=proc,
            log=lambda: log.read_text(errors="replace"),
        )
        yield proc, log
    finally:
        procs.stop(proc)


@dataclass
class Client:
    """A connected (or refused) paho client that records what happens to it."""

    client: mqtt.Client
    connack: ReasonCode | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> ReasonCode:
        """Publish with QoS 1 and return the broker's PUBACK reason (MQTT 5)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        procs.wait_for(lambda: info.mid in self.acks, timeout=TIMEOUT, what=f"PUBACK {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic_filter: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a, **_k: done.set()
        self.client.subscribe(topic_filter, qos=1)
        assert done.wait(TIMEOUT), f"no SUBACK for {topic_filter}"

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def client(
    port: int,
    username: str,
    password: str,
    *,
    ca_file: Path | None = None,
    client_id: str = "",
) -> Iterator[Client]:
    """Connect with MQTT 5 (TLS when ``ca_file`` is given); yields even when refused."""
    paho = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{username}", protocol=mqtt.MQTTv5
    )
    paho.username_pw_set(username, password)
    if ca_file is not None:
        paho.tls_set(ca_certs=str(ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    state = Client(paho)

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: Properties | None
    ) -> None:
        state.connack = rc
        state.connected.set()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with state.lock:
            state.messages.append((msg.topic, msg.payload))

    def on_publish(
        _c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties | None
    ) -> None:
        state.acks[mid] = rc

    paho.on_connect = on_connect
    paho.on_message = on_message
    paho.on_publish = on_publish
    paho.connect("127.0.0.1", port, keepalive=30)
    paho.loop_start()
    try:
        assert state.connected.wait(TIMEOUT), "no CONNACK"
        yield state
    finally:
        state.close()
