"""Helpers for the collector's tests: a wire publisher and collector construction."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness import Mosquitto, MqttClient

from pantau.collector.config import from_dict
from pantau.collector.service import Collector
from pantau.contract import wire
from pantau.contract.inventory import InventoryEntry, parse_inventory

INVENTORY_CSV = (
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,fingerprint;iris;camera;signature\n"
    "3310-bayat-01,33,3310,Bayat,fingerprint;iris;camera;signature\n"
    "3310-cawas-01,33,3310,Cawas,fingerprint;iris;camera;signature\n"
    "3310-pedan-01,33,3310,Pedan,fingerprint;iris;camera;signature\n"
)
CLASSES = ("fingerprint", "iris", "camera", "signature")


def inventory() -> list[InventoryEntry]:
    return parse_inventory(INVENTORY_CSV, "<test>")


def state(
    station: str,
    *,
    seq: int = 2,
    session: str = "s1",
    missing: tuple[str, ...] = (),
    ts: float = 1_790_000_000.0,
    interval_s: float = 30.0,
) -> bytes:
    return wire.encode(
        wire.State(
            station=station,
            agent_version="0.1.0",
            session=session,
            seq=seq,
            ts=ts,
            interval_s=interval_s,
            os="Linux",
            peripherals=tuple(
                wire.Peripheral(
                    device_class=c, present=c not in missing, found=int(c not in missing)
                )
                for c in CLASSES
            ),
            probes=(wire.Probe(target="login", kind="tcp", up=True, duration_s=0.01),),
        )
    )


def status(station: str, value: wire.StatusValue, *, seq: int, session: str = "s1") -> bytes:
    return wire.encode(
        wire.Status(
            station=station,
            agent_version="0.1.0",
            session=session,
            seq=seq,
            ts=1_790_000_000.0,
            status=value,
            reason="will" if value == "offline" else "",
        )
    )


def topic(station: str, kind: wire.Kind = "state") -> str:
    return wire.topic("33", "3310", station, kind)


def make_collector(
    broker: Mosquitto, *, inv: list[InventoryEntry] | None = None, **sections: Any
) -> Collector:
    mqtt = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    mqtt.update(sections.pop("mqtt", {}))
    http = {"port": 0}
    http.update(sections.pop("http", {}))
    cfg = from_dict({"mqtt": mqtt, "http": http, **sections})
    return Collector(cfg, inventory=inventory() if inv is None else inv)


@contextmanager
def running(broker: Mosquitto, **kw: Any) -> Iterator[Collector]:
    c = make_collector(broker, **kw).start()
    try:
        assert c.wait_until(lambda c: c.mqtt_connected, 10), broker.log()
        yield c
    finally:
        c.stop()


@contextmanager
def publisher(broker: Mosquitto, client_id: str = "") -> Iterator[MqttClient]:
    with MqttClient(broker.host, broker.port, client_id=client_id) as client:
        assert not client.connect().is_failure
        yield client


def get(
    url: str, headers: dict[str, str] | None = None, context: Any = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def stations(c: Collector) -> dict[str, dict[str, Any]]:
    _, _, body = get(c.url + "/api/stations")
    return {s["station"]: s for s in json.loads(body)["stations"]}
