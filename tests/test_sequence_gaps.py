"""``pantau_collector_sequence_gaps_total`` means loss: 0 when nothing is lost, exact when some is.

Real parts: mosquitto, the real agent code (checks, change events, spool, publisher; simulated USB
and host only), a real HTTP login service probed by the real prober, the real collector service.
A second subscriber (the *monitor*) connects to the same broker directly and records every
message the agents published: the ground truth.

1. A healthy run with many rounds, device and login changes: every seq an agent took reached
   the broker (the only ones missing are the wills of connections that ended
   cleanly, which were never meant to be sent), and the collector counts 0 gaps.
2. Messages really dropped: the collector's connection passes through a TCP proxy that is paused
   while an agent publishes a burst; mosquitto (``max_queued_messages``) drops what does not fit
   the collector's queue. The collector's gap count equals both the number of messages the
   monitor saw and the collector did not, and mosquitto's own ``$SYS`` dropped counter.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from harness import Mosquitto
from harness.mqtt import MqttClient

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import AgentConfig, convert_config
from pantau.agent.service import Agent, build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedUsb
from pantau.collector.config import CollectorConfig, FleetConfig, HttpConfig, MqttConfig
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.contract.wire import EventKind

BURST = 1300
CAMERA = UsbDevice(vid=0x04A9, pid=0x3218, interface_classes=(6,), product="EOS")
PAD = UsbDevice(vid=0x06A8, pid=0x0057, product="SignatureGem")


def wait_until(pred: Any, timeout: float, what: Any) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.02)


class Login:
    """A real HTTP login service: 200, or 403 while ``locked``."""

    def __init__(self) -> None:
        self.locked = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(403 if outer.locked else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/login"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PausingProxy:
    """A TCP proxy to ``upstream``; while paused it stops forwarding (sockets stay open)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.running = threading.Event()
        self.running.set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._socks: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                self.running.wait()
                data = src.recv(65536)
                if not data:
                    break
                self.running.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.running.set()
        for s in self._socks:
            s.close()


class Monitor:
    """Records ``(station, session, seq)`` of every live message on ``pantau/v1/#``."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = MqttClient(broker.host, broker.port)
        self.client.connect()
        self.seen: dict[str, dict[str, set[int]]] = {}
        self.count = 0
        self._lock = threading.Lock()
        self._orig = self.client.client.on_message
        self.client.client.on_message = self._on_message
        # QoS 0: the broker's QoS 1 window and queue (which make it drop for the collector in
        # the loss test) do not apply, so the monitor sees every message even when it lags.
        self.client.subscribe("pantau/v1/#", qos=0)
        self.dropped: int | None = None

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        if msg.topic.startswith("$SYS/"):
            self.dropped = int(msg.payload)
            return
        if msg.retain:
            return
        _topic, message = wire.decode(msg.topic, msg.payload)
        with self._lock:
            self.count += 1
            seqs = self.seen.setdefault(message.station, {}).setdefault(message.session, set())
            assert message.seq not in seqs, f"seq {message.seq} published twice"
            seqs.add(message.seq)

    def close(self) -> None:
        self.client.close()


def agent_config(tmp_path: Path, broker_port: int, station: str, login_url: str) -> AgentConfig:
    data = {
        "station": {"id": station, "provinsi": "33", "kabkota": "3310", "kecamatan": "Juwiring"},
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker_port,
            "tls": False,
            "keepalive_s": 5,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.3,
        },
        "spool": {"path": str(tmp_path / f"{station}.sqlite")},
        "intervals": {"state_s": 0.5, "poll_s": 0.2, "login_s": 0.2},
        "devices": [
            {"device_class": "camera", "vid": 0x04A9, "interface_class": 6},
            {"device_class": "signature", "vid": 0x06A8},
        ],
        "probes": [{"name": "enrollment", "kind": "http", "target": login_url, "timeout_s": 1.0}],
    }
    return convert_config(data, "test")


class Station:
    def __init__(self, tmp_path: Path, port: int, station: str, login: Login) -> None:
        self.usb = SimulatedUsb([CAMERA, PAD])
        self.agent: Agent = build_agent(
            agent_config(tmp_path, port, station, login.url),
            usb_reader=self.usb,
            hotplug=self.usb,
            host_reader=SimulatedHost(),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.agent.wake()
        self.thread.join(15)


def collector(port: int, reorder_window_s: float) -> Collector:
    config = CollectorConfig(
        mqtt=MqttConfig(host="127.0.0.1", port=port, reconnect_max_s=0.5),
        http=HttpConfig(host="127.0.0.1", port=0),
        fleet=FleetConfig(reorder_window_s=reorder_window_s),
    )
    return Collector(config).start()


@pytest.fixture
def login() -> Iterator[Login]:
    service = Login()
    yield service
    service.close()


@pytest.mark.slow
def test_a_healthy_run_has_no_sequence_gaps(
    tmp_path: Path, mosquitto: Mosquitto, login: Login
) -> None:
    c = collector(mosquitto.port, reorder_window_s=1.0)
    monitor = Monitor(mosquitto)
    stations = [Station(tmp_path, mosquitto.port, f"3310-seq-{i:02d}", login) for i in range(3)]
    try:
        wait_until(lambda: len(c.fleet) == 3, 10, "three stations")
        deadline = time.monotonic() + 15
        flip = 0
        while time.monotonic() < deadline:
            flip += 1
            for s in stations:  # peripheral_removed/added and state changes at once
                if flip % 2:
                    s.usb.unplug(CAMERA.vid)
                else:
                    s.usb.plug(CAMERA)
            if flip % 5 == 0:
                login.locked = not login.locked  # probe_down/probe_up
            time.sleep(0.4)
        for s in stations:
            s.close()
        wait_until(
            lambda: c.fleet.snapshot(time.time()).received_total >= monitor.count, 10, "drain"
        )
        time.sleep(1.5)  # past the reorder window: any open hole would now count
        snap = c.fleet.snapshot(time.time())
        events = sum(n for v in snap.stations for _k, n in v.events)
        assert monitor.count > 200, monitor.count
        assert events > 60, events
        assert snap.seq_gaps_total == 0
        assert all(v.seq_gaps == 0 for v in snap.stations)
        # Every seq an agent took was published, except the will of its connection, which ended
        # cleanly (an orderly stop sends "shutdown" instead): the seq counter means "sent".
        for s in stations:
            (seqs,) = monitor.seen[s.agent.cfg.station.id].values()
            missing = set(range(1, max(seqs) + 1)) - seqs
            assert s.agent.publisher is not None
            assert len(missing) <= s.agent.publisher.connects, (sorted(missing), len(seqs))
    finally:
        for s in stations:
            s.close()
        monitor.close()
        c.stop()


@pytest.mark.slow
def test_messages_really_dropped_are_counted_exactly(
    tmp_path: Path, mosquitto_factory: Any, login: Login
) -> None:
    broker: Mosquitto = mosquitto_factory(
        extra_config="max_inflight_messages 20\nmax_queued_messages 200\nsys_interval 1\n"
    )
    proxy = PausingProxy((broker.host, broker.port))
    c = collector(proxy.port, reorder_window_s=1.0)
    monitor = Monitor(broker)
    monitor.client.subscribe("$SYS/broker/publish/messages/dropped")
    sid = "3310-seq-drop"
    # Events only (no rounds, so no states): exactly the messages below are published.
    quiet = build_agent(
        agent_config(tmp_path, broker.port, sid, login.url),
        usb_reader=SimulatedUsb(),
        hotplug=None,
        host_reader=SimulatedHost(),
    )
    try:
        quiet.start()
        assert quiet.publisher is not None
        wait_until(lambda: len(c.fleet) == 1, 10, "the station's birth at the collector")
        time.sleep(1.0)
        dropped_before = monitor.dropped or 0
        rx0 = c.fleet.snapshot(time.time()).received_total
        mon0 = monitor.count

        proxy.running.clear()  # the collector stops reading
        # More than the collector's receive window (1000 in flight, MQTT 5) plus the broker's
        # queue for it: the rest is dropped by mosquitto.
        for i in range(BURST):
            quiet.emit(EventKind.CHECK_FAILED, "burst", f"event {i}")
            time.sleep(0.001)  # the monitor (not paused) keeps up
        wait_until(lambda: quiet.spool.queued == 0, 60, "every event acknowledged by the broker")
        proxy.running.set()
        time.sleep(0.5)
        for i in range(5):  # after the drop: the live messages that reveal the holes
            quiet.emit(EventKind.CHECK_RECOVERED, "burst", f"after {i}")
        wait_until(
            lambda: monitor.count - mon0 == BURST + 5,
            30,
            lambda: f"the monitor to see everything ({monitor.count - mon0}, {monitor.dropped})",
        )
        wait_until(
            lambda: (
                c.fleet.snapshot(time.time()).received_total - rx0
                >= BURST + 5 - ((monitor.dropped or 0) - dropped_before)
            ),
            30,
            "the collector got what the broker kept for it",
        )
        time.sleep(2.5)  # reorder window, $SYS interval
        snap = c.fleet.snapshot(time.time())
        received = snap.received_total - rx0
        lost = BURST + 5 - received
        broker_dropped = (monitor.dropped or 0) - dropped_before
        assert lost > 50, lost  # mosquitto really dropped part of the burst
        assert snap.seq_gaps_total == lost
        assert broker_dropped == lost
        (view,) = snap.stations
        assert view.seq_gaps == lost
    finally:
        quiet.close()
        monitor.close()
        c.stop()
        proxy.close()
