"""Small helpers over grafanalib: datasource, variables, value mappings, layout."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grafanalib.core as g

from pantau.dashboards import DashboardsError
from pantau.dashboards import metrics as m
from pantau.dashboards._grafana_json import modernize

#: The provisioned Prometheus datasource (deploy/grafana/provisioning/datasources).
DATASOURCE_UID = "pantau-prometheus"
#: Every panel and target queries the dashboard's datasource variable.
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Matchers narrowing per-station series to the selected region.
REGION = ",".join(f'{label}=~"${label}"' for label in m.REGION_LABELS)
GREEN, RED, ORANGE, GREY = "green", "red", "orange", "text"


def target(expr: str, ref: str = "A", legend: str = "", *, instant: bool = False) -> g.Target:
    return g.Target(
        expr=expr,
        refId=ref,
        legendFormat=legend,
        instant=instant,
        format="table" if instant else "time_series",
        datasource=DATASOURCE,
    )


def datasource_variable() -> g.Template:
    return g.Template(
        name="datasource",
        label="Datasource",
        query="prometheus",
        type="datasource",
        default="Prometheus",
    )


def region_variables() -> list[g.Template]:
    """provinsi -> kabkota -> kecamatan, each narrowing the next (all selected by default)."""
    out = []
    outer: list[str] = []
    for label in m.REGION_LABELS:
        matchers = ",".join(f'{o}=~"${o}"' for o in outer)
        sel = f"{m.STATION_UP}{{{matchers}}}" if matchers else m.STATION_UP
        out.append(query_variable(label, label.capitalize(), f"label_values({sel}, {label})"))
        outer.append(label)
    return out


def query_variable(name: str, label: str, query: str, *, include_all: bool = True) -> g.Template:
    return g.Template(
        name=name,
        label=label,
        query=query,
        dataSource=DATASOURCE,
        includeAll=include_all,
        multi=include_all,
        allValue=".*" if include_all else None,
        refresh=2,  # on time range change: new stations appear without a reload
        sort=1,
    )


def value_map(mapping: Mapping[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """``{value: (text, color)}`` -> Grafana value mappings."""
    return [
        {
            "type": "value",
            "options": {
                str(value): {"text": text, "color": color, "index": i}
                for i, (value, (text, color)) in enumerate(sorted(mapping.items()))
            },
        }
    ]


PRESENT_MAP = value_map({0: ("Hilang / Missing", RED), 1: ("Ada / Present", GREEN)})
UP_MAP = value_map({0: ("Offline", RED), 1: ("Online", GREEN)})
READY_MAP = value_map({0: ("Tidak siap / Not ready", RED), 1: ("Siap / Ready", GREEN)})
LOGIN_MAP = value_map({0: ("Gagal / Down", RED), 1: ("OK", GREEN)})
CONNECTED_MAP = value_map(
    {0: ("Terputus / Disconnected", RED), 1: ("Terhubung / Connected", GREEN)}
)


def hide_columns(*names: str) -> dict[str, Any]:
    """An ``organize`` transformation hiding table columns (Time, Value, __name__, ...)."""
    return {
        "id": "organize",
        "options": {
            "excludeByName": dict.fromkeys(names, True),
            "indexByName": {},
            "renameByName": {},
        },
    }


def layout(rows: Iterable[Sequence[tuple[Any, int, int]]]) -> list[Any]:
    """Place panels row by row in Grafana's 24-column grid and number them 1, 2, ...

    Each row is a list of ``(panel, width, height)``; ids follow reading order so that the
    first panel of a dashboard (the one alerts link to) is id 1.
    """
    placed = []
    y = 0
    next_id = 1
    for row in rows:
        x = 0
        height = 0
        for panel, w, h in row:
            panel.gridPos = g.GridPos(h=h, w=w, x=x, y=y)
            panel.id = next_id
            next_id += 1
            x += w
            height = max(height, h)
            placed.append(panel)
        if x > 24:
            raise DashboardsError(f"row at y={y} is {x} columns wide (max 24)")
        y += height
    return placed


def dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    variables: list[g.Template],
    panels: list[Any],
    links: list[dict[str, Any]],
) -> dict[str, Any]:
    board = g.Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["pantau"],
        timezone="browser",
        refresh="30s",
        editable=False,
        time=g.Time("now-24h", "now"),
        templating=g.Templating(list=variables),
        panels=panels,
        links=links,
    )
    data: dict[str, Any] = board.to_json_data()
    # Round-trip through grafanalib's encoder so that nested objects become plain JSON.
    import json

    from grafanalib._gen import DashboardEncoder

    out: dict[str, Any] = json.loads(json.dumps(data, cls=DashboardEncoder))
    out["schemaVersion"] = 39
    for variable in out["templating"]["list"]:
        if variable.get("includeAll"):
            variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
        if variable["type"] == "datasource":
            variable["current"] = {"selected": True, "text": "Prometheus", "value": DATASOURCE_UID}
    for panel in out["panels"]:
        # grafanalib leaves "" or [] when a panel sets no thresholds; Grafana wants a base step.
        thresholds = panel["fieldConfig"]["defaults"]["thresholds"]
        if not isinstance(thresholds.get("steps"), list) or not thresholds["steps"]:
            thresholds["steps"] = [{"color": GREEN, "value": None}]
        # grafanalib's Table writes mappings at the panel's top level, where Grafana 8+ ignores
        # them (ours are in fieldConfig); drop the misleading empty key.
        if panel.get("type") == "table" and panel.get("mappings") == []:
            del panel["mappings"]
    return modernize(out)


def dashboard_link(title: str, uid: str, slug: str) -> dict[str, Any]:
    return {
        "title": title,
        "type": "link",
        "url": f"/d/{uid}/{slug}",
        "includeVars": True,
        "keepTime": True,
        "targetBlank": False,
        "asDropdown": False,
        "icon": "dashboard",
        "tags": [],
    }
