"""Hygiene rules of the code base that a linter does not know."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = [
    p
    for folder in ("agent", "collector", "dashboards", "pantau/contract", "pantau/tools")
    for p in sorted((REPO / folder).rglob("*.py"))
]
#: Loggers of libraries pantau quiets by name.
FOREIGN_LOGGERS = {"amqtt"}


def test_logger_names_are_pantau_component_module() -> None:
    """``logging.getLogger(__name__)`` (pantau.<component>.<module>) or such a literal name."""
    bad = []
    for path in RUNTIME:
        for name in re.findall(r"getLogger\(([^)]*)\)", path.read_text(encoding="utf-8")):
            literal = name.strip("\"'")
            if name == "__name__" or literal in FOREIGN_LOGGERS:
                continue
            if not re.fullmatch(
                r"pantau\.(agent|collector|dashboards|contract|tools)\.\w+(\.\w+)*", literal
            ):
                bad.append(f"{path.relative_to(REPO)}: getLogger({name})")
    assert bad == []


def test_one_import_style_for_test_helpers() -> None:
    """Helpers are imported by module name (``from harness import ...``, ``import _mqtt``): pytest
    puts each test directory on ``sys.path``. A second spelling (``tests.harness``) would load a
    second copy of the module, with its own process registry and exception classes."""
    bad = [
        f"{path.relative_to(REPO)}: {line.strip()}"
        for path in sorted((REPO / "tests").rglob("*.py"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(from|import) tests\b", line)
    ]
    assert bad == []
