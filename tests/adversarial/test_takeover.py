"""Client-id takeover: one station's credentials must not disconnect another station or a
collector (MQTT lets a new connection with an existing client id end the old one).

The shipped mosquitto.conf binds client ids to user names (``use_username_as_clientid``). The
control runs the same configuration without that line and shows the attack working there, so the
main test cannot pass by accident.
"""

from __future__ import annotations

import re
import time

from _shipped import Shipped, http_get, topic
from harness import procs

from pantau.contract import wire

VICTIM = "3310-juwiring-01"
ATTACKER = "3310-bayat-01"


def _state(station: str, seq: int) -> bytes:
    return wire.encode(
        wire.State(
            station=station,
            agent_version="0.1.0",
            session="victim-s1",
            seq=seq,
            ts=time.time(),
            interval_s=30.0,
        )
    )


def _up(url: str, station: str) -> str | None:
    _, _, body = http_get(url + "/metrics")
    match = re.search(
        rf'^pantau_station_up{{station="{station}"[^}}]*}} (\S+)$', body.decode(), re.M
    )
    return match.group(1) if match else None


def test_a_station_cannot_disconnect_another_station_or_a_collector(shipped: Shipped) -> None:
    urls = {user: shipped.start_collector(user) for user in ("collector", "collector-2")}
    will = wire.encode(
        wire.Status(
            station=VICTIM,
            agent_version="0.1.0",
            session="victim-s1",
            seq=1,
            ts=time.time(),
            status="offline",
            reason="will",
        )
    )
    # the agent's default client id is pantau-{station}; under the binding it is the user name
    with shipped.client(
        VICTIM, client_id=f"pantau-{VICTIM}", will=(topic(VICTIM, "status"), will)
    ) as victim:
        assert not victim.publish(topic(VICTIM, "state"), _state(VICTIM, 2), retain=True).is_failure
        for url in urls.values():
            procs.wait_for(lambda u=url: _up(u, VICTIM) == "1", timeout=10, what="victim up")
        # the attack: valid credentials of another station, every id the victims could have
        ids = [f"pantau-{VICTIM}", VICTIM, "collector", "collector-2", "pantau-collector-1"]
        for _ in range(3):
            for client_id in ids:
                with shipped.client(ATTACKER, client_id=client_id) as attacker:
                    assert attacker.connack is not None
                    assert not attacker.connack.is_failure  # its own login still works
        time.sleep(0.5)  # a will is sent ~1 ms after its connection is closed
        assert victim.disconnects == []
        assert victim.connects == 1
        for user, url in urls.items():
            assert _up(url, VICTIM) == "1", user
            assert http_get(url + "/readyz")[0] == 200, user
            assert "MQTT disconnected" not in shipped.collector_log(user), user
    log = shipped.broker_log()
    assert "already connected, closing old connection" not in log
    # the broker names every attacker connection by its user, whatever id it asked for
    assert re.search(rf"New client connected from \S+ as {ATTACKER} ", log)
    assert not re.search(r"New client connected from \S+ as pantau-", log)


def test_control_without_the_binding_the_takeover_works(shipped: Shipped) -> None:
    """The same shipped config without ``use_username_as_clientid``: the attack disconnects the
    victim, which is what the line above prevents."""
    conf = (shipped.root / "mosquitto.conf").read_text()
    assert "\nuse_username_as_clientid true\n" in conf
    control = Shipped(shipped.root, shipped.ca, shipped.passwords, procs.free_port())
    text = conf.replace(f"listener {shipped.broker_port} ", f"listener {control.broker_port} ")
    text = text.replace("\nuse_username_as_clientid true\n", "\n")
    text = text.replace("\npersistence true\n", "\npersistence false\n")
    path = shipped.root / "control.conf"
    path.write_text(text)
    control.broker = procs.spawn(["mosquitto", "-c", str(path)], shipped.root / "control.log")
    try:
        procs.wait_for(
            lambda: procs.port_open("127.0.0.1", control.broker_port), timeout=10, what="control"
        )
        with (
            control.client(VICTIM, client_id=f"pantau-{VICTIM}") as victim,
            control.client(ATTACKER, client_id=f"pantau-{VICTIM}"),
        ):
            procs.wait_for(lambda: victim.disconnects != [], timeout=5, what="takeover")
    finally:
        procs.stop(control.broker)
