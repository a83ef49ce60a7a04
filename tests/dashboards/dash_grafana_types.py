"""Type-check dashboard JSON against Grafana's own TypeScript types with ``tsc --strict``.

Each dashboard becomes TypeScript: one ``const`` per panel, ``satisfies`` the type of its panel
plugin (``grafana-types/model.ts``: Grafana's panel options, field config, override properties,
Prometheus targets and transformations), and the dashboard ``satisfies Dashboard``. Object
literals are checked for excess properties, so an unknown key is an error just like a wrong
type or enum value.

The npm packages are installed by ``scripts/grafana-types install`` (run by ``scripts/test``);
:func:`types_dir` finds them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(__file__).resolve().parent / "grafana-types"
SCRIPT = ROOT / "scripts" / "grafana-types"

#: Panel type -> the type in model.ts it must satisfy.
PANEL_TYPES = {
    "stat": "StatPanel",
    "table": "TablePanel",
    "state-timeline": "StateTimelinePanel",
    "timeseries": "TimeSeriesPanel",
}

_ERROR = re.compile(
    r"^(?P<file>[^(]+)\((?P<line>\d+),(?P<col>\d+)\): error (?P<code>TS\d+): (?P<msg>.*)$"
)


@dataclass(frozen=True)
class TscError:
    line: int
    code: str
    message: str
    where: str  # the const (dashboard / panel) whose literal holds the line


def types_dir() -> Path:
    """The cache directory holding node_modules for the current lock (may not exist yet)."""
    out = subprocess.run([str(SCRIPT), "path"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def tsc_available() -> str | None:
    """None when the types are installed, else why not."""
    tsc = types_dir() / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        return f"Grafana's TypeScript types are not installed ({tsc} missing): run scripts/grafana-types install"
    if shutil.which("node") is None:
        return "node is not installed"
    return None


def grafana_frontend_intervals(cases: list[tuple[int, int, str]]) -> list[int]:
    """``intervalMs`` of Grafana's own ``rangeUtil.calculateInterval`` (pinned @grafana/data).

    Each case is ``(range in ms, maxDataPoints, lower interval limit)``; runs
    ``grafana-types/interval.mjs`` under node once for all of them.
    """
    modules = types_dir() / "node_modules"
    proc = subprocess.run(
        ["node", str(SRC / "interval.mjs")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        env=dict(os.environ, PANTAU_NODE_MODULES=str(modules)),
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"interval.mjs failed: {proc.stderr.strip()}")
    return [int(result["intervalMs"]) for result in json.loads(proc.stdout)]


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text)


def to_typescript(dashboards: dict[str, dict[str, Any]]) -> tuple[str, dict[int, str]]:
    """TypeScript source checking ``dashboards`` (name -> JSON), and line -> const name."""
    lines = [
        "import type { AnyPanel, Dashboard, StatPanel, TablePanel, StateTimelinePanel, "
        "TimeSeriesPanel } from './model';",
        "",
    ]
    owner: dict[int, str] = {}

    def emit(name: str, value: Any, type_name: str) -> None:
        body = json.dumps(value, indent=2, ensure_ascii=False).splitlines()
        lines.append(f"// {name}")
        start = len(lines) + 1
        lines.append(f"export const {_ident(name)} = {body[0]}")
        lines.extend(body[1:-1])
        lines.append(f"{body[-1]} satisfies {type_name};")
        for n in range(start, len(lines) + 1):
            owner[n] = name
        lines.append("")

    for board_name, board in dashboards.items():
        panel_names = []
        for panel in board.get("panels", []):
            name = (
                f"{board_name} panel {panel.get('id')} {panel.get('type')} {panel.get('title', '')}"
            )
            type_name = PANEL_TYPES.get(str(panel.get("type")), "AnyPanel")
            emit(name, panel, type_name)
            panel_names.append(_ident(name))
        rest = {k: v for k, v in board.items() if k != "panels"}
        body = json.dumps(rest, indent=2, ensure_ascii=False).splitlines()
        lines.append(f"// {board_name}")
        start = len(lines) + 1
        lines.append(f"export const {_ident(board_name)} = {{")
        lines.append(f'  "panels": [{", ".join(panel_names)}],')
        lines.extend(body[1:-1])
        lines.append("} satisfies Dashboard;")
        for n in range(start, len(lines) + 1):
            owner[n] = board_name
        lines.append("")
    return "\n".join(lines) + "\n", owner


def typecheck(dashboards: dict[str, dict[str, Any]], work: Path) -> tuple[list[TscError], str]:
    """Run ``tsc --strict --noEmit`` over ``dashboards``; the errors and tsc's full output."""
    modules = types_dir() / "node_modules"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(SRC / "model.ts", work / "model.ts")
    source, owner = to_typescript(dashboards)
    (work / "check.ts").write_text(source, encoding="utf-8")
    link = work / "node_modules"
    if not link.exists():
        link.symlink_to(modules)
    (work / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "strict": True,
                    "noEmit": True,
                    "target": "ES2022",
                    "module": "ESNext",
                    "moduleResolution": "Bundler",
                    # Grafana's own .d.ts files reference React, rxjs, ...; their internals are
                    # not what is checked here, only our literals against their types.
                    "skipLibCheck": True,
                    "types": [],
                },
                "files": ["check.ts"],
            }
        ),
        encoding="utf-8",
    )
    env = dict(os.environ, NODE_OPTIONS="--max-old-space-size=2048")
    proc = subprocess.run(
        [str(modules / ".bin" / "tsc"), "-p", str(work), "--pretty", "false"],
        check=False,
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    errors = []
    for raw in output.splitlines():
        match = _ERROR.match(raw)
        if match:
            line = int(match["line"])
            where = owner.get(line, "model.ts" if "model.ts" in match["file"] else "?")
            errors.append(TscError(line, match["code"], match["msg"], where))
    if proc.returncode != 0 and not errors:
        raise RuntimeError(f"tsc failed without a parsable error:\n{output}")
    return errors, output
