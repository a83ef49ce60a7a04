"""The demo's local brokers (pantau.tools.broker): mosquitto binds client ids to identities like
the deployment; the embedded amqtt fallback has no identities at all and cannot, which the demo
and docs say (it is a loopback demo broker, never a deployment)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion

from pantau.tools import broker as local
from pantau.tools.provision import AgentSettings, Options, provision

REPO = Path(__file__).resolve().parents[2]
INVENTORY = (
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,camera\n"
    "3310-bayat-01,33,3310,Bayat,camera\n"
)


@contextmanager
def _client(
    port: int,
    client_id: str,
    *,
    user: str = "",
    password: str = "",
    protocol: int = mqtt.MQTTv5,
    inbox: list[bytes] | None = None,
    topic: str = "pantau/v1/#",
) -> Iterator[mqtt.Client]:
    """A connected client; its disconnect reasons go to ``.disconnects``, messages of ``topic``
    to ``inbox``."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if user:
        paho.username_pw_set(user, password)
    connected = threading.Event()
    disconnects: list[str] = []
    paho.disconnects = disconnects  # type: ignore[attr-defined]

    def on_connect(*_args: Any) -> None:
        connected.set()

    paho.on_connect = on_connect
    paho.on_disconnect = lambda *a: disconnects.append(str(a[3]))
    paho.on_message = lambda _c, _u, m: (inbox if inbox is not None else []).append(m.payload)
    paho.connect("127.0.0.1", port, keepalive=30)
    paho.loop_start()
    try:
        assert connected.wait(10)
        if topic and inbox is not None:
            subscribed = threading.Event()
            paho.on_subscribe = lambda *_a: subscribed.set()
            paho.subscribe(topic, qos=1)
            assert subscribed.wait(10)
        yield paho
    finally:
        paho.disconnect()
        paho.loop_stop()


def test_demo_mosquitto_binds_client_ids_to_users(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(INVENTORY)
    out = tmp_path / "provisioned"
    provision(
        Options(tmp_path / "inventory.csv", out, AgentSettings("127.0.0.1", None, False, False))
    )
    pw = {
        s: (out / "stations" / s / "password").read_text().strip()
        for s in ("3310-juwiring-01", "3310-bayat-01")
    }
    pw["collector"] = (out / "collector" / "password").read_text().strip()
    b = local.LocalBroker(
        tmp_path / "broker",
        kind="mosquitto",
        password_file=out / "broker" / "passwd",
        acl_file=out / "broker" / "acl",
    )
    b.start()
    try:
        with (
            _client(
                b.port,
                "pantau-3310-juwiring-01",
                user="3310-juwiring-01",
                password=pw["3310-juwiring-01"],
            ) as victim,
            _client(b.port, "collector", user="collector", password=pw["collector"]) as collector,
        ):
            for client_id in ("pantau-3310-juwiring-01", "3310-juwiring-01", "collector"):
                with _client(b.port, client_id, user="3310-bayat-01", password=pw["3310-bayat-01"]):
                    pass
            time.sleep(0.3)  # a takeover would disconnect them within milliseconds
            assert victim.disconnects == []  # type: ignore[attr-defined]
            assert collector.disconnects == []  # type: ignore[attr-defined]
    finally:
        b.stop()


def test_embedded_broker_cannot_bind_ids_and_says_so(tmp_path: Path) -> None:
    """amqtt hands the session of a client id to whoever connects with it: the first client stays
    connected but silently gets nothing more (a collector there would be blind)."""
    pytest.importorskip("amqtt", reason="the embedded broker needs the demo extra (amqtt)")
    b = local.LocalBroker(tmp_path / "broker", kind="embedded")
    b.start()
    got: list[bytes] = []
    try:
        assert not b.authenticated
        with (
            _client(b.port, "collector", protocol=mqtt.MQTTv311, inbox=got) as victim,
            _client(b.port, "publisher", protocol=mqtt.MQTTv311, inbox=[], topic="") as publisher,
        ):
            publisher.publish("pantau/v1/33/3310/x/state", b"before", qos=1).wait_for_publish(5)
            procs.wait_for(lambda: got == [b"before"], timeout=5, what="delivery")
            with _client(b.port, "collector", protocol=mqtt.MQTTv311, inbox=[], topic=""):
                publisher.publish("pantau/v1/33/3310/x/state", b"after", qos=1).wait_for_publish(5)
                time.sleep(0.5)
            assert victim.is_connected()
        assert got == [b"before"], "the embedded broker now binds ids: update docs and this test"
    finally:
        b.stop()
    # documented where a user meets it
    assert "client ids not bound" in (REPO / "pantau" / "tools" / "demo.py").read_text()
    assert "cannot bind client ids" in (REPO / "pantau" / "tools" / "broker.py").read_text()
