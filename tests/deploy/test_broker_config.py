"""deploy/mosquitto/mosquitto.conf on a real mosquitto, with the real deploy steps.

The TLS material comes from deploy/scripts/make-certs.sh (openssl), the password file and ACL from
``pantau provision``, and their installation (owners, modes) from deploy/scripts/install-secrets.sh,
exactly as docs/deploy.md says. Only the container paths, the listener (a free loopback port
instead of 8883 on all interfaces) and the owner uid (this machine's ``mosquitto`` user instead
of the image's 1883) are substituted. Started as root, mosquitto drops to its own user as in the
container, so a secret it cannot read fails the test.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import _mqtt
import paho.mqtt.client as mqtt
import pytest
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion

from pantau.tools import provision

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
INVENTORY = (
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,camera\n"
    "3310-bayat-01,33,3310,Bayat,camera\n"
)

#: MQTT 3.1.1 CONNECT, client id "p", clean session, keepalive 30, no credentials.
PLAIN_CONNECT = bytes([0x10, 13, 0, 4, *b"MQTT", 4, 2, 0, 30, 0, 1, *b"p"])


@dataclass(frozen=True)
class Installed:
    root: Path
    secrets: Path
    data: Path
    ca: Path
    other_ca: Path
    passwords: dict[str, str]
    owner: str


def _sh(*argv: str | Path, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not under pytest's tmp_path: its parents are 0700, which the mosquitto user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="pantau-broker-", dir="/tmp"))
    root.chmod(0o755)
    try:
        _sh(DEPLOY / "scripts" / "make-certs.sh", "-o", root / "certs", "localhost", "127.0.0.1")
        _sh(DEPLOY / "scripts" / "make-certs.sh", "-o", root / "other", "localhost", "127.0.0.1")
        (root / "inventory.csv").write_text(INVENTORY)
        _sh(
            REPO / ".venv" / "bin" / "pantau", "provision", root / "inventory.csv",
            "--out", root / "provisioned", "--broker-host", "localhost",
            "--ca-cert", root / "certs" / "ca.crt",
        )  # fmt: skip
        owner = "mosquitto" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        env = dict(os.environ, MOSQUITTO_UID=owner, COLLECTOR_UID=owner, ALERTMANAGER_UID=owner)
        _sh(
            DEPLOY / "scripts" / "install-secrets.sh", "-o", root / "secrets",
            root / "provisioned", root / "certs", env=env,
        )  # fmt: skip
        data = root / "data"
        data.mkdir()
        shutil.chown(data, owner)
        passwords = {
            "collector": (root / "provisioned" / "collector" / "password").read_text().strip()
        }
        for station in ("3310-juwiring-01", "3310-bayat-01"):
            path = root / "provisioned" / "stations" / station / "password"
            passwords[station] = path.read_text().strip()
        yield Installed(
            root, root / "secrets", data, root / "certs" / "ca.crt", root / "other" / "ca.crt",
            passwords, owner,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def deploy_conf(installed: Installed, port: int) -> str:
    """The repository's mosquitto.conf with container paths and the listener substituted."""
    text = CONF.read_text()
    replacements = {
        "/pantau/secrets/": f"{installed.secrets / 'broker'}/",
        "/mosquitto/data/": f"{installed.data}/",
        "\nlistener 8883\n": f"\nlistener {port} 127.0.0.1\n",
    }
    for old, new in replacements.items():
        assert old in text, f"{CONF} no longer has {old!r}: update this test"
        text = text.replace(old, new)
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert not [line for line in settings if "/pantau/" in line.replace(str(installed.root), "")]
    return text


def test_install_secrets_sets_owners_and_modes(installed: Installed) -> None:
    uid = pwd.getpwnam(installed.owner).pw_uid
    expected = {
        "broker/passwd": 0o600,
        "broker/acl": 0o600,
        "broker/server.key": 0o600,
        "broker/server.crt": 0o644,
        "broker/ca.crt": 0o644,
        "collector/password": 0o600,
        "collector/ca.crt": 0o644,
    }
    for name, mode in expected.items():
        st = (installed.secrets / name).stat()
        assert (st.st_uid, st.st_mode & 0o777) == (uid, mode), name
    for sub in ("broker", "collector", "alertmanager"):
        assert (installed.secrets / sub).stat().st_mode & 0o777 == 0o700


def test_deploy_conf_serves_tls_with_provisioned_users_and_acl(
    installed: Installed, tmp_path: Path
) -> None:
    port = procs.free_port()
    pw = installed.passwords
    own = "pantau/v1/33/3310/3310-juwiring-01/state"
    with _mqtt.mosquitto(deploy_conf(installed, port), tmp_path, port) as (proc, log):
        with _mqtt.client(port, "collector", pw["collector"], ca_file=installed.ca) as collector:
            assert collector.connack is not None
            assert not collector.connack.is_failure
            collector.subscribe("pantau/v1/#")
            with _mqtt.client(
                port, "3310-juwiring-01", pw["3310-juwiring-01"], ca_file=installed.ca
            ) as station:
                assert station.connack is not None
                assert not station.connack.is_failure
                assert not station.publish(own, b'{"x":1}', retain=True).is_failure
                assert station.publish("pantau/v1/33/3310/3310-bayat-01/state").value == 135
                assert station.publish("pantau/v1/34/3310/3310-juwiring-01/state").value == 135
            procs.wait_for(lambda: len(collector.received()) == 1, timeout=5)
            assert collector.received() == [(own, b'{"x":1}')]
        # wrong password over TLS: refused
        with _mqtt.client(port, "3310-bayat-01", "nope", ca_file=installed.ca) as wrong:
            assert wrong.connack is not None
            assert wrong.connack.is_failure
        # a client trusting another CA refuses the server; plain MQTT gets nowhere
        refused = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        refused.tls_set(ca_certs=str(installed.other_ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        with pytest.raises(ssl.SSLCertVerificationError):
            refused.connect("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(PLAIN_CONNECT)
            try:
                reply = sock.recv(16)
            except ConnectionResetError:
                reply = b""
        assert not reply.startswith(b"\x20"), "a CONNACK over plain TCP: the listener is not TLS"
        assert proc.poll() is None
        # logged while running (not held in a buffer until exit): what `docker logs` shows
        text = log.read_text()
        assert "u'3310-juwiring-01'" in text
        assert "disconnected, not authorised" in text
        assert "unknown ca" in text


def test_retained_states_survive_a_broker_restart(installed: Installed, tmp_path: Path) -> None:
    port = procs.free_port()
    pw = installed.passwords
    topic = "pantau/v1/33/3310/3310-bayat-01/status"
    conf = deploy_conf(installed, port)
    with (
        _mqtt.mosquitto(conf, tmp_path, port),
        _mqtt.client(port, "3310-bayat-01", pw["3310-bayat-01"], ca_file=installed.ca) as st,
    ):
        assert not st.publish(topic, b'{"status":"online"}', retain=True).is_failure
    # SIGTERM: mosquitto writes its persistence file on the way out
    assert (installed.data / "mosquitto.db").exists()
    with (
        _mqtt.mosquitto(conf, tmp_path, port),
        _mqtt.client(port, "collector", pw["collector"], ca_file=installed.ca) as collector,
    ):
        collector.subscribe("pantau/v1/+/+/3310-bayat-01/#")
        procs.wait_for(lambda: collector.received() != [], timeout=5)
        assert collector.received() == [(topic, b'{"status":"online"}')]


def _with_loader(installed: Installed, name: str) -> tuple[Path, str]:
    """A copy of the installed broker secrets plus a test-only user allowed to write the fleet's
    topics (to fill the broker with many stations' retained states over one connection)."""
    broker = installed.root / name
    shutil.copytree(installed.secrets / "broker", broker)
    password = "loader-pw"
    hashed = provision.hash_password(password, salt=b"0123456789ab")
    with (broker / "passwd").open("a") as fh:
        fh.write(f"loader:{hashed}\n")
    with (broker / "acl").open("a") as fh:
        fh.write("user loader\ntopic write pantau/v1/#\n")
    for path in (broker, *broker.iterdir()):
        shutil.chown(path, installed.owner)
    return broker, password


@pytest.mark.parametrize("deliberate", [True, False])
def test_max_queued_messages_lets_a_collector_get_every_retained_state(
    installed: Installed, tmp_path: Path, deliberate: bool
) -> None:
    """2,500 retained states arrive at once when the collector subscribes. With the config's
    max_queued_messages all of them reach it; with mosquitto's default (the control) most are
    dropped, which is why the config sets it."""
    stations = 2500
    broker, loader_pw = _with_loader(installed, f"queue-{deliberate}")
    port = procs.free_port()
    conf = deploy_conf(installed, port).replace(f"{installed.secrets / 'broker'}/", f"{broker}/")
    data = installed.root / f"queue-data-{deliberate}"
    data.mkdir()
    shutil.chown(data, installed.owner)
    conf = conf.replace(f"{installed.data}/", f"{data}/")
    if not deliberate:
        assert "\nmax_queued_messages 100000\n" in conf
        conf = conf.replace("\nmax_queued_messages 100000\n", "\n")
    with _mqtt.mosquitto(conf, tmp_path, port):
        with _mqtt.client(port, "loader", loader_pw, ca_file=installed.ca) as loader:
            infos = [
                loader.client.publish(
                    f"pantau/v1/33/3310/s{i:05d}/state", b"{}", qos=1, retain=True
                )
                for i in range(stations)
            ]
            procs.wait_for(
                lambda: all(i.mid in loader.acks for i in infos), timeout=60, what="PUBACKs"
            )
        with _mqtt.client(
            port, "collector", installed.passwords["collector"], ca_file=installed.ca
        ) as collector:
            collector.subscribe("pantau/v1/#")
            if deliberate:
                procs.wait_for(lambda: len(collector.received()) == stations, timeout=30)
            else:
                # settle: wait until nothing more arrives for a second
                seen = -1
                while seen != len(collector.received()):
                    seen = len(collector.received())
                    time.sleep(1.0)
            got = {t for t, _ in collector.received()}
    if deliberate:
        assert len(got) == stations
    else:
        assert len(got) < stations / 2, len(got)
