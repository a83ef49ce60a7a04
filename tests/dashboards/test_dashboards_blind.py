"""Blind is not down, end to end: a broker outage pages once (PantauCollectorBlind), not once per
station; a station that really dies still pages.

Real parts: mosquitto (persistent), the collector, Prometheus loaded with the generated rules,
Alertmanager with the generated ``inhibit_rules`` (dashboards/routing.py). Three stations are
played at the wire level (state every second, a Last Will on their connection). Timings are the
shipped ones scaled down through the generator's parameters and the configs: every ``for`` 2 s,
evaluation and scrape 1 s, stations stale after 3 s of silence; the broker outage lasts 20 s, ten
times every ``for`` and nearly seven times the staleness limit (the shipped case: a 5-minute
outage against ``for`` 2-5 min and 90 s).

1. broker kill -9, 20 s down, restart: exactly one firing ``PantauCollectorBlind`` notification,
   no station notification, and ``pantau_station_up`` never 0 meanwhile;
2. a station alert sent to Alertmanager while the collector is blind is inhibited (the generated
   ``inhibit_rules`` on their own), and the station alerts' queries leave out the blind
   collector's series (both independent of the collector's suspension of staleness);
3. then a station that goes silent and one whose connection dies (its will) both page.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from harness import Alertmanager, Mosquitto, Prometheus
from paho.mqtt.enums import CallbackAPIVersion

from pantau.collector.config import from_dict
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.dashboards import metrics as m
from pantau.dashboards.alerts import default_alerts
from pantau.dashboards.prometheus_rules import write_rules_file
from pantau.dashboards.routing import inhibit_rules

pytestmark = pytest.mark.slow

KAB = "3396"
STATIONS = (f"{KAB}-juwiring-01", f"{KAB}-klaten-02", f"{KAB}-bayat-03")
OUTAGE_S = 20.0


class SimStation:
    """A station's agent at the wire level: birth, a retained state every second, a will."""

    def __init__(self, broker: Mosquitto, station: str) -> None:
        self.station = station
        self.session = uuid.uuid4().hex[:16]
        self.seq = 0
        self.alive = True
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=station, protocol=paho.MQTTv311
        )
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.will_set(self.topic("status"), self.status("offline"), qos=1, retain=True)
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        self.client.publish(self.topic("status"), self.status("online"), qos=1, retain=True)

    def topic(self, kind: wire.Kind) -> str:
        return wire.topic("33", KAB, self.station, kind)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def status(self, value: wire.StatusValue) -> bytes:
        reason = "will" if value == "offline" else ""
        return wire.encode(
            wire.Status(
                station=self.station,
                agent_version="0.1.0",
                session=self.session,
                seq=self._next(),
                ts=time.time(),
                status=value,
                reason=reason,
            )
        )

    def publish_state(self) -> None:
        msg = wire.State(
            station=self.station,
            agent_version="0.1.0",
            session=self.session,
            seq=self._next(),
            ts=time.time(),
            interval_s=1.0,
            os="Linux",
            kecamatan="Juwiring",
            probes=(wire.Probe(target="login", kind="tcp", up=True, duration_s=0.01),),
        )
        self.client.publish(self.topic("state"), wire.encode(msg), qos=1, retain=True)

    def die_abruptly(self) -> None:
        """The PC loses power: the TCP connection just ends (the broker sends the will)."""
        self.alive = False
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class World:
    def __init__(self, tmp: Path) -> None:
        workdir = tmp / "broker"
        self.broker = Mosquitto(
            workdir,
            extra_config=f"persistence true\npersistence_location {workdir}/\nautosave_interval 1\n",
        ).start()
        self.am = Alertmanager(tmp / "am")
        config = json.loads(self.am.config_file.read_text())
        config["inhibit_rules"] = inhibit_rules()  # the generated ones
        self.am.config_file.write_text(json.dumps(config))
        self.am.start()
        self.prom = Prometheus(tmp / "prom", alertmanager_url=self.am.url).start()
        rules = write_rules_file(tmp / "pantau.rules.yml", for_override="2s", interval="1s")
        self.prom.load_rules([rules])
        self.collector = Collector(
            from_dict(
                {
                    "mqtt": {
                        "host": self.broker.host,
                        "port": self.broker.port,
                        "client_id": "pantau-collector-blind-test",
                    },
                    "http": {"port": 0},
                    "fleet": {"stale_after_intervals": 3.0},
                }
            ),
            inventory=[],
        ).start()
        host, port = self.collector.http_address
        self.target = f"{host}:{port}"
        self.stations = [SimStation(self.broker, s) for s in STATIONS[:2]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for s in list(self.stations):
                if s.alive:
                    s.publish_state()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for s in self.stations:
            if s.alive:
                s.close()
        self.collector.stop()
        self.prom.stop()
        self.am.stop()
        self.broker.kill()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def notes(am: Alertmanager, since: int) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (a["labels"]["alertname"], a["status"], a["labels"])
        for n in am.notifications[since:]
        for a in n.get("alerts", [])
    ]


def post_alert(am: Alertmanager, labels: dict[str, str], lasts_s: float) -> None:
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lasts_s))
    alert = {"labels": labels, "annotations": {"summary": "test"}, "endsAt": ends}
    body = json.dumps([alert]).encode()
    req = urllib.request.Request(
        f"{am.url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def value(prom: Prometheus, expr: str) -> list[Any]:
    return [r["value"][1] for r in prom.query(expr)]


def test_broker_outage_pages_once_and_a_dead_station_still_pages(world: World) -> None:
    prom, am = world.prom, world.am
    prom.scrape(m.COLLECTOR_JOB, [world.target])
    up = f'{m.STATION_UP}{{kabkota="{KAB}"}}'
    prom.wait_until(up, lambda r: len(r) == 2 and all(x["value"][1] == "1" for x in r), 30)
    prom.wait_until(m.COLLECTOR_BLIND, lambda r: r and r[0]["value"][1] == "0", 30)
    since = am.mark()

    # 1. the broker dies for OUTAGE_S
    world.broker.kill()
    blind = am.wait_for(
        "PantauCollectorBlind", "firing", {"instance": world.target}, 30, since=since
    )
    assert blind["annotations"]["summary_en"].startswith(
        f"pantau collector {world.target} is blind"
    )

    # 2. meanwhile a station alert is inhibited (the generated inhibit_rules on their own); an
    # alert that is not a station's is not
    station_alert = {
        "alertname": "PantauStationOffline",
        "component": "station",
        "severity": "critical",
        "station": STATIONS[0],
        "kabkota": KAB,
    }
    # (both end while the outage goes on: the held-back one is never notified at all)
    post_alert(am, station_alert, 6)
    other = {"alertname": "PantauCollectorDown", "component": "collector", "severity": "critical"}
    post_alert(am, {**other, "job": m.COLLECTOR_JOB, "instance": "collector-elsewhere:9108"}, 6)
    am.wait_for(
        "PantauCollectorDown", "firing", {"instance": "collector-elsewhere:9108"}, 15, since=since
    )
    # the station alerts' queries leave out the blind collector's series (Prometheus and Grafana
    # rules alike): without that gate the same query has them
    gate = f" unless on(job, instance) ({m.COLLECTOR_BLIND} == 1)"
    station_alerts = [a for a in default_alerts() if a.labels.get("component") == "station"]
    assert all(gate in a.query for a in station_alerts)
    offline = next(a for a in station_alerts if a.name == "PantauStationOffline")
    assert {r["metric"]["station"] for r in prom.query(offline.query.replace(gate, ""))} >= set(
        STATIONS[:2]
    )
    assert [r for r in prom.query(offline.query) if r["metric"].get("kabkota") == KAB] == []
    time.sleep(max(0.0, OUTAGE_S - 8))
    world.broker.start()
    prom.wait_until(m.COLLECTOR_BLIND, lambda r: r and r[0]["value"][1] == "0", 30)
    am.wait_for("PantauCollectorBlind", "resolved", {"instance": world.target}, 30, since=since)
    time.sleep(4)  # anything the outage set off would be notified by now (for 2 s, groups 1 s)

    seen = notes(am, since)
    ours = [
        (name, st)
        for name, st, labels in seen
        if labels.get("instance") == world.target or labels.get("kabkota") == KAB
    ]
    assert [x for x in ours if x[0] == "PantauCollectorBlind"] == [
        ("PantauCollectorBlind", "firing"),
        ("PantauCollectorBlind", "resolved"),
    ], seen
    assert [x for x in ours if x[0] != "PantauCollectorBlind"] == [], seen
    # not only held back: the collector never reported the stations down while blind
    assert value(prom, f"min_over_time({up}[{int(OUTAGE_S) + 15}s])") == ["1", "1"]

    # 3. a real death still pages: one station goes silent, one loses its connection (will)
    since = am.mark()
    world.stations.append(SimStation(world.broker, STATIONS[2]))
    prom.wait_until(up, lambda r: len(r) == 3 and all(x["value"][1] == "1" for x in r), 30)
    world.stations[1].alive = False  # silent: no state, connection kept
    world.stations[2].die_abruptly()
    for station in STATIONS[1:]:
        alert = am.wait_for("PantauStationOffline", "firing", {"station": station}, 30, since=since)
        assert alert["labels"]["kabkota"] == KAB
    assert [s for n, s, labels in notes(am, since) if labels.get("station") == STATIONS[0]] == []
