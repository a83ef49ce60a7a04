"""Prometheus rules with promtool, Alertmanager config with amtool, and the build itself."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from pantau.dashboards import DashboardsError, cli, routing
from pantau.dashboards.alerts import (
    Alert,
    Case,
    Expect,
    concrete_text,
    default_alerts,
    for_words,
    go_template,
)
from pantau.dashboards.availability import load_holidays
from pantau.dashboards.build import (
    ALERTMANAGER_PATH,
    HOLIDAYS_PATH,
    RULES_PATH,
    RULES_TEST_PATH,
    differences,
    render,
)
from pantau.dashboards.prometheus_rules import (
    promtool_tests_document,
    rules_document,
    write_rules_file,
)

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

pytestmark = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("amtool")),
    reason="promtool/amtool not installed (apt-get install prometheus prometheus-alertmanager)",
)


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("built")
    # The holidays file sits in the output directory, as in deploy/: the build reads it there.
    (out / HOLIDAYS_PATH).parent.mkdir(parents=True)
    shutil.copy(DEPLOY / HOLIDAYS_PATH, out / HOLIDAYS_PATH)
    assert cli.main(["build", "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- build


def test_committed_files_are_up_to_date(built: Path) -> None:
    """Fails when dashboards/*.py changed without `pantau dashboards build` being re-run."""
    files = render(holidays=load_holidays(DEPLOY / HOLIDAYS_PATH))
    stale = differences(DEPLOY, files)
    assert stale == [], f"out of date under deploy/: {stale}; run: pantau dashboards build"
    for rel in files:
        assert (built / rel).read_text() == (DEPLOY / rel).read_text(), rel


def test_check_flag_reports_out_of_date_files(built: Path, tmp_path: Path, capsys: Any) -> None:
    shutil.copytree(built, tmp_path / "deploy")
    assert cli.main(["build", "--out", str(tmp_path / "deploy"), "--check"]) == 0
    rules = tmp_path / "deploy" / RULES_PATH
    rules.write_text(rules.read_text().replace("for: 2m", "for: 20m"))
    stale_board = tmp_path / "deploy/grafana/provisioning/dashboards/pantau/old.json"
    stale_board.write_text("{}")
    assert cli.main(["build", "--out", str(tmp_path / "deploy"), "--check"]) == 1
    err = capsys.readouterr().err
    assert RULES_PATH in err
    assert "old.json" in err
    # A real build repairs both.
    assert cli.main(["build", "--out", str(tmp_path / "deploy")]) == 0
    assert not stale_board.exists()
    assert cli.main(["build", "--out", str(tmp_path / "deploy"), "--check"]) == 0


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(DashboardsError, match=r"unknown placeholder \{kecamtan\}"):
        go_template("di Kecamatan {kecamtan}", "$value")


# --------------------------------------------------------------------------- promtool


def test_promtool_check_rules_and_config(built: Path) -> None:
    res = run("promtool", "check", "rules", built / RULES_PATH)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(default_alerts())} rules found" in res.stdout
    res = run("promtool", "check", "config", built / "prometheus/prometheus.yml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_unit_tests_pass(built: Path) -> None:
    rules_dir = (built / RULES_TEST_PATH).parent
    res = run("promtool", "test", "rules", Path(RULES_TEST_PATH).name, cwd=rules_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_alert_has_fire_nofire_and_resolve_checks() -> None:
    doc = promtool_tests_document(default_alerts(), "x.yml")
    names = {t["name"] for t in doc["tests"]}
    assert names == {a.name for a in default_alerts()}
    for test in doc["tests"]:
        checks = test["alert_rule_test"]
        fired = [i for i, c in enumerate(checks) if c["exp_alerts"]]
        assert fired, f"{test['name']}: no check where it fires"
        assert any(not c["exp_alerts"] for c in checks[: fired[0]]), (
            f"{test['name']}: no quiet check before"
        )
        # Resolves: every alert that fired is absent in some later check.
        for i in fired:
            for alert in checks[i]["exp_alerts"]:
                assert any(alert not in c["exp_alerts"] for c in checks[i + 1 :]), (
                    f"{test['name']}: {alert['exp_labels']} never resolves"
                )
        # A control series that never fires: more input series than firing alerts.
        assert len(test["input_series"]) > max(len(c["exp_alerts"]) for c in checks)


_DURATION_RE = re.compile(
    r"(\d+)\s+(detik|menit|jam|hari|seconds?|minutes?|hours?|days?)\b", re.IGNORECASE
)
_UNIT_SECONDS = {
    "detik": 1, "second": 1, "menit": 60, "minute": 60, "jam": 3600, "hour": 3600,
    "hari": 86400, "day": 86400,
}  # fmt: skip


def _seconds(n: str, unit: str) -> int:
    return int(n) * _UNIT_SECONDS[unit.lower().rstrip("s")]


@pytest.mark.parametrize("for_override", [None, "7s", "3m"])
def test_texts_never_claim_a_duration_their_for_does_not_hold(for_override: str | None) -> None:
    """Every duration written in an alert's text is its ``for`` (as rendered, also when a test or
    the demo shortens it) or a range of its own query (``changes(...[1h])``)."""
    for alert in default_alerts():
        for_ = for_override or alert.for_
        allowed = {_seconds(*for_words_parts(for_))}
        allowed |= {
            int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u]
            for n, u in re.findall(r"\[(\d+)([smhd])\]", alert.query)
        }
        for key, text in alert.texts(for_).items():
            for n, unit in _DURATION_RE.findall(text):
                assert _seconds(n, unit) in allowed, (alert.name, key, text)
        if "{for_id}" in alert.description_id:
            assert for_words(for_)[0] in alert.texts(for_)["description"]


def for_words_parts(duration: str) -> tuple[str, str]:
    n, unit = for_words(duration)[1].split()
    return n, unit


def test_promtool_catches_a_wrong_expectation(tmp_path: Path) -> None:
    """The generated unit tests can fail: a wrong Indonesian text or threshold is caught."""
    alerts = default_alerts()
    (tmp_path / "r.yml").write_text(yaml.safe_dump(rules_document(alerts)))
    doc = promtool_tests_document(alerts, "r.yml")
    firing = next(c for c in doc["tests"][0]["alert_rule_test"] if c["exp_alerts"])
    firing["exp_alerts"][0]["exp_annotations"]["summary"] += " (salah)"
    (tmp_path / "t.yml").write_text(yaml.safe_dump(doc))
    res = run("promtool", "test", "rules", "t.yml", cwd=tmp_path)
    assert res.returncode != 0
    assert "(salah)" in res.stdout + res.stderr

    loose = [
        Alert(**{**a.__dict__, "threshold": 0.5}) if a.name == "PantauDiskAlmostFull" else a
        for a in alerts
    ]
    (tmp_path / "r.yml").write_text(yaml.safe_dump(rules_document(loose)))
    (tmp_path / "t.yml").write_text(yaml.safe_dump(promtool_tests_document(alerts, "r.yml")))
    res = run("promtool", "test", "rules", "t.yml", cwd=tmp_path)
    assert res.returncode != 0
    assert "PantauDiskAlmostFull" in res.stdout + res.stderr


def test_indonesian_summary_names_device_and_kecamatan() -> None:
    missing = next(a for a in default_alerts() if a.name == "PantauPeripheralMissing")
    labels = {"station": "3310-juwiring-01", "kecamatan": "Juwiring", "device_class": "fingerprint"}
    assert concrete_text(missing.summary_id, labels, 0).startswith(
        "Pemindai sidik jari tidak terdeteksi di Kecamatan Juwiring"
    )
    assert concrete_text(missing.summary_en, {**labels, "device_class": "signature"}, 0).startswith(
        "Signature pad not detected in Kecamatan Juwiring"
    )
    # A configured class without a shipped name still reads sensibly.
    assert concrete_text(missing.summary_id, {**labels, "device_class": "printer"}, 0).startswith(
        "Perangkat printer tidak terdeteksi"
    )


def test_rules_for_end_to_end_tests(tmp_path: Path) -> None:
    """write_rules_file shortens every `for` so that an e2e test sees firing in seconds."""
    path = write_rules_file(tmp_path / "pantau.rules.yml", for_override="1s", interval="1s")
    doc = yaml.safe_load(path.read_text())
    assert {r["for"] for g in doc["groups"] for r in g["rules"]} == {"1s"}
    assert {g["interval"] for g in doc["groups"]} == {"1s"}
    assert run("promtool", "check", "rules", path).returncode == 0


def test_case_expectations_must_be_exact(tmp_path: Path) -> None:
    """An alert that fires for the control station too would fail its promtool case."""
    base = next(a for a in default_alerts() if a.name == "PantauClockSkew")
    too_eager = Alert(**{**base.__dict__, "threshold": 1})  # the control station has 2 s skew
    case = Case(
        series=base.case.series,
        checks=(("30m", (Expect(base.case.checks[2][1][0].labels, 3600),)),),
    )
    alert = Alert(**{**too_eager.__dict__, "case": case})
    (tmp_path / "r.yml").write_text(yaml.safe_dump(rules_document([alert])))
    (tmp_path / "t.yml").write_text(yaml.safe_dump(promtool_tests_document([alert], "r.yml")))
    res = run("promtool", "test", "rules", "t.yml", cwd=tmp_path)
    assert res.returncode != 0
    assert "3310-juwiring-01" in res.stdout + res.stderr


# --------------------------------------------------------------------------- alertmanager


def test_amtool_check_config(built: Path) -> None:
    res = run("amtool", "check-config", built / ALERTMANAGER_PATH)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_amtool_rejects_a_route_to_an_undefined_time_interval(built: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((built / ALERTMANAGER_PATH).read_text())
    doc["route"]["routes"][1]["mute_time_intervals"] = ["luar-jam-kerja-mars"]
    (tmp_path / "am.yml").write_text(yaml.safe_dump(doc))
    res = run("amtool", "check-config", tmp_path / "am.yml")
    assert res.returncode != 0
    assert "luar-jam-kerja-mars" in res.stdout + res.stderr


def _route(built: Path, *labels: str) -> str:
    res = run(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={built / ALERTMANAGER_PATH}",
        "--tree",
        *labels,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.parametrize(
    ("provinsi", "zone_codes"),
    [("33", None), ("52", "51|52|53"), ("94", "81|82|91"), ("jawa-tengah", None)],
)
def test_office_hours_alerts_route_by_time_zone(
    built: Path, provinsi: str, zone_codes: str | None
) -> None:
    out = _route(
        built,
        "alertname=PantauPeripheralMissing",
        "hours=office",
        f"provinsi={provinsi}",
        "severity=critical",
    )
    assert "pantau-webhook" in out
    assert "pantau-it" in out
    if zone_codes:
        assert f'provinsi=~"{zone_codes}' in out
    else:  # WIB (and unknown provinces) take the catch-all office-hours route
        assert '{hours="office"}' in out
        assert "provinsi=~" not in out


def test_always_alerts_are_not_muted(built: Path) -> None:
    out = _route(built, "alertname=PantauCollectorDown", "hours=always", "severity=critical")
    assert "hours=" not in out  # only the root (and webhook) match: no mute timing applies


def _muted(intervals: list[dict[str, Any]], when: datetime) -> bool:
    """Evaluate our subset of Alertmanager's time_interval (weekdays, times, location)."""
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    for interval in intervals:
        local = when.astimezone(ZoneInfo(interval["location"]))
        day_ok = False
        for spec in interval.get("weekdays", []):
            lo, _, hi = spec.partition(":")
            span = days[days.index(lo) : days.index(hi or lo) + 1]
            day_ok |= days[local.weekday()] in span
        hhmm = local.strftime("%H:%M")
        times = interval.get("times") or [{"start_time": "00:00", "end_time": "24:00"}]
        if day_ok and any(t["start_time"] <= hhmm < t["end_time"] for t in times):
            return True
    return False


@pytest.mark.parametrize(
    ("zone", "utc", "muted"),
    [
        ("wib", "2026-11-30T01:00", False),  # Monday 08:00 WIB: office opens
        ("wib", "2026-11-30T00:59", True),  # Monday 07:59 WIB
        ("wib", "2026-11-30T08:59", False),  # Monday 15:59 WIB
        ("wib", "2026-11-30T09:00", True),  # Monday 16:00 WIB: closed
        ("wita", "2026-11-30T00:30", False),  # Monday 08:30 WITA (07:30 WIB)
        ("wit", "2026-11-29T23:30", False),  # Monday 08:30 WIT is still Sunday in UTC
        ("wib", "2026-11-29T23:30", True),  # ... but Monday 06:30 in WIB
        ("wit", "2026-11-28T03:00", True),  # Saturday noon WIT
    ],
)
def test_office_hours_follow_local_time(zone: str, utc: str, muted: bool) -> None:
    config = routing.alertmanager_config()
    intervals = next(
        t["time_intervals"] for t in config["time_intervals"] if t["name"].endswith(zone)
    )
    when = datetime.fromisoformat(utc).replace(tzinfo=ZoneInfo("UTC"))
    assert _muted(intervals, when) is muted


def test_cli_unwritable_output_is_one_clear_line(tmp_path: Path, capsys: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.main(["build", "--out", str(blocker)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"pantau dashboards: cannot write to {blocker}")


def test_cli_usage_errors_exit_2(capsys: Any) -> None:
    from pantau.tools import cli as pantau_cli

    with pytest.raises(SystemExit) as exc:
        pantau_cli.main(["dashboards"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        pantau_cli.main(["dashboards", "build", "--bogus"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
