"""Ingest through a real mosquitto: rejections, will handling, re-subscribe, retained restore."""

from __future__ import annotations

import logging
import socket
import time

import paho.mqtt.client as paho
from collector_support import get, publisher, running, state, stations, status, topic
from harness import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from pantau.collector.fleet import OVER_CAP
from pantau.contract import wire

JUW = "3310-juwiring-01"


def received(n: int):  # type: ignore[no-untyped-def]
    return lambda c: c.snapshot().received_total >= n


def test_reports_and_rejections_over_real_mqtt(mosquitto: Mosquitto, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="pantau.collector.mqtt")
    with running(mosquitto, fleet={"max_unknown_stations": 1}) as c, publisher(mosquitto) as pub:
        pub.publish(topic(JUW), state(JUW), retain=True)
        pub.publish(topic(JUW), b"{not json")
        pub.publish(topic(JUW), state("3310-bayat-01"))  # payload speaks for another station
        pub.publish("pantau/v1/33/3310/bad station!/state", state(JUW))  # not a valid segment
        pub.publish(wire_topic := topic("3399-x-01"), state("3399-x-01"))  # first unknown: ok
        pub.publish(topic("3399-x-02"), state("3399-x-02"))  # over the cap
        assert c.wait_until(received(6), 10), c.snapshot()
        snap = c.snapshot()
        assert snap.rejected["bad_json"] == 1
        assert snap.rejected["station_mismatch"] == 1
        assert snap.rejected[OVER_CAP] == 1
        assert snap.rejected["bad_topic"] == 1
        assert sum(snap.rejected.values()) == 4, snap.rejected
        _, _, body = get(c.url + "/metrics")
        text = body.decode()
        assert 'pantau_collector_reports_rejected_total{reason="bad_json"} 1\n' in text
        assert "pantau_collector_mqtt_connected 1\n" in text
        assert 'station="3399-x-02"' not in text  # rejected stations create no series
        assert 'station="3399-x-01"' in text
        assert wire_topic
        st = stations(c)
        assert st[JUW]["status"] == "up"
        assert st["3399-x-01"]["inventory"] is False
        assert st["3310-bayat-01"]["status"] == "never_reported"
        # One log line names the first rejection; the rest are counted, not logged (rate limit).
        rejected = [
            r.getMessage() for r in caplog.records if "rejected a message" in r.getMessage()
        ]
        assert rejected == [
            "rejected a message on 'pantau/v1/33/3310/3310-juwiring-01/state': bad_json"
            " (0 other rejections not logged)"
        ]


def _agent_with_will(broker: Mosquitto, station: str, session: str) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"agent-{station}-{session}", protocol=paho.MQTTv5
    )
    client.will_set(
        topic(station, "status"),
        status(station, "offline", seq=0, session=session),
        qos=1,
        retain=True,
    )
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    for payload, kind in (
        (status(station, "online", seq=1, session=session), "status"),
        (state(station, seq=2, session=session), "state"),
    ):
        client.publish(topic(station, kind), payload, qos=1, retain=True).wait_for_publish(5)  # type: ignore[arg-type]
    return client


def _crash(client: paho.Client) -> None:
    """Abrupt death: stop paho's thread and close the socket without DISCONNECT."""
    client.loop_stop()
    sock = client.socket()
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_will_marks_offline_and_a_stale_will_does_not(mosquitto: Mosquitto) -> None:
    with running(mosquitto) as c:
        old = _agent_with_will(mosquitto, JUW, "A")
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10)
        _crash(old)
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "offline", 10)
        assert stations(c)[JUW]["problems"] == ["offline (connection lost)"]
        # The agent restarts (session B) ...
        new = _agent_with_will(mosquitto, JUW, "B")
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10)
        # ... and a late will of session A (published by anyone, e.g. a slow broker) is ignored.
        with publisher(mosquitto) as pub:
            pub.publish(topic(JUW, "status"), status(JUW, "offline", seq=0, session="A"))
        assert c.wait_until(lambda c: c.snapshot().rejected["stale_session"] >= 1, 10)
        assert stations(c)[JUW]["status"] == "up"
        new.disconnect()
        new.loop_stop()


def test_resubscribes_after_a_broker_restart(mosquitto: Mosquitto) -> None:
    with running(mosquitto) as c:
        assert c.mqtt.connects == 1
        mosquitto.restart()  # retained messages are gone (persistence false)
        assert c.wait_until(lambda c: c.mqtt.connects >= 2 and c.mqtt_connected, 15), (
            mosquitto.log()
        )
        time.sleep(0.2)  # let the SUBACK arrive; then only a re-made subscription delivers this
        with publisher(mosquitto) as pub:
            pub.publish(topic(JUW), state(JUW, seq=5))
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10), mosquitto.log()


def test_reports_connection_loss(mosquitto: Mosquitto) -> None:
    with running(mosquitto) as c:
        mosquitto.stop()
        assert c.wait_until(lambda c: not c.mqtt_connected, 10)
        _, _, body = get(c.url + "/metrics")
        assert b"pantau_collector_mqtt_connected 0\n" in body
        mosquitto.start()
        assert c.wait_until(lambda c: c.mqtt_connected, 15)


def test_retained_state_is_restored_after_a_collector_restart(mosquitto: Mosquitto) -> None:
    with publisher(mosquitto) as pub:
        for st in ("3310-juwiring-01", "3310-bayat-01", "3310-cawas-01"):
            pub.publish(topic(st, "status"), status(st, "online", seq=1), retain=True)
            pub.publish(topic(st), state(st, missing=("camera",) if st == JUW else ()), retain=True)
    with running(mosquitto) as first:
        assert first.wait_until(lambda c: c.summary().up == 3, 10)
    with running(mosquitto) as second:
        assert second.wait_until(lambda c: c.summary().up == 3, 10)
        s = second.summary()
        assert (s.ready, s.never_reported) == (2, 1)
        assert stations(second)[JUW]["problems"] == ["camera missing"]


def test_shard_filter_only_sees_its_region(mosquitto: Mosquitto) -> None:
    with (
        running(mosquitto, mqtt={"topics": ["pantau/v1/34/#"]}, fleet={"inventory": ""}) as c,
        publisher(mosquitto) as pub,
    ):
        pub.publish(topic(JUW), state(JUW))  # province 33: not ours
        pub.publish("pantau/v1/34/3401/3401-x-01/state", state("3401-x-01"))
        assert c.wait_until(received(1), 10)
        time.sleep(0.3)
        assert [v.station for v in c.snapshot().stations if v.report] == ["3401-x-01"]


def test_shared_subscription_delivers(mosquitto: Mosquitto) -> None:
    with (
        running(mosquitto, mqtt={"topics": ["$share/collectors/pantau/v1/+/+/+/+"]}) as c,
        publisher(mosquitto) as pub,
    ):
        pub.publish(topic(JUW), state(JUW))
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10)


def test_tls_password_and_acl_broker(mosquitto_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from harness import PANTAU_ACL, MqttClient

    broker = mosquitto_factory(auth=True, tls=True, acl=PANTAU_ACL)
    pw = tmp_path / "pw"
    pw.write_text(broker.users["collector"] + "\n")
    pw.chmod(0o600)
    mqtt = {
        "port": broker.tls_port,
        "tls": True,
        "ca_file": str(broker.ca_file),
        "username": "collector",
        "password_file": str(pw),
    }
    with running(broker, mqtt=mqtt) as c:
        with MqttClient(broker.host, broker.port, username=JUW, password=broker.users[JUW]) as pub:
            assert not pub.connect().is_failure
            pub.publish(topic(JUW), state(JUW))
            # The ACL lets a station write only under its own id: this never reaches anyone.
            pub.publish(topic("3310-bayat-01"), state("3310-bayat-01"))
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10), broker.log()
        time.sleep(0.3)
        assert stations(c)["3310-bayat-01"]["status"] == "never_reported"
        assert "collector" in broker.log()


def test_wrong_broker_password_keeps_running_and_disconnected(
    mosquitto_factory, tmp_path, caplog
) -> None:  # type: ignore[no-untyped-def]
    from collector_support import make_collector

    broker = mosquitto_factory(auth=True)
    pw = tmp_path / "pw"
    pw.write_text("Xq7-not-the-password\n")
    caplog.set_level("INFO", logger="pantau.collector.mqtt")
    c = make_collector(
        broker,
        mqtt={
            "username": "collector",
            "password_file": str(pw),
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.2,
        },
    ).start()
    try:
        assert c.wait_until(lambda c: c.mqtt.connect_failures >= 4, 20)
        assert not c.mqtt_connected
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        # One rate-limited line for the refusal; no "disconnected" line per retry (the session
        # was never up).
        assert len([w for w in warnings if "refused by the broker" in w]) == 1, warnings
        assert not [w for w in warnings if "disconnected" in w], warnings
        assert "Xq7-not-the-password" not in caplog.text
        assert get(c.url + "/healthz")[2] == b"ok\nmqtt: disconnected\n"
        assert get(c.url + "/readyz")[0] == 503
        assert c.mqtt.connect_failures >= 1  # CONNACK "not authorized" counts as a failure
        assert b"pantau_collector_mqtt_connected 0\n" in get(c.url + "/metrics")[2]
    finally:
        c.stop()


def test_an_exception_in_the_message_callback_is_counted_not_raised(
    mosquitto: Mosquitto, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with running(mosquitto) as c, publisher(mosquitto) as pub:
        real = c.fleet.ingest

        def boom(*_a: object, **_k: object) -> str:
            raise RuntimeError("bug")

        monkeypatch.setattr(c.fleet, "ingest", boom)
        pub.publish(topic(JUW), state(JUW, seq=2))
        assert c.wait_until(lambda c: c.snapshot().rejected["internal_error"] == 1, 10)
        monkeypatch.setattr(c.fleet, "ingest", real)
        pub.publish(topic(JUW), state(JUW, seq=3))  # paho's thread survived
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10)


def test_a_shard_exports_only_the_inventory_its_filters_cover(mosquitto: Mosquitto) -> None:
    from collector_support import inventory

    from pantau.contract.inventory import InventoryEntry

    national = [*inventory(), InventoryEntry("3401-x-01", "34", "3401", "X", ("camera",))]
    with running(mosquitto, inv=national, mqtt={"topics": ["pantau/v1/34/#"]}) as c:
        assert [v.station for v in c.snapshot().stations] == ["3401-x-01"]


def test_pantau_collector_run_process(mosquitto: Mosquitto, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The console script as a real process: serves, ingests, stops on SIGTERM with exit 0."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from collector_support import INVENTORY_CSV
    from harness import free_port

    (tmp_path / "inv.csv").write_text(INVENTORY_CSV)
    port = free_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        f'[mqtt]\nport = {mosquitto.port}\n[http]\nport = {port}\n[fleet]\ninventory = "inv.csv"\n'
    )
    script = Path(sys.executable).parent / "pantau-collector"
    proc = subprocess.Popen(
        [str(script), "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if get(url + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "collector process never served"
            time.sleep(0.1)
        with publisher(mosquitto) as pub:
            pub.publish(topic(JUW), state(JUW), retain=True)
        deadline = time.monotonic() + 20
        while get(url + "/api/stations?station=" + JUW)[2].count(b'"status":"up"') != 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"pantau-collector: serving http://127.0.0.1:{port}" in err


def _lines(stream) -> list[str]:  # type: ignore[no-untyped-def]
    """Collect a process's stderr lines on a thread (so the test can look while it runs)."""
    import threading

    lines: list[str] = []

    def pump() -> None:
        lines.extend(stream)  # appends line by line as they arrive

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_run_warns_when_the_broker_refuses_and_is_not_ready_until_connected(
    mosquitto: Mosquitto, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """`pantau-collector run` against a stopped broker: a warning (rate limited, no secret),
    /healthz stays 200 but says `mqtt: disconnected`, /readyz is 503 until the broker is back."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from harness import free_port

    mosquitto.stop()  # its port now refuses connections
    port = free_port()
    (tmp_path / "pw").write_text("rahasia-sekali\n")
    (tmp_path / "pw").chmod(0o600)
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        f'[mqtt]\nport = {mosquitto.port}\nusername = "collector"\npassword_file = "pw"\n'
        f"reconnect_min_s = 0.1\nreconnect_max_s = 0.3\n[http]\nport = {port}\n"
    )
    script = Path(sys.executable).parent / "pantau-collector"
    proc = subprocess.Popen(
        [str(script), "run", "--config", str(cfg)], stderr=subprocess.PIPE, text=True
    )
    lines = _lines(proc.stderr)
    url = f"http://127.0.0.1:{port}"
    warning = f"WARNING pantau.collector.mqtt: MQTT cannot connect to 127.0.0.1:{mosquitto.port}"
    try:
        deadline = time.monotonic() + 20
        while not any(warning in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        status, _, body = get(url + "/healthz")
        assert (status, body) == (200, b"ok\nmqtt: disconnected\n")
        status, _, body = get(url + "/readyz")
        assert (status, body) == (503, b"mqtt: disconnected\n")
        mosquitto.start()
        deadline = time.monotonic() + 20
        while get(url + "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        assert get(url + "/readyz")[2] == b"ready\n"
        assert get(url + "/healthz")[2] == b"ok\nmqtt: connected\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    err = "".join(lines)
    assert proc.returncode == 0, err
    # Retried every 0.1-0.3 s while the broker was down, logged once (at most one a minute).
    assert sum(warning in line for line in lines) == 1, err
    assert "Connection refused" in err
    assert "rahasia" not in err
    assert "Traceback" not in err


def test_an_unresolvable_broker_host_is_logged_and_not_ready(caplog) -> None:  # type: ignore[no-untyped-def]
    from pantau.collector.config import from_dict
    from pantau.collector.service import Collector

    caplog.set_level(logging.WARNING, logger="pantau.collector.mqtt")
    cfg = from_dict(
        {
            "mqtt": {"host": "nonexistent.invalid", "reconnect_min_s": 0.1, "reconnect_max_s": 0.2},
            "http": {"port": 0},
        }
    )
    c = Collector(cfg, inventory=[]).start()
    try:
        assert c.wait_until(lambda c: c.mqtt.connect_failures >= 3, 10)
        assert get(c.url + "/readyz")[0] == 503
        assert get(c.url + "/healthz")[2] == b"ok\nmqtt: disconnected\n"
    finally:
        c.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("MQTT cannot connect to nonexistent.invalid:1883: "), warnings


def test_an_agent_that_restarted_and_died_while_the_collector_was_away_is_offline(
    mosquitto: Mosquitto,
) -> None:
    """The collector follows session A; while its MQTT connection is down the agent restarts as
    session B and dies. mosquitto then replays B's will (the status topic, retained first) before
    B's retained state: the station must read offline, not up until it goes stale."""
    from pantau.collector.mqtt import MqttIngest

    with running(mosquitto) as c:
        a = _agent_with_will(mosquitto, JUW, "A")
        assert c.wait_until(lambda c: stations(c)[JUW]["status"] == "up", 10)
        c.mqtt.stop()  # the collector is away (the fleet state stays)
        _crash(a)
        b = _agent_with_will(mosquitto, JUW, "B")
        _crash(b)
        with publisher(mosquitto) as probe:  # wait until the broker has published B's will
            probe.subscribe(topic(JUW, "status"))
            while True:
                will = wire.decode(topic(JUW, "status"), probe.expect(timeout=10).payload)[1]
                if isinstance(will, wire.Status) and (will.session, will.status) == (
                    "B",
                    "offline",
                ):
                    break
        before = c.snapshot().received_total
        c.mqtt = MqttIngest(c.config.mqtt, c.fleet, clock=c.clock)  # reconnects: retained replay
        c.mqtt.start()
        assert c.wait_until(lambda c: c.snapshot().received_total >= before + 2, 10)
        view = next(v for v in c.snapshot().stations if v.station == JUW)
        assert view.session == "B"
        assert stations(c)[JUW]["status"] == "offline", stations(c)[JUW]


def test_the_replay_after_a_reconnect_is_counted_as_stale_seq(mosquitto: Mosquitto) -> None:
    with running(mosquitto) as c, publisher(mosquitto) as pub:
        pub.publish(topic(JUW, "status"), status(JUW, "online", seq=1), retain=True)
        pub.publish(topic(JUW), state(JUW, seq=2), retain=True)
        assert c.wait_until(received(2), 10)
        assert sum(c.snapshot().rejected.values()) == 0
        last_report = stations(c)[JUW]["last_report"]
        sock = c.mqtt.client.socket()  # drop the collector's connection; paho reconnects
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        assert c.wait_until(lambda c: c.mqtt.connects >= 2, 15), mosquitto.log()
        assert c.wait_until(received(4), 10)
        snap = c.snapshot()
        assert snap.rejected["stale_seq"] == 2, snap.rejected  # the retained birth and state
        assert sum(snap.rejected.values()) == 2
        assert stations(c)[JUW]["status"] == "up"
        assert stations(c)[JUW]["last_report"] == last_report  # a replay is not a new report
        _, _, body = get(c.url + "/metrics")
        assert b'pantau_collector_reports_rejected_total{reason="stale_seq"} 2\n' in body
