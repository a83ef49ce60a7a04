"""The generated dashboards type-check against Grafana's own TypeScript types (tsc --strict).

Grafana publishes its dashboard model as npm packages versioned with Grafana (@grafana/schema,
@grafana/data, @grafana/prometheus). tests/dashboards/grafana-types pins them to the Grafana
version deploy/compose.yaml runs; scripts/test installs them (scripts/grafana-types, cached per
lock). See dash_grafana_types for how a dashboard becomes TypeScript.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from dash_grafana_types import ROOT, SRC, tsc_available, typecheck, types_dir

from pantau.dashboards._grafana_json import GRAFANA_VERSION
from pantau.dashboards.boards import all_dashboards

Board = dict[str, Any]


@pytest.fixture(scope="module")
def boards() -> dict[str, Board]:
    return all_dashboards()


@pytest.fixture(scope="module")
def tsc() -> None:
    reason = tsc_available()
    if reason:
        pytest.skip(reason)


def _report(errors: list[Any]) -> str:
    return "\n".join(f"{e.where}: line {e.line}: {e.code} {e.message[:300]}" for e in errors)


def test_every_dashboard_typechecks_against_grafana(
    tsc: None, boards: dict[str, Board], tmp_path: Path
) -> None:
    errors, _ = typecheck(boards, tmp_path)
    assert errors == [], _report(errors)
    # Every panel was checked against its own plugin's type, none fell back to the union.
    source = (tmp_path / "check.ts").read_text(encoding="utf-8")
    panels = sum(len(b["panels"]) for b in boards.values())
    assert (
        len(re.findall(r"satisfies (Stat|Table|StateTimeline|TimeSeries)Panel;", source)) == panels
    )


def _any(panel: Board) -> bool:
    return True


def _panel(board: Board, kind: str, pred: Callable[[Board], bool] = _any) -> Board:
    return next(p for p in board["panels"] if p["type"] == kind and pred(p))


def _has_override(panel: Board) -> bool:
    return bool(panel["fieldConfig"]["overrides"])


def _has_transformation(panel: Board) -> bool:
    return any(t["id"] == "organize" for t in panel.get("transformations", []))


def _set(path: str, value: Any) -> Callable[[Board], None]:
    """A mutation setting ``path`` (dots; ``[n]`` indexes) of a panel to ``value``."""

    def mutate(panel: Board) -> None:
        keys = re.findall(r"[^.\[\]]+", path)
        node: Any = panel
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _rename(path: str, new: str) -> Callable[[Board], None]:
    def mutate(panel: Board) -> None:
        *parents, last = path.split(".")
        node: Any = panel
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[new] = node.pop(last)

    return mutate


# (name, panel type, panel filter, mutation): each must make tsc fail on that panel.
PANEL_MISTAKES: list[tuple[str, str, Callable[[Board], bool], Callable[[Board], None]]] = [
    ("option typo", "stat", _any, _rename("options.colorMode", "colourMode")),
    ("wrong enum value", "stat", _any, _set("options.colorMode", "bakground")),
    ("unknown panel key", "timeseries", _any, _set("span", 12)),
    ("legacy table key", "table", _any, _set("styles", [])),
    ("deprecated intervalFactor", "timeseries", _any, _set("targets.0.intervalFactor", 2)),
    ("unknown target key", "state-timeline", _any, _set("targets.0.step", 10)),
    ("deprecated table displayMode", "table", _any, _set("fieldConfig.defaults.custom.displayMode", "color-background")),
    ("wrong type", "state-timeline", _any, _set("options.rowHeight", "0.9")),
    ("null for an unset key", "timeseries", _any, _set("interval", None)),
    ("wrong pluginVersion", "stat", _any, _set("pluginVersion", "10.4.0")),
    ("threshold mode typo", "stat", _any, _set("fieldConfig.defaults.thresholds.mode", "absolut")),
    ("unknown custom field option", "state-timeline", _any, _set("fieldConfig.defaults.custom.lineWidht", 1)),
    ("override property typo", "table", _has_override, _set("fieldConfig.overrides.0.properties.0.id", "custom.celOptions")),
    ("override value of the wrong type", "table", _has_override, _set("fieldConfig.overrides.0.properties.0.value", "red")),
    ("unknown matcher", "table", _has_override, _set("fieldConfig.overrides.0.matcher.id", "byNaem")),
    ("transformation option typo", "table", _has_transformation, _rename("transformations.0.options.excludeByName", "excludeByNam")),
    ("unknown transformation", "table", _has_transformation, _set("transformations.0.id", "organise")),
    ("value mapping type typo", "state-timeline", _any, _set("fieldConfig.defaults.mappings.0.type", "values")),
]  # fmt: skip

# Dashboard-level mistakes.
BOARD_MISTAKES: list[tuple[str, Callable[[Board], None]]] = [
    ("pre-Grafana-5 rows", lambda b: b.__setitem__("rows", [])),
    (
        "variable refresh out of range",
        lambda b: b["templating"]["list"][1].__setitem__("refresh", 3),
    ),
    ("old variable field", lambda b: b["templating"]["list"][1].__setitem__("useTags", False)),
    ("variable type typo", lambda b: b["templating"]["list"][1].__setitem__("type", "querry")),
    ("link without tooltip", lambda b: b["links"][0].pop("tooltip")),
    ("graphTooltip out of range", lambda b: b.__setitem__("graphTooltip", 5)),
]


def test_each_deliberate_mistake_fails_the_check(
    tsc: None, boards: dict[str, Board], tmp_path: Path
) -> None:
    cases: dict[str, Board] = {}
    for i, (name, kind, pred, mutate) in enumerate(PANEL_MISTAKES):
        holder = next(
            b for b in boards.values() if any(p["type"] == kind and pred(p) for p in b["panels"])
        )
        panel = copy.deepcopy(_panel(holder, kind, pred))
        mutate(panel)
        cases[f"mistake{i} {name}"] = {**copy.deepcopy(holder), "panels": [panel]}
    for j, (name, mutate) in enumerate(BOARD_MISTAKES, start=len(PANEL_MISTAKES)):
        board = copy.deepcopy(boards["pantau-fleet-overview"])
        mutate(board)
        cases[f"mistake{j} {name}"] = board
    # A control: the same construction without a mutation passes.
    cases["control"] = copy.deepcopy(boards["pantau-fleet-overview"])
    errors, output = typecheck(cases, tmp_path)
    by_case: dict[str, list[Any]] = {}
    for error in errors:
        case = next((c for c in cases if error.where.startswith(c)), error.where)
        by_case.setdefault(case, []).append(error)
    missed = [c for c in cases if c != "control" and c not in by_case]
    assert missed == [], f"tsc accepted: {missed}\n{output[:3000]}"
    assert "control" not in by_case, _report(by_case["control"])
    # The error is about the mutated panel itself, not only the dashboard holding it.
    for case in cases:
        if case.startswith("mistake") and int(case[7:].split()[0]) < len(PANEL_MISTAKES):
            assert any(" panel " in e.where for e in by_case[case]), (case, _report(by_case[case]))


# --------------------------------------------------------------------------- one Grafana version


def test_grafana_version_is_pinned_in_one_place(boards: dict[str, Board]) -> None:
    """deploy/compose.yaml, the npm packages and every panel follow GRAFANA_VERSION."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    image = compose["services"]["grafana"]["image"]
    assert image == f"grafana/grafana-oss:{GRAFANA_VERSION}", (
        f"deploy/compose.yaml runs {image}; pantau.dashboards._grafana_json.GRAFANA_VERSION is "
        f"{GRAFANA_VERSION}: change both (and tests/dashboards/grafana-types, see docs/dashboards.md)"
    )
    package = json.loads((SRC / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((SRC / "package-lock.json").read_text(encoding="utf-8"))
    grafana_packages = [name for name in package["dependencies"] if name.startswith("@grafana/")]
    assert sorted(grafana_packages) == ["@grafana/data", "@grafana/prometheus", "@grafana/schema"]
    for name in grafana_packages:
        assert package["dependencies"][name] == GRAFANA_VERSION, name
        assert lock["packages"][f"node_modules/{name}"]["version"] == GRAFANA_VERSION, name
    assert lock["packages"][""]["dependencies"] == package["dependencies"], "lock out of date"
    for board in boards.values():
        for panel in board["panels"]:
            assert panel["pluginVersion"] == GRAFANA_VERSION, panel["title"]


def test_installed_types_are_the_pinned_version(tsc: None) -> None:
    modules = types_dir() / "node_modules"
    for name in ("schema", "data", "prometheus"):
        installed = json.loads((modules / "@grafana" / name / "package.json").read_text())
        assert installed["version"] == GRAFANA_VERSION, name


def test_schema_version_is_the_pinned_grafanas(tsc: None, boards: dict[str, Board]) -> None:
    """schemaVersion is what this Grafana writes (defaultDashboard in @grafana/schema)."""
    source = (
        types_dir() / "node_modules/@grafana/schema/dist/esm/raw/dashboard/x/dashboard_types.gen.js"
    ).read_text(encoding="utf-8")
    found = re.search(r"schemaVersion:\s*(\d+)", source)
    assert found, "no schemaVersion in @grafana/schema's defaultDashboard"
    for name, board in boards.items():
        assert board["schemaVersion"] == int(found.group(1)), name
