"""Bad command-line values of ``pantau simulate`` and ``pantau demo`` are one-line usage errors
(exit 2), never a traceback or a silently odd run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pantau.tools import demo, simulate


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "99999"], "is not a TCP port"),
        (["--port", "x"], "is not a whole number"),
        (["--stations", "-5"], "is not a fleet size"),
        (["--stations", "0"], "is not a fleet size"),
        (["--stations", "100000000"], "is not a fleet size"),
        (["--interval", "nan"], "is not a finite number"),
        (["--interval", "0"], "from 0.1 to 86400"),
        (["--interval", "1e308"], "from 0.1 to 86400"),
        (["--interval", "1e-300"], "from 0.1 to 86400"),
        (["--duration", "-1"], "0 (no limit) or a number of seconds"),
    ],
)
def test_simulate_rejects_bad_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        simulate.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--password-file", "/nonexistent/pw"], "cannot read /nonexistent/pw"),
        (["--tls", "--ca-file", "/nonexistent/ca.pem"], "--ca-file /nonexistent/ca.pem"),
        (["--faults", "unplug=2"], "is not a probability"),
    ],
)
def test_simulate_reports_bad_files_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_simulate_rejects_a_ca_file_that_is_not_pem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    assert simulate.main(["--tls", "--ca-file", str(bad)]) == 2
    assert f"--ca-file {bad}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--http-port", "99999"], "is not a TCP port"),
        (["--interval", "0"], "from 0.1 to 86400"),
        (["--interval", "nan"], "is not a finite number"),
        (["--interval", "1e308"], "from 0.1 to 86400"),
        (["--duration", "-1"], "0 (no limit) or a number of seconds"),
        (["--broker", "rabbit"], "invalid choice"),
    ],
)
def test_demo_rejects_bad_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        demo.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
