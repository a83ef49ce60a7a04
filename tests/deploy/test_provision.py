"""``pantau provision``: credentials, ACL and agent configs, checked against a real mosquitto and
the agent's own config loader."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import _mqtt
import pytest
from harness import procs

from pantau.agent.config import load_config, read_password
from pantau.contract.inventory import load_inventory
from pantau.tools import provision

REPO = Path(__file__).resolve().parents[2]
KLATEN = REPO / "deploy" / "inventory" / "klaten.csv"
HEADER = "station,provinsi,kabkota,kecamatan,device_classes\n"
SMALL = (
    HEADER
    + "3310-juwiring-01,33,3310,Juwiring,fingerprint;camera;signature\n"
    + "3310-bayat-01,33,3310,Bayat,camera\n"
    + "3311-bayat-01x,33,3311,Bayat,\n"
)


def run(tmp_path: Path, *args: str, inventory: Path | None = None) -> tuple[int, str, str]:
    """Run ``pantau provision`` in a subprocess (the real CLI: exit code, stdout, stderr)."""
    inv = inventory if inventory is not None else tmp_path / "inventory.csv"
    argv = [str(REPO / ".venv" / "bin" / "pantau"), "provision", str(inv), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def secrets_of(out: Path) -> dict[str, str]:
    found = {"collector": (out / "collector" / "password").read_text().strip()}
    for d in (out / "stations").iterdir():
        found[d.name] = (d / "password").read_text().strip()
    return found


# --------------------------------------------------------------------------- hashing


def test_hash_is_mosquitto_format_and_verifies() -> None:
    salt = bytes(range(12))
    hashed = provision.hash_password("s3cret", salt=salt, iterations=101)
    _, seven, iterations, salt_b64, key_b64 = hashed.split("$")
    assert (seven, iterations) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert len(base64.b64decode(key_b64)) == 64
    assert provision.verify_password(hashed, "s3cret")
    assert not provision.verify_password(hashed, "s3cret ")
    for bad in ("", "$6$101$x$y", "$7$abc$AAAA$AAAA", "$7$101$!!$AAAA", "plain"):
        assert not provision.verify_password(bad, "s3cret")


def test_verifies_a_hash_made_by_mosquitto_passwd(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(pwfile), "alice", "open sesame"], check=True
    )
    hashed = provision.parse_passwd(pwfile.read_text())["alice"]
    assert hashed.startswith("$7$")
    assert provision.verify_password(hashed, "open sesame")
    assert not provision.verify_password(hashed, "open sesame!")


# --------------------------------------------------------------------------- the real broker


def test_real_mosquitto_accepts_passwords_and_enforces_acl(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    out = tmp_path / "out"
    code, _, err = run(tmp_path, "--out", str(out), "--broker-host", "127.0.0.1", "--no-tls")
    assert code == 0, err
    pw = secrets_of(out)
    port = procs.free_port()
    conf = (
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {out / 'broker' / 'passwd'}\nacl_file {out / 'broker' / 'acl'}\n"
        f"persistence false\nlog_dest file {tmp_path / 'broker.log'}\nlog_type all\n"
        # As root, mosquitto drops to user mosquitto, which cannot read a 0600 root-owned file.
        "user root\n"
    )
    with (
        _mqtt.mosquitto(conf, tmp_path, port),
        _mqtt.client(port, "collector", pw["collector"]) as collector,
    ):
        assert collector.connack is not None
        assert not collector.connack.is_failure, collector.connack
        collector.subscribe("pantau/v1/#")
        with _mqtt.client(port, "3310-juwiring-01", pw["3310-juwiring-01"]) as station:
            assert station.connack is not None
            assert not station.connack.is_failure
            own = "pantau/v1/33/3310/3310-juwiring-01/state"
            assert not station.publish(own).is_failure
            # another station's id, and its own id under another region: both refused
            for other in (
                "pantau/v1/33/3310/3310-bayat-01/state",
                "pantau/v1/33/3311/3310-juwiring-01/state",
                "pantau/v1/33/3310/3310-juwiring-01x/state",
                "other/topic",
            ):
                assert station.publish(other).value == 135, other  # Not authorized
            procs.wait_for(lambda: own in [t for t, _ in collector.received()], timeout=5)
            # the collector may read but not write
            assert collector.publish(own).value == 135
        # wrong password and a stranger are refused at CONNECT
        with _mqtt.client(port, "3310-bayat-01", pw["3310-juwiring-01"]) as wrong:
            assert wrong.connack is not None
            assert wrong.connack.is_failure
        with _mqtt.client(port, "nobody", "x") as stranger:
            assert stranger.connack is not None
            assert stranger.connack.is_failure
        assert [t for t, _ in collector.received()] == [own]


# --------------------------------------------------------------------------- files and re-runs


def test_outputs_are_private_and_configs_load_with_the_agent_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_certs: Any
) -> None:
    ca = tmp_path / "ca.crt"  # a real CA: the agent's loader loads it as its connection will
    ca.write_bytes(Path(tls_certs.ca_cert).read_bytes())
    out = tmp_path / "out"
    code, stdout, stderr = run(
        tmp_path,
        "--out", str(out), "--broker-host", "mqtt.klaten.example", "--ca-cert", str(ca),
        inventory=KLATEN,
    )  # fmt: skip
    assert code == 0, stderr
    entries = load_inventory(KLATEN)
    pw = secrets_of(out)
    assert len(pw) == len(entries) + 1
    assert len(set(pw.values())) == len(pw)
    for secret in pw.values():
        assert len(secret) >= 32
        assert secret not in stdout
        assert secret not in stderr
    # iris has no catalog rule: said once, loudly, not silently dropped
    assert "'iris'" in stderr
    assert f"in {len(entries)} station configs" in stderr
    for path in out.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    for entry in entries:
        cfg_path = out / "stations" / entry.station / "agent.toml"
        cfg = load_config(cfg_path)
        assert cfg.station.id == entry.station
        assert (cfg.station.provinsi, cfg.station.kabkota) == (entry.provinsi, entry.kabkota)
        assert cfg.station.kecamatan == entry.kecamatan
        assert cfg.username == entry.station
        assert cfg.mqtt.host == "mqtt.klaten.example"
        assert cfg.mqtt.tls
        assert cfg.mqtt.effective_port() == 8883
        assert cfg.mqtt.ca_file == str(cfg_path.parent.resolve() / "ca.crt")
        assert Path(cfg.mqtt.ca_file).read_bytes() == ca.read_bytes()
        assert read_password(cfg) == pw[entry.station]
        assert set(cfg.device_classes) == set(entry.device_classes) - {"iris"}
        assert pw[entry.station] not in cfg_path.read_text()
        # the variant for the hardened systemd unit reads the password from its credential
        creds = tmp_path / "creds" / entry.station
        creds.mkdir(parents=True)
        (creds / "mqtt-password").write_text(pw[entry.station] + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
        unit_cfg = load_config(cfg_path.parent / "agent-systemd.toml")
        assert read_password(unit_cfg) == pw[entry.station]
        assert unit_cfg.station == cfg.station
        assert unit_cfg.devices == cfg.devices
        assert unit_cfg.mqtt.ca_file == cfg.mqtt.ca_file
    acl = (out / "broker" / "acl").read_text()
    assert "user collector\ntopic read pantau/v1/#\n" in acl
    assert "user 3310-cawas-01\ntopic write pantau/v1/33/3310/3310-cawas-01/#\n" in acl
    passwd = provision.parse_passwd((out / "broker" / "passwd").read_text())
    assert set(passwd) == set(pw)
    assert all(provision.verify_password(passwd[u], pw[u]) for u in pw)


def test_rerun_keeps_secrets_adds_new_rotates_on_request_and_revokes(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(SMALL)
    out = tmp_path / "out"
    args = ("--out", str(out), "--broker-host", "mqtt.example")
    assert run(tmp_path, *args)[0] == 0
    first = secrets_of(out)
    passwd_1 = (out / "broker" / "passwd").read_text()

    code, stdout, _ = run(tmp_path, *args)
    assert code == 0
    assert "0 new, 0 rotated, 4 unchanged" in stdout
    assert secrets_of(out) == first
    assert (out / "broker" / "passwd").read_text() == passwd_1  # no churn

    inv.write_text(SMALL + "3310-cawas-01,33,3310,Cawas,camera\n")
    code, stdout, _ = run(tmp_path, *args)
    assert "1 new, 0 rotated, 4 unchanged" in stdout
    second = secrets_of(out)
    assert {k: second[k] for k in first} == first
    assert "3310-cawas-01" in second

    code, stdout, _ = run(tmp_path, *args, "--rotate", "3310-bayat-01", "--rotate", "collector")
    assert code == 0
    third = secrets_of(out)
    changed = {k for k in second if second[k] != third[k]}
    assert changed == {"3310-bayat-01", "collector"}
    assert "rotated (install the new password files): collector, 3310-bayat-01" in stdout

    code, stdout, _ = run(tmp_path, *args, "--rotate-all")
    fourth = secrets_of(out)
    assert all(fourth[k] != third[k] for k in third)
    passwd = provision.parse_passwd((out / "broker" / "passwd").read_text())
    assert all(provision.verify_password(passwd[u], fourth[u]) for u in fourth)

    # a station removed from the inventory loses broker access
    inv.write_text(HEADER + "3310-juwiring-01,33,3310,Juwiring,camera\n")
    code, stdout, _ = run(tmp_path, *args)
    assert code == 0
    assert "revoked" in stdout
    assert "3310-bayat-01" in stdout
    passwd = provision.parse_passwd((out / "broker" / "passwd").read_text())
    assert set(passwd) == {"collector", "3310-juwiring-01"}
    assert "3310-bayat-01" not in (out / "broker" / "acl").read_text()
    assert provision.verify_password(passwd["3310-juwiring-01"], fourth["3310-juwiring-01"])


def test_lost_password_file_gets_a_new_secret(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    out = tmp_path / "out"
    args = ("--out", str(out), "--broker-host", "mqtt.example")
    assert run(tmp_path, *args)[0] == 0
    before = secrets_of(out)
    (out / "stations" / "3310-bayat-01" / "password").unlink()
    _code, stdout, _ = run(tmp_path, *args)
    assert "1 new" in stdout
    after = secrets_of(out)
    passwd = provision.parse_passwd((out / "broker" / "passwd").read_text())
    assert provision.verify_password(passwd["3310-bayat-01"], after["3310-bayat-01"])
    assert after["3310-juwiring-01"] == before["3310-juwiring-01"]


def test_template_settings_probes_and_rules_reach_every_station(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(
        HEADER + "3310-wedi-01,33,3310,Wedi,iris;camera\n3310-tulung-01,33,3310,Tulung,camera\n"
    )
    template = tmp_path / "site.toml"
    template.write_text(
        '[mqtt]\nhost = "broker.site"\nport = 18883\nkeepalive_s = 45\n\n'
        "[intervals]\nstate_s = 20.0\n\n"
        '[[devices]]\ndevice_class = "iris"\nvid = 0x1234\nname = "Site iris"\n\n'
        '[[devices]]\ndevice_class = "camera"\nvid = 0x04a9\npids = [0x32d9]\n\n'
        '[[devices]]\ndevice_class = "printer"\nvid = 0x0b0b\n\n'
        '[[probes]]\nname = "enroll"\nkind = "tcp"\ntarget = "10.0.0.5:443"\n'
    )
    out = tmp_path / "out"
    code, _, stderr = run(tmp_path, "--out", str(out), "--template", str(template))
    assert code == 0, stderr
    assert "warning: no USB rule" not in stderr  # (it warns that TLS has no --ca-cert)
    wedi = load_config(out / "stations" / "3310-wedi-01" / "agent.toml")
    assert (wedi.mqtt.host, wedi.mqtt.port, wedi.mqtt.keepalive_s) == ("broker.site", 18883, 45)
    assert wedi.intervals.state_s == 20.0
    assert [(d.device_class, d.vid, d.pids) for d in wedi.devices] == [
        ("iris", 0x1234, ()),
        ("camera", 0x04A9, (0x32D9,)),
    ]
    assert [p.name for p in wedi.probes] == ["enroll"]
    tulung = load_config(out / "stations" / "3310-tulung-01" / "agent.toml")
    assert tulung.device_classes == ("camera",)
    # the command line overrides the template's broker
    code, _, stderr = run(
        tmp_path, "--out", str(out), "--template", str(template), "--broker-host", "other.site"
    )
    assert code == 0, stderr
    assert load_config(out / "stations" / "3310-wedi-01" / "agent.toml").mqtt.host == "other.site"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("inventory", "extra", "message"),
    [
        (
            HEADER + "a b,33,3310,Bayat,camera\n",
            (),
            r"inventory.csv:2: station 'a b' is not a valid id",
        ),
        (
            HEADER + "collector,33,3310,Bayat,camera\n",
            (),
            "collector user 'collector' is also a station id",
        ),
        (SMALL, ("--rotate", "3310-nope-01"), "--rotate '3310-nope-01': not a station"),
        (SMALL, ("--collector-user", "a/b"), "collector user 'a/b' is not a valid name"),
        (SMALL, ("--broker-port", "70000"), "--broker-port 70000: not a port"),
        (
            SMALL,
            ("--broker-host", "bad host/with space"),
            "--broker-host 'bad host/with space': not a host name or IP address",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, inventory: str, extra: tuple[str, ...], message: str
) -> None:
    (tmp_path / "inventory.csv").write_text(inventory)
    out = tmp_path / "out"
    code, _stdout, stderr = run(tmp_path, "--out", str(out), "--broker-host", "h", *extra)
    assert code == 2
    assert message in stderr
    assert stderr.count("\n") == 1
    assert "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            '[station]\nid = "x"\nprovinsi = "33"\nkabkota = "3310"\n',
            "site.toml: station: set per station",
        ),
        ('[mqtt]\npassword_file = "pw"\n', "site.toml: mqtt.password_file: set per station"),
        ('[mqtt]\nhots = "x"\n', "site.toml: mqtt.hots: unknown key"),
        ('[[devices]]\ndevice_class = "camera"\nvid = 70000\n', "site.toml: devices[0].vid"),
        ("[mqtt\n", "site.toml: not valid TOML"),
    ],
)
def test_bad_template_is_one_line_and_exit_2(tmp_path: Path, template: str, message: str) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    (tmp_path / "site.toml").write_text(template)
    out = tmp_path / "out"
    code, _, stderr = run(
        tmp_path, "--out", str(out), "--broker-host", "h", "--template", str(tmp_path / "site.toml")
    )
    assert code == 2
    assert message in stderr, stderr
    assert stderr.count("\n") == 1
    assert not out.exists()


def test_missing_inventory_and_missing_broker_host(tmp_path: Path) -> None:
    code, _, stderr = run(tmp_path, "--out", str(tmp_path / "o"), "--broker-host", "h")
    assert code == 2
    assert "inventory.csv: file not found" in stderr
    (tmp_path / "inventory.csv").write_text(SMALL)
    code, _, stderr = run(tmp_path, "--out", str(tmp_path / "o"))
    assert code == 2
    assert "no broker host" in stderr


def test_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = run(tmp_path, "--out", str(blocker), "--broker-host", "h")
    assert code == 2
    assert "exists and is not a directory" in stderr
    code, _, stderr = run(tmp_path, "--out", str(blocker / "sub"), "--broker-host", "h")
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1


def test_cli_dispatch_and_no_world_readable_umask_leak(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    old = os.umask(0)
    try:
        code = provision.main(
            [str(tmp_path / "inventory.csv"), "--out", str(tmp_path / "o"), "--broker-host", "h"]
        )
    finally:
        os.umask(old)
    assert code == 0
    for path in (tmp_path / "o").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_systemd_variant_matches_the_unit() -> None:
    """agent-systemd.toml relies on deploy/systemd/pantau-agent.service's paths and credential."""
    unit = (REPO / "deploy" / "systemd" / "pantau-agent.service").read_text()
    assert "LoadCredential=mqtt-password:/etc/pantau/password" in unit
    assert "--config /etc/pantau/agent.toml" in unit
    assert provision.SYSTEMD_PASSWORD_FILE == "${CREDENTIALS_DIRECTORY}/mqtt-password"


def test_example_template_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "inventory.csv").write_text(SMALL)
    template = REPO / "deploy" / "inventory" / "agent-template.example.toml"
    out = tmp_path / "out"
    code, _, stderr = run(tmp_path, "--out", str(out), "--template", str(template))
    assert code == 0, stderr
    cfg = load_config(out / "stations" / "3310-juwiring-01" / "agent.toml")
    assert [p.name for p in cfg.probes] == ["enrollment-login"]
    assert cfg.mqtt.host == "mqtt.example.go.id"


def test_one_identity_per_collector_replica(tmp_path: Path) -> None:
    """``--collector-user`` repeated: each replica gets its own user, password file and ACL read
    grant (the broker binds client ids to user names, so replicas cannot share one)."""
    (tmp_path / "inventory.csv").write_text(SMALL)
    out = tmp_path / "out"
    args = ["--out", str(out), "--broker-host", "127.0.0.1", "--no-tls"]
    code, _, err = run(
        tmp_path, *args, "--collector-user", "collector-west", "--collector-user", "collector-east"
    )
    assert code == 0, err
    passwords = {
        u: (out / u / "password").read_text().strip() for u in ("collector-west", "collector-east")
    }
    assert len(set(passwords.values())) == 2
    assert not (out / "collector").exists()
    users = provision.parse_passwd((out / "broker" / "passwd").read_text())
    for user, password in passwords.items():
        assert provision.verify_password(users[user], password)
        assert (out / user).stat().st_mode & 0o777 == 0o700
    acl = (out / "broker" / "acl").read_text()
    assert "user collector-west\ntopic read pantau/v1/#\n" in acl
    assert "user collector-east\ntopic read pantau/v1/#\n" in acl
    # re-run with one replica fewer: its user is revoked, the other keeps its password
    code, out_text, err = run(tmp_path, *args, "--collector-user", "collector-west")
    assert code == 0, err
    assert "revoked" in out_text
    assert "collector-east" in out_text
    users = provision.parse_passwd((out / "broker" / "passwd").read_text())
    assert "collector-east" not in users
    assert (out / "collector-west" / "password").read_text().strip() == passwords["collector-west"]
    for bad in ("stations", "broker", "3310-bayat-01", "no/slash"):
        code, _, err = run(tmp_path, *args, "--collector-user", bad)
        assert code == 2, bad
        assert err.startswith("pantau provision: collector user"), err
