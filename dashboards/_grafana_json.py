"""From grafanalib's output to the dashboard model of the Grafana version pantau deploys.

grafanalib 0.7 writes keys of every Grafana generation: pre-Grafana-5 rows and ``span``, the
old table panel's ``styles``/``columns``/``fontSize``, template fields of the Angular era
(``tagsQuery``, ``useTags``, ``auto_count`` ...), target fields such as ``intervalFactor``,
``step``, ``metric`` and ``query``, and ``null`` for everything unset. Grafana ignores most of
them, or worse, applies them (``intervalFactor: 2`` doubles every query step).
:func:`modernize` rewrites a dashboard to what Grafana's own schema (npm ``@grafana/schema`` of
:data:`GRAFANA_VERSION`) types: only known keys, every required panel option present with
Grafana's default, ``pluginVersion`` set, and each panel's query policy (see
:func:`query_policy`). tests/dashboards/test_dashboards_grafana_types.py type-checks the result
against Grafana's TypeScript types.
"""

from __future__ import annotations

import copy
from typing import Any, Final

#: The Grafana version pantau deploys. deploy/compose.yaml runs exactly this image tag, the npm
#: packages the dashboards are type-checked against are this version, and panels carry it as
#: pluginVersion (tests check all three against this constant).
GRAFANA_VERSION: Final = "11.2.0"
#: Prometheus scrapes the collector at this interval (deploy/prometheus/prometheus.yml); the
#: datasource's ``timeInterval`` and every range panel's minimum step are the same.
SCRAPE_INTERVAL: Final = "15s"
#: Prometheus refuses range queries of more than 11000 points per series, and Grafana's
#: Prometheus backend never asks for more (its "safe resolution"); as ``maxDataPoints`` it lets
#: the step fall to the scrape interval on every range up to 11000 x 15 s (about 45 h).
MAX_DATA_POINTS: Final = 11000
#: Minimum step of panels counting events per bar: one bar per minute, each event counted once.
EVENT_INTERVAL: Final = "1m"

# Keys of grafanalib's output that Grafana's dashboard model (schemaVersion 39) does not have.
_DASHBOARD_LEGACY = ("__inputs", "rows", "style", "hideControls", "sharedCrosshair", "gnetId")
_PANEL_LEGACY = ("span", "height", "minSpan", "error", "editable", "alert", "thresholds")
_TABLE_LEGACY = (
    "columns",
    "fontSize",
    "scroll",
    "showHeader",
    "sort",
    "styles",
    "transform",
    "color",
    "mappings",
)
_TARGET_KEYS = (
    "datasource",
    "editorMode",
    "expr",
    "format",
    "instant",
    "interval",
    "legendFormat",
    "range",
    "refId",
    "exemplar",
)
_VARIABLE_KEYS = (
    "allValue",
    "current",
    "datasource",
    "description",
    "hide",
    "includeAll",
    "label",
    "multi",
    "name",
    "options",
    "query",
    "refresh",
    "regex",
    "skipUrlSync",
    "sort",
    "type",
)

# Grafana's defaults for the options each panel plugin requires (the panelcfg schemas of
# @grafana/schema; Grafana writes them all when it saves a dashboard).
_LEGEND = {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True}
_TOOLTIP = {"mode": "single", "sort": "none"}
_REQUIRED_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "stat": {
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": "auto",
        "wideLayout": True,
    },
    "table": {
        "cellHeight": "sm",
        "footer": {"countRows": False, "reducer": [], "show": False},
        "frameIndex": 0,
        "showHeader": True,
    },
    "state-timeline": {
        "alignValue": "left",
        "legend": _LEGEND,
        "mergeValues": True,
        "rowHeight": 0.9,
        "showValue": "auto",
        "tooltip": _TOOLTIP,
    },
    "timeseries": {"legend": _LEGEND, "tooltip": _TOOLTIP},
}
_TABLE_CUSTOM = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}


def _drop_none(value: Any) -> Any:
    """Remove ``None`` values of objects (Grafana's types have no ``null`` for unset keys).

    A threshold step keeps ``"value": null``: it is the base step, below every other.
    """
    if isinstance(value, dict):
        step = "color" in value and "value" in value
        return {
            k: _drop_none(v) for k, v in value.items() if v is not None or (step and k == "value")
        }
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if key not in target:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(target[key], dict):
            _fill(target[key], value)


def query_policy(panel: dict[str, Any]) -> tuple[bool, str | None]:
    """How a panel queries: (instant, minimum step).

    - stat and table panels show the present: instant queries (the value now, not the last
      point of a coarse range query);
    - every other panel is a range query resolving to the scrape interval (``maxDataPoints`` =
      :data:`MAX_DATA_POINTS`, ``interval`` = :data:`SCRAPE_INTERVAL`), except panels counting
      events per bar (``increase(...[$__interval])``), whose step is :data:`EVENT_INTERVAL` so that
      each bar's window is exactly its step.
    """
    if panel["type"] in ("stat", "table"):
        return True, None
    exprs = " ".join(str(t.get("expr", "")) for t in panel.get("targets", []))
    if "increase(" in exprs and "[$__interval]" in exprs:
        return False, EVENT_INTERVAL
    return False, SCRAPE_INTERVAL


def _target(raw: dict[str, Any], instant: bool) -> dict[str, Any]:
    out = {k: raw[k] for k in _TARGET_KEYS if k in raw}
    if not out.get("interval"):
        out.pop("interval", None)
    out["instant"] = instant
    out["range"] = not instant
    out.setdefault("editorMode", "code")
    return out


#: Panel keys dropped when empty (grafanalib writes them with None, "" or False).
_EMPTY_PANEL_KEYS: Final = (
    "repeat",
    "repeatDirection",
    "maxPerRow",
    "interval",
    "timeFrom",
    "timeShift",
    "cacheTimeout",
)


def _drop_empty_keys(panel: dict[str, Any]) -> None:
    for key in _EMPTY_PANEL_KEYS:
        if panel.get(key) in (None, ""):
            panel.pop(key, None)
    for key in ("links", "transformations"):
        if not panel.get(key):
            panel.pop(key, None)
    for key in ("hideTimeOverride", "transparent"):
        if panel.get(key) is False:
            del panel[key]


def _field_defaults(kind: str, panel: dict[str, Any]) -> None:
    """``fieldConfig`` with both keys, no empty ``custom``, a table's cell options filled."""
    field_config = panel.setdefault("fieldConfig", {"defaults": {}, "overrides": []})
    defaults = field_config.setdefault("defaults", {})
    field_config.setdefault("overrides", [])
    if kind == "stat" or defaults.get("custom") == {}:
        defaults.pop("custom", None)
    if kind == "table":
        custom = defaults.setdefault("custom", {})
        custom.pop("displayMode", None)  # deprecated: cellOptions says it
        _fill(custom, _TABLE_CUSTOM)
    for key in ("unit", "decimals", "color", "noValue"):
        if defaults.get(key) in (None, "", "none") and key in defaults:
            del defaults[key]
    if not defaults.get("mappings"):
        defaults.pop("mappings", None)


def _panel(raw: dict[str, Any]) -> dict[str, Any]:
    panel = {k: v for k, v in raw.items() if k not in _PANEL_LEGACY}
    kind = panel["type"]
    if kind == "table":
        for key in _TABLE_LEGACY:
            panel.pop(key, None)
    _drop_empty_keys(panel)
    panel["pluginVersion"] = GRAFANA_VERSION
    options = panel.setdefault("options", {})
    _fill(options, _REQUIRED_OPTIONS.get(kind, {}))
    if options.get("sortBy") == []:
        del options["sortBy"]
    _field_defaults(kind, panel)
    instant, interval = query_policy(panel)
    panel["targets"] = [_target(t, instant) for t in panel.get("targets", [])]
    if instant:
        panel.pop("maxDataPoints", None)
    else:
        panel["maxDataPoints"] = MAX_DATA_POINTS
        panel["interval"] = interval
    return panel


def _variable(raw: dict[str, Any]) -> dict[str, Any]:
    out = {k: raw[k] for k in _VARIABLE_KEYS if k in raw}
    if not out.get("regex"):
        out.pop("regex", None)
    current = out.get("current")
    if isinstance(current, dict) and "text" not in current:
        # grafanalib's placeholder ({"selected": false, "tags": []}): Grafana picks the first value.
        del out["current"]
    if out["type"] == "datasource":
        out.pop("datasource", None)
    return out


def modernize(raw: dict[str, Any]) -> dict[str, Any]:
    """A grafanalib dashboard (already plain JSON) as Grafana's current model."""
    board: dict[str, Any] = _drop_none(copy.deepcopy(raw))
    for key in _DASHBOARD_LEGACY:
        board.pop(key, None)
    board["templating"]["list"] = [_variable(v) for v in board["templating"]["list"]]
    board["panels"] = [_panel(p) for p in board["panels"]]
    for link in board.get("links", []):
        link.setdefault("tooltip", "")
    return board
