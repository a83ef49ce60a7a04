"""The fleet simulator: a pure, seeded model whose every message obeys the wire contract."""

from __future__ import annotations

import pytest

from pantau.contract import klaten, wire
from pantau.tools.simulate import FleetModel, parse_rates, synthetic_fleet


def decode_all(batch: list[tuple[str, bytes, bool]]) -> list[wire.Message]:
    return [wire.decode(topic, payload)[1] for topic, payload, _ in batch]


def test_healthy_fleet_publishes_one_retained_state_per_station() -> None:
    model = FleetModel(klaten.inventory(), interval_s=30, rates={}, seed=1, now=1000.0)
    births = decode_all(model.births(1000.0))
    assert {m.station for m in births} == {e.station for e in klaten.inventory()}
    batch = model.tick(1030.0)
    assert all(retain for _, _, retain in batch)
    states = decode_all(batch)
    assert len(states) == 26
    for state in states:
        assert isinstance(state, wire.State)
        assert all(p.present for p in state.peripherals)
        assert [p.device_class for p in state.peripherals] == list(klaten.DEVICE_CLASSES)


def test_sequence_numbers_increase_per_station() -> None:
    model = FleetModel(synthetic_fleet(5), interval_s=10, rates={"unplug": 0.5}, seed=3, now=0.0)
    seen: dict[str, int] = {}
    for now in (0.0, 10.0, 20.0, 30.0):
        for message in decode_all(model.births(now) if now == 0 else model.tick(now)):
            assert message.seq > seen.get(message.station, 0)
            seen[message.station] = message.seq


def test_lightning_removes_every_peripheral_and_reboots() -> None:
    model = FleetModel(
        klaten.inventory()[:3], interval_s=30, rates={"lightning": 1.0}, seed=1, now=0.0
    )
    messages = decode_all(model.tick(30.0))
    events = [m for m in messages if isinstance(m, wire.Event)]
    assert {e.kind for e in events} == {wire.EventKind.PERIPHERAL_REMOVED, wire.EventKind.REBOOT}
    states = [m for m in messages if isinstance(m, wire.State)]
    assert all(not p.present for s in states for p in s.peripherals)
    assert all(s.host is not None and s.host.boot_ts == 30.0 for s in states)


def test_unplugged_device_comes_back_with_an_added_event() -> None:
    model = FleetModel(klaten.inventory()[:1], interval_s=1, rates={"unplug": 1.0}, seed=2, now=0.0)
    first = decode_all(model.tick(1.0))
    removed = [m for m in first if isinstance(m, wire.Event)]
    assert removed[0].kind is wire.EventKind.PERIPHERAL_REMOVED
    model.rates = {}
    later = decode_all(model.tick(10.0))
    added = [m for m in later if isinstance(m, wire.Event)]
    assert [(e.kind, e.subject) for e in added] == [
        (wire.EventKind.PERIPHERAL_ADDED, removed[0].subject)
    ]


def test_silent_station_stops_publishing() -> None:
    model = FleetModel(
        klaten.inventory()[:4], interval_s=30, rates={"silent": 1.0}, seed=1, now=0.0
    )
    assert model.tick(30.0) == []
    model.rates = {}
    assert model.tick(60.0) == []


def test_same_seed_same_fleet() -> None:
    a = FleetModel(synthetic_fleet(50), interval_s=30, rates={"unplug": 0.2}, seed=7, now=0.0)
    b = FleetModel(synthetic_fleet(50), interval_s=30, rates={"unplug": 0.2}, seed=7, now=0.0)
    assert [t for t, _, _ in a.tick(30.0)] == [t for t, _, _ in b.tick(30.0)]


def test_synthetic_fleet_ids_are_unique_and_topic_safe() -> None:
    fleet = synthetic_fleet(20_000)
    assert len({e.station for e in fleet}) == 20_000
    assert all(wire.valid_segment(e.station) and wire.valid_segment(e.kabkota) for e in fleet)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("thunder=0.1", "expected KIND=PROBABILITY"),
        ("unplug", "expected KIND=PROBABILITY"),
        ("unplug=x", "is not a number"),
        ("unplug=2", "is not a probability"),
    ],
)
def test_bad_fault_rates_are_clear_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_rates(text)


def test_fault_rates_parse() -> None:
    assert parse_rates("unplug=0.1, login=0") == {"unplug": 0.1, "login": 0.0}


# --------------------------------------------------------------------------- real broker


def test_simulate_once_publishes_the_whole_fleet_to_a_real_broker(mosquitto) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    from harness import MqttClient

    with MqttClient(mosquitto.host, mosquitto.port, client_id="sim-watcher") as sub:
        sub.connect()
        sub.subscribe("pantau/v1/#")
        proc = subprocess.run(
            [
                sys.executable, "-m", "pantau.tools.cli", "simulate",
                "--host", mosquitto.host, "--port", str(mosquitto.port),
                "--stations", "300", "--once", "--faults", "unplug=0.1",
            ],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        import queue
        import time

        messages = []
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline and sum(m.topic.endswith("/state") for m in messages) < 300
        ):
            try:
                messages.append(sub.messages.get(timeout=0.2))
            except queue.Empty:
                continue
    decoded = [wire.decode(m.topic, m.payload)[1] for m in messages]
    states = [m for m in decoded if isinstance(m, wire.State)]
    assert len({s.station for s in states}) == 300
    assert sum(isinstance(m, wire.Status) for m in decoded) == 300
    assert any(isinstance(m, wire.Event) for m in decoded)  # 10% unplug rate over 300 stations


def test_simulate_reports_a_dead_broker_clearly() -> None:
    import subprocess
    import sys

    from pantau.tools.broker import free_port

    proc = subprocess.run(
        [sys.executable, "-m", "pantau.tools.cli", "simulate", "--port", str(free_port()), "--once"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "cannot connect to 127.0.0.1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_simulate_once_publishes_more_stations_than_mqtt_message_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """70,000 stations: 140,000 QoS 1 messages, more than paho's 65,535 message ids; with
    bounded in-flight windows every one is acknowledged, and the broker holds a retained birth
    and state of each station ($SYS retained count, updated every second)."""
    import subprocess
    import sys
    import time

    from harness import MqttClient
    from harness.mosquitto import Mosquitto

    # No per-message debug log: 140,000 lines would only slow the broker.
    broker = Mosquitto(tmp_path / "mosquitto", extra_config="sys_interval 1\nlog_type error")
    broker.start()
    try:
        proc = subprocess.run(
            [
                sys.executable, "-m", "pantau.tools.cli", "simulate",
                "--host", broker.host, "--port", str(broker.port),
                "--stations", "70000", "--once", "--faults", "",
            ],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "70000 stations, 140000 messages sent" in proc.stdout
        with MqttClient(broker.host, broker.port, client_id="sys-watcher") as sub:
            sub.connect()
            sub.subscribe("$SYS/broker/retained messages/count")
            count = 0
            deadline = time.monotonic() + 30
            while count < 140_000 and time.monotonic() < deadline:
                count = int(sub.messages.get(timeout=5).payload)
        # every birth and state, plus mosquitto's own retained $SYS messages
        assert count >= 140_000
    finally:
        broker.kill()
