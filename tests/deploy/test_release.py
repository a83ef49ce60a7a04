"""Release artefacts: `scripts/release.py` builds the sdist, the wheel and the offline bundles.

- The Linux bundle is installed the way an IT officer does on a PC without internet: its
  install.sh runs in a network namespace with no network at all (``unshare -n``), into scratch
  roots instead of /opt and /etc, and the installed agent then runs `check` and `run` against a
  real mosquitto (TLS, the station's provisioned password), is upgraded (config, password and
  spool survive), and uninstalled.
- The Windows bundle cannot be installed here (no Windows): its wheel set is proven complete by
  pip resolving every pinned requirement for win_amd64 from the bundle alone, per Python; its
  PowerShell scripts are parsed with the tree-sitter PowerShell grammar. No PowerShell is
  installable from the package registries this project uses (Debian 12 has none; the npm
  package `pwsh` downloads PowerShell from GitHub at install time; PyPI has none), so the
  scripts have never run here.

The downloads are cached outside the tree (``PANTAU_RELEASE_CACHE``, default
``~/.cache/pantau-release``), keyed by the requirement set: only the first run needs the index.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from harness import Mosquitto
from harness.mosquitto import PANTAU_ACL
from harness.mqtt import MqttClient

import pantau
from pantau.contract import wire

REPO = Path(__file__).resolve().parents[2]
STATION = "3310-juwiring-01"
WATCHER_PASSWORD = "watcher-secret"


def _load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pantau_release", REPO / "scripts" / "release.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pantau_release"] = module
    spec.loader.exec_module(module)
    return module


release = _load_release()


def _no_network_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with only a down loopback) when this machine allows
    it; pip's --no-index and an empty pip configuration hold either way."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], check=False).returncode == 0:
        return [unshare, "-n"]
    if os.environ.get("CI"):
        pytest.fail("unshare -n is not available: cannot forbid the network for the install")
    return []


def _clean_env(**extra: str) -> dict[str, str]:
    """No PIP_* or proxy variables of this machine: the bundle must not need them."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, str(REPO / "scripts" / "release.py"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _bundle(built: Path, name: str) -> Path:
    return built / f"pantau-agent-{pantau.__version__}-{name}"


# --------------------------------------------------------------------------- sdist and wheel


def test_one_version_source_and_a_wheel_of_only_pantau(built: Path) -> None:
    ver = pantau.__version__
    assert release.version() == ver
    wheel = built / f"pantau-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert {n.split("/")[0] for n in names} == {"pantau", f"pantau-{ver}.dist-info"}
    # the symlinked components are real files in the wheel
    for module in ("agent/cli.py", "collector/fleet.py", "dashboards/alerts.py", "tools/cli.py"):
        assert f"pantau/{module}" in names, module
    with tarfile.open(built / f"pantau-{ver}.tar.gz") as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert f"pantau-{ver}/pyproject.toml" in members
    cli = members[f"pantau-{ver}/pantau/agent/cli.py"]
    assert cli.isfile(), "the sdist must hold files, not symlinks"
    # the check the release script makes fails on a wheel with a second package
    bad = built / "bad" / wheel.name
    bad.parent.mkdir()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(bad, "w") as dst:
        for n in src.namelist():
            dst.writestr(n, src.read(n))
        dst.writestr("agent/__init__.py", "")
    with pytest.raises(release.ReleaseError, match="expected only pantau"):
        release.check_wheel(bad, ver)


def test_bundles_hold_what_a_station_needs(built: Path) -> None:
    for name in ("linux-x86_64", "windows-x64"):
        root = _bundle(built, name)
        manifest = json.loads((root / "manifest.json").read_text())
        assert manifest["version"] == pantau.__version__
        assert manifest["pythons"] == list(release.PYTHONS)
        for py in release.PYTHONS:
            lock = (root / f"requirements-cp{py.replace('.', '')}.txt").read_text()
            assert f"pantau[agent]=={pantau.__version__} --hash=sha256:" in lock
            for line in lock.splitlines():
                if not line.startswith("#"):
                    assert " --hash=sha256:" in line, line
        # every file is listed in SHA256SUMS with its hash
        sums = dict(
            reversed(line.split("  ", 1)) for line in (root / "SHA256SUMS").read_text().splitlines()
        )
        files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        assert set(sums) == files - {"SHA256SUMS"}
        for rel, digest in sums.items():
            assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest, rel
    linux, windows = _bundle(built, "linux-x86_64"), _bundle(built, "windows-x64")
    assert (built / f"{linux.name}.tar.gz").is_file()
    assert (built / f"{windows.name}.zip").is_file()
    assert (linux / "pantau-agent.service").read_text() == (
        REPO / "deploy/systemd/pantau-agent.service"
    ).read_text()
    # Windows: the bundled libusb comes through the win32-only requirement; Linux has none
    for py in release.PYTHONS:
        tag = f"cp{py.replace('.', '')}"
        assert "libusb-package==" in (windows / f"requirements-{tag}.txt").read_text()
        assert "libusb-package" not in (linux / f"requirements-{tag}.txt").read_text()
    winsw = json.loads((windows / "manifest.json").read_text())["winsw"]
    assert winsw == {
        "version": "2.12.0",
        "file": "WinSW-x64.exe",
        "sha256": release.WINSW_SHA256,
        "install_as": "pantau-agent.exe",
    }
    script = (windows / "install.ps1").read_text()
    assert f'$WinSwSha256 = "{release.WINSW_SHA256}"' in script
    assert f'$WinSwFile = "{winsw["file"]}"' in script


def test_requirements_are_resolved_for_the_target_not_for_this_machine() -> None:
    """pip evaluates markers for the machine it runs on; the release script must not."""
    req = release.Requirement(
        "libusb-package>=1.0.26; sys_platform == 'win32' and extra == 'agent'"
    )
    win = release.environment(release.TARGETS["windows-x64"], "3.12")
    lin = release.environment(release.TARGETS["linux-x86_64"], "3.12")
    assert release._applies(req, win, ("agent",))
    assert not release._applies(req, lin, ("agent",))
    assert not release._applies(req, win, ())  # the extra is what asks for it


# --------------------------------------------------------------------------- Linux, installed


def _provision(tmp_path: Path, broker: Mosquitto, ca: Path) -> Path:
    from pantau.tools import provision

    inventory = tmp_path / "inventory.csv"
    inventory.write_text(
        f"station,provinsi,kabkota,kecamatan,device_classes\n{STATION},33,3310,Juwiring,camera\n"
    )
    out = tmp_path / "provisioned"
    assert broker.tls_port is not None
    argv = [str(inventory), "--out", str(out), "--broker-host", broker.host]
    argv += ["--broker-port", str(broker.tls_port), "--ca-cert", str(ca)]
    assert provision.main(argv) == 0
    return out / "stations" / STATION


def _install(bundle: Path, roots: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    env = _clean_env(
        PANTAU_PREFIX=str(roots["prefix"]),
        PANTAU_ETC=str(roots["etc"]),
        PANTAU_UNIT_DIR=str(roots["units"]),
        PANTAU_STATE_DIR=str(roots["state"]),
    )
    cmd = [*_no_network_prefix(), "sh", str(bundle / args[0]), *args[1:]]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _run_agent(
    venv: Path, config: Path, roots: dict[str, Path], broker: Mosquitto
) -> tuple[wire.State, str]:
    """Start the installed agent as the unit would (credential and state directories), wait for
    its state on the broker, stop it with SIGTERM; the state and the agent's log."""
    env = _clean_env(CREDENTIALS_DIRECTORY=str(roots["creds"]), STATE_DIRECTORY=str(roots["state"]))
    watcher = MqttClient(broker.host, broker.port, username="collector", password=WATCHER_PASSWORD)
    assert not watcher.connect().is_failure
    watcher.subscribe(f"pantau/v1/33/3310/{STATION}/#")
    agent = subprocess.Popen(
        [str(venv / "bin" / "pantau-agent"), "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        msg = watcher.expect(f"pantau/v1/33/3310/{STATION}/state", timeout=30)
        while msg.retain:  # the previous run's retained state: wait for this run's
            msg = watcher.expect(f"pantau/v1/33/3310/{STATION}/state", timeout=30)
        _topic, state = wire.decode(msg.topic, msg.payload)
        assert isinstance(state, wire.State)
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=20)
        assert agent.returncode == 0, out
        while True:  # the retained birth may come first
            msg = watcher.expect(f"pantau/v1/33/3310/{STATION}/status", timeout=10)
            _topic, bye = wire.decode(msg.topic, msg.payload)
            if not msg.retain and not (isinstance(bye, wire.Status) and bye.status == "online"):
                break
        assert isinstance(bye, wire.Status)
        assert (bye.status, bye.reason) == ("offline", "shutdown")
        return state, out
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        watcher.close()


@pytest.mark.slow
def test_linux_bundle_installs_offline_runs_upgrades_and_uninstalls(
    built: Path, tmp_path: Path, tls_certs: Any
) -> None:
    bundle = _bundle(built, "linux-x86_64")
    # the station's broker: TLS, the station's provisioned password, the deployment's ACL
    broker = Mosquitto(
        tmp_path / "broker",
        auth=True,
        tls=True,
        certs=tls_certs,
        users={"collector": WATCHER_PASSWORD},
        acl=PANTAU_ACL,
    )
    station_dir = _provision(tmp_path, broker, tls_certs.ca_cert)
    password = (station_dir / "password").read_text().strip()
    roots = {k: tmp_path / k for k in ("prefix", "etc", "units", "state", "creds")}

    # 1. first install, no network
    proc = _install(
        bundle, roots, "install.sh", "--station", str(station_dir), "--python", sys.executable
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    etc, prefix = roots["etc"], roots["prefix"]
    modes = {f: (etc / f).stat().st_mode & 0o777 for f in ("agent.toml", "ca.crt", "password")}
    assert modes == {"agent.toml": 0o644, "ca.crt": 0o644, "password": 0o600}
    assert (etc / "agent.toml").read_bytes() == (station_dir / "agent-systemd.toml").read_bytes()
    first = (prefix / "venv").resolve()
    assert (prefix / "venv").is_symlink()
    assert first.name.startswith(f"venv-{pantau.__version__}-")
    unit = (roots["units"] / "pantau-agent.service").read_text()
    assert f"ExecStart={prefix}/venv/bin/pantau-agent run --config {etc}/agent.toml" in unit
    assert f"LoadCredential=mqtt-password:{etc}/password" in unit
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is needed: scripts/test installs it"
    verify = subprocess.run(
        [analyze, "verify", str(roots["units"] / "pantau-agent.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr  # the unit as installed, paths rewritten
    # only the bundle's packages went into the agent's environment
    freeze = subprocess.run(
        [
            str(first / "bin" / "python"),
            "-I",
            "-c",
            "import importlib.metadata as m; print(sorted(d.metadata['Name'].lower() for d in m.distributions()))",
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert freeze.strip() == str(sorted(["msgspec", "paho-mqtt", "pantau", "psutil", "pyusb"]))

    # 2. the installed agent: check, then run against a real broker (TLS + password)
    broker.users = {STATION: password, "collector": WATCHER_PASSWORD}
    broker._write_config("")  # the provisioned password, now that it exists
    broker.start()
    try:
        roots["creds"].mkdir()
        (roots["creds"] / "mqtt-password").write_text(password + "\n")  # systemd's LoadCredential
        roots["state"].mkdir(mode=0o700)
        check = subprocess.run(
            [
                str(prefix / "venv/bin/pantau-agent"),
                "check",
                "--json",
                "--config",
                str(etc / "agent.toml"),
            ],
            env=_clean_env(CREDENTIALS_DIRECTORY=str(roots["creds"])),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 1, check.stderr  # the camera is not plugged in here
        assert json.loads(check.stdout)["station"] == STATION
        state, log = _run_agent(prefix / "venv", etc / "agent.toml", roots, broker)
        assert state.station == STATION
        assert state.agent_version == pantau.__version__
        assert [p.device_class for p in state.peripherals] == ["camera"]
        spool = roots["state"] / "spool.sqlite"
        assert spool.is_file(), log  # the unit's StateDirectory holds the spool
        before = {
            p: p.read_bytes() for p in (etc / "agent.toml", etc / "password", etc / "ca.crt", spool)
        }

        # 3. upgrade: a new environment, the same config, password and spool
        time.sleep(1.1)  # the environment's name has a one-second timestamp
        proc = _install(bundle, roots, "install.sh", "--python", sys.executable)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        second = (prefix / "venv").resolve()
        assert second != first
        assert first.is_dir(), "the previous environment is kept for a rollback"
        assert {p: p.read_bytes() for p in before} == before
        assert (etc / "password").stat().st_mode & 0o777 == 0o600
        state, _log = _run_agent(prefix / "venv", etc / "agent.toml", roots, broker)
        assert state.station == STATION
    finally:
        broker.stop()

    # 4. uninstall keeps the station's files and the spool; --purge removes them
    proc = _install(bundle, roots, "uninstall.sh")
    assert proc.returncode == 0, proc.stderr
    assert not prefix.exists()
    assert not (roots["units"] / "pantau-agent.service").exists()
    assert (etc / "password").is_file()
    assert spool.is_file()
    proc = _install(bundle, roots, "uninstall.sh", "--purge")
    assert proc.returncode == 0, proc.stderr
    assert not etc.exists()
    assert not roots["state"].exists()


def test_install_refuses_a_first_install_without_the_station_and_an_unknown_python(
    built: Path, tmp_path: Path
) -> None:
    bundle = _bundle(built, "linux-x86_64")
    roots = {k: tmp_path / k for k in ("prefix", "etc", "units", "state")}
    proc = _install(bundle, roots, "install.sh", "--python", sys.executable)
    assert proc.returncode == 2
    assert "first install: give --station DIR" in proc.stderr
    fake = tmp_path / "python2.7"
    fake.write_text("#!/bin/sh\necho cp27\n")
    fake.chmod(0o755)
    proc = _install(bundle, roots, "install.sh", "--python", str(fake))
    assert proc.returncode == 2
    assert "this bundle has wheels for CPython 3.11 3.12 3.13 only" in proc.stderr
    assert not roots["prefix"].exists()


# --------------------------------------------------------------------------- Windows, resolved


def _resolve_for_windows(
    wheels: Path, lock: Path, python: str, target: Path
) -> subprocess.CompletedProcess[str]:
    cmd = [
        *_no_network_prefix(),
        sys.executable, "-m", "pip", "install", "--isolated", "--dry-run", "--no-index",
        "--find-links", str(wheels), "--platform", "win_amd64", "--python-version", python,
        "--implementation", "cp", "--only-binary=:all:", "--require-hashes",
        "--target", str(target), "--disable-pip-version-check", "-r", str(lock),
    ]  # fmt: skip
    env = _clean_env(PIP_CONFIG_FILE=os.devnull)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("python", release.PYTHONS)
def test_windows_bundle_resolves_for_windows_from_the_bundle_alone(
    built: Path, tmp_path: Path, python: str
) -> None:
    bundle = _bundle(built, "windows-x64")
    lock = bundle / f"requirements-cp{python.replace('.', '')}.txt"
    proc = _resolve_for_windows(bundle / "wheels", lock, python, tmp_path / "target")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    would = next(line for line in proc.stdout.splitlines() if line.startswith("Would install"))
    names = {release.canonicalize_name(w.rsplit("-", 1)[0]) for w in would.split()[2:]}
    # libusb-package (the bundled libusb, Windows only) brings importlib-resources
    expected = {"libusb-package", "importlib-resources", "msgspec", "paho-mqtt", "pantau"}
    assert names == expected | {"psutil", "pyusb"}
    # the same resolution fails when a wheel is missing: the proof can fail
    partial = tmp_path / "partial"
    shutil.copytree(bundle / "wheels", partial)
    for whl in partial.glob("msgspec-*"):
        whl.unlink()
    proc = _resolve_for_windows(partial, lock, python, tmp_path / "target2")
    assert proc.returncode != 0
    assert "msgspec" in proc.stderr


def _powershell_errors(source: bytes) -> list[str]:
    import tree_sitter
    import tree_sitter_powershell

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(source)
    out: list[str] = []

    def walk(node: Any) -> None:
        if node.type == "ERROR" or node.is_missing:
            line = node.start_point[0] + 1
            out.append(f"line {line}: {source[node.start_byte : node.end_byte][:60]!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return out


@pytest.mark.parametrize("script", ["install.ps1", "uninstall.ps1"])
def test_powershell_scripts_parse(script: str) -> None:
    """Parsed by tree-sitter's PowerShell grammar (no PowerShell is installable here)."""
    source = (REPO / "deploy" / "windows" / script).read_bytes()
    assert _powershell_errors(source) == []
    # the parser does reject a broken script (an unclosed block)
    broken = source.replace(b"}", b"", 1)
    assert _powershell_errors(broken) != []
    text = source.decode()
    assert "Set-StrictMode" in text
    assert '$ErrorActionPreference = "Stop"' in text
    if script == "install.ps1":
        # offline only, hash-checked, the service account's rights by well-known SIDs
        assert "--no-index" in text
        assert "--require-hashes" in text
        assert "*S-1-5-19" in text
        assert "Get-FileHash -Algorithm SHA256" in text
