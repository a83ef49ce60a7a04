"""The mosquitto fixtures run a real broker with real auth, ACL and TLS."""

from __future__ import annotations

import ssl

import pytest
from harness import PANTAU_ACL, HarnessError, Mosquitto, MqttClient

STATION_A = "3310-juwiring-01"
STATION_B = "3310-klaten-02"
USERS = {STATION_A: "pw-a", STATION_B: "pw-b", "collector": "pw-c"}

NOT_AUTHORIZED = 135
BAD_USER_OR_PASSWORD = 134


def test_anonymous_broker_round_trip(mosquitto: Mosquitto) -> None:
    with MqttClient(mosquitto.host, mosquitto.port, client_id="sub") as sub:
        assert not sub.connect().is_failure
        sub.subscribe("pantau/v1/#")
        with MqttClient(mosquitto.host, mosquitto.port, client_id="pub") as pub:
            assert not pub.connect().is_failure
            rc = pub.publish("pantau/v1/33/3310/x/state", b"hello")
            assert not rc.is_failure
        msg = sub.expect("pantau/v1/33/3310/x/state")
        assert msg.payload == b"hello"


def test_restart_keeps_port_and_log(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    first_pid = mosquitto.pid
    mosquitto.restart()
    assert mosquitto.port == port
    assert mosquitto.pid != first_pid
    with MqttClient(mosquitto.host, mosquitto.port, client_id="after-restart") as c:
        assert not c.connect().is_failure
    mosquitto.stop()
    assert not mosquitto.running
    with pytest.raises(ConnectionRefusedError):
        MqttClient(mosquitto.host, mosquitto.port).connect()
    mosquitto.start()
    assert "after-restart" in mosquitto.log()


def test_acl_denies_publishing_under_another_station(mosquitto_factory) -> None:
    broker = mosquitto_factory(auth=True, users=USERS, acl=PANTAU_ACL)
    collector = MqttClient(
        broker.host, broker.port, client_id="collector", username="collector", password="pw-c"
    )
    with (
        collector,
        MqttClient(
            broker.host, broker.port, client_id=STATION_A, username=STATION_A, password="pw-a"
        ) as a,
    ):
        assert not collector.connect().is_failure
        collector.subscribe("pantau/v1/#")
        assert not a.connect().is_failure

        own = a.publish(f"pantau/v1/33/3310/{STATION_A}/state", b"mine")
        assert not own.is_failure
        assert collector.expect(f"pantau/v1/33/3310/{STATION_A}/state").payload == b"mine"

        other = a.publish(f"pantau/v1/33/3310/{STATION_B}/state", b"forged")
        assert other.is_failure
        assert other.value == NOT_AUTHORIZED
        assert collector.messages.empty()
    assert "Denied PUBLISH" in broker.log()


def test_wrong_password_is_refused(mosquitto_factory) -> None:
    broker = mosquitto_factory(auth=True, users=USERS)
    with MqttClient(broker.host, broker.port, username=STATION_A, password="wrong") as bad:
        rc = bad.connect()
        assert rc.is_failure
        assert rc.value in (BAD_USER_OR_PASSWORD, NOT_AUTHORIZED)
    with MqttClient(broker.host, broker.port) as anonymous:
        assert anonymous.connect().is_failure
    with MqttClient(broker.host, broker.port, username=STATION_A, password="pw-a") as good:
        assert not good.connect().is_failure


def test_tls_needs_the_right_ca(mosquitto_factory, tls_certs) -> None:
    broker = mosquitto_factory(tls=True)
    assert broker.tls_port is not None
    assert broker.ca_file == tls_certs.ca_cert
    wrong = MqttClient(broker.host, broker.tls_port, ca_file=tls_certs.other_ca_cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        wrong.connect()
    with MqttClient(broker.host, broker.tls_port, ca_file=broker.ca_file) as right:
        assert not right.connect().is_failure
        assert not right.publish("pantau/v1/33/3310/x/event", b"over tls").is_failure


def test_start_failure_reports_the_log(tmp_path) -> None:
    broker = Mosquitto(tmp_path, extra_config="no_such_option 1")
    with pytest.raises(HarnessError, match="no_such_option"):
        broker.start()
    assert not broker.running
