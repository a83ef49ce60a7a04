"""Agent config: defaults, path resolution, warnings, rendering, and a table of invalid configs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pantau.agent import catalog
from pantau.agent.config import (
    AgentConfig,
    ConfigError,
    DeviceRule,
    StationSettings,
    default_spool_path,
    load_config,
    read_password,
    render_toml,
    split_host_port,
    warnings,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "agent" / "agent.example.toml"

STATION = """
[station]
id = "3310-juwiring-01"
provinsi = "33"
kabkota = "3310"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_has_documented_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, STATION))
    assert cfg.station.id == "3310-juwiring-01"
    assert cfg.mqtt.host == "localhost"
    assert cfg.mqtt.effective_port() == 8883
    assert cfg.mqtt.protocol == "5"
    assert cfg.mqtt.tls is True
    assert cfg.username == "3310-juwiring-01"
    assert cfg.client_id == "pantau-3310-juwiring-01"
    assert (cfg.intervals.state_s, cfg.intervals.heartbeat_s) == (21600.0, 55.0)
    assert cfg.intervals.poll_s == 10.0
    assert cfg.spool.max_events == 10_000
    assert cfg.devices == ()
    assert cfg.probes == ()


def test_example_config_loads() -> None:
    cfg = load_config(EXAMPLE, check_files=False)  # its ca.crt and password are not here
    assert cfg.device_classes == ("fingerprint", "iris", "camera", "signature")
    assert {p.kind for p in cfg.probes} == {"tcp", "https", "tls"}
    assert cfg.mqtt.password_file == str(REPO / "agent" / "password")
    with pytest.raises(ConfigError) as err:
        load_config(EXAMPLE)
    ca = REPO / "agent" / "ca.crt"
    assert str(err.value) == f"{EXAMPLE}: mqtt.ca_file: cannot read {ca}: No such file or directory"


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            STATION
            + '[mqtt]\nca_file = "ca.crt"\npassword_file = "/abs/pw"\n'
            + '[spool]\npath = "spool/s.sqlite"\n',
        ),
        check_files=False,
    )
    assert cfg.mqtt.ca_file == str(tmp_path / "ca.crt")
    assert cfg.mqtt.password_file == "/abs/pw"
    assert cfg.spool.path == str(tmp_path / "spool" / "s.sqlite")


def test_default_spool_path_prefers_systemd_state_directory() -> None:
    cfg = AgentConfig(station=StationSettings(id="a", provinsi="33", kabkota="3310"))
    assert default_spool_path(cfg, {"STATE_DIRECTORY": "/var/lib/x"}) == "/var/lib/x/spool.sqlite"
    assert default_spool_path(cfg, {}) == "/var/lib/pantau-agent/spool.sqlite"


def test_password_file_warning_and_reading(tmp_path: Path) -> None:
    pw = tmp_path / "password"
    pw.write_text("s3cret-token\n")
    os.chmod(pw, 0o644)
    cfg = load_config(write(tmp_path, STATION + '[mqtt]\npassword_file = "password"\n'))
    found = warnings(cfg)
    assert any("readable by other users" in w for w in found)
    assert not any("s3cret" in w for w in found)
    assert read_password(cfg) == "s3cret-token"
    os.chmod(pw, 0o600)
    assert not any("readable" in w for w in warnings(cfg))


def test_plaintext_password_warns(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x")
    os.chmod(tmp_path / "pw", 0o600)
    cfg = load_config(write(tmp_path, STATION + '[mqtt]\ntls = false\npassword_file = "pw"\n'))
    assert "mqtt.tls is false: the broker password travels unencrypted" in warnings(cfg)
    assert cfg.mqtt.effective_port() == 1883


def test_heartbeat_slower_than_keepalive_or_off_with_a_long_state_warns(tmp_path: Path) -> None:
    slow = load_config(write(tmp_path, STATION + "[intervals]\nheartbeat_s = 90\n"))
    assert any("keepalive pings are sent between heartbeats" in w for w in warnings(slow))
    off = load_config(write(tmp_path, STATION + "[intervals]\nheartbeat_s = 0\n"))
    assert any("stale only after 64800 s" in w for w in warnings(off))
    old = load_config(write(tmp_path, STATION + "[intervals]\nheartbeat_s = 0\nstate_s = 30\n"))
    assert not any("heartbeat" in w for w in warnings(old))
    assert not any("heartbeat" in w for w in warnings(load_config(write(tmp_path, STATION))))


def test_empty_password_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    path = write(tmp_path, STATION + '[mqtt]\npassword_file = "pw"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*pw is empty$"):
        load_config(path)
    cfg = load_config(path, check_files=False)
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*pw is empty"):
        read_password(cfg, "agent.toml")


def test_files_are_loaded_as_the_connection_will(tmp_path: Path, tls_certs: Any) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    (tmp_path / "pw").chmod(0o600)
    ca = tls_certs.ca_cert
    good = (
        STATION
        + f'[mqtt]\nca_file = "{ca}"\npassword_file = "pw"\n'
        + f'[[probes]]\nname = "p"\nkind = "tls"\ntarget = "h:443"\nca_file = "{ca}"\n'
    )
    assert load_config(write(tmp_path, good)).mqtt.ca_file == str(ca)
    # without TLS the broker CA is not used, and a tcp probe has no CA: neither is loaded
    unused = (
        STATION
        + '[mqtt]\ntls = false\nca_file = "none.crt"\n'
        + '[[probes]]\nname = "p"\nkind = "tcp"\ntarget = "h:443"\nca_file = "none.crt"\n'
    )
    assert load_config(write(tmp_path, unused)).mqtt.ca_file == str(tmp_path / "none.crt")
    (tmp_path / "empty.crt").write_text("")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, STATION + '[mqtt]\nca_file = "empty.crt"\n'))
    assert err.value.key == "mqtt.ca_file"
    assert err.value.message == f"{tmp_path / 'empty.crt'} is not a PEM CA certificate bundle"


def test_systemd_credential_path_outside_systemd_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = write(
        tmp_path, STATION + '[mqtt]\npassword_file = "${CREDENTIALS_DIRECTORY}/mqtt-password"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: mqtt.password_file: $CREDENTIALS_DIRECTORY is not set: this config is for the "
        "systemd unit, which sets it (LoadCredential=mqtt-password:...)"
    )


def test_render_toml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, check_files=False)
    text = render_toml(cfg, comment="generated\nfor a test")
    assert text.startswith("# generated\n# for a test\n")
    assert "vid = 0x04a9" in text
    again = load_config(write(tmp_path, text), check_files=False)
    assert again == cfg


def test_catalog_suggests_rules_that_render_and_load(tmp_path: Path) -> None:
    rules = catalog.suggest_rules(["fingerprint", "iris", "camera", "signature"])
    assert [r.device_class for r in rules] == ["fingerprint", "camera", "signature"]
    camera = next(r for r in rules if r.device_class == "camera")
    assert (camera.vid, camera.interface_class) == (0x04A9, catalog.STILL_IMAGE)
    cfg = AgentConfig(
        station=StationSettings(id="3310-bayat-01", provinsi="33", kabkota="3310"),
        devices=rules,
    )
    assert load_config(write(tmp_path, render_toml(cfg))) == cfg
    assert catalog.known_vendor(0x06A8) is not None
    assert catalog.known_vendor(0xFFFF) is None


def test_split_host_port() -> None:
    assert split_host_port("login.example:443") == ("login.example", 443)
    assert split_host_port("[::1]:8443") == ("::1", 8443)
    for bad in ("nohost", ":80", "h:0", "h:70000", "h:x"):
        with pytest.raises(ValueError):
            split_host_port(bad)


def test_device_class_limit() -> None:
    rules = "".join(f'[[devices]]\ndevice_class = "c{i}"\nvid = 0x0001\n' for i in range(17))
    with pytest.raises(ConfigError) as err:
        load_config_text(STATION + rules)
    assert str(err.value) == "F: devices: 17 device classes, at most 16 are allowed"


def load_config_text(text: str) -> AgentConfig:
    import tomllib

    from pantau.agent.config import convert_config

    return convert_config(tomllib.loads(text), "F", check_files=True)


PROBE = '[[probes]]\nname = "login"\nkind = "tcp"\ntarget = "10.0.0.1:443"\n'

INVALID = [
    ("", "F: station: required key is missing"),
    (STATION + "[mqtt]\nhots = 'x'\n", "F: mqtt.hots: unknown key (check the spelling)"),
    (STATION + "[mqtt]\nport = '1883'\n", "F: mqtt.port: expected `int`, got `str`"),
    (STATION + "[mqtt]\nport = 70000\n", "F: mqtt.port: expected `int` <= 65535"),
    (
        STATION + "[mqtt]\nprotocol = '3'\n",
        "F: mqtt.protocol: invalid enum value '3'",
    ),
    (STATION + "[mqtt]\nkeepalive_s = 1\n", "F: mqtt.keepalive_s: expected `int` >= 5"),
    (
        STATION + "[mqtt]\nreconnect_min_s = 60.0\nreconnect_max_s = 10.0\n",
        "F: mqtt.reconnect_min_s: must not exceed mqtt.reconnect_max_s",
    ),
    (
        STATION + "[intervals]\nheartbeat_s = 0.5\n",
        "F: intervals.heartbeat_s: must be 0 (off) or >= 1, got 0.5",
    ),
    (
        STATION + "[intervals]\nheartbeat_s = -1\n",
        "F: intervals.heartbeat_s: expected `float` >= 0.0",
    ),
    (
        STATION + '[mqtt]\nhost = "a"\nendpoints = ["b:1883"]\n',
        "F: mqtt.endpoints: set mqtt.endpoints or mqtt.host, not both",
    ),
    (
        STATION + '[mqtt]\nendpoints = ["a:1883", "b:"]\n',
        "F: mqtt.endpoints[1]: expected host:port, got 'b:'",
    ),
    (
        STATION + '[mqtt]\nendpoints = ["a:0"]\n',
        "F: mqtt.endpoints[0]: port must be 1-65535, got 'a:0'",
    ),
    (
        STATION + '[mqtt]\nendpoints = ["mqtt://a:1883"]\n',
        "F: mqtt.endpoints[0]: expected host:port, got 'mqtt://a:1883'",
    ),
    (
        STATION + '[mqtt]\nport = 1883\nendpoints = ["a", "a:1883"]\n',
        "F: mqtt.endpoints[1]: duplicate endpoint 'a:1883'",
    ),
    (
        STATION + '[mqtt]\nendpoints = [""]\n',
        "F: mqtt.endpoints[0]: expected `str` of length >= 1",
    ),
    (
        STATION + "[mqtt]\nendpoints = [" + ", ".join(f'"n{i}"' for i in range(17)) + "]\n",
        "F: mqtt.endpoints: expected `array` of length <= 16",
    ),
    (
        STATION + '[mqtt]\nendpoint_order = "random"\n',
        "F: mqtt.endpoint_order: invalid enum value 'random'",
    ),
    (
        '[station]\nid = "bad id"\nprovinsi = "33"\nkabkota = "3310"\n',
        "F: station.id: expected `str` matching regex '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\\\\Z'",
    ),
    (STATION + "[intervals]\npoll_s = 0.0\n", "F: intervals.poll_s: expected `float` > 0.0"),
    (STATION + "[spool]\nmax_events = 1\n", "F: spool.max_events: expected `int` >= 10"),
    (
        STATION + '[[devices]]\ndevice_class = "Camera"\nvid = 1193\n',
        "F: devices[0].device_class: expected `str` matching regex '^[a-z][a-z0-9_]{0,31}$'",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\n',
        "F: devices[0].vid: required key is missing",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\nvid = 0x10000\n',
        "F: devices[0].vid: expected `int` <= 65535",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\nvid = "04a9"\n',
        "F: devices[0].vid: expected `int`, got `str`",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\nvid = 1\npids = [2, 2]\n',
        "F: devices[0].pids: duplicate product id",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\nvid = 1\nusb_class = 256\n',
        "F: devices[0].usb_class: expected `int` <= 255",
    ),
    (
        STATION + '[[devices]]\ndevice_class = "camera"\nvid = 1\nclass = 6\n',
        "F: devices[0].class: unknown key (check the spelling)",
    ),
    (STATION + PROBE + PROBE, "F: probes[1].name: duplicate probe name 'login'"),
    (
        STATION + '[[probes]]\nname = "x"\nkind = "tcp"\ntarget = "10.0.0.1"\n',
        "F: probes[0].target: expected host:port, got '10.0.0.1'",
    ),
    (
        STATION + '[[probes]]\nname = "x"\nkind = "https"\ntarget = "http://a/"\n',
        "F: probes[0].target: expected a https:// URL, got 'http://a/'",
    ),
    (
        STATION + '[[probes]]\nname = "x"\nkind = "http"\ntarget = "http://a:99999/"\n',
        "F: probes[0].target: invalid port in URL",
    ),
    (
        STATION + '[[probes]]\nname = "x"\nkind = "icmp"\ntarget = "a"\n',
        "F: probes[0].kind: invalid enum value 'icmp'",
    ),
    (
        STATION + PROBE + "expect_status = [200]\n",
        "F: probes[0].expect_status: only for http and https probes",
    ),
    (
        STATION
        + '[[probes]]\nname = "x"\nkind = "http"\ntarget = "http://a/"\nexpect_status = [99]\n',
        "F: probes[0].expect_status[0]: expected `int` >= 100",
    ),
    (STATION + "[host]\ndisks = '/'\n", "F: host.disks: expected `array`, got `str`"),
    (STATION + "[log]\nlevel = 'verbose'\n", "F: log.level: invalid enum value 'verbose'"),
    (
        STATION + '[[probes]]\nname = "x"\nkind = "http"\ntarget = "http://[::1"\n',
        "F: probes[0].target: expected a http:// URL, got 'http://[::1' (Invalid IPv6 URL)",
    ),
    (
        STATION + "[mqtt]\nca_file = '/nonexistent/ca.crt'\n",
        "F: mqtt.ca_file: cannot read /nonexistent/ca.crt: No such file or directory",
    ),
    (
        STATION + f"[mqtt]\nca_file = '{EXAMPLE}'\n",  # a file, but no certificate in it
        f"F: mqtt.ca_file: {EXAMPLE} is not a PEM CA certificate bundle",
    ),
    (
        STATION + "[mqtt]\nca_file = '/'\n",
        "F: mqtt.ca_file: cannot read /: Is a directory",
    ),
    (
        STATION
        + '[[probes]]\nname = "x"\nkind = "https"\ntarget = "https://a/"\n'
        + "ca_file = '/nonexistent/ca.crt'\n",
        "F: probes[0].ca_file: cannot read /nonexistent/ca.crt: No such file or directory",
    ),
    (
        STATION + "[mqtt]\npassword_file = '/nonexistent/pw'\n",
        "F: mqtt.password_file: cannot read /nonexistent/pw: No such file or directory",
    ),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_configs(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text(text)
    assert str(err.value) == message


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent\.toml: file not found$"):
        load_config(tmp_path / "agent.toml")
    with pytest.raises(ConfigError, match=r"agent\.toml: not valid TOML"):
        load_config(write(tmp_path, "[station\n"))


def test_device_rule_is_frozen() -> None:
    rule = DeviceRule(device_class="camera", vid=0x04A9)
    with pytest.raises(AttributeError):
        rule.vid = 1  # type: ignore[misc]


def test_agent_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    import pantau.agent

    assert pantau.agent.__version__ == version("pantau")
