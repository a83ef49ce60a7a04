"""Two collector shards, split by topic filter, together cover the fleet exactly once.

Real parts: one mosquitto, two ``pantau-collector run`` processes with the topic filters of the
cluster example (deploy/cluster/collector-{west,east}.toml) and each its own part of the inventory
(``pantau.contract.inventory.entries_for_filters``, as docs/scale.md prescribes), stations publishing real
wire payloads. Both ``/metrics`` pages are scraped and every station must appear in exactly one
of them, in the shard its filters assign it to, up or never-reported as it should be.
"""

from __future__ import annotations

import re
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import _mqtt
import paho.mqtt.client as mqtt
from _compose import DEPLOY, REPO
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion

from pantau.contract import wire
from pantau.contract.inventory import (
    InventoryEntry,
    entries_for_filters,
    parse_inventory,
    shard_coverage,
)

HEADER = "station,provinsi,kabkota,kecamatan,device_classes\n"
UP_RE = re.compile(r'^pantau_station_up\{[^}]*station="([^"]+)"[^}]*\} (\S+)$', re.M)


def plan() -> dict[str, list[str]]:
    out = {}
    for shard in ("west", "east"):
        cfg = tomllib.loads((DEPLOY / "cluster" / f"collector-{shard}.toml").read_text())
        out[shard] = list(cfg["mqtt"]["topics"])
    return out


def fleet() -> list[InventoryEntry]:
    """Klaten plus three stations in each other province of Java."""
    klaten = (DEPLOY / "inventory" / "klaten.csv").read_text()
    lines = [
        ",".join(line.split(",")[:5])  # the base columns (no optional neighbours)
        for line in klaten.splitlines()
        if line and not line.startswith("#")
    ][1:]
    for provinsi in ("31", "32", "34", "35", "36"):
        lines += [
            f"{provinsi}01-kec{i}-01,{provinsi},{provinsi}01,Kec {i},camera" for i in range(3)
        ]
    return parse_inventory(HEADER + "\n".join(lines) + "\n", "fleet")


def state(station: str) -> bytes:
    return wire.encode(
        wire.State(
            station=station, agent_version="t", session="s1", seq=2, ts=time.time(), interval_s=30.0
        )
    )


def status(station: str) -> bytes:
    return wire.encode(
        wire.Status(
            station=station, agent_version="t", session="s1", seq=1, ts=time.time(), status="online"
        )
    )


@contextmanager
def collector(
    name: str, broker_port: int, topics: list[str], entries: list[InventoryEntry], tmp: Path
) -> Iterator[str]:
    inv = tmp / f"{name}.csv"
    inv.write_text(
        HEADER
        + "".join(
            f"{e.station},{e.provinsi},{e.kabkota},{e.kecamatan},{';'.join(e.device_classes)}\n"
            for e in entries
        )
    )
    port = procs.free_port()
    topic_list = ", ".join(f'"{t}"' for t in topics)
    conf = tmp / f"{name}.toml"
    conf.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\nclient_id = "pantau-collector-{name}"\n'
        f"topics = [{topic_list}]\n\n"
        f'[http]\nhost = "127.0.0.1"\nport = {port}\n\n[fleet]\ninventory = "{inv}"\n'
    )
    log = tmp / f"{name}.log"
    exe = REPO / ".venv" / "bin" / "pantau-collector"
    proc = procs.spawn([str(exe), "run", "--config", str(conf)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for(
            lambda: procs.port_open("127.0.0.1", port),
            timeout=20,
            what=f"collector {name}",
            alive=proc,
            log=log.read_text,
        )
        yield url
    finally:
        procs.stop(proc)


def up_series(url: str) -> dict[str, list[str]]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found: dict[str, list[str]] = {}
    for station, value in UP_RE.findall(text):
        found.setdefault(station, []).append(value)
    return found


def test_two_shards_cover_the_fleet_exactly_once(tmp_path: Path) -> None:
    shards = plan()
    entries = fleet()
    coverage = shard_coverage(entries, shards)
    assert all(len(owners) == 1 for owners in coverage.values()), "the example plan overlaps"
    silent = {"3310-cawas-01", "3201-kec0-01"}  # in the inventory, never report
    unknown = wire.topic("34", "3401", "3401-not-in-inventory-01", "state")
    outside = wire.topic("51", "5101", "5101-outside-plan-01", "state")

    broker_port = procs.free_port()
    conf = (
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"max_queued_messages 100000\nlog_dest file {tmp_path / 'broker.log'}\nuser root\n"
    )
    with ExitStack() as stack:
        stack.enter_context(_mqtt.mosquitto(conf, tmp_path, broker_port))
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet", protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker_port)
        pub.loop_start()
        infos = []
        for e in entries:
            if e.station in silent:
                continue
            infos.append(
                pub.publish(
                    wire.topic(e.provinsi, e.kabkota, e.station, "status"),
                    status(e.station),
                    qos=1,
                    retain=True,
                )
            )
            infos.append(
                pub.publish(
                    wire.topic(e.provinsi, e.kabkota, e.station, "state"),
                    state(e.station),
                    qos=1,
                    retain=True,
                )
            )
        infos += [
            pub.publish(t, state(t.split("/")[4]), qos=1, retain=True) for t in (unknown, outside)
        ]
        for info in infos:
            info.wait_for_publish(timeout=10)
        pub.disconnect()
        pub.loop_stop()

        urls = {
            name: stack.enter_context(
                collector(
                    name, broker_port, filters, entries_for_filters(entries, filters), tmp_path
                )
            )
            for name, filters in shards.items()
        }
        reporting = len(entries) - len(silent) + 1  # + the unknown station in provinsi 34

        def all_in() -> bool:
            seen = [up_series(u) for u in urls.values()]
            return sum(v == ["1"] for s in seen for v in s.values()) >= reporting

        procs.wait_for(all_in, timeout=30, what="every reporting station up in some shard")
        seen = {name: up_series(url) for name, url in urls.items()}

    for e in entries:
        holders = [name for name, series in seen.items() if e.station in series]
        assert holders == coverage[e.station], (e.station, holders)
        (values,) = [seen[h][e.station] for h in holders]
        assert values == (["0"] if e.station in silent else ["1"]), e.station
    assert [n for n, s in seen.items() if "3401-not-in-inventory-01" in s] == ["east"]
    assert not [n for n, s in seen.items() if "5101-outside-plan-01" in s]
    total = sum(len(s) for s in seen.values())
    assert total == len(entries) + 1
