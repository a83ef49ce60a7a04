"""Fault test: no event lost or counted twice across a broker kill -9 and a collector kill -9.

Real parts only: a real mosquitto with persistence (the shipped queue settings; autosave every
second instead of 60 s so the test is short), the real collector as its own process (``python -m
pantau.collector.cli run``, persistent session, ``fleet.state_file``), and three real agents
(:func:`pantau.agent.service.build_agent` with its real publisher and SQLite spool; simulated USB
and host readers) whose cameras are unplugged and plugged again and again, so each agent spools a
stream of ``peripheral_removed``/``peripheral_added`` events. What each agent put into its spool
is recorded as it happens (the ground truth); the agents reconnect with their shipped backoff.

1. broker kill -9 while the agents flush a burst, restart on the same port;
2. collector kill -9 while events arrive, more events while it is down, restart;
3. then ``pantau_station_events_total`` on the collector's /metrics equals, per station and kind,
   exactly what the agents spooled.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import threading
import time
import urllib.request
from pathlib import Path

from harness import Mosquitto, free_port
from harness.procs import kill, spawn, stop, wait_for

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import convert_config
from pantau.agent.service import Agent, build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedUsb
from pantau.contract import wire

CAMERA = UsbDevice(0x04A9, 0x3218, 1, "1-2", 0, (6,), "Canon Inc.", "Canon EOS 1300D")
STATIONS = ("3310-juwiring-01", "3310-klaten-02", "3310-bayat-03")
#: mosquitto as shipped (deploy/mosquitto/mosquitto.conf), autosave shortened for the test.
BROKER_CONFIG = """\
persistence true
autosave_interval 1
max_queued_messages 100000
max_queued_bytes 209715200
max_inflight_messages 100
"""
EVENT_RE = re.compile(r'^pantau_station_events_total\{station="([^"]+)".*kind="([^"]+)"\} (\d+)$')


class Fleet:
    """Three in-process agents; ``produced`` counts what each spooled, per (station, kind)."""

    def __init__(self, tmp: Path, broker: Mosquitto) -> None:
        self.produced: collections.Counter[tuple[str, str]] = collections.Counter()
        self.lock = threading.Lock()
        self.usbs: list[SimulatedUsb] = []
        self.agents: list[Agent] = []
        self.threads: list[tuple[threading.Thread, threading.Event]] = []
        for station in STATIONS:
            cfg = convert_config(
                {
                    "station": {
                        "id": station,
                        "provinsi": "33",
                        "kabkota": "3310",
                        "kecamatan": "Juwiring",
                    },
                    # the agents' shipped reconnect backoff (1 s doubling to 120 s, jittered)
                    "mqtt": {"host": broker.host, "port": broker.port, "tls": False},
                    "spool": {"path": str(tmp / f"{station}.sqlite")},
                    "intervals": {"state_s": 30.0, "poll_s": 30.0},
                    "devices": [{"device_class": "camera", "vid": 0x04A9}],
                },
                "test",
            )
            usb = SimulatedUsb([CAMERA])
            agent = build_agent(cfg, usb_reader=usb, hotplug=usb, host_reader=SimulatedHost())
            self._record(agent)
            self.usbs.append(usb)
            self.agents.append(agent)

    def _record(self, agent: Agent) -> None:
        append = agent.spool.append

        def recording(topic: str, payload: bytes) -> int:
            dropped = append(topic, payload)
            event = wire.decode(topic, payload)[1]
            assert isinstance(event, wire.Event)
            with self.lock:
                self.produced[(event.station, event.kind.value)] += 1
            return dropped

        agent.spool.append = recording  # type: ignore[method-assign]

    def start(self) -> None:
        for agent in self.agents:
            done = threading.Event()
            thread = threading.Thread(target=agent.run, args=(done,), daemon=True)
            thread.start()
            self.threads.append((thread, done))

    def churn(self, rounds: int, pause: float = 0.07) -> None:
        """Unplug and plug every agent's camera ``rounds`` times (two events each time)."""
        for _ in range(rounds):
            for usb in self.usbs:
                usb.unplug(0x04A9)
            time.sleep(pause)
            for usb in self.usbs:
                usb.plug(CAMERA)
            time.sleep(pause)

    def queued(self) -> int:
        return sum(agent.spool.queued for agent in self.agents)

    def close(self) -> None:
        for (thread, done), agent in zip(self.threads, self.agents, strict=True):
            done.set()
            agent.wake()
            thread.join(10)


class CollectorProcess:
    def __init__(self, tmp: Path, broker: Mosquitto) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.config = tmp / "collector.toml"
        self.config.write_text(
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
            'client_id = "pantau-collector-fault-test"\nsession_expiry_s = 600\n'
            f'[http]\nport = {self.port}\n[fleet]\nstate_file = "{tmp / "state.json"}"\n'
        )
        self.proc = None

    def start(self) -> None:
        self.proc = spawn(
            [sys.executable, "-m", "pantau.collector.cli", "run", "--config", str(self.config)],
            self.tmp / "collector.log",
            env={"PYTHONPATH": os.pathsep.join(sys.path)},
        )
        wait_for(self.connected, timeout=15, what="collector connected", alive=self.proc)

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())

    def connected(self) -> bool:
        try:
            return "pantau_collector_mqtt_connected 1" in self.metrics()
        except OSError:
            return False

    def counted(self) -> collections.Counter[tuple[str, str]]:
        out: collections.Counter[tuple[str, str]] = collections.Counter()
        for line in self.metrics().splitlines():
            m = EVENT_RE.match(line)
            if m:
                out[(m.group(1), m.group(2))] = int(m.group(3))
        return out

    def log(self) -> str:
        return (self.tmp / "collector.log").read_text(errors="replace")


def test_no_event_lost_or_counted_twice_across_broker_and_collector_kill_9(tmp_path: Path) -> None:
    workdir = tmp_path / "broker"
    config = BROKER_CONFIG + f"persistence_location {workdir}/\n"
    broker = Mosquitto(workdir, extra_config=config).start()
    collector = CollectorProcess(tmp_path, broker)
    collector.start()
    time.sleep(1.5)  # one autosave with the collector's session in it (shipped: every 60 s)
    fleet = Fleet(tmp_path, broker)
    fleet.start()
    try:
        fleet.churn(5)
        # 1. broker kill -9 in the middle of a burst the agents are flushing
        burst = threading.Thread(target=fleet.churn, args=(20,))
        burst.start()
        time.sleep(0.5)
        broker.kill()
        burst.join()
        time.sleep(0.5)
        broker.start()
        fleet.churn(10)
        wait_for(lambda: fleet.queued() == 0, timeout=30, what="agents' spools flushed")

        # 2. collector kill -9 while events arrive; more events while it is away
        burst = threading.Thread(target=fleet.churn, args=(20,))
        burst.start()
        time.sleep(0.5)
        assert collector.proc is not None
        kill(collector.proc)
        burst.join()
        fleet.churn(10)
        wait_for(lambda: fleet.queued() == 0, timeout=30, what="agents' spools flushed")
        collector.start()
        fleet.churn(5)
        wait_for(lambda: fleet.queued() == 0, timeout=30, what="agents' spools flushed")
        with fleet.lock:
            produced = dict(fleet.produced)

        def settled() -> bool:
            return dict(collector.counted()) == produced

        try:
            wait_for(settled, timeout=20, what="the collector's counts to match")
        except Exception:
            raise AssertionError(
                f"produced {produced}\ncounted {dict(collector.counted())}\n"
                f"collector log:\n{collector.log()[-3000:]}"
            ) from None
        # every station produced events of both kinds, well beyond the bursts above
        assert all(produced[(s, "peripheral_removed")] >= 30 for s in STATIONS), produced
        time.sleep(1.0)  # nothing counted twice late (a redelivery after the comparison)
        assert dict(collector.counted()) == produced
        assert "session of pantau-collector-fault-test resumed" in collector.log()
    finally:
        fleet.close()
        if collector.proc is not None:
            stop(collector.proc)
        broker.stop()
