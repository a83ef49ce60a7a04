"""The shipped configuration, run for real: the target of the adversarial tests.

Built exactly as docs/deploy.md says: TLS material from deploy/scripts/make-certs.sh, broker users
and ACL from ``pantau provision`` (one station user per inventory row, two collector identities),
installed by deploy/scripts/install-secrets.sh, then mosquitto on deploy/mosquitto/mosquitto.conf
and ``pantau-collector run`` on deploy/collector/collector.toml. Only container paths, listeners
(free loopback ports) and file owners are substituted; mosquitto, started as root, drops to its
own user as in the container.
"""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pantau.contract import wire

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
BIN = REPO / ".venv" / "bin"
TIMEOUT = 10.0
STATIONS = ("3310-juwiring-01", "3310-bayat-01", "3310-cawas-01")
COLLECTORS = ("collector", "collector-2")
INVENTORY = "station,provinsi,kabkota,kecamatan,device_classes\n" + "".join(
    f"{s},33,3310,{s.split('-')[1].title()},camera;fingerprint\n" for s in STATIONS
)


def topic(station: str, kind: wire.Kind, *, provinsi: str = "33", kabkota: str = "3310") -> str:
    return f"pantau/v1/{provinsi}/{kabkota}/{station}/{kind}"


def _sh(*argv: str | Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError:
        return 0, {}, b""


@dataclass
class Client:
    """A paho MQTT 5 client over TLS that records what happens to it."""

    client: mqtt.Client
    connack: ReasonCode | None = None
    connects: int = 0
    disconnects: list[str] = field(default_factory=list)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    acks: dict[int, ReasonCode] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connected: threading.Event = field(default_factory=threading.Event)

    def publish(
        self,
        topic_name: str,
        payload: bytes = b"{}",
        *,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> ReasonCode:
        """QoS 1; the broker's PUBACK reason (135: not authorized)."""
        info = self.client.publish(topic_name, payload, qos=1, retain=retain, properties=properties)
        procs.wait_for(lambda: info.mid in self.acks, timeout=TIMEOUT, what=f"PUBACK {topic_name}")
        return self.acks[info.mid]

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        done: list[list[ReasonCode]] = []
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: done.append(list(rcs))
        self.client.subscribe(topic_filter, qos=1)
        procs.wait_for(lambda: bool(done), timeout=TIMEOUT, what=f"SUBACK {topic_filter}")
        return done[0]

    def received(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(m.topic, m.payload) for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Shipped:
    root: Path
    ca: Path
    passwords: dict[str, str]
    broker_port: int
    broker: subprocess.Popen[bytes] | None = None
    collectors: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = field(default_factory=dict)

    # ------------------------------------------------------------------ broker

    def broker_log(self) -> str:
        return (self.root / "mosquitto.log").read_text(errors="replace")

    def start_broker(self) -> None:
        text = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
        for old, new in {
            "/pantau/secrets/": f"{self.root / 'secrets' / 'broker'}/",
            "/mosquitto/data/": f"{self.root / 'data'}/",
            "\nlistener 8883\n": f"\nlistener {self.broker_port} 127.0.0.1\n",
        }.items():
            assert old in text, f"deploy/mosquitto/mosquitto.conf no longer has {old!r}"
            text = text.replace(old, new)
        conf = self.root / "mosquitto.conf"
        conf.write_text(text)
        log = self.root / "mosquitto.log"
        self.broker = procs.spawn(["mosquitto", "-c", str(conf)], log)
        procs.wait_for(
            lambda: procs.port_open("127.0.0.1", self.broker_port),
            timeout=TIMEOUT,
            what="shipped mosquitto",
            alive=self.broker,
            log=self.broker_log,
        )

    @contextmanager
    def client(
        self,
        user: str,
        *,
        client_id: str = "",
        password: str | None = None,
        will: tuple[str, bytes] | None = None,
        wait: bool = True,
        properties: Properties | None = None,
    ) -> Iterator[Client]:
        """A connected MQTT 5 client with ``user``'s credentials (or ``password``)."""
        paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"t-{user}-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv5,
        )
        paho.username_pw_set(user, self.passwords.get(user, "") if password is None else password)
        paho.tls_set(ca_certs=str(self.ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will is not None:
            paho.will_set(will[0], will[1], qos=1, retain=True)
        paho.reconnect_delay_set(0.1, 0.5)
        state = Client(paho)

        def on_connect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
            state.connack = rc
            if not rc.is_failure:
                state.connects += 1
            state.connected.set()

        def on_disconnect(_c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
            state.disconnects.append(str(rc))

        def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            with state.lock:
                state.messages.append(msg)

        def on_publish(_c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
            state.acks[mid] = rc

        paho.on_connect = on_connect
        paho.on_disconnect = on_disconnect
        paho.on_message = on_message
        paho.on_publish = on_publish
        paho.connect("127.0.0.1", self.broker_port, keepalive=30, properties=properties)
        paho.loop_start()
        try:
            if wait:
                assert state.connected.wait(TIMEOUT), "no CONNACK"
            yield state
        finally:
            state.close()

    # ------------------------------------------------------------------ collector

    def collector_config(self, user: str, http_port: int, **http: Any) -> Path:
        """deploy/collector/collector.toml for identity ``user`` with local paths and ports."""
        text = (DEPLOY / "collector" / "collector.toml").read_text()
        data = tomllib.loads(text)
        secrets = self.root / "secrets" / user
        replacements = {
            'host = "mosquitto"': 'host = "127.0.0.1"',
            "port = 8883": f"port = {self.broker_port}",
            '"/run/secrets/pantau/ca.crt"': f'"{secrets / "ca.crt"}"',
            '"/run/secrets/pantau/password"': f'"{secrets / "password"}"',
            '"/etc/pantau/inventory/klaten.csv"': f'"{self.root / "inventory.csv"}"',
            f'username = "{data["mqtt"]["username"]}"': f'username = "{user}"',
            f'client_id = "{data["mqtt"]["client_id"]}"': f'client_id = "{user}"',
            'host = "0.0.0.0"': 'host = "127.0.0.1"',
            f"port = {data['http']['port']}": f"port = {http_port}",
        }
        state = self.root / f"state-{user}"
        state.mkdir(exist_ok=True)
        replacements['"/var/lib/pantau/'] = f'"{state}/'  # fleet.state_file, one per identity
        for old, new in replacements.items():
            assert text.count(old) == 1, f"deploy/collector/collector.toml: {old!r}"
            text = text.replace(old, new)
        extra = "".join(f"{k} = {v!r}\n" for k, v in http.items()).replace("'", '"')
        text = text.replace("[http]\n", "[http]\n" + extra)
        path = self.root / f"collector-{user}.toml"
        path.write_text(text)
        return path

    def start_collector(self, user: str, *, port: int = 0, **http: Any) -> str:
        """``pantau-collector run`` as identity ``user`` (HTTP on ``port``, default a free one);
        returns its base URL once connected."""
        port = port or procs.free_port()
        config = self.collector_config(user, port, **http)
        log = self.root / f"collector-{user}.log"
        proc = procs.spawn([str(BIN / "pantau-collector"), "run", "--config", str(config)], log)
        url = f"http://127.0.0.1:{port}"
        self.collectors[user] = (proc, url, log)
        procs.wait_for(
            lambda: http_get(url + "/readyz", timeout=1)[0] == 200,
            timeout=20,
            what=f"collector {user} connected",
            alive=proc,
            log=lambda: log.read_text(errors="replace") + self.broker_log()[-2000:],
        )
        return url

    def collector_log(self, user: str) -> str:
        return self.collectors[user][2].read_text(errors="replace")

    def stop(self) -> None:
        for proc, _, _ in self.collectors.values():
            procs.stop(proc)
        procs.stop(self.broker)


def build() -> Shipped:
    """Certificates, provisioning and installed secrets in a new /tmp directory (mode 0755: the
    broker's own user must reach the secrets, as in the container)."""
    root = Path(tempfile.mkdtemp(prefix="pantau-adversarial-", dir="/tmp"))
    root.chmod(0o755)
    _sh(DEPLOY / "scripts" / "make-certs.sh", "-o", root / "certs", "localhost", "127.0.0.1")
    (root / "inventory.csv").write_text(INVENTORY)
    users: list[str] = []
    for user in COLLECTORS:
        users += ["--collector-user", user]
    _sh(
        BIN / "pantau", "provision", root / "inventory.csv", "--out", root / "provisioned",
        "--broker-host", "localhost", "--ca-cert", root / "certs" / "ca.crt", *users,
    )  # fmt: skip
    owner = "mosquitto" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    me = pwd.getpwuid(os.geteuid()).pw_name
    env = dict(os.environ, MOSQUITTO_UID=owner, COLLECTOR_UID=me, ALERTMANAGER_UID=me)
    _sh(
        DEPLOY / "scripts" / "install-secrets.sh", "-o", root / "secrets",
        root / "provisioned", root / "certs", env=env,
    )  # fmt: skip
    data = root / "data"
    data.mkdir()
    shutil.chown(data, owner)
    passwords = {u: (root / "provisioned" / u / "password").read_text().strip() for u in COLLECTORS}
    for station in STATIONS:
        path = root / "provisioned" / "stations" / station / "password"
        passwords[station] = path.read_text().strip()
    return Shipped(root, root / "certs" / "ca.crt", passwords, procs.free_port())
