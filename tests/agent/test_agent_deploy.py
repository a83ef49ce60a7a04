"""Deploy files: the systemd unit verifies and is hardened; the WinSW service file is sound.

The Windows service is not run here (no Windows APIs on this machine): only its XML is checked.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agent.config import DEFAULT_CONFIG_PATH, AgentConfig, StationSettings, default_spool_path
from agent.config import load_config as load

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "pantau-agent.service"
WINSW = REPO / "deploy" / "windows" / "pantau-agent.xml"


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_is_hardened_and_consistent_with_the_agent_defaults() -> None:
    d = directives()
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "DevicePolicy": "closed",
        "DeviceAllow": "char-usb_device r",
        "CapabilityBoundingSet": "",
        "KillSignal": "SIGTERM",
        "Restart": "always",
    }.items():
        assert d.get(key) == [value], key
    assert "AF_NETLINK" in d["RestrictAddressFamilies"][0]  # udev hotplug
    exec_start = d["ExecStart"][0].split()
    assert exec_start[1:] == ["run", "--config", DEFAULT_CONFIG_PATH]
    cfg = AgentConfig(station=StationSettings(id="a", provinsi="33", kabkota="3310"))
    state_dir = "/var/lib/" + d["StateDirectory"][0]
    assert default_spool_path(cfg, {"STATE_DIRECTORY": state_dir}).startswith(state_dir)
    assert default_spool_path(cfg, {}) == f"{state_dir}/spool.sqlite"


def test_credentials_directory_in_password_file_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/pantau-agent.service")
    path = tmp_path / "agent.toml"
    path.write_text(
        '[station]\nid = "a"\nprovinsi = "33"\nkabkota = "3310"\n'
        '[mqtt]\npassword_file = "${CREDENTIALS_DIRECTORY}/mqtt-password"\n'
    )
    cfg = load(path, check_files=False)  # the credential exists only inside the unit
    assert cfg.mqtt.password_file == "/run/credentials/pantau-agent.service/mqtt-password"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = shutil.which("pantau-agent") or str(REPO / ".venv" / "bin" / "pantau-agent")
    unit = tmp_path / "pantau-agent.service"
    unit.write_text(UNIT.read_text().replace("/opt/pantau/venv/bin/pantau-agent", exe))
    out = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "pantau-agent.service" not in out.stderr, out.stderr


def test_winsw_service_definition() -> None:
    root = ET.parse(WINSW).getroot()  # noqa: S314 - our own file, not untrusted input
    assert root.tag == "service"
    assert root.findtext("id") == "pantau-agent"
    assert (root.findtext("executable") or "").endswith(r"\Scripts\pantau-agent.exe")
    args = root.findtext("arguments") or ""
    assert args.startswith("run --config ")
    assert r"%ProgramData%\pantau\agent.toml" in args
    assert root.findtext("stoptimeout") == "15 sec"
    assert root.find("onfailure") is not None
    assert root.findtext("serviceaccount/username") == r"NT AUTHORITY\LocalService"
    readme = (WINSW.parent / "README.md").read_text()
    assert "pantau-agent.exe install" in readme
    assert "not exercised" in readme
