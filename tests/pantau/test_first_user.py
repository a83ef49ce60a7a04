"""Rough edges a first user hits: each gets one clear line, never a traceback.

Real entry points in subprocesses; an optional dependency is made missing by a ``sys.modules``
entry of None in the child (what Python does when a module cannot be imported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMALL = (
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    "3310-juwiring-01,33,3310,Juwiring,fingerprint;camera;iris\n"
)


def python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LD_PRELOAD", "UMOCKDEV_DIR"}}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("module", "entry", "argv", "extra"),
    [
        ("prometheus_client", "pantau.collector.cli", ["run"], "collector"),
        ("paho", "pantau.agent.cli", ["run", "--config", "{config}"], "agent"),
        ("grafanalib", "pantau.tools.cli", ["dashboards", "build", "--check"], "dashboards"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(
    tmp_path: Path, module: str, entry: str, argv: list[str], extra: str
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[station]\nid = "3310-juwiring-01"\nprovinsi = "33"\nkabkota = "3310"\n'
        '[mqtt]\nhost = "127.0.0.1"\ntls = false\n'
        '[[devices]]\ndevice_class = "camera"\nvid = 0x04a9\n'
        '[[probes]]\nname = "enrollment"\nkind = "http"\ntarget = "http://127.0.0.1:1/"\n'
    )
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        f"from {entry} import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    out = python(code, *(a.format(config=config) for a in argv), cwd=REPO)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if "pip install" in line]
    assert len(lines) == 1, out.stderr
    assert f"pip install 'pantau[{extra}]'" in out.stderr
    assert repr(module) in out.stderr


def test_check_without_a_config_says_what_to_do_next(tmp_path: Path) -> None:
    out = python(
        "import sys; from pantau.agent.cli import main; sys.exit(main(sys.argv[1:]))",
        "check",
        "--config",
        str(tmp_path / "agent.toml"),
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert f"no config at {tmp_path / 'agent.toml'}" in out.stderr
    assert "pantau provision" in out.stderr
    assert "pantau-agent usb" in out.stderr


def test_provision_with_tls_and_no_ca_warns(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(SMALL)
    argv = "import sys; from pantau.tools.cli import main; sys.exit(main(sys.argv[1:]))"
    base = ["provision", str(inv), "--broker-host", "mqtt.example", "--iterations", "1000"]
    warned = python(argv, *base, "--out", str(tmp_path / "a"))
    assert warned.returncode == 0, warned.stderr
    assert "warning: TLS without --ca-cert" in warned.stderr
    assert "--ca-cert deploy/certs/ca.crt" in warned.stderr
    plain = python(argv, *base, "--out", str(tmp_path / "b"), "--no-tls")
    assert plain.returncode == 0, plain.stderr
    assert "TLS without --ca-cert" not in plain.stderr
    # A default-provisioned station expects the inventory's classes (iris has no catalog rule).
    agent_toml = (tmp_path / "a" / "stations" / "3310-juwiring-01" / "agent.toml").read_text()
    assert 'expects = ["fingerprint", "camera", "iris"]' in agent_toml
