"""The agent against a real mosquitto: birth/state/events, outages, kill -9, TLS + auth.

In-process tests drive the real :class:`pantau.agent.service.Agent` with simulated USB (the real pyusb
path is tested under umockdev in test_agent_umockdev.py); the subprocess tests run the real
``pantau-agent run`` and change a real TCP listener that a login probe watches.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from agent_support import ROOT, STATION, Inbox, Running, config, decode, wait_until
from harness import Mosquitto, free_port
from harness.mosquitto import PANTAU_ACL
from harness.mqtt import MqttClient
from harness.procs import port_open
from paho.mqtt.enums import CallbackAPIVersion

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import AgentConfig, convert_config
from pantau.agent.service import build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedUsb
from pantau.agent.spool import Spool
from pantau.contract import wire

CAMERA = UsbDevice(0x04A9, 0x3218, 1, "1-2", 0, (6,), "Canon Inc.", "Canon EOS 1300D")
PAD = UsbDevice(0x06A8, 0x0057, 1, "1-3", 0, (3,), "Topaz Systems", "SignatureGem")


@pytest.fixture
def usb() -> SimulatedUsb:
    return SimulatedUsb([CAMERA, PAD])


def start_agent(cfg: AgentConfig, usb: SimulatedUsb) -> Running:
    agent = build_agent(cfg, usb_reader=usb, hotplug=usb, host_reader=SimulatedHost())
    return Running(agent)


def test_birth_state_unplug_event_and_orderly_shutdown(
    tmp_path: Path, mosquitto: Mosquitto, usb: SimulatedUsb
) -> None:
    with MqttClient(mosquitto.host, mosquitto.port, client_id="watcher") as sub:
        sub.connect()
        sub.subscribe(f"{ROOT}/#")
        inbox = Inbox(sub)
        run = start_agent(config(tmp_path, mosquitto), usb)
        try:
            birth = inbox.next("status")
            assert isinstance(birth, wire.Status)
            assert (birth.status, birth.session) == ("online", run.agent.session)
            state = inbox.next("state")
            assert [(p.device_class, p.present) for p in state.peripherals] == [
                ("camera", True),
                ("signature", True),
            ]
            assert state.peripherals[0].devices[0].product == "Canon EOS 1300D"
            assert [c.name for c in state.checks] == ["usb", "host"]
            started = inbox.next("event")
            assert started.kind == wire.EventKind.AGENT_STARTED

            usb.unplug(0x04A9)  # the camera is switched off
            removed = inbox.next("event")
            assert (removed.kind, removed.subject) == (wire.EventKind.PERIPHERAL_REMOVED, "camera")
            assert removed.detail == "missing Canon EOS (04a9:*)"
            missing = inbox.next("state", lambda s: not s.peripherals[0].present)
            assert missing.peripherals[0].reason == "missing"
            assert missing.seq > state.seq
            wait_until(lambda: run.agent.spool.queued == 0, what="spool drained after PUBACKs")
        finally:
            run.close()
        bye = inbox.next("status")
        assert (bye.status, bye.reason, bye.session) == ("offline", "shutdown", birth.session)


def persistent_subscriber(broker: Mosquitto, client_id: str) -> tuple[mqtt.Client, list[Any]]:
    """A QoS 1 subscriber with a persistent session (survives a broker restart)."""
    got: list[Any] = []
    lock = threading.Lock()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=False,
    )
    client.reconnect_delay_set(0.05, 0.2)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, *_a: Any) -> None:
        c.subscribe(f"{ROOT}/event", qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(decode(msg))

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert subscribed.wait(5)
    return client, got


@pytest.fixture
def persistent_broker(mosquitto_factory: Callable[..., Mosquitto], tmp_path: Path) -> Mosquitto:
    store = tmp_path / "mosquitto-db"
    store.mkdir()
    return mosquitto_factory(extra_config=f"persistence true\npersistence_location {store}/")


def kinds(events: list[Any], session: str | None = None) -> list[tuple[str, str]]:
    return [(e.kind.value, e.subject) for e in events if session in (None, e.session)]


def test_outage_every_event_arrives_once_in_order(
    tmp_path: Path, persistent_broker: Mosquitto, usb: SimulatedUsb
) -> None:
    broker = persistent_broker
    sub, got = persistent_subscriber(broker, "outage-watcher")
    run = start_agent(config(tmp_path, broker), usb)
    agent = run.agent
    try:
        wait_until(lambda: kinds(got) == [("agent_started", "agent")], what="agent_started")
        broker.stop()
        wait_until(lambda: agent.publisher is not None and not agent.publisher.connected)
        expected = []
        for i in range(3):
            for change in ("removed", "added"):
                before = agent.spool.queued
                if change == "removed":
                    usb.unplug(0x04A9)
                else:
                    usb.plug(CAMERA)
                expected.append((f"peripheral_{change}", "camera"))
                wait_until(lambda b=before: agent.spool.queued > b, what=f"spooled {i} {change}")
        assert agent.spool.queued == 6
        broker.start()
        wanted = [("agent_started", "agent"), *expected]
        wait_until(lambda: len(got) >= len(wanted), what="spooled events after the outage")
        wait_until(lambda: agent.spool.queued == 0, what="spool drained")
        time.sleep(0.2)  # a late duplicate would arrive now
        assert kinds(got) == wanted
        seqs = [e.seq for e in got]
        assert seqs == sorted(set(seqs))
    finally:
        run.close()
        sub.loop_stop()
        sub.disconnect()


# --------------------------------------------------------------------------- subprocess


class Listener:
    """A TCP port a login probe watches: open() -> probe up, close() -> refused (down)."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def write_config(tmp_path: Path, broker: Mosquitto, listener: Listener) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""
[station]
id = "{STATION}"
provinsi = "33"
kabkota = "3310"
[mqtt]
host = "{broker.host}"
port = {broker.port}
tls = false
keepalive_s = 5
reconnect_min_s = 0.05
reconnect_max_s = 0.3
[spool]
path = "spool.sqlite"
[intervals]
login_s = 0.1
poll_s = 30.0
[[probes]]
name = "login"
kind = "tcp"
target = "127.0.0.1:{listener.port}"
timeout_s = 1.0
""",
        encoding="utf-8",
    )
    return path


def spawn_agent(config_path: Path) -> subprocess.Popen[bytes]:
    log = open(config_path.parent / "agent.log", "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "pantau.agent.cli", "run", "--config", str(config_path)],
        stdout=log,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def spooled(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def test_kill_9_mid_outage_then_restart_delivers_the_spool(
    tmp_path: Path, persistent_broker: Mosquitto, listener: Listener
) -> None:
    broker = persistent_broker
    listener.open()
    cfg_path = write_config(tmp_path, broker, listener)
    sub, got = persistent_subscriber(broker, "kill-watcher")
    proc = spawn_agent(cfg_path)
    try:
        wait_until(lambda: len(got) >= 1, what="agent_started from the first agent")
        first = got[0].session
        broker.stop()
        spool = tmp_path / "spool.sqlite"
        base = spooled(spool)
        for n, action in enumerate((listener.close, listener.open, listener.close), start=1):
            action()
            wait_until(lambda n=n: spooled(spool) >= base + n, what=f"change {n} spooled")
        proc.kill()  # kill -9 in the middle of the outage
        proc.wait(10)
        assert spooled(spool) == base + 3
        broker.start()
        proc = spawn_agent(cfg_path)
        wait_until(lambda: spooled(spool) == 0 and len(got) >= 5, timeout=20, what="delivery")
        time.sleep(0.2)
        assert kinds(got, first) == [
            ("agent_started", "agent"),
            ("probe_down", "login"),
            ("probe_up", "login"),
            ("probe_down", "login"),
        ]
        second = [e for e in got if e.session != first]
        assert [e.kind.value for e in second][:1] == ["agent_started"]
    finally:
        proc.kill()
        proc.wait(10)
        sub.loop_stop()
        sub.disconnect()


def test_sigterm_publishes_orderly_offline_and_kill_leaves_the_will(
    tmp_path: Path, mosquitto: Mosquitto, listener: Listener
) -> None:
    listener.open()
    cfg_path = write_config(tmp_path, mosquitto, listener)
    with MqttClient(mosquitto.host, mosquitto.port, client_id="status-watcher") as sub:
        sub.connect()
        sub.subscribe(f"{ROOT}/status")
        proc = spawn_agent(cfg_path)
        try:
            online = decode(sub.expect(f"{ROOT}/status", timeout=10))
            assert online.status == "online"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            offline = decode(sub.expect(f"{ROOT}/status", timeout=10))
            assert (offline.status, offline.reason, offline.session) == (
                "offline",
                "shutdown",
                online.session,
            )
            proc = spawn_agent(cfg_path)
            online2 = decode(sub.expect(f"{ROOT}/status", timeout=10))
            assert online2.status == "online"
            assert online2.session != online.session
            proc.kill()
            will = decode(sub.expect(f"{ROOT}/status", timeout=10))
            assert (will.status, will.reason, will.session) == (
                "offline",
                "will",
                online2.session,
            )
        finally:
            proc.kill()
            proc.wait(10)
    log = (tmp_path / "agent.log").read_text()
    assert "shutting down" in log


# --------------------------------------------------------------------------- TLS + auth


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_tls_and_password_against_an_acl_broker(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    tls_certs: Any,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto_factory(auth=True, tls=True, acl=PANTAU_ACL)
    secret = broker.users[STATION]
    pw = tmp_path / "password"
    pw.write_text(secret + "\n")
    pw.chmod(0o600)
    cfg = config(
        tmp_path,
        broker,
        port=broker.tls_port,
        tls=True,
        ca_file=str(tls_certs.ca_cert),
        password_file=str(pw),
        protocol=protocol,
    )
    with MqttClient(
        broker.host,
        broker.tls_port,
        client_id="collector",
        username="collector",
        password=broker.users["collector"],
        ca_file=tls_certs.ca_cert,
    ) as sub:
        assert not sub.connect().is_failure
        sub.subscribe(f"{ROOT}/#")
        inbox = Inbox(sub)
        run = start_agent(cfg, SimulatedUsb([CAMERA, PAD]))
        try:
            assert inbox.next("status").status == "online"
            assert inbox.next("state").station == STATION
        finally:
            run.close()
    assert secret not in caplog.text


def test_publishes_refused_by_the_acl_log_which_station_the_agent_publishes_as(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    usb: SimulatedUsb,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A station whose config names another station's id (copied from a neighbour's folder):
    the broker (MQTT 5, the shipped ACL) refuses every publish; the agent says as whom it
    publishes and what the ACL must allow, once, not per message."""
    broker = mosquitto_factory(auth=True, acl=PANTAU_ACL)
    other = "3310-klaten-02"  # its own user, but the config's station id is Juwiring's
    pw = tmp_path / "password"
    pw.write_text(broker.users[other] + "\n")
    pw.chmod(0o600)
    cfg = config(tmp_path, broker, username=other, password_file=str(pw))
    with caplog.at_level("ERROR"):
        run = start_agent(cfg, usb)
        try:
            wait_until(lambda: "not authorized" in caplog.text, what="the ACL hint")
            run.agent.emit(wire.EventKind.CHECK_FAILED, "x", "more refused publishes")
            time.sleep(1.0)
        finally:
            run.close()
    hints = [r for r in caplog.records if "refused a publish" in r.getMessage()]
    assert len(hints) == 1
    text = hints[0].getMessage()
    assert f"publishes as station {STATION} under pantau/v1/33/3310/{STATION}/#" in text
    assert f"as user '{other}'" in text
    assert broker.users[other] not in caplog.text


def test_wrong_ca_or_password_never_connects_and_keeps_running(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    tls_certs: Any,
    usb: SimulatedUsb,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto_factory(auth=True, tls=True, acl=PANTAU_ACL)
    pw = tmp_path / "password"
    pw.write_text("not-the-password")
    pw.chmod(0o600)
    for ca in (tls_certs.other_ca_cert, tls_certs.ca_cert):
        cfg = config(
            tmp_path,
            broker,
            port=broker.tls_port,
            tls=True,
            ca_file=str(ca),
            password_file=str(pw),
        )
        caplog.clear()
        with caplog.at_level("WARNING"):
            run = start_agent(cfg, usb)
            try:
                wait_until(lambda: "mqtt" in caplog.text, what="a logged connection error")
                # checks still run without a broker
                wait_until(lambda r=run: r.agent.state is not None, what="a round without broker")
                assert run.agent.publisher is not None
                assert not run.agent.publisher.connected
            finally:
                run.close()
        text = caplog.text
        assert "not-the-password" not in text
        if ca == tls_certs.other_ca_cert:
            assert "CERTIFICATE_VERIFY_FAILED" in text
        else:
            assert "refused the connection" in text


def test_state_payload_is_valid_wire(
    tmp_path: Path, usb: SimulatedUsb, mosquitto: Mosquitto
) -> None:
    agent = build_agent(
        config(tmp_path, mosquitto),
        usb_reader=usb,
        host_reader=SimulatedHost(),
        hotplug=None,
        connect=False,
    )
    try:
        agent.round()
        payload = agent.state_payload()
        assert payload is not None
        state = wire.decode(f"{ROOT}/state", payload)[1]
        assert isinstance(state, wire.State)
        assert msgspec.json.decode(payload)["type"] == "state"
        assert state.host is not None
        assert state.host.disks[0].mount == "/"
    finally:
        agent.close()


@pytest.mark.skipif(shutil.which("nats-server") is None, reason="nats-server not installed")
def test_falls_back_to_mqtt_311_on_a_broker_without_mqtt_5(
    tmp_path: Path, usb: SimulatedUsb
) -> None:
    # nats-server's MQTT gateway speaks 3.1.1 only and answers a v5 CONNECT with CONNACK
    # "unsupported protocol version" (0x84).
    port, client_port = free_port(), free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"server_name: pantau-test\nlisten: 127.0.0.1:{client_port}\n"
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f"mqtt {{ listen: 127.0.0.1:{port} }}\n"
    )
    log = open(tmp_path / "nats.log", "wb")  # noqa: SIM115 - closed below
    nats = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), what="nats-server MQTT listener")
        with MqttClient("127.0.0.1", port, client_id="v311-watcher", protocol=mqtt.MQTTv311) as sub:
            sub.connect()
            sub.subscribe(f"{ROOT}/#")
            inbox = Inbox(sub)
            cfg = convert_config(
                {
                    "station": {"id": STATION, "provinsi": "33", "kabkota": "3310"},
                    "mqtt": {"host": "127.0.0.1", "port": port, "tls": False},
                    "spool": {"path": str(tmp_path / "spool.sqlite")},
                    "devices": [{"device_class": "camera", "vid": 0x04A9}],
                },
                "test",
            )
            assert cfg.mqtt.protocol == "5"
            run = start_agent(cfg, usb)
            try:
                assert inbox.next("status").status == "online"
                assert inbox.next("event").kind == wire.EventKind.AGENT_STARTED
                assert run.agent.publisher is not None
                assert run.agent.publisher.protocol == "3.1.1"
            finally:
                run.close()
    finally:
        nats.terminate()
        nats.wait(10)
        log.close()


def test_unwritable_spool_while_connected_is_logged_once_without_traceback(
    tmp_path: Path, mosquitto: Mosquitto, usb: SimulatedUsb, caplog: pytest.LogCaptureFixture
) -> None:
    # A spool that cannot be written (PRAGMA query_only stands in for a full disk, whose WAL
    # cannot grow): every PUBACK's delete fails. One line per kind, no traceback, events still
    # delivered and kept for the next connection.
    agent = build_agent(
        config(tmp_path, mosquitto), usb_reader=usb, hotplug=usb, host_reader=SimulatedHost()
    )
    for i in range(5):
        agent.emit(wire.EventKind.CHECK_FAILED, "host", f"spooled {i}")
    agent.spool._db.execute("PRAGMA query_only = ON")  # this connection only
    with MqttClient(mosquitto.host, mosquitto.port, client_id="watcher") as sub:
        sub.connect()
        sub.subscribe(f"{ROOT}/event")
        inbox = Inbox(sub)
        with caplog.at_level("WARNING"):
            run = Running(agent)
            try:
                for i in range(5):
                    assert inbox.next("event").detail == f"spooled {i}"
                wait_until(lambda: "cannot forget a sent event" in caplog.text, what="the log")
            finally:
                run.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in errors if r.exc_info], "no traceback"
    assert len([r for r in errors if "cannot forget" in r.getMessage()]) == 1
    assert len([r for r in errors if "lost" in r.getMessage()]) == 1  # agent_started
    reopened = Spool(str(tmp_path / "spool.sqlite"), 100, 1 << 20)
    try:
        assert reopened.queued == 5  # kept: sent again after the next connect
    finally:
        reopened.close()
