"""Servers started by the harness fixtures are stopped even when the test using them fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.usb import REEXEC_GUARD

TESTS = Path(__file__).parent


def test_brokers_are_stopped_after_a_failing_test(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""\
            import os

            PIDS = {str(pidfile)!r}


            def test_fails_while_brokers_run(mosquitto, mosquitto_factory):
                tls = mosquitto_factory(auth=True, tls=True)
                with open(PIDS, "w") as f:
                    f.write(f"{{mosquitto.pid}} {{tls.pid}}")
                assert False, "deliberate failure"


            def test_brokers_are_gone_afterwards():
                for pid in map(int, open(PIDS).read().split()):
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        continue
                    raise AssertionError(f"mosquitto {{pid}} still running")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
    env.pop(REEXEC_GUARD, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "conftest",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "deliberate failure" in output, output
    assert "1 failed, 1 passed" in output, output
    assert len(pidfile.read_text().split()) == 2
