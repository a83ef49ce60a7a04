"""Collector config: defaults, the example file, and a table of invalid configs with exact errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import TlsCerts

from pantau.collector import config as cc
from pantau.collector.cli import main
from pantau.contract.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "collector" / "collector.example.toml"


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_empty_file_gives_documented_defaults(tmp_path: Path) -> None:
    cfg = cc.load(write(tmp_path, ""))
    assert cfg.mqtt.host == "127.0.0.1"
    assert cfg.mqtt.port == 1883
    assert cfg.mqtt.topics == ("pantau/v1/+/+/+/+",)
    assert cfg.mqtt.qos == 1
    assert (cfg.http.host, cfg.http.port, cfg.http.gzip_level) == ("127.0.0.1", 9108, 1)
    assert cfg.fleet.stale_after_intervals == 3.0
    assert cfg.fleet.max_unknown_stations == 1000
    assert cfg.fleet.device_classes == ("fingerprint", "iris", "camera", "signature")


def test_example_config_loads_and_resolves_relative_paths(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('inventory = ""', 'inventory = "inv.csv"')
    (tmp_path / "inv.csv").write_text("station,provinsi,kabkota,kecamatan,device_classes\n")
    cfg = cc.load(write(tmp_path, text))
    assert cfg.fleet.inventory == str(tmp_path / "inv.csv")
    assert cc.load(EXAMPLE).http.host == "127.0.0.1"


def test_deploy_shaped_config(tmp_path: Path, tls_certs: TlsCerts) -> None:
    (tmp_path / "pw").write_text("secret\n")
    (tmp_path / "ca.crt").write_bytes(tls_certs.ca_cert.read_bytes())  # a real CA: it is loaded
    cfg = cc.load(
        write(
            tmp_path,
            '[mqtt]\nhost = "mosquitto"\nport = 8883\ntls = true\nca_file = "ca.crt"\n'
            'username = "collector"\npassword_file = "pw"\n'
            'topics = ["pantau/v1/33/#", "$share/c/pantau/v1/34/+/+/+"]\n',
        )
    )
    assert cfg.mqtt.password_file == str(tmp_path / "pw")


INVALID = [
    ("[mqtt]\nprot = 1\n", "mqtt.prot: unknown key (check the spelling)"),
    ("[mqtt]\nport = 0\n", "mqtt.port: expected `int` >= 1"),
    ('[mqtt]\nport = "1883"\n', "mqtt.port: expected `int`, got `str`"),
    ('[mqtt]\nprotocol = "4"\n', "mqtt.protocol: invalid enum value '4'"),
    ("[mqtt]\ntopics = []\n", "mqtt.topics: expected `array` of length >= 1"),
    (
        '[mqtt]\ntopics = ["sensors/#"]\n',
        "mqtt.topics[0]: 'sensors/#': must start with pantau/v1/ (or $share/{group}/pantau/v1/)",
    ),
    (
        '[mqtt]\ntopics = ["pantau/v1/#/state"]\n',
        "mqtt.topics[0]: 'pantau/v1/#/state': '#' is allowed only as the last level",
    ),
    (
        '[mqtt]\ntopics = ["pantau/v1/3+/#"]\n',
        "mqtt.topics[0]: 'pantau/v1/3+/#': wildcards must occupy a whole level",
    ),
    (
        '[mqtt]\nprotocol = "3.1.1"\ntopics = ["$share/g/pantau/v1/#"]\n',
        'mqtt.topics[0]: shared subscriptions need mqtt.protocol = "5"',
    ),
    ('[mqtt]\npassword_file = "pw"\n', "mqtt.password_file: set mqtt.username too"),
    (
        '[mqtt]\nusername = "c"\npassword_file = "missing.pw"\n',
        "mqtt.password_file: file {tmp}/missing.pw not found",
    ),
    ('[mqtt]\nca_file = "ca.crt"\n', "mqtt.tls: certificate files are set but mqtt.tls is false"),
    (
        '[mqtt]\ntls = true\ncert_file = "c.pem"\n',
        "mqtt.cert_file: set both mqtt.cert_file and mqtt.key_file",
    ),
    (
        "[mqtt]\nreconnect_min_s = 10\nreconnect_max_s = 1\n",
        "mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s",
    ),
    ("[mqtt]\nqos = 2\n", "mqtt.qos: expected `int` <= 1"),
    (
        '[mqtt]\nport = 1884\nendpoints = ["a:1883"]\n',
        "mqtt.endpoints: set mqtt.endpoints or mqtt.host/mqtt.port, not both",
    ),
    ('[mqtt]\nendpoints = ["a:1883", "b"]\n', "mqtt.endpoints[1]: expected host:port, got 'b'"),
    ('[mqtt]\nendpoints = ["a:99999"]\n', "mqtt.endpoints[0]: port must be 1-65535, got 'a:99999'"),
    (
        '[mqtt]\nendpoints = ["a:1883", "a:1883"]\n',
        "mqtt.endpoints[1]: duplicate endpoint 'a:1883'",
    ),
    ("[http]\ngzip_level = 9\n", "http.gzip_level: expected `int` <= 6"),
    (
        '[http]\ntls_key_file = "k.pem"\n',
        "http.tls_cert_file: set both http.tls_cert_file and http.tls_key_file",
    ),
    (
        '[http]\nbasic_auth_user = "it"\n',
        "http.basic_auth_user: set exactly one of http.basic_auth_password_hash and http.basic_auth_password_file",
    ),
    (
        '[http]\nbasic_auth_password_hash = "x"\n',
        "http.basic_auth_user: required with a basic-auth password",
    ),
    (
        '[http]\nbasic_auth_user = "it"\nbasic_auth_password_hash = "md5$x"\n',
        "http.basic_auth_password_hash: not a pbkdf2_sha256$iterations$salt$hash value (make one with `pantau-collector hash-password`)",
    ),
    (
        "[fleet]\nstale_after_intervals = 0.5\n",
        "fleet.stale_after_intervals: expected `float` >= 1.0",
    ),
    ("[fleet]\nmax_unknown_stations = -1\n", "fleet.max_unknown_stations: expected `int` >= 0"),
    (
        '[fleet]\ndevice_classes = ["Camera"]\n',
        "fleet.device_classes[0]: expected `str` matching regex '^[a-z][a-z0-9_]{0,31}$'",
    ),
    (
        '[fleet]\ndevice_classes = ["iris", "iris"]\n',
        "fleet.device_classes: a device class is listed twice",
    ),
    ('[fleet]\ninventory = "nope.csv"\n', "fleet.inventory: file {tmp}/nope.csv not found"),
    ('log_level = "verbose"\n', "log_level: invalid enum value 'verbose'"),
    (
        "[mqtt\n",
        "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m.split(":")[0] for _, m in INVALID])
def test_invalid_configs_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        cc.load(path)
    assert str(exc.value) == f"{path}: " + message.replace("{tmp}", str(tmp_path))


def test_cli_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[http]\nprot = 1\n")
    res = subprocess.run(
        [sys.executable, "-m", "pantau.collector.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == f"pantau-collector: {path}: http.prot: unknown key (check the spelling)\n"


def test_cli_bad_inventory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = write(
        tmp_path,
        "station,provinsi,kabkota,kecamatan,device_classes\nbad id,33,3310,X,\n",
        "inv.csv",
    )
    path = write(tmp_path, f'[fleet]\ninventory = "{inv}"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pantau-collector: {inv}:2: station 'bad id' is not a valid id")
    assert err.count("\n") == 1


def test_cli_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "")
    assert main(["check-config", "--config", str(path)]) == 0
    assert "ok (broker 127.0.0.1:1883, HTTP 127.0.0.1:9108, 0 stations" in capsys.readouterr().out


def test_hash_password_round_trip() -> None:
    stored = cc.hash_password("rahasia", iterations=1000)
    assert cc.verify_password("rahasia", stored)
    assert not cc.verify_password("salah", stored)
    assert not cc.verify_password("rahasia", "garbage")


def _tls_files(tmp_path: Path, certs: TlsCerts) -> dict[str, Path]:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    return {
        "junk": tmp_path / "junk.pem",
        "ca": certs.ca_cert,
        "cert": certs.server_cert,
        "key": certs.server_key,
        "other_key": certs.other_ca_key,
    }


TLS_INVALID = [
    (
        '[mqtt]\ntls = true\nca_file = "{junk}"\n',
        "mqtt.ca_file: {junk}: not a PEM CA bundle (no certificate or crl found)",
    ),
    (
        '[mqtt]\ntls = true\ncert_file = "{junk}"\nkey_file = "{key}"\n',
        "mqtt.cert_file: {junk}: not a PEM certificate (no certificate or crl found)",
    ),
    (
        '[mqtt]\ntls = true\ncert_file = "{cert}"\nkey_file = "{junk}"\n',
        "mqtt.key_file: {junk}: not an unencrypted PEM private key for mqtt.cert_file",
    ),
    (
        '[mqtt]\ntls = true\ncert_file = "{cert}"\nkey_file = "{other_key}"\n',
        "mqtt.key_file: {other_key}: not an unencrypted PEM private key for mqtt.cert_file "
        "(key values mismatch)",
    ),
    (
        '[http]\ntls_cert_file = "{cert}"\ntls_key_file = "{junk}"\n',
        "http.tls_key_file: {junk}: not an unencrypted PEM private key for http.tls_cert_file",
    ),
    (
        '[http]\ntls_cert_file = "{ca}"\ntls_key_file = "{key}"\n',
        "http.tls_key_file: {key}: not an unencrypted PEM private key for http.tls_cert_file "
        "(key values mismatch)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"),
    TLS_INVALID,
    ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(TLS_INVALID)],
)
def test_tls_files_are_loaded_at_config_time(
    tmp_path: Path, tls_certs: TlsCerts, text: str, message: str
) -> None:
    files = _tls_files(tmp_path, tls_certs)
    path = write(tmp_path, text.format(**files))
    with pytest.raises(ConfigError) as exc:
        cc.load(path)
    assert str(exc.value) == f"{path}: " + message.format(**files)


def test_good_tls_files_load(tmp_path: Path, tls_certs: TlsCerts) -> None:
    files = _tls_files(tmp_path, tls_certs)
    cfg = cc.load(
        write(
            tmp_path,
            '[mqtt]\ntls = true\nca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
            '[http]\ntls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'.format(**files),
        )
    )
    assert cfg.mqtt.ca_file == str(files["ca"])


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_cli_ca_file_that_is_not_pem_is_one_line_and_exit_2(tmp_path: Path, command: str) -> None:
    junk = tmp_path / "ca.crt"
    junk.write_text("-----BEGIN NONSENSE-----\n")
    path = write(tmp_path, '[mqtt]\ntls = true\nca_file = "ca.crt"\n[http]\nport = 0\n')
    script = Path(sys.executable).parent / "pantau-collector"
    res = subprocess.run(
        [str(script), command, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr == (f"pantau-collector: {path}: mqtt.ca_file: {junk}: not a PEM CA bundle\n")


def test_an_encrypted_key_is_a_config_error_not_a_prompt(
    tmp_path: Path, tls_certs: TlsCerts
) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(tls_certs.server_key.read_bytes(), None)
    encrypted = tmp_path / "enc.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"rahasia"),
        )
    )
    path = write(
        tmp_path,
        f'[mqtt]\ntls = true\ncert_file = "{tls_certs.server_cert}"\nkey_file = "{encrypted}"\n',
    )
    with pytest.raises(ConfigError, match=r"mqtt\.key_file: .*not an unencrypted PEM private key"):
        cc.load(path)
