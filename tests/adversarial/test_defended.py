"""The cases the shipped configuration already defends, kept as tests: one station's valid
credentials against the others, the collector and Prometheus.

Real parts: mosquitto on deploy/mosquitto/mosquitto.conf with the provisioned passwords and ACL,
``pantau-collector run`` on deploy/collector/collector.toml, a real Prometheus scraping it. The
attacker is ``3310-bayat-01`` (a stolen station PC); the victims are the other stations.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _shipped import Shipped, http_get, topic
from harness import Prometheus, procs
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pantau.collector.fleet import MAX_PER_STATION
from pantau.contract import wire

ATTACKER = "3310-bayat-01"
VICTIM = "3310-juwiring-01"
OTHER = "3310-cawas-01"
JOB = "adversarial-defended"
NOT_AUTHORIZED = 135

#: Strings a hostile agent could put in any text field (within the contract's lengths).
HOSTILE_STRINGS = [
    '"}\nfake_metric{a="b"} 1\n# HELP x',
    "back\\slash\\",
    "</script><script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "nul\u0000byte",
    "line\u2028sep\rcr",
    "\u202eRTL override",
    "emoji \U0001f4a3 and ¡ñ",
    "{{7*7}} ${jndi:x} %s %n",
]


def _state(station: str, seq: int, **over: Any) -> bytes:
    fields: dict[str, Any] = {
        "station": station,
        "agent_version": "0.1.0",
        "session": "adv-s1",
        "seq": seq,
        "ts": time.time(),
        "interval_s": 30.0,
    }
    fields.update(over)
    return wire.encode(wire.State(**fields))


def _status(station: str, seq: int, value: wire.StatusValue) -> bytes:
    return wire.encode(
        wire.Status(
            station=station,
            agent_version="0.1.0",
            session="adv-s1",
            seq=seq,
            ts=time.time(),
            status=value,
            reason="will" if value == "offline" else "",
        )
    )


def _payload(kind: wire.Kind, station: str, seq: int) -> bytes:
    if kind == "state":
        return _state(station, seq)
    if kind == "status":
        return _status(station, seq, "offline")
    if kind == "beat":
        return wire.encode(wire.Beat(v=1, session="adv-s1", seq=seq))
    return wire.encode(
        wire.Event(
            station=station, agent_version="0.1.0", session="adv-s1", seq=seq, ts=time.time(),
            kind=wire.EventKind.REBOOT,
        )
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(shipped: Shipped, prometheus: Prometheus) -> Iterator[tuple[Shipped, str]]:
    url = shipped.start_collector("collector")
    with shipped.client(VICTIM) as victim:
        assert not victim.publish(
            topic(VICTIM, "status"), _status(VICTIM, 1, "online"), retain=True
        ).is_failure
        assert not victim.publish(topic(VICTIM, "state"), _state(VICTIM, 2), retain=True).is_failure
    prometheus.scrape(JOB, [url.removeprefix("http://")])
    try:
        yield shipped, url
    finally:
        prometheus.unscrape(JOB)


def _metrics(url: str) -> str:
    return http_get(url + "/metrics")[2].decode()


def _victim_view(url: str) -> dict[str, Any]:
    doc = json.loads(http_get(url + f"/api/stations?station={VICTIM}")[2])
    station: dict[str, Any] = doc["stations"][0]
    return station


def _received(url: str) -> int:
    match = re.search(r"^pantau_collector_reports_received_total (\d+)$", _metrics(url), re.M)
    assert match is not None
    return int(match.group(1))


@pytest.mark.parametrize("kind", wire.KINDS)
def test_spoofing_another_station_on_every_topic_kind_is_refused(
    stack: tuple[Shipped, str], kind: wire.Kind
) -> None:
    shipped, url = stack
    before = _victim_view(url)
    received = _received(url)
    targets = [
        topic(VICTIM, kind),  # the victim's own topic
        topic(VICTIM, kind, kabkota="3311"),  # the victim's id in another region
        topic(ATTACKER, kind, provinsi="34"),  # its own id in another region
        f"pantau/v1/33/3310/{VICTIM}/{kind}/extra",
        "pantau/v1/33/3310/+/state".replace("+", "%2B"),
        "$SYS/broker/x",
    ]
    with shipped.client(ATTACKER) as attacker:
        for target in targets:
            rc = attacker.publish(target, _payload(kind, VICTIM, 99), retain=kind != "event")
            assert rc.value == NOT_AUTHORIZED, (target, rc)
        # on its own topic, a payload naming the victim is refused by the collector
        own = attacker.publish(topic(ATTACKER, kind), _payload(kind, VICTIM, 99))
        assert not own.is_failure
    expected = 0 if kind == "beat" else 1  # a beat names no station: it is the topic's
    procs.wait_for(lambda: _received(url) >= received + 1, timeout=10, what="own publish")
    assert _received(url) == received + 1
    after = _victim_view(url)
    assert after["status"] == before["status"] == "up"
    assert after["last_report"] == before["last_report"]
    assert after["events"] == before["events"]
    if expected:
        assert 'reason="station_mismatch"' in _metrics(url)


def test_a_will_or_a_topic_alias_on_another_stations_topic_is_refused(
    stack: tuple[Shipped, str],
) -> None:
    shipped, url = stack
    will = (topic(VICTIM, "status"), _status(VICTIM, 1000, "offline"))
    # a will on the victim's status topic: the broker refuses the connection or drops the will
    with shipped.client(ATTACKER, will=will, wait=True) as attacker:
        refused = attacker.connack is not None and attacker.connack.is_failure
        if not refused:
            attacker.client.socket().close()  # abrupt: a will would be sent now
    time.sleep(0.5)
    assert _victim_view(url)["status"] == "up"
    # topic aliases: map alias 1 to its own topic, then try to re-map it to the victim's
    with shipped.client(ATTACKER) as attacker:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.TopicAlias = 1
        assert not attacker.publish(
            topic(ATTACKER, "event"), _payload("event", ATTACKER, 5), properties=props
        ).is_failure
        rc = attacker.publish(topic(VICTIM, "state"), _state(VICTIM, 1000), properties=props)
        assert rc.value == NOT_AUTHORIZED
        # the alias alone (empty topic) resolves to its own topic: a victim payload mismatches
        attacker.client.publish("", _state(VICTIM, 1001), qos=1, properties=props)
    time.sleep(0.5)
    view = _victim_view(url)
    assert view["status"] == "up"
    assert view["last_report"] is not None


def test_a_station_cannot_read_other_stations_data(stack: tuple[Shipped, str]) -> None:
    shipped, _ = stack
    with shipped.client(ATTACKER) as attacker:
        # mosquitto grants the subscription but delivers nothing the read ACL does not allow
        for topic_filter in ("pantau/v1/#", f"pantau/v1/33/3310/{VICTIM}/#", "#", "$SYS/#"):
            attacker.subscribe(topic_filter)
        with shipped.client(VICTIM) as victim:  # a live message besides the retained ones
            assert not victim.publish(
                topic(VICTIM, "event"), _payload("event", VICTIM, 3)
            ).is_failure
        with shipped.client("collector-2") as control:  # the control: a reader gets them
            control.subscribe("pantau/v1/#")
            procs.wait_for(lambda: control.received() != [], timeout=10, what="retained")
        time.sleep(0.5)
        assert attacker.received() == []
    # nor can the collector's identity be used to write
    with shipped.client("collector-2") as collector:
        assert (
            collector.publish(topic(VICTIM, "state"), _state(VICTIM, 2000)).value == NOT_AUTHORIZED
        )


def test_hostile_strings_in_every_field_round_trip_escaped(
    stack: tuple[Shipped, str], prometheus: Prometheus
) -> None:
    shipped, url = stack
    for i, text in enumerate(HOSTILE_STRINGS):
        short = text[:64]
        state = _state(
            ATTACKER,
            100 + i,
            agent_version=text,
            os=text,
            kecamatan=text,
            peripherals=(
                wire.Peripheral(
                    device_class=short, present=False, reason=short,
                    devices=(wire.Device(vid=1, pid=2, port=text[:32], manufacturer=text, product=text),),
                ),
                wire.Peripheral(device_class="camera", present=False, reason=short),
            ),
            probes=(wire.Probe(target=short, kind="tcp", up=False, duration_s=0.1, reason=short),),
            host=wire.Host(
                cpu_ratio=0.5, mem_available_bytes=1, mem_total_bytes=2, boot_ts=1.0,
                agent_start_ts=2.0, disks=(wire.Disk(mount=text[:128], free_bytes=1, size_bytes=2),),
            ),
            checks=(wire.CheckRun(name=short, ok=False, duration_s=0.1, reason=text),),
        )  # fmt: skip
        event = wire.encode(
            wire.Event(
                station=ATTACKER, agent_version=text, session="adv-s1", seq=200 + i,
                ts=time.time(), kind=wire.EventKind.CHECK_FAILED, subject=short, detail=text,
            )
        )  # fmt: skip
        with shipped.client(ATTACKER) as attacker:
            assert not attacker.publish(topic(ATTACKER, "state"), state, retain=True).is_failure
            assert not attacker.publish(topic(ATTACKER, "event"), event).is_failure
        # Prometheus parses the page and stores the label exactly as sent
        expr = f'pantau_station_info{{job="{JOB}",station="{ATTACKER}"}}'
        result = prometheus.wait_until(
            expr, lambda r, t=text: bool(r) and r[0]["metric"].get("agent_version") == t, 30
        )
        assert prometheus.query(f'up{{job="{JOB}"}}')[0]["value"][1] == "1"
        targets = prometheus.query(f'pantau_login_up{{job="{JOB}",station="{ATTACKER}"}}')
        assert [r["metric"]["target"] for r in targets] == [short]
        assert result[0]["metric"]["os"] == text
        # the JSON API round-trips it; the board shows it escaped
        doc = json.loads(http_get(url + f"/api/stations?station={ATTACKER}")[2])
        assert doc["stations"][0]["agent_version"] == text
        board = http_get(url + "/")[2].decode()
        assert "<script>alert" not in board
        assert "<img src=x" not in board
        assert not re.search(r"^fake_metric", _metrics(url), re.M)  # no injected line


def test_cardinality_of_one_station_is_bounded(stack: tuple[Shipped, str]) -> None:
    shipped, url = stack
    state = _state(
        ATTACKER,
        1000,
        peripherals=tuple(wire.Peripheral(device_class=f"class{i}", present=True) for i in range(200)),
        probes=tuple(
            wire.Probe(target=f"t{i}", kind="tcp", up=True, duration_s=0.1, reason=f"r{i}")
            for i in range(200)
        ),
        host=wire.Host(
            cpu_ratio=0.5, mem_available_bytes=1, mem_total_bytes=2, boot_ts=1.0, agent_start_ts=2.0,
            disks=tuple(wire.Disk(mount=f"/m{i}", free_bytes=1, size_bytes=2) for i in range(200)),
        ),
    )  # fmt: skip
    assert len(state) < wire.MAX_PAYLOAD_BYTES
    with shipped.client(ATTACKER) as attacker:
        assert not attacker.publish(topic(ATTACKER, "state"), state, retain=True).is_failure
    procs.wait_for(lambda: 'target="t0"' in _metrics(url), timeout=10, what="big state applied")
    page = _metrics(url)
    mine = [line for line in page.splitlines() if f'station="{ATTACKER}"' in line]
    assert len([line for line in mine if line.startswith("pantau_login_up{")]) == MAX_PER_STATION
    assert (
        len([line for line in mine if line.startswith("pantau_host_disk_free_bytes{")])
        == MAX_PER_STATION
    )
    assert not [line for line in mine if 'device_class="class' in line]  # not configured classes
    reasons = set(re.findall(r'pantau_login_probe_info\{[^}]*reason="([^"]+)"', page))
    assert len(reasons) <= 32


def test_flooding_unknown_stations_is_refused_by_the_broker(stack: tuple[Shipped, str]) -> None:
    shipped, url = stack
    count = len(json.loads(http_get(url + "/api/stations")[2])["stations"])
    with shipped.client(ATTACKER) as attacker:
        for i in range(300):
            station = f"3310-fake-{i:04d}"
            rc = attacker.publish(topic(station, "state"), _state(station, 1))
            assert rc.value == NOT_AUTHORIZED
    time.sleep(0.5)
    assert len(json.loads(http_get(url + "/api/stations")[2])["stations"]) == count
