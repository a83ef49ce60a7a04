"""The collector's persistent MQTT session and its durable event counts (fleet.state_file)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from collector_support import inventory, make_collector, publisher, running, topic
from harness import Mosquitto

from pantau.agent.config import MqttSettings
from pantau.agent.publisher import backoff_delay
from pantau.collector import durable
from pantau.collector.config import MqttConfig
from pantau.collector.fleet import STALE_SEQ, EventRecord, Fleet
from pantau.contract import wire
from pantau.contract.config import ConfigError

STATION = "3310-juwiring-01"


def event(seq: int, session: str = "s1", kind: str = "reboot") -> bytes:
    return wire.encode(
        wire.Event(
            station=STATION,
            agent_version="0.1.0",
            session=session,
            seq=seq,
            ts=1_790_000_000.0,
            kind=wire.EventKind(kind),
        )
    )


def events_of(fleet: Fleet, station: str = STATION) -> dict[str, int]:
    view = next(v for v in fleet.snapshot(0.0).stations if v.station == station)
    return dict(view.events)


def test_state_file_round_trip_restores_counts_and_dedupe(tmp_path: Path) -> None:
    fleet = Fleet(inventory=inventory())
    for seq in (1, 2, 3):
        assert fleet.ingest(topic(STATION, "event"), event(seq), 0.0) == ""
    version, records = fleet.export_events()
    assert version == 3
    path = tmp_path / "state.json"
    durable.save(path, records)

    again = Fleet(inventory=inventory())
    assert durable.restore(path, again, 0.0) == 1
    assert events_of(again) == {"reboot": 3}
    # a QoS 1 redelivery of an event counted before the restart is recognised
    assert again.ingest(topic(STATION, "event"), event(3), 0.0) == STALE_SEQ
    assert again.ingest(topic(STATION, "event"), event(4), 0.0) == ""
    assert events_of(again) == {"reboot": 4}


def test_unknown_station_counts_are_restored_under_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    durable.save(
        path,
        [
            EventRecord("3399-a-01", "33", "3399", {"reboot": 2}, {"x": 5}),
            EventRecord("3399-b-01", "33", "3399", {"reboot": 1}, {"y": 1}),
        ],
    )
    fleet = Fleet(max_unknown_stations=1)
    assert durable.restore(path, fleet, 0.0) == 1
    assert events_of(fleet, "3399-a-01") == {"reboot": 2}


def test_a_damaged_state_file_is_moved_aside_and_counting_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": 1, "stations": [{"station": 3}]}')
    with caplog.at_level(logging.ERROR):
        assert durable.restore(path, Fleet(), 0.0) == 0
    assert not path.exists()
    assert (tmp_path / "state.json.damaged").exists()
    assert "not a collector state file" in caplog.text
    assert "Traceback" not in caplog.text
    path.write_text('{"format": 99, "stations": []}')
    with pytest.raises(durable.StateFileError, match="unknown format 99"):
        durable.load(path)


class Acks:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self, mid: int, _qos: int) -> None:
        self.sent.append(mid)


def test_acknowledgements_wait_for_the_checkpoint_and_keep_their_order(tmp_path: Path) -> None:
    fleet = Fleet(inventory=inventory())
    acks = Acks()
    cp = durable.Checkpointer(tmp_path / "state.json", fleet, acks)  # thread not started
    state_topic = topic(STATION)
    fleet.ingest(state_topic, b"not a state", 0.0)
    cp.received(1, 1)  # nothing to save: at once
    assert acks.sent == [1]
    fleet.ingest(topic(STATION, "event"), event(1), 0.0)
    cp.received(2, 1)  # an event: waits for the file
    fleet.ingest(state_topic, b"x", 0.0)
    cp.received(3, 1)  # after an event: waits too (acknowledgements keep their order)
    cp.received(4, 0)  # QoS 0: nothing to acknowledge
    assert acks.sent == [1]
    assert not (tmp_path / "state.json").exists()
    assert cp.checkpoint()
    assert acks.sent == [1, 2, 3]
    assert durable.load(tmp_path / "state.json")[0].events == {"reboot": 1}
    cp.received(5, 1)
    assert acks.sent == [1, 2, 3, 5]


def test_a_lost_connection_drops_waiting_acknowledgements(tmp_path: Path) -> None:
    fleet = Fleet(inventory=inventory())
    acks = Acks()
    cp = durable.Checkpointer(tmp_path / "state.json", fleet, acks)
    fleet.ingest(topic(STATION, "event"), event(1), 0.0)
    cp.received(7, 1)
    cp.new_connection()  # mid 7 belongs to the old connection: the broker redelivers it
    assert cp.checkpoint()
    assert acks.sent == []
    assert durable.load(tmp_path / "state.json")[0].events == {"reboot": 1}


def test_a_failing_write_is_logged_once_and_does_not_stall_delivery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet(inventory=inventory())
    acks = Acks()
    cp = durable.Checkpointer(tmp_path / "gone" / "state.json", fleet, acks)
    with caplog.at_level(logging.ERROR):
        for seq in (1, 2):
            fleet.ingest(topic(STATION, "event"), event(seq), 0.0)
            cp.received(seq, 1)
            assert not cp.checkpoint()
    assert acks.sent == [1, 2]
    assert cp.write_failures == 2
    assert caplog.text.count("cannot write") == 1
    assert "Traceback" not in caplog.text


def test_collector_reconnects_at_least_as_fast_as_the_agents() -> None:
    """For every attempt, paho's doubling wait with the collector's defaults is no longer than
    the shortest wait the agents' jittered backoff can draw (unit 0) with theirs."""
    c, a = MqttConfig(), MqttSettings()
    wait = c.reconnect_min_s
    for attempt in range(40):
        assert wait <= backoff_delay(attempt, a.reconnect_min_s, a.reconnect_max_s, 0.0), attempt
        wait = min(wait * 2, c.reconnect_max_s)


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_sent_while_the_collector_is_away_are_counted_after_its_restart(
    tmp_path: Path, mosquitto: Mosquitto, protocol: str
) -> None:
    state_file = tmp_path / "state.json"
    settings = {
        "mqtt": {"protocol": protocol, "client_id": "pantau-collector-a"},
        "fleet": {"state_file": str(state_file)},
    }
    with running(mosquitto, **settings) as c, publisher(mosquitto) as pub:
        pub.publish(topic(STATION, "event"), event(1))
        assert c.wait_until(lambda c: events_of(c.fleet) == {"reboot": 1}, 5)
    with publisher(mosquitto) as pub:  # the collector is away
        for seq in (1, 2, 3):  # 1 again: an agent resending after a lost PUBACK
            pub.publish(topic(STATION, "event"), event(seq))
    c = make_collector(mosquitto, **settings).start()
    try:
        assert c.wait_until(lambda c: events_of(c.fleet) == {"reboot": 3}, 5), mosquitto.log()
        assert c.mqtt.sessions_lost == 0
    finally:
        c.stop()
    # another client id (another replica) has no session: it sees only what comes later
    other = {"mqtt": {"protocol": protocol, "client_id": "pantau-collector-b"}}
    with running(mosquitto, **other) as b, publisher(mosquitto) as pub:
        pub.publish(topic(STATION, "event"), event(4))
        assert b.wait_until(lambda b: events_of(b.fleet) == {"reboot": 1}, 5)


def test_a_state_file_in_a_missing_directory_is_a_one_line_error(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with pytest.raises(ConfigError, match=r"fleet.state_file: directory .*/nope is missing"):
        make_collector(mosquitto, fleet={"state_file": str(tmp_path / "nope" / "s.json")})


def test_a_broker_that_lost_the_session_is_reported(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    """The harness broker keeps nothing across a restart (persistence false): the collector says
    that what was sent meanwhile is lost to it, once, and carries on."""
    with caplog.at_level(logging.WARNING), running(mosquitto) as c:
        mosquitto.restart()
        assert c.wait_until(lambda c: c.mqtt.connects == 2 and c.mqtt_connected, 10)
        assert c.mqtt.sessions_lost == 1
    assert caplog.text.count("broker had no session for client id") == 1
