"""The agent over several broker endpoints: failover when one dies, return when it is back.

Two real, unbridged mosquitto brokers stand for two nodes of a cluster (the clustered case, where
every node delivers to every subscriber, runs in tests/cluster). A subscriber on each broker
sees what the agent sent there; together they must hold every event once per seq, in order, with
the birth (``online``) and a fresh state on each broker the agent connects to.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from agent_support import ROOT, STATION, Running, decode, wait_until
from harness import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import AgentConfig, convert_config
from pantau.agent.publisher import Connection, Publisher, Topics
from pantau.agent.service import build_agent, connection
from pantau.agent.simulated import SimulatedHost, SimulatedUsb
from pantau.agent.spool import Spool
from pantau.contract import wire

CAMERA = UsbDevice(0x04A9, 0x3218, 1, "1-2", 0, (6,), "Canon Inc.", "Canon EOS 1300D")
PAD = UsbDevice(0x06A8, 0x0057, 1, "1-3", 0, (3,), "Topaz Systems", "SignatureGem")


class Watcher:
    """A QoS 1 subscriber on one broker, reconnecting, keeping everything it received."""

    def __init__(self, broker: Mosquitto, name: str) -> None:
        self.got: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311
        )
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{ROOT}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port, 5)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((msg.topic.rsplit("/", 1)[1], decode(msg)))

    def of(self, kind: str) -> list[Any]:
        with self.lock:
            return [m for k, m in self.got if k == kind]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def agent_config(tmp_path: Path, brokers: list[Mosquitto], order: str = "ordered") -> AgentConfig:
    return convert_config(
        {
            "station": {"id": STATION, "provinsi": "33", "kabkota": "3310"},
            "mqtt": {
                "endpoints": [f"{b.host}:{b.port}" for b in brokers],
                "endpoint_order": order,
                "tls": False,
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.3,
                "keepalive_s": 5,
            },
            "spool": {"path": str(tmp_path / "spool.sqlite")},
            "intervals": {"state_s": 30.0, "poll_s": 30.0},
            "devices": [
                {"device_class": "camera", "vid": 0x04A9, "interface_class": 6},
                {"device_class": "signature", "vid": 0x06A8},
            ],
        },
        "test",
    )


@pytest.fixture
def brokers(tmp_path: Path) -> Any:
    pair = [Mosquitto(tmp_path / f"broker-{i}").start() for i in (0, 1)]
    yield pair
    for broker in pair:
        broker.stop()


def test_fails_over_and_returns_with_birth_state_and_every_event_once_in_order(
    tmp_path: Path, brokers: list[Mosquitto]
) -> None:
    a, b = brokers
    wa, wb = Watcher(a, "watch-a"), Watcher(b, "watch-b")
    usb = SimulatedUsb([CAMERA, PAD])
    wait_until(lambda: wa.client.is_connected() and wb.client.is_connected(), what="watchers")
    time.sleep(0.2)  # their SUBSCRIBE is through
    agent = build_agent(
        agent_config(tmp_path, brokers), usb_reader=usb, hotplug=usb, host_reader=SimulatedHost()
    )
    changes = 0
    emitted: list[str] = []  # every event the agent spooled, in spool order
    append = agent.spool.append

    def recording_append(topic: str, payload: bytes) -> int:
        dropped = append(topic, payload)
        emitted.append(wire.decode(topic, payload)[1].kind.value)
        return dropped

    agent.spool.append = recording_append  # type: ignore[method-assign]
    run = Running(agent)  # after the recorder is in place: agent_started is recorded too

    def toggle() -> None:
        nonlocal changes
        before = len(emitted)
        if changes % 2 == 0:
            usb.unplug(0x04A9)
        else:
            usb.plug(CAMERA)
        changes += 1
        wait_until(lambda: len(emitted) > before, what=f"change {changes} detected")

    try:
        pub = agent.publisher
        assert pub is not None
        wait_until(lambda: [s.status for s in wa.of("status")] == ["online"], what="birth on a")
        wait_until(lambda: bool(wa.of("state")), what="first state on a (the camera seen)")
        assert pub.endpoint == (a.host, a.port)
        toggle()
        wait_until(lambda: len(wa.of("event")) >= 2, what="first change on a")
        a.kill()  # a crash: no will from a, no clean disconnect
        for _ in range(3):  # peripherals change while the agent switches
            toggle()
        wait_until(lambda: pub.endpoint == (b.host, b.port) and pub.connected, what="on b")
        wait_until(lambda: "online" in [s.status for s in wb.of("status")], what="birth on b")
        wait_until(lambda: bool(wb.of("state")), what="state on b")
        toggle()
        wait_until(lambda: agent.spool.queued == 0, what="spool drained on b")
        # a returns; the agent stays on the healthy b (no forced move) ...
        a.start()
        time.sleep(0.5)
        assert pub.endpoint == (b.host, b.port)
        # ... until b dies: the round starts at the first endpoint, a
        b.kill()
        toggle()
        wait_until(lambda: pub.endpoint == (a.host, a.port) and pub.connected, what="back on a")
        toggle()
        wait_until(lambda: agent.spool.queued == 0, what="spool drained on a")
        events = wa.of("event") + wb.of("event")
        by_seq: dict[int, Any] = {}
        for e in events:
            # a resend after a lost PUBACK carries the same seq and the same content
            assert by_seq.setdefault(e.seq, e) == e
        session = {e.session for e in events}
        assert len(session) == 1
        seqs = sorted(by_seq)
        kinds = [by_seq[s].kind.value for s in seqs]
        assert kinds == emitted
        assert emitted.pop(0) == "agent_started"
        assert emitted == [
            "peripheral_removed" if i % 2 == 0 else "peripheral_added" for i in range(changes)
        ]
        # the broker each connection went to got its birth and a state (b: one of each)
        assert [s.status for s in wb.of("status")].count("online") == 1
        assert pub.connects == 3
    finally:
        run.close()
        wa.close()
        wb.close()


def test_shuffled_order_is_a_permutation_drawn_once(tmp_path: Path) -> None:
    endpoints = tuple(("127.0.0.1", 20000 + i) for i in range(8))
    spool = Spool(str(tmp_path / "s.sqlite"), 100, 1 << 20)
    conn = Connection("127.0.0.1", 20000, tls=False, endpoints=endpoints, shuffle=True)
    topics = Topics(f"{ROOT}/state", f"{ROOT}/status", f"{ROOT}/event")

    def pub(seed: int) -> Publisher:
        return Publisher(
            conn,
            topics,
            spool,
            status=lambda *_a: b"",
            state=lambda: None,
            rng=random.Random(seed),
        )

    walks = {tuple(pub(seed).walk) for seed in range(20)}
    assert all(sorted(w) == sorted(endpoints) for w in walks)
    assert len(walks) > 10  # agents spread over the nodes
    ordered = Publisher(
        Connection("127.0.0.1", 20000, tls=False, endpoints=endpoints),
        topics,
        spool,
        status=lambda *_a: b"",
        state=lambda: None,
    )
    assert ordered.walk == list(endpoints)
    spool.close()


def test_connection_from_config_lists_every_endpoint(tmp_path: Path) -> None:
    cfg = convert_config(
        {
            "station": {"id": STATION, "provinsi": "33", "kabkota": "3310"},
            "mqtt": {"endpoints": ["n1.example", "n2.example:8884", "[fd00::3]"]},
        },
        "test",
    )
    conn = connection(cfg)
    assert conn.all_endpoints() == (
        ("n1.example", 8883),
        ("n2.example", 8884),
        ("fd00::3", 8883),
    )
    assert not conn.shuffle
    assert repr(conn) == (
        "Connection(n1.example:8883, n2.example:8884, fd00::3:8883, mqtt 5, tls=True)"
    )
    single = connection(
        convert_config({"station": {"id": STATION, "provinsi": "33", "kabkota": "3310"}}, "test")
    )
    assert single.all_endpoints() == (("localhost", 8883),)
    assert single.endpoints == ()


def test_an_unanswered_connect_is_taken_back_with_a_disconnect(tmp_path: Path) -> None:
    """A slow node may complete a CONNECT after the agent gave up on it, and would then publish
    the will when it finds the socket closed. The agent queues a DISCONNECT behind the CONNECT.

    The "broker" is a real TCP listener that reads and never answers (what a cluster node does
    while it waits for its session store); the agent is the real publisher.
    """
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    received = bytearray()
    done = threading.Event()

    def silent_broker() -> None:
        conn, _ = server.accept()
        conn.settimeout(10)
        try:
            while chunk := conn.recv(4096):
                received.extend(chunk)
        except OSError:
            pass
        finally:
            conn.close()
            done.set()

    threading.Thread(target=silent_broker, daemon=True).start()
    spool = Spool(str(tmp_path / "s.sqlite"), 100, 1 << 20)
    pub = Publisher(
        Connection(
            "127.0.0.1", port, protocol="3.1.1", tls=False, connect_timeout_s=0.5,
            reconnect_min_s=30.0, reconnect_max_s=30.0,
        ),
        Topics(f"{ROOT}/state", f"{ROOT}/status", f"{ROOT}/event"),
        spool,
        status=lambda value, reason: f"{value}/{reason}".encode(),
        state=lambda: None,
    )  # fmt: skip
    pub.start()
    try:
        assert done.wait(10), "the agent never closed the unanswered connection"
    finally:
        pub.stop(timeout=2)
        server.close()
        spool.close()
    # CONNECT (type 1, carrying the will) first, then DISCONNECT (type 14, two bytes)
    assert received[0] >> 4 == 1
    assert b"offline/will" in received
    assert received.endswith(b"\xe0\x00")
