"""A thin, slow, stalling line: every event arrives in order, memory stays bounded, no false down.

The line is a userspace proxy (``harness.LinkProxy``; there is no ``tc netem`` here) between the
real agent and a real mosquitto with TLS, password and the deployment's ACL: 64 kbit/s each way,
600 ms of latency each way (1.2 s round trip), and stalls (nothing delivered for a while, nothing
lost, the connection stays open). The real collector reads the broker directly (its own line is
not the thin one).

While the line stalls for 8 s, the camera is unplugged and plugged back dozens of times: more
events than paho may hold, so the spool must be the queue. Then stalls of 1-2.5 s keep coming
every few seconds while the backlog drains and heartbeats go on.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from agent_support import ROOT, STATION, config, wait_until
from harness import PANTAU_ACL, LinkProxy, Mosquitto, MqttClient, Shape

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.publisher import MAX_QUEUED
from pantau.agent.service import build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedProber, SimulatedUsb
from pantau.collector.config import from_dict
from pantau.collector.fleet import station_status
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.contract.inventory import parse_inventory

CAMERA = UsbDevice(vid=0x04A9, pid=0x3218, bus=1, port="1-4", interface_classes=(6,))
SIGNATURE = UsbDevice(vid=0x06A8, pid=0x0057, bus=1, port="1-5")
RATE_BPS = 64_000
LATENCY_S = 0.6
TOGGLES = 80


def test_thin_stalling_line_delivers_every_event_in_order_with_bounded_memory(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], tls_certs: Any
) -> None:
    broker = mosquitto_factory(auth=True, tls=True, acl=PANTAU_ACL)
    assert broker.tls_port is not None
    pw = tmp_path / "password"
    pw.write_text(broker.users[STATION] + "\n")
    pw.chmod(0o600)
    line = LinkProxy(
        broker.host,
        broker.tls_port,
        up=Shape(RATE_BPS, LATENCY_S),
        down=Shape(RATE_BPS, LATENCY_S),
        buffer_bytes=8 * 1024,  # a small router queue: the agent's socket feels the line
    )
    cfg = config(
        tmp_path,
        line,  # type: ignore[arg-type]  # host and port are all config() reads
        tls=True,
        ca_file=str(tls_certs.ca_cert),
        password_file=str(pw),
        keepalive_s=15,
        connect_timeout_s=20.0,
    )
    cfg = msgspec.structs.replace(
        cfg,
        intervals=msgspec.structs.replace(cfg.intervals, state_s=21600.0, heartbeat_s=6.0),
    )
    usb = SimulatedUsb([CAMERA, SIGNATURE])
    agent = build_agent(
        cfg, usb_reader=usb, hotplug=usb, host_reader=SimulatedHost(), prober=SimulatedProber()
    )
    emitted: list[str] = []
    real_emit = agent.emit

    def emit(kind: wire.EventKind, subject: str = "", detail: str = "") -> None:
        emitted.append(kind.value)
        real_emit(kind, subject, detail)

    agent.emit = emit  # type: ignore[method-assign]  # count what the agent produced
    collector_pw = tmp_path / "collector-password"
    collector_pw.write_text(broker.users["collector"] + "\n")
    collector_pw.chmod(0o600)
    collector = Collector(
        from_dict(
            {
                "mqtt": {
                    "host": broker.host,
                    "port": broker.port,
                    "username": "collector",
                    "password_file": str(collector_pw),
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 0.5,
                },
                "http": {"port": 0},
            }
        ),
        inventory=parse_inventory(
            "station,provinsi,kabkota,kecamatan,device_classes\n"
            f"{STATION},33,3310,Juwiring,camera;signature\n",
            "<test>",
        ),
    )
    received: list[wire.Event] = []
    statuses: list[str] = []
    spool_peak = 0
    done = threading.Event()
    stop = threading.Event()

    def status() -> str:
        snap = collector.snapshot()
        view = next(v for v in snap.stations if v.station == STATION)
        return station_status(view, snap.now, snap.stale_after_intervals)

    def watch() -> None:  # the collector's verdict and the spool, every 0.2 s
        nonlocal spool_peak
        while not done.is_set():
            statuses.append(status())
            spool_peak = max(spool_peak, agent.spool.queued)
            time.sleep(0.2)

    def weather() -> None:  # occasional stalls of 1-2.5 s every 3-6 s
        rng = random.Random(14)
        while not done.wait(rng.uniform(3.0, 6.0)):
            line.stall(rng.uniform(1.0, 2.5))

    with MqttClient(
        broker.host,
        broker.port,
        client_id="observer",
        username="collector",
        password=broker.users["collector"],
    ) as sub:
        assert not sub.connect().is_failure
        sub.client.on_message = lambda _c, _u, m: received.append(
            wire.decode(m.topic, m.payload)[1]  # type: ignore[arg-type]
        )
        sub.subscribe(f"{ROOT}/event")
        collector.start()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            assert collector.wait_until(lambda c: c.mqtt_connected, 10)
            wait_until(lambda: status() == "up", 30, "station up over the thin line")
            assert agent.publisher is not None
            threading.Thread(target=watch, daemon=True).start()
            # A long stall while the camera flaps: more events than paho may hold.
            line.stall(8.0)
            for i in range(TOGGLES):
                if i % 2 == 0:
                    usb.unplug(CAMERA.vid)
                else:
                    usb.plug(CAMERA)
                time.sleep(0.09)
            threading.Thread(target=weather, daemon=True).start()
            wait_until(
                lambda: agent.spool.queued == 0 and len(received) >= len(emitted),
                60,
                "the backlog drained over the thin line",
            )
            time.sleep(10.0)  # heartbeats through more stalls
        finally:
            done.set()
            stop.set()
            agent.wake()
            thread.join(15)
            collector.stop()
            line.close()

    flaps = [e for e in received if e.kind.value.startswith("peripheral_")]
    # Every event the agent produced arrived, once, in the order it was produced.
    assert [e.kind.value for e in received] == emitted
    seqs = [e.seq for e in received]
    assert seqs == sorted(set(seqs))
    assert len(flaps) >= TOGGLES * 0.7  # a flap faster than one USB round may merge
    kinds = [e.kind for e in flaps]
    assert all(a != b for a, b in itertools.pairwise(kinds))  # removed/added alternate
    # The spool was the queue: it held more than paho ever did, and paho stayed in its bounds.
    pub = agent.publisher
    assert spool_peak > MAX_QUEUED
    assert pub.max_held <= MAX_QUEUED
    assert pub.connects == 1  # the line never dropped the connection
    # The collector never called the station down, and knows where it stands.
    assert statuses
    assert set(statuses) == {"up"}, sorted(set(statuses))
    view = next(v for v in collector.snapshot().stations if v.station == STATION)
    present = {p.device_class: p.present for p in view.presence}
    assert present == {"camera": TOGGLES % 2 == 0, "signature": True}
    assert pub.beats_sent >= 1
    print(  # for whoever runs this with -s
        f"thin line: {len(received)} events in order, spool peak {spool_peak}, paho held at most"
        f" {pub.max_held} (bound {MAX_QUEUED}), {pub.beats_sent} beats sent,"
        f" {pub.beats_skipped} skipped, {len(statuses)} collector samples all up"
    )
