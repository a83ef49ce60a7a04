"""Report by exception keeps every detection as fast as the periodic full state did.

A real agent (simulated hardware) publishes to a real mosquitto; a real collector (the
collector's own service) subscribes to it. Each detection runs with the old periodic policy
(full state every ``state_s``, no heartbeats) and the new one (full state on change/reconnect/
refresh, heartbeats), at the same keepalive, and must meet the same bound:

- an unplugged device: seconds (hotplug path), whatever the policy;
- a dead station (power lost: its packets stop, no FIN): the broker's will after 1.5 x
  keepalive (mosquitto checks every few seconds, so up to ~5 s later);
- a silent half-open link (the broker-to-station direction dies, the other still carries):
  the agent hears nothing for a keepalive, pings, hears nothing for another keepalive, drops the
  connection, the broker sends the will: offline within 2 x keepalive (plus paho's tick);
- a hung agent loop while paho keeps the connection alive: stale after 3 heartbeats (new
  policy; the old one: 3 x ``state_s``).

The line is a userspace proxy (``harness.LinkProxy``): it drops traffic silently, as a cut cable
or a powered-off PC does (no ``tc netem`` here). Deadlines are generous bounds on what the
protocol guarantees, not performance measurements.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from agent_support import STATION, Running, config, wait_until
from harness import LinkProxy, Mosquitto, MqttClient

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.service import Agent, build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedProber, SimulatedUsb
from pantau.collector.config import from_dict
from pantau.collector.fleet import station_status
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.contract.inventory import parse_inventory

KEEPALIVE = 5
#: mosquitto 2.0.11 finds an expired keepalive up to ~5 s late (measured here: the will came
#: 6 s after the last packet with keepalive 3, 11 s with 5, 17.5 s with 10), plus slack.
BROKER_CHECK_S = 6.5
POLICIES = {
    "periodic": {"state_s": 30.0, "heartbeat_s": 0.0},
    "by_exception": {"state_s": 21600.0, "heartbeat_s": KEEPALIVE - 1.0},
}
CAMERA = UsbDevice(vid=0x04A9, pid=0x3218, bus=1, port="1-4", interface_classes=(6,))
SIGNATURE = UsbDevice(vid=0x06A8, pid=0x0057, bus=1, port="1-5")


@contextmanager
def collector(broker: Mosquitto) -> Iterator[Collector]:
    cfg = from_dict(
        {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "reconnect_min_s": 0.1,
                "reconnect_max_s": 0.5,
            },
            "http": {"port": 0},
        }
    )
    inv = parse_inventory(
        f"station,provinsi,kabkota,kecamatan,device_classes\n{STATION},33,3310,Juwiring,camera;signature\n",
        "<test>",
    )
    c = Collector(cfg, inventory=inv).start()
    try:
        assert c.wait_until(lambda c: c.mqtt_connected, 10)
        yield c
    finally:
        c.stop()


def status_of(c: Collector) -> str:
    snap = c.snapshot()
    view = next(v for v in snap.stations if v.station == STATION)
    return station_status(view, snap.now, snap.stale_after_intervals)


def camera_present(c: Collector) -> bool:
    view = next(v for v in c.snapshot().stations if v.station == STATION)
    return any(p.device_class == "camera" and p.present for p in view.presence)


def make_agent(
    tmp_path: Path, host: str, port: int, policy: str, usb: SimulatedUsb, **mqtt: Any
) -> Agent:
    cfg = config(tmp_path, _At(host, port), **mqtt)
    cfg = msgspec.structs.replace(
        cfg,
        mqtt=msgspec.structs.replace(cfg.mqtt, keepalive_s=KEEPALIVE),
        intervals=msgspec.structs.replace(cfg.intervals, **POLICIES[policy]),
    )
    return build_agent(
        cfg, usb_reader=usb, hotplug=usb, host_reader=SimulatedHost(), prober=SimulatedProber()
    )


class _At:
    """What ``agent_support.config`` reads of a broker: where to connect (here: the proxy)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port


def elapsed_until(pred: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    wait_until(pred, timeout, what)
    return time.monotonic() - start


@pytest.fixture
def line(mosquitto: Mosquitto) -> Iterator[LinkProxy]:
    with LinkProxy(mosquitto.host, mosquitto.port) as proxy:
        yield proxy


@pytest.mark.parametrize("policy", list(POLICIES))
def test_an_unplug_reaches_the_collector_within_seconds(
    tmp_path: Path, mosquitto: Mosquitto, policy: str
) -> None:
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    with collector(mosquitto) as c:
        run = Running(make_agent(tmp_path, mosquitto.host, mosquitto.port, policy, usb))
        try:
            wait_until(lambda: camera_present(c), 10, "camera present at the collector")
            usb.unplug(CAMERA.vid)  # poll_s is 30: only the hotplug path can be this fast
            took = elapsed_until(lambda: not camera_present(c), 3.0, "camera missing")
            assert took < 3.0
            assert status_of(c) == "up"
        finally:
            run.close()


@pytest.mark.parametrize("policy", list(POLICIES))
def test_a_dead_station_is_offline_within_one_and_a_half_keepalives(
    tmp_path: Path, mosquitto: Mosquitto, line: LinkProxy, policy: str
) -> None:
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    with collector(mosquitto) as c:
        run = Running(make_agent(tmp_path, line.host, line.port, policy, usb))
        try:
            wait_until(lambda: status_of(c) == "up", 10, "station up")
            time.sleep(1.0)
            line.blackhole()  # the PC lost power: nothing more arrives, no FIN
            # mosquitto 2.0 checks keepalives every few seconds: up to ~5 s after 1.5 x keepalive
            bound = 1.5 * KEEPALIVE + BROKER_CHECK_S
            took = elapsed_until(lambda: status_of(c) == "offline", bound + 1.0, "offline")
            assert took <= bound, f"offline after {took:.1f} s, bound {bound} s"
            view = next(v for v in c.snapshot().stations if v.station == STATION)
            assert view.offline_reason == "will"
        finally:
            line.blackhole(False)
            run.close()


@pytest.mark.parametrize("policy", list(POLICIES))
def test_a_silent_half_open_link_is_detected_within_two_keepalives(
    tmp_path: Path, mosquitto: Mosquitto, line: LinkProxy, policy: str
) -> None:
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    with collector(mosquitto) as c:
        agent = make_agent(tmp_path, line.host, line.port, policy, usb)
        run = Running(agent)
        try:
            wait_until(lambda: status_of(c) == "up", 10, "station up")
            assert agent.publisher is not None
            connects = agent.publisher.connects
            # The broker's packets to the station vanish; the station's still arrive, so the
            # broker sees a live client: only the agent can notice (no PUBACK, no PINGRESP).
            line.blackhole(up=False)
            bound = 2 * KEEPALIVE + 3.0  # paho: keepalive without input, ping, keepalive more
            took = elapsed_until(lambda: status_of(c) == "offline", bound + 1.0, "offline")
            assert took <= bound, f"offline after {took:.1f} s, bound {bound} s"
            assert not agent.publisher.connected
            line.blackhole(False)  # the line heals: the agent is back by itself
            wait_until(lambda: agent.publisher.connects > connects, 15, "reconnected")
            wait_until(lambda: status_of(c) == "up", 10, "station up again")
        finally:
            line.blackhole(False)
            run.close()


def test_a_hung_agent_loop_goes_stale_after_three_heartbeats_while_the_link_lives(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    agent = make_agent(tmp_path, mosquitto.host, mosquitto.port, "by_exception", usb)
    beat = agent.cfg.intervals.heartbeat_s
    with collector(mosquitto) as c:
        # No service loop: one round, then the loop "hangs". paho's network thread lives on
        # and keeps the connection (keepalive pings), so the broker never sends the will.
        agent.start()
        try:
            agent.round()
            wait_until(lambda: status_of(c) == "up", 10, "station up")
            took = elapsed_until(lambda: status_of(c) == "stale", 3 * beat + 3.0, "stale")
            assert took <= 3 * beat + 2.0
            assert agent.publisher is not None
            assert agent.publisher.connected  # the link itself was fine all along
        finally:
            agent.close()


@pytest.mark.parametrize("aliases", [10, 1])  # mosquitto's default; a broker that allows one
def test_steady_state_sends_only_compact_heartbeats_without_pings(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], aliases: int
) -> None:
    mosquitto = mosquitto_factory(extra_config=f"max_topic_alias {aliases}")
    line = LinkProxy(mosquitto.host, mosquitto.port)
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    agent = make_agent(tmp_path, line.host, line.port, "by_exception", usb)
    agent.cfg = msgspec.structs.replace(
        agent.cfg, intervals=msgspec.structs.replace(agent.cfg.intervals, heartbeat_s=2.0)
    )
    got: list[tuple[str, bytes]] = []
    lock = threading.Lock()
    with MqttClient(mosquitto.host, mosquitto.port) as sub:
        assert not sub.connect().is_failure
        sub.client.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
        sub.subscribe(wire.subscription())
        run = Running(agent)
        try:
            wait_until(lambda: any(t.endswith("/beat") for t, _ in got), 10, "first beat")
            before = line.bytes()
            with lock:
                start = len(got)
            time.sleep(7.0)
            up, down = (a - b for a, b in zip(line.bytes(), before, strict=True))
            with lock:
                window = got[start:]
        finally:
            run.close()
            line.close()
    assert any(t.endswith("/state") for t, _ in got)  # with or without an alias of its own
    kinds = [wire.parse_topic(t).kind for t, _ in window]
    assert set(kinds) == {"beat"}, kinds  # nothing changed: no state, no event
    beats = [wire.decode(t, p)[1] for t, p in window]
    assert all(isinstance(b, wire.Beat) and b.session == agent.session for b in beats)
    seqs = [b.seq for b in beats]
    assert seqs == sorted(set(seqs))
    assert 2 <= len(beats) <= 4
    # Plain MQTT 5: a beat with a topic alias is 35 bytes and its PUBACK 4-5: no PINGREQ (2)
    # and PINGRESP (2) in between, no full topic (~40 bytes) after the first beat.
    per_beat = (up + down) / len(beats)
    assert per_beat <= 42, (up, down, len(beats))
    assert "PINGREQ" not in _client_log(mosquitto, agent)


def _client_log(broker: Mosquitto, agent: Agent) -> str:
    cid = agent.cfg.client_id
    lines = broker.log().splitlines()
    # only the lines after this client's last CONNECT (the window above)
    return "\n".join(line for line in lines if cid in line and "Received" in line)
