"""``pantau-agent`` as a user runs it (real processes, real psutil, real pyusb, real sockets)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pantau.agent.checks.host import PsutilReader, to_host
from pantau.agent.cli import service_config
from pantau.agent.config import DEFAULT_CONFIG_PATH

STATION = """
[station]
id = "3310-bayat-01"
provinsi = "33"
kabkota = "3310"
kecamatan = "Bayat"
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pantau.agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(STATION + "[mqtt]\nprot = 1883\n")
    out = run_cli("check", "--config", str(path))
    assert out.returncode == 2
    assert (
        out.stderr
        == f"pantau-agent: config error: {path}: mqtt.prot: unknown key (check the spelling)\n"
    )
    assert out.stdout == ""
    missing = run_cli("run", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr


def test_run_with_a_missing_or_broken_ca_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    (tmp_path / "not-a-cert.crt").write_text("hello\n")
    for name, message in (
        ("ca.crt", f"cannot read {tmp_path / 'ca.crt'}: No such file or directory"),
        ("not-a-cert.crt", f"{tmp_path / 'not-a-cert.crt'} is not a PEM CA certificate bundle"),
    ):
        path.write_text(STATION + f'[mqtt]\nhost = "127.0.0.1"\nport = 1\nca_file = "{name}"\n')
        out = run_cli("run", "--config", str(path))
        assert out.returncode == 2, out.stderr
        assert out.stderr == f"pantau-agent: config error: {path}: mqtt.ca_file: {message}\n"
    path.write_text(
        STATION + '[[probes]]\nname = "login"\nkind = "https"\ntarget = "http://[::1"\n'
    )
    out = run_cli("check", "--config", str(path))
    assert out.returncode == 2
    assert out.stderr == (
        f"pantau-agent: config error: {path}: probes[0].target: "
        "expected a https:// URL, got 'http://[::1' (Invalid IPv6 URL)\n"
    )


def test_check_healthy_exits_0_without_a_broker(tmp_path: Path, listening: int) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        STATION
        + '[mqtt]\nhost = "127.0.0.1"\nport = 1\n'  # nothing listens there: check never connects
        + f'[[probes]]\nname = "regional"\nkind = "tcp"\ntarget = "127.0.0.1:{listening}"\n'
    )
    out = run_cli("check", "--config", str(path), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert doc["healthy"] is True
    assert doc["problems"] == []
    assert doc["state"]["probes"][0]["up"] is True
    assert {c["name"] for c in doc["state"]["checks"]} == {"usb", "login", "host"}
    assert "no [[devices]] configured" in out.stderr


def test_check_tells_the_operator_what_is_missing(tmp_path: Path) -> None:
    pw = tmp_path / "password"
    pw.write_text("hunter2-secret")
    pw.chmod(0o644)
    path = tmp_path / "agent.toml"
    path.write_text(
        STATION
        + '[mqtt]\npassword_file = "password"\n'
        + '[[devices]]\ndevice_class = "camera"\nvid = 0x04a9\nname = "Canon EOS"\n'
        + '[[probes]]\nname = "login"\nkind = "tcp"\ntarget = "no-such-host.invalid:443"\n'
    )
    out = run_cli("check", "--config", str(path))
    assert out.returncode == 1
    text = out.stdout
    assert "[HILANG] Kamera / Camera: missing: Canon EOS (04a9:*)" in text
    assert "Kamera tidak terdeteksi: periksa kabel USB dan pastikan kamera menyala" in text
    assert "Camera not detected: check the USB cable" in text
    assert "[GAGAL]  login (tcp): network: dns" in text
    assert "HASIL / RESULT: 2 masalah / problem(s)" in text
    assert f"mqtt.password_file {pw} is readable by other users" in out.stderr
    assert "hunter2" not in out.stdout + out.stderr


def test_check_says_a_login_refusal_is_the_account_not_the_network(tmp_path: Path) -> None:
    import http.server
    import threading

    class Locked(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Locked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp_path / "agent.toml"
        path.write_text(
            STATION
            + '[mqtt]\nhost = "127.0.0.1"\nport = 1\n'
            + '[[probes]]\nname = "enrollment"\nkind = "http"\n'
            + f'target = "http://127.0.0.1:{server.server_address[1]}/login"\n'
        )
        out = run_cli("check", "--config", str(path))
        json_out = run_cli("check", "--config", str(path), "--json")
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 1
    text = out.stdout
    assert "[GAGAL]  enrollment (http): denied: http_status HTTP 403" in text
    assert "bukan masalah jaringan" in text
    assert "not a network fault" in text
    assert "reinstall" in text
    assert "VPN" not in text
    (problem,) = json.loads(json_out.stdout)["problems"]
    assert problem["summary"] == "denied: http_status HTTP 403"
    (probe,) = json.loads(json_out.stdout)["state"]["probes"]
    assert (probe["cause"], probe["status_code"]) == ("denied", 403)


def test_psutil_reader_reads_this_host() -> None:
    sample = PsutilReader().sample(["/", "/no/such/mount"])
    host, problem = to_host(sample, agent_start_ts=time.time())
    assert 0 < host.mem_available_bytes <= host.mem_total_bytes
    assert 0 < host.boot_ts < time.time()
    assert 0.0 <= host.cpu_ratio <= 1.0
    assert [d.mount for d in host.disks] == ["/"]
    assert host.disks[0].free_bytes <= host.disks[0].size_bytes
    assert problem.startswith("disk /no/such/mount: ")


def test_missing_libusb_is_a_clear_error_in_check_and_usb(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(STATION + '[[devices]]\ndevice_class = "camera"\nvid = 0x04a9\n')
    env = {"PANTAU_LIBUSB": str(tmp_path / "no-such-libusb-1.0.so")}  # real pyusb, no library
    out = run_cli("check", "--config", str(path), env=env)
    assert out.returncode == 1
    assert "[GAGAL]  Kamera / Camera: libusb_unavailable" in out.stdout
    assert (
        "usb: UsbUnavailable: libusb not found: install it (Debian/Ubuntu: apt-get install libusb-1.0-0"
        in out.stdout
    )
    listing = run_cli("usb", env=env)
    assert listing.returncode == 1
    assert listing.stderr.startswith("pantau-agent: libusb not found: install it")
    assert listing.stderr.count("\n") == 1


def test_check_reports_missing_ca_and_password_files_as_problems(tmp_path: Path) -> None:
    # The same config makes `run` exit 2; `check` must not call the station healthy.
    path = tmp_path / "agent.toml"
    path.write_text(
        STATION + '[mqtt]\nhost = "127.0.0.1"\nca_file = "ca.crt"\npassword_file = "password"\n'
    )
    out = run_cli("check", "--config", str(path))
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "KONFIGURASI / CONFIGURATION" in text
    ca, pw = tmp_path / "ca.crt", tmp_path / "password"
    assert f"[GAGAL]  mqtt.ca_file: cannot read {ca}: No such file or directory" in text
    assert f"[GAGAL]  mqtt.password_file: cannot read {pw}: No such file or directory" in text
    assert "salin lagi `ca.crt` stasiun ini" in text
    assert "copy this station's `password` file again" in text
    assert "HASIL / RESULT: 2 masalah / problem(s)" in text
    assert "Traceback" not in out.stderr
    doc = json.loads(run_cli("check", "--config", str(path), "--json").stdout)
    assert doc["healthy"] is False
    assert [(p["kind"], p["subject"]) for p in doc["problems"]] == [
        ("config", "mqtt.ca_file"),
        ("config", "mqtt.password_file"),
    ]
    assert all(p["hint_id"] and p["hint_en"] for p in doc["problems"])


def test_check_leaves_the_systemd_credential_to_systemd(tmp_path: Path) -> None:
    # agent-systemd.toml: the password exists only inside the unit ($CREDENTIALS_DIRECTORY).
    path = tmp_path / "agent.toml"
    path.write_text(
        STATION + '[mqtt]\nhost = "127.0.0.1"\n'
        'password_file = "${CREDENTIALS_DIRECTORY}/mqtt-password"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    out = subprocess.run(
        [sys.executable, "-m", "pantau.agent.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pantau-agent: note: mqtt.password_file comes from the systemd unit" in out.stderr
    assert "HASIL / RESULT: semua baik / all healthy" in out.stdout


def test_service_command_line_is_parsed_without_argparse_only_when_exact() -> None:
    assert service_config(["run", "--config", "/etc/pantau/agent.toml"]) == "/etc/pantau/agent.toml"
    assert service_config(["run"]) == DEFAULT_CONFIG_PATH
    # anything else goes to argparse: its help, abbreviations, usage errors
    for argv in (
        ["run", "--config"],
        ["run", "--config", "-x"],
        ["run", "--conf", "a.toml"],
        ["run", "--config=a.toml"],
        ["run", "--config", "a.toml", "--config", "b.toml"],
        ["run", "-h"],
        ["check", "--config", "a.toml"],
        [],
    ):
        assert service_config(argv) is None, argv


def test_usage_errors_still_come_from_argparse(tmp_path: Path) -> None:
    out = run_cli("run", "--config")
    assert out.returncode == 2
    assert out.stderr.endswith(
        "pantau-agent run: error: argument --config: expected one argument\n"
    )
    out = run_cli("run", "--conf", str(tmp_path / "none.toml"))  # an abbreviation, as before
    assert (out.returncode, out.stderr) == (
        2,
        f"pantau-agent: config error: {tmp_path / 'none.toml'}: file not found\n",
    )
    assert "usage: pantau-agent" in run_cli("--help").stdout


SERVICE = """
import os, signal, sys, threading, time
from pantau.agent.cli import main
def stop():
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=stop, daemon=True).start()
rc = main(["run", "--config", sys.argv[1]])
print(rc, " ".join(sorted(sys.modules)))
"""


def test_the_service_imports_neither_argparse_nor_pyudev(tmp_path: Path) -> None:
    """``pantau-agent run --config F`` (the unit's command) runs and stops on SIGTERM without
    loading argparse + gettext (0.4 MB RSS) or pyudev (0.45 MB; hotplug is a netlink socket)."""
    path = tmp_path / "agent.toml"
    path.write_text(
        STATION + '[mqtt]\nhost = "127.0.0.1"\nport = 1\ntls = false\n'
        f'[spool]\npath = "{tmp_path / "spool.sqlite"}"\n'
    )
    out = subprocess.run(
        [sys.executable, "-c", SERVICE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rc, modules = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert rc == "0"
    assert "pantau.agent.hotplug" in modules.split()  # hotplug was started (Linux)
    assert "hotplug unavailable" not in out.stderr
    for name in ("argparse", "gettext", "pyudev", "json"):
        assert name not in modules.split(), name
