"""The real collector fed the simulated fleet (dash_fleet) over a real mosquitto.

A feeder thread plays each station's agent: it publishes a fresh ``state`` every half second
(the rebooting station with a new boot time each round), ``event`` messages for stations with
events, one malformed payload per round (a counted rejection), and for the offline station one
state followed by its Last Will. The inventory holds every station, so the never-reported one is
exported with ``up 0`` and ``inventory="yes"``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dash_fleet import AGENT_VERSION, PROVINSI, Station
from harness import Mosquitto, MqttClient

from pantau.collector.config import from_dict
from pantau.collector.fleet import REJECT_REASONS
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.contract.inventory import InventoryEntry

TICK_S = 0.5
INTERVAL_S = 2.0


class CollectorFeed:
    """Context manager: mosquitto + collector + feeder; ``.target`` is the collector's host:port."""

    mqtt_connected = 1
    reject_reasons = REJECT_REASONS

    def __init__(self, workdir: Path, stations: tuple[Station, ...]) -> None:
        self.stations = stations
        self.broker = Mosquitto(workdir / "mosquitto")
        self.collector: Collector | None = None
        self.client: MqttClient | None = None
        self.target = ""
        self._seq: dict[str, int] = {}
        self._round = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-feed", daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> CollectorFeed:
        self.broker.start()
        config = from_dict(
            {
                "mqtt": {
                    "host": self.broker.host,
                    "port": self.broker.port,
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 0.5,
                },
                "http": {"port": 0},
            }
        )
        inventory = [
            InventoryEntry(
                s.station, PROVINSI, s.kabkota, s.kecamatan, (*s.peripherals, *s.unconfigured)
            )
            for s in self.stations
        ]
        self.collector = Collector(config, inventory=inventory).start()
        if not self.collector.wait_until(lambda c: c.mqtt_connected, 15):
            raise RuntimeError(f"collector never connected: {self.broker.log()[-1000:]}")
        host, port = self.collector.http_address
        self.target = f"{host}:{port}"
        self.client = MqttClient(self.broker.host, self.broker.port, client_id="fleet-feed")
        if self.client.connect().is_failure:
            raise RuntimeError("feeder could not connect")
        for station in self.stations:
            if station.reported and not station.up:
                self._publish_state(station)
                self._publish(station, "status", self._status_offline(station))
        self._round_once()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.client is not None:
            self.client.close()
        if self.collector is not None:
            self.collector.stop()
        self.broker.stop()

    # ------------------------------------------------------------------ the agents

    def _next_seq(self, station: Station) -> int:
        self._seq[station.station] = self._seq.get(station.station, 0) + 1
        return self._seq[station.station]

    def _publish(self, station: Station, kind: wire.Kind, payload: bytes) -> None:
        assert self.client is not None
        topic = wire.topic(PROVINSI, station.kabkota, station.station, kind)
        self.client.publish(topic, payload, qos=1, retain=kind != "event")

    def _state(self, station: Station) -> wire.State:
        now = time.time()
        boot = 1.7e9 + (self._round * 60 if station.rebooting else 0)
        return wire.State(
            station=station.station,
            agent_version=AGENT_VERSION,
            session="s1",
            seq=self._next_seq(station),
            ts=now + station.skew,
            os="windows",
            kecamatan=station.kecamatan,
            interval_s=INTERVAL_S,
            peripherals=tuple(
                wire.Peripheral(device_class=c, present=bool(v), expected=1, found=v)
                for c, v in station.peripherals.items()
            ),
            probes=tuple(
                wire.Probe(
                    target=t,
                    kind="https",
                    up=bool(x.up),
                    duration_s=x.duration,
                    reason=x.reason,
                    status_code=x.status,
                    cause=x.cause_value,
                    cert_expiry_ts=None
                    if x.expires_in_days is None
                    else now + x.expires_in_days * 86400,
                )
                for t, x in station.login.items()
            ),
            host=wire.Host(
                cpu_ratio=0.25,
                mem_available_bytes=2_000_000_000,
                mem_total_bytes=8_000_000_000,
                boot_ts=boot,
                agent_start_ts=boot + 30,
                disks=tuple(
                    wire.Disk(mount=mnt, free_bytes=f, size_bytes=z)
                    for mnt, (f, z) in station.disks.items()
                ),
            ),
        )

    def _publish_state(self, station: Station) -> None:
        self._publish(station, "state", wire.encode(self._state(station)))

    def _status_offline(self, station: Station) -> bytes:
        return wire.encode(
            wire.Status(
                station=station.station,
                agent_version=AGENT_VERSION,
                session="s1",
                seq=self._next_seq(station),
                ts=time.time() + station.skew,
                status="offline",
                reason="will",
            )
        )

    def _round_once(self) -> None:
        self._round += 1
        for station in self.stations:
            if not (station.reported and station.up):
                continue
            self._publish_state(station)
            for kind in station.events:
                event = wire.Event(
                    station=station.station,
                    agent_version=AGENT_VERSION,
                    session="s1",
                    seq=self._next_seq(station),
                    ts=time.time() + station.skew,
                    kind=wire.EventKind(kind),
                )
                self._publish(station, "event", wire.encode(event))
        # A garbled payload from some station: counted as bad_json, never a station's state.
        assert self.client is not None
        first = self.stations[0]
        self.client.publish(
            wire.topic(PROVINSI, first.kabkota, first.station, "event"), b"{not json", qos=1
        )

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._round_once()
            except Exception as exc:  # recorded and reported by the tests, never silent
                self.errors.append(exc)
                return
