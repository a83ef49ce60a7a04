"""The availability recording rules under promtool: ready, office hours per zone, holidays,
outage age and the hourly minute counts; the holidays file's errors."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pantau.dashboards import availability as av
from pantau.dashboards import cli
from pantau.dashboards._yaml import dump_yaml

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)


def _promtool(
    tmp_path: Path, rules: dict[str, Any], tests: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yml").write_text(dump_yaml(rules))
    (tmp_path / "tests.yml").write_text(dump_yaml(tests))
    return subprocess.run(
        ["promtool", "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_rules_pass_their_promtool_tests(tmp_path: Path) -> None:
    result = _promtool(
        tmp_path, av.rules_document(av.TEST_HOLIDAYS), av.promtool_tests_document("rules.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_holiday_check_is_real(tmp_path: Path) -> None:
    """Without the holiday in the rules, Friday 08:30 WIB counts as office hours: the test fails."""
    result = _promtool(tmp_path, av.rules_document(()), av.promtool_tests_document("rules.yml"))
    assert result.returncode != 0
    assert "pantau:station_office_hours" in result.stdout + result.stderr


def test_a_wrong_outage_age_fails(tmp_path: Path) -> None:
    tests = av.promtool_tests_document("rules.yml")
    for check in tests["tests"][0]["promql_expr_test"]:
        if check["expr"] == av.OUTAGE and check["exp_samples"]:
            check["exp_samples"][0]["value"] = 1700
    result = _promtool(tmp_path, av.rules_document(av.TEST_HOLIDAYS), tests)
    assert result.returncode != 0


def test_office_hours_in_python_match_the_zones() -> None:
    monday_0830_wib = dt.datetime(2026, 11, 30, 1, 30, tzinfo=dt.UTC)
    assert av.office_open(monday_0830_wib, "wib")
    assert av.office_open(monday_0830_wib, "wita")  # 09:30 WITA
    assert not av.office_open(monday_0830_wib, "wib", [dt.date(2026, 11, 30)])
    assert av.zone_of("33") == "wib"
    assert av.zone_of("73") == "wita"
    assert av.zone_of("91") == "wit"


def test_holidays_file_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert av.parse_holidays("# x\n2026-08-17 Kemerdekaan\n\n2026-12-25,Natal\n") == (
        dt.date(2026, 8, 17),
        dt.date(2026, 12, 25),
    )
    with pytest.raises(av.HolidayError, match=r"h.txt:2: '17-08-2026' is not a date"):
        av.parse_holidays("2026-01-01\n17-08-2026\n", "h.txt")
    bad = tmp_path / "holidays.txt"
    bad.write_text("tomorrow\n")
    code = cli.main(["build", "--out", str(tmp_path / "out"), "--holidays", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"pantau dashboards: {bad}:1: 'tomorrow' is not a date (YYYY-MM-DD)"]
