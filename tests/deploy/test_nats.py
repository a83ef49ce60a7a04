"""deploy/compose.nats.yaml: the NATS broker cluster, collector replicas and the HA alert path.

No container engine runs here; the same topology runs as processes in tests/cluster. What is
checked here: nats-server itself validates the shipped nats.conf (every node's name, the users
file that deploy/scripts/nats-users.py makes, the certificates from make-certs.sh, as mounted),
the users file grants each station only its own topics, the two collector replicas differ in
identity and list every node, both Prometheus servers scrape both replicas and alert both
Alertmanagers, and the Alertmanagers gossip with each other.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from _compose import DEPLOY, host_path, load

NATS = DEPLOY / "compose.nats.yaml"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def services() -> dict[str, dict[str, object]]:
    data = load(NATS)
    assert isinstance(data["services"], dict)
    return data["services"]


def _nodes() -> list[str]:
    return [name for name in services() if name.startswith("nats")]


@pytest.mark.parametrize("node", ["nats1", "nats2", "nats3"])
def test_nats_conf_is_valid_for_each_node_as_mounted(
    node: str, generated: Path, tmp_path: Path
) -> None:
    service = services()[node]
    conf = host_path(NATS, service, "/etc/nats/nats.conf", generated)
    assert conf == DEPLOY / "nats" / "nats.conf"
    text = conf.read_text()
    # every container path the config names, mapped to the host file it is mounted from
    for path in sorted(set(re.findall(r"(/etc/nats/[\w./-]+)", text))):
        host = host_path(NATS, service, path, generated)
        assert host.is_file(), f"{node}: {path} -> {host} missing"
        text = text.replace(path, str(host))
    # nats-server resolves includes next to the including file, as the mounts place them
    assert "include ./users.conf" in text
    shutil.copy(
        host_path(NATS, service, "/etc/nats/users.conf", generated), tmp_path / "users.conf"
    )
    text = text.replace("store_dir: /data", f'store_dir: "{tmp_path / "js"}"')
    copy = tmp_path / "nats.conf"
    copy.write_text(text)
    env = {"NATS_SERVER_NAME": service["environment"]["NATS_SERVER_NAME"]}  # type: ignore[index]
    assert env["NATS_SERVER_NAME"] == node
    proc = subprocess.run(
        [NATS_SERVER, "-t", "-c", str(copy)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the routes name every node (compose service names), the volume keeps JetStream
    routes = re.findall(r"nats-route://(\w+):6222", conf.read_text())
    assert sorted(routes) == _nodes()
    assert any(m.endswith(":/data") for m in service["volumes"])  # type: ignore[attr-defined]


def test_the_config_check_catches_mistakes(tmp_path: Path) -> None:
    """nats-server -t is not a rubber stamp: an unknown MQTT option fails it."""
    bad = tmp_path / "nats.conf"
    bad.write_text("server_name: x\njetstream {}\nmqtt { listen: 127.0.0.1:1, tls_verfy: true }\n")
    proc = subprocess.run([NATS_SERVER, "-t", "-c", str(bad)], capture_output=True, check=False)
    assert proc.returncode != 0


def test_users_file_limits_each_station_to_its_own_topics(generated: Path) -> None:
    text = (generated / "secrets" / "nats" / "users.conf").read_text()
    provisioned = generated / "provisioned"
    stations = sorted(p.name for p in (provisioned / "stations").iterdir())
    assert stations
    for station in stations:
        cfg = tomllib.loads((provisioned / "stations" / station / "agent.toml").read_text())
        st = cfg["station"]
        subject = f"pantau.v1.{st['provinsi']}.{st['kabkota']}.{station}.>"
        line = next(line for line in text.splitlines() if f'user: "{station}"' in line)
        assert f'"publish": {{"allow": ["{subject}"]}}' in line
        assert '"subscribe": {"deny": [">"]}' in line
    for name in ("collector-1", "collector-2"):
        line = next(line for line in text.splitlines() if f'user: "{name}"' in line)
        assert '"publish": {"deny": [">"]}' in line
        assert '"subscribe": {"allow": ["pantau.v1.>", "$MQTT.sub.>"]}' in line
    mode = (generated / "secrets" / "nats" / "users.conf").stat().st_mode & 0o777
    assert mode == 0o600


def test_collector_replicas_have_their_own_identity_and_every_node() -> None:
    seen = set()
    for name in ("collector-1", "collector-2"):
        service = services()[name]
        config = tomllib.loads(
            host_path(NATS, service, "/etc/pantau/collector.toml", Path()).read_text()
        )
        mqtt = config["mqtt"]
        assert mqtt["protocol"] == "3.1.1"
        assert sorted(e.split(":")[0] for e in mqtt["endpoints"]) == _nodes()
        assert mqtt["client_id"] == mqtt["username"] == name
        assert mqtt["session_expiry_s"] > 0
        seen.add(mqtt["endpoints"][0])
        assert f"./secrets/{name}:/run/secrets/pantau:ro" in service["volumes"]  # type: ignore[operator]
    assert len(seen) == 2, "the replicas start on different nodes"


def test_both_prometheus_servers_scrape_both_replicas_and_alert_both_alertmanagers(
    tmp_path: Path,
) -> None:
    svc = services()
    config_path = DEPLOY / "nats" / "prometheus.yml"
    shutil.copy(config_path, tmp_path / "prometheus.yml")
    shutil.copytree(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    proc = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("prometheus-1", "prometheus-2"):
        mounted = host_path(NATS, svc[name], "/etc/prometheus/prometheus.yml", Path())
        assert mounted == config_path
    config = load(config_path)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pantau-collector")
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert sorted(targets) == ["collector-1:9108", "collector-2:9108"]
    ams = [sc for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]]
    assert sorted(t for sc in ams for t in sc["targets"]) == [
        "alertmanager-1:9093",
        "alertmanager-2:9093",
    ]
    # identical alert labels: no per-server external label that Alertmanager would see
    assert set(config["global"].get("external_labels", {})) <= {"pantau_deployment"}


def test_alertmanagers_gossip_with_each_other() -> None:
    svc = services()
    for name, peer in (("alertmanager-1", "alertmanager-2"), ("alertmanager-2", "alertmanager-1")):
        command = svc[name]["command"]
        assert "--cluster.listen-address=0.0.0.0:9094" in command  # type: ignore[operator]
        assert f"--cluster.peer={peer}:9094" in command  # type: ignore[operator]
        assert not any(str(p).endswith(":9094") for p in svc[name].get("ports", []))  # type: ignore[attr-defined]


def test_alertmanagers_of_the_replicas_load_the_config_without_fleet_wide_inhibition(
    tmp_path: Path,
) -> None:
    """One dead or blind replica must not hold back the station alerts the other one raises."""
    svc = services()
    replicas_file = DEPLOY / "alertmanager" / "alertmanager-replicas.yml"
    for name in ("alertmanager-1", "alertmanager-2"):
        assert host_path(NATS, svc[name], "/etc/alertmanager/alertmanager.yml", Path()) == (
            replicas_file
        )
    single = load(DEPLOY / "alertmanager" / "alertmanager.yml")
    replicas = load(replicas_file)
    assert single.pop("inhibit_rules"), "the single-collector stack keeps its inhibition"
    assert "inhibit_rules" not in replicas
    assert replicas == single  # routes, receivers and time intervals unchanged
    text = replicas_file.read_text().replace("$TELEGRAM_BOT_TOKEN", "123:token")
    (tmp_path / "am.yml").write_text(text)
    proc = subprocess.run(
        ["amtool", "check-config", str(tmp_path / "am.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_config_forms_a_tls_cluster_and_enforces_the_users(
    generated: Path, tmp_path: Path
) -> None:
    """The shipped nats.conf, run: three real nodes with TLS routes verified against the CA, MQTT
    over TLS, the users file of nats-users.py. Only addresses are rewritten (loopback ports; the
    certificate of the deploy steps names ``localhost``): a meta leader proves the TLS routes
    carry the JetStream cluster; then a collector identity receives a station's own report over
    TLS while the same station's report under another station's id is dropped."""
    import paho.mqtt.client as mqtt
    from harness.procs import free_port, port_open, spawn, stop, wait_for
    from paho.mqtt.enums import CallbackAPIVersion

    secrets = generated / "secrets"
    shipped = (DEPLOY / "nats" / "nats.conf").read_text()
    nodes = [
        {"route": free_port(), "mqtt": free_port(), "client": free_port(), "http": free_port()}
        for _ in range(3)
    ]
    routes = ", ".join(f"nats-route://localhost:{n['route']}" for n in nodes)
    procs = []
    try:
        for i, n in enumerate(nodes):
            d = tmp_path / f"n{i + 1}"
            d.mkdir()
            text = shipped.replace("/etc/nats/certs", str(secrets / "broker"))
            text = text.replace("store_dir: /data", f'store_dir: "{d / "js"}"')
            text = text.replace("listen: 127.0.0.1:4222", f"listen: 127.0.0.1:{n['client']}")
            text = text.replace("http: 127.0.0.1:8222", f"http: 127.0.0.1:{n['http']}")
            text = text.replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{n['route']}")
            text = text.replace("listen: 0.0.0.0:8883", f"listen: 127.0.0.1:{n['mqtt']}")
            text = re.sub(r"routes: \[[^\]]*\]", f"routes: [{routes}]", text)
            (d / "nats.conf").write_text(text)
            shutil.copy(secrets / "nats" / "users.conf", d / "users.conf")
            procs.append(
                spawn(
                    [NATS_SERVER, "-c", str(d / "nats.conf"), "-l", str(d / "nats.log")],
                    d / "stdout.log",
                    env={"NATS_SERVER_NAME": f"nats{i + 1}"},
                )
            )
        for i, n in enumerate(nodes):
            wait_for(lambda n=n: port_open("127.0.0.1", n["mqtt"]), timeout=30, alive=procs[i])

        def leader(n: dict[str, int]) -> str:
            import json
            import urllib.request

            try:
                url = f"http://127.0.0.1:{n['http']}/jsz"
                with urllib.request.urlopen(url, timeout=1) as r:
                    return str((json.loads(r.read()).get("meta_cluster") or {}).get("leader", ""))
            except (OSError, ValueError):
                return ""

        log = lambda: (tmp_path / "n1" / "nats.log").read_text(errors="replace")  # noqa: E731
        wait_for(lambda: all(leader(n) for n in nodes), timeout=40, interval=0.2, log=log,
                 what="a JetStream meta leader over the TLS routes")  # fmt: skip
        prov = generated / "provisioned"
        station = sorted(p.name for p in (prov / "stations").iterdir())[0]
        other = sorted(p.name for p in (prov / "stations").iterdir())[1]
        st = tomllib.loads((prov / "stations" / station / "agent.toml").read_text())["station"]

        def client(cid: str, user: str, password: str, port: int, clean: bool) -> Any:
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv311,
                clean_session=clean,
            )  # fmt: skip
            c.tls_set(ca_certs=str(secrets / "broker" / "ca.crt"))
            c.username_pw_set(user, password)
            c.connect("localhost", port, 10)
            c.loop_start()
            return c

        got: list[tuple[str, bytes]] = []
        collector = client(
            "collector-1", "collector-1", (prov / "collector-1" / "password").read_text().strip(),
            nodes[0]["mqtt"], False,
        )  # fmt: skip
        collector.on_message = lambda _c, _u, m: got.append((m.topic, m.payload))
        wait_for(collector.is_connected, timeout=30, what="collector over TLS")
        collector.subscribe("pantau/v1/+/+/+/+", 1)
        agent = client(
            station, station, (prov / "stations" / station / "password").read_text().strip(),
            nodes[1]["mqtt"], True,
        )  # fmt: skip
        wait_for(agent.is_connected, timeout=30, what="station over TLS")
        own = f"pantau/v1/{st['provinsi']}/{st['kabkota']}/{station}/event"
        spoof = f"pantau/v1/{st['provinsi']}/{st['kabkota']}/{other}/event"

        def deliver() -> bool:
            agent.publish(spoof, b"spoof", qos=1)
            agent.publish(own, b"own", qos=1)
            return any(p == b"own" for _t, p in got)

        wait_for(deliver, timeout=30, interval=1.0, what="the station's own report delivered")
        time.sleep(1)
        assert (own, b"own") in got
        assert not [t for t, p in got if p == b"spoof"], "a station spoke for another"
        for c in (agent, collector):
            c.loop_stop()
            c.disconnect()
    finally:
        for p in procs:
            stop(p, timeout=10)
