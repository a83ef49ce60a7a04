"""Deploy files: the systemd unit verifies and is hardened; the WinSW service file is sound.

The Windows service is not run here (no Windows APIs on this machine): only its XML is checked.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pantau.agent.config import (
    DEFAULT_CONFIG_PATH,
    AgentConfig,
    StationSettings,
    default_spool_path,
    read_password,
)
from pantau.agent.config import load_config as load

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


INSTALL_RE = re.compile(r"install -m (0[0-7]{3}) (\S+) (\S+)")
DOCS = [REPO / "docs" / "agent.md", REPO / "docs" / "deploy.md"]


def documented_installs(doc: Path) -> dict[str, tuple[int, str]]:
    """``install -m MODE SRC DST`` commands of a doc: DST -> (mode, SRC); repeats must agree."""
    out: dict[str, tuple[int, str]] = {}
    for mode, src, dst in INSTALL_RE.findall(doc.read_text()):
        assert out.setdefault(dst, (int(mode, 8), src)) == (int(mode, 8), src), (doc.name, dst)
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_documented_linux_install_gives_the_unit_what_it_reads(
    doc: Path, tmp_path: Path, tls_certs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Follow the documented install commands on `pantau provision` output (into a scratch
    root), then start the agent's config loading the way the unit does: as a dynamic user
    (only files others may read) with the LoadCredential copy in $CREDENTIALS_DIRECTORY."""
    from pantau.tools import provision

    d = directives()
    assert d["DynamicUser"] == ["yes"]
    config_path = d["ExecStart"][0].split()[-1]
    assert Path(config_path).parent == Path("/etc") / d["ConfigurationDirectory"][0]
    [credential] = d["LoadCredential"]
    cred_name, _, cred_source = credential.partition(":")

    station = "3310-juwiring-01"
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        f"station,provinsi,kabkota,kecamatan,device_classes\n{station},33,3310,Juwiring,camera\n"
    )
    out = tmp_path / "provisioned"
    argv = [str(inventory), "--out", str(out), "--broker-host", "mqtt.example"]
    assert provision.main([*argv, "--ca-cert", str(tls_certs.ca_cert)]) == 0
    station_dir = out / "stations" / station

    installs = documented_installs(doc)
    assert installs[config_path][1].endswith("/" + provision.SYSTEMD_AGENT_CONFIG), installs
    assert installs[cred_source] == (0o600, "$S/password"), installs  # root-only on disk
    root = tmp_path / "root"
    for dst, (mode, src) in installs.items():
        if not src.startswith("$S/"):
            assert (REPO / src).is_file(), src  # the unit, from the repository
            continue
        target = root / dst.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((station_dir / src.removeprefix("$S/")).read_bytes())
        target.chmod(mode)

    creds = tmp_path / "credentials"  # what systemd does for LoadCredential
    creds.mkdir()
    (creds / cred_name).write_bytes((root / cred_source.lstrip("/")).read_bytes())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    installed = root / config_path.lstrip("/")
    cfg = load(installed)  # loads the CA and reads the password, as `run` does
    assert read_password(cfg) == (station_dir / "password").read_text().strip()
    # the dynamic user reads the config and every file it names without any privilege
    for path in (installed, Path(cfg.mqtt.ca_file)):
        assert path.is_relative_to(root), path
        assert path.stat().st_mode & stat.S_IROTH, path


def test_docs_do_not_ask_to_edit_the_password_path_by_hand() -> None:
    for doc in DOCS:
        text = " ".join(doc.read_text().split())
        assert "in `agent.toml` set `password_file" not in text, doc.name
        assert "set `password_file" not in text, doc.name


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
    assert ".\\install.ps1 -Station" in readme
    assert "## What has and has not run on Windows" in readme
