"""The layer check (import-linter, configured in pyproject.toml) is real: it passes on the
tree as it is and fails when a lower layer imports a higher one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package tree (symlinks resolved) with the project's import contracts."""
    shutil.copytree(REPO / "pantau", tmp_path / "pantau", symlinks=False)
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_its_layers(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("contract/wire.py", "import pantau.collector.fleet", "layers"),
        ("agent/config.py", "import pantau.tools.provision", "layers"),
        ("agent/report.py", "import pantau.collector.fleet", "independent"),
        ("collector/board.py", "import pantau.dashboards.alerts", "independent"),
        ("contract/inventory.py", "import paho.mqtt.client", "stdlib + msgspec only"),
    ],
)
def test_an_upward_or_sideways_import_breaks_the_check(
    tree: Path, module: str, line: str, contract: str
) -> None:
    path = tree / "pantau" / module
    path.write_text(path.read_text() + f"\n{line}  # deliberate violation\n")
    result = _lint(tree)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if row.endswith("BROKEN")]
    assert any(contract in row for row in broken), result.stdout
