"""``pantau demo`` end to end: the README's first command replays Klaten 2016 and the five faults
show up (board API, terminal summary and, with Prometheus installed, Alertmanager notifications),
while the other 21 kecamatan are healthy. Real mosquitto / embedded broker, real collector, real
agent code on simulated hardware, real Prometheus and Alertmanager."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pantau.contract import klaten

FAULTY = {"Juwiring", "Bayat", "Cawas", "Gantiwarno", "Ceper"}


def run_demo(tmp_path: Path, *args: str, duration: int) -> tuple[dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LD_PRELOAD", "UMOCKDEV_DIR"}}
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "pantau.tools.cli", "demo",
            "--duration", str(duration),
            "--workdir", str(tmp_path / "work"),
            "--summary-json", str(summary),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 90,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(summary.read_text()), proc.stdout


def check_fleet(summary: dict[str, object], stdout: str) -> None:
    faults = summary["faults"]
    assert isinstance(faults, dict)
    assert set(faults) == FAULTY, stdout
    assert sorted(summary["ready"]) == sorted(set(klaten.KECAMATAN) - FAULTY)  # type: ignore[arg-type]
    assert summary["total"] == 26
    assert faults["Cawas"] == ["never reported"]
    assert sorted(p.split()[0] for p in faults["Juwiring"]) == sorted(klaten.DEVICE_CLASSES)
    # Bayat: the login service refuses the station (HTTP 403), never a network fault.
    (bayat,) = faults["Bayat"]
    assert "refuses this station (HTTP 403)" in bayat, bayat
    assert "network" not in bayat
    assert "layanan login menolak stasiun ini (HTTP 403)" in stdout
    assert "setelah instal ulang PC" in stdout  # the hint: the account, after the reinstall
    assert sorted(p.split()[0] for p in faults["Gantiwarno"]) == ["camera", "signature"]
    assert [p.split()[0] for p in faults["Ceper"]] == ["iris"]
    assert "== 21 of 26 kecamatan ready" in stdout
    assert "stopped." in stdout


def check_report(report_dir: Path, stdout: str) -> None:
    """``--report``: the demo's own run as an availability report (every hour counts)."""
    assert "report: " in stdout, stdout
    with (report_dir / "pantau-demo.csv").open() as fh:
        rows = {r["kecamatan"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(klaten.KECAMATAN)
    assert float(rows["Cawas"]["availability_pct"]) == 0  # never reported
    assert rows["Cawas"]["record_instead"] == "Trucuk;Pedan"  # both ready in the demo
    assert float(rows["Juwiring"]["availability_pct"]) < 100  # struck a few seconds in
    for kec in set(klaten.KECAMATAN) - FAULTY:
        assert float(rows[kec]["availability_pct"]) > 50, kec  # ready once their agents report
    assert (report_dir / "pantau-demo.pdf").read_bytes().startswith(b"%PDF")
    assert "Kabupaten Klaten" in (report_dir / "pantau-demo.html").read_text()


@pytest.mark.slow
def test_demo_with_mosquitto_prometheus_and_alertmanager(tmp_path: Path) -> None:
    for binary in ("mosquitto", "prometheus", "prometheus-alertmanager"):
        assert shutil.which(binary), f"{binary} must be installed (scripts/test installs it)"
    report_dir = tmp_path / "report"
    summary, stdout = run_demo(
        tmp_path, "--broker", "mosquitto", "--report", str(report_dir), duration=45
    )
    check_fleet(summary, stdout)
    check_report(report_dir, stdout)
    assert "per-station passwords + ACL" in stdout
    # The links printed are those that answer on Debian's packages (no UI at /alerts; the
    # Alertmanager has only its API), and the work dir given with --workdir is kept.
    assert "/classic/alerts (alerts page)" in stdout
    assert "/api/v2/alerts (alerts API)" in stdout
    assert "/alerts   " not in stdout.replace("/classic/alerts", "")
    assert f"Work dir kept: {tmp_path / 'work'}" in stdout
    alerts = summary["alerts"]
    assert isinstance(alerts, list)
    firing = {
        (a["labels"]["alertname"], a["labels"]["station"])
        for a in alerts
        if a["status"] == "firing"
    }
    assert ("PantauStationNeverReported", "3310-cawas-01") in firing
    assert ("PantauLoginRefused", "3310-bayat-01") in firing
    assert ("PantauLoginUnreachable", "3310-bayat-01") not in firing
    refused = next(
        a
        for a in alerts
        if a["labels"]["alertname"] == "PantauLoginRefused" and a["status"] == "firing"
    )
    assert refused["labels"]["status"] == "403"
    assert "bukan masalah jaringan" in refused["annotations"]["description"]
    assert "not a network fault" in refused["annotations"]["description_en"]
    # The demo shortens every "for" to 10 s; the text says so instead of a duration it did not wait.
    assert "lebih dari 10 detik" in refused["annotations"]["description"]
    for kec in ("Juwiring", "Gantiwarno", "Ceper"):
        assert ("PantauPeripheralMissing", klaten.station_id(kec)) in firing
    healthy = {klaten.station_id(k) for k in set(klaten.KECAMATAN) - FAULTY}
    assert not {station for _, station in firing} & healthy


@pytest.mark.slow
def test_demo_with_embedded_broker_when_mosquitto_is_absent(tmp_path: Path) -> None:
    summary, stdout = run_demo(tmp_path, "--broker", "embedded", "--no-prometheus", duration=20)
    check_fleet(summary, stdout)
    assert "embedded (amqtt)" in stdout


@pytest.mark.slow
def test_demo_removes_its_own_work_dir_unless_kept(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"LD_PRELOAD", "UMOCKDEV_DIR"}}
    env["TMPDIR"] = str(tmp_path)
    for keep in (False, True):
        proc = subprocess.run(
            [
                sys.executable, "-m", "pantau.tools.cli", "demo", "--duration", "3",
                "--no-prometheus", *(["--keep"] if keep else []),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        left = sorted(p.name for p in tmp_path.glob("pantau-demo-*"))
        if keep:
            assert len(left) == 1, left
            assert f"Work dir kept: {tmp_path / left[0]}" in proc.stdout
        else:
            assert left == [], left
            assert "work dir removed" in proc.stdout
