"""Each panel's effective query step, computed as Grafana 11.2 computes it, is bounded.

How Grafana turns a panel into a Prometheus query step (Grafana 11.2; the frontend parts are in
the pinned npm packages this test reads, the backend parts are Go):

1. Frontend, query runner (public/app/features/query/state/PanelQueryRunner.ts, the default in
   11.2; the scenes SceneQueryRunner, default from 11.3, computes the same):
   ``lowerIntervalLimit = panel.interval || datasource.interval`` (the datasource's
   ``jsonData.timeInterval``), ``maxDataPoints = panel.maxDataPoints`` (else the panel's width
   in pixels), then
   ``rangeUtil.calculateInterval(range, maxDataPoints, lowerIntervalLimit)``
   (packages/grafana-data/src/datetime/rangeutil.ts): ``intervalMs = max(lowLimit,
   roundInterval(range / maxDataPoints))``, sent with the query as ``intervalMs``.
2. Frontend, Prometheus datasource (``applyTemplateVariables``): ``$__interval`` and
   ``$__interval_ms`` are left in the expression for the backend.
3. Backend, pkg/promlib/models/query.go ``calculatePrometheusInterval``: ``minInterval =
   GetIntervalFrom(timeInterval, query.interval, intervalMs, 15s)`` (the query's own "min step"
   first, else intervalMs, else the datasource's), ``calculated =
   intervalv2.Calculate(range, minInterval, maxDataPoints)`` (pkg/promlib/intervalv2:
   ``minInterval`` if ``range / maxDataPoints`` is below it, else that rounded),
   ``safe = round(range / 11000)`` (``safeResolution``), ``step = max(calculated, safe) *
   intervalFactor`` (0 counts as 1). ``$__interval`` becomes the step; ``$__rate_interval``
   becomes ``max(intervalMs + scrape, 4 * scrape)`` (``calculateRateInterval``).

Step 1 is Grafana's own JavaScript, run by node from the pinned @grafana/data; steps 2-3 are Go
and restated here, with the rounding table read from the same package (see :class:`Grafana`).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from dash_grafana_types import grafana_frontend_intervals, tsc_available, types_dir

from pantau.dashboards._grafana_json import (
    EVENT_INTERVAL,
    MAX_DATA_POINTS,
    SCRAPE_INTERVAL,
)
from pantau.dashboards.boards import all_dashboards
from pantau.dashboards.build import datasources

SAFE_RESOLUTION = 11000  # pkg/promlib/models/query.go
HOUR = 3_600_000
RANGES = {"1h": HOUR, "24h": 24 * HOUR, "7d": 7 * 24 * HOUR}
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": HOUR, "d": 24 * HOUR, "w": 7 * 24 * HOUR}


def ms(interval: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(ms|[smhdw])", interval).groups()  # type: ignore[union-attr]
    return int(number) * _UNITS_MS[unit]


class Grafana:
    """Grafana 11.2's interval code: the frontend part run, the backend part restated.

    ``frontend`` is ``rangeUtil.calculateInterval`` of the pinned @grafana/data, executed by
    node (grafana-types/interval.mjs) for every case the tests need, in one run; ``round`` is
    its ``roundInterval``, the table read from the same file, which the backend's Go
    ``gtime.RoundInterval`` shares (Go compares with ``<=`` where JavaScript has ``<``:
    ``round(..., backend=True)`` refuses a value on a boundary, so the difference cannot matter).
    """

    def __init__(self) -> None:
        source = (
            types_dir() / "node_modules/@grafana/data/dist/esm/datetime/rangeutil.js"
        ).read_text(encoding="utf-8")
        body = source[source.index("function roundInterval(") :]
        body = body[: body.index("default:") + 60]
        self.table = [
            (float(bound), int(float(result)))
            for bound, result in re.findall(r"case interval < ([\d.e]+):\s*return ([\d.e]+);", body)
        ]
        found = re.search(r"default:\s*return ([\d.e]+);", body)
        assert found, body
        self.default = int(float(found.group(1)))
        assert len(self.table) > 25, self.table
        assert self.table == sorted(self.table), self.table
        self._frontend: dict[tuple[int, int, str], int] = {}

    def round(self, interval: float, *, backend: bool = False) -> int:
        for bound, result in self.table:
            if backend:
                assert interval != bound, f"{interval} ms falls on a rounding boundary"
            if interval < bound:
                return result
        return self.default

    def prepare(self, cases: list[tuple[int, int, str]]) -> None:
        todo = sorted(set(cases) - set(self._frontend))
        if todo:
            self._frontend.update(zip(todo, grafana_frontend_intervals(todo), strict=True))

    def frontend(self, range_ms: int, max_data_points: int, low_limit: str) -> int:
        self.prepare([(range_ms, max_data_points, low_limit)])
        return self._frontend[(range_ms, max_data_points, low_limit)]


LEGACY = (RANGES["24h"], 100, SCRAPE_INTERVAL)


def _range_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (f"{board['uid']}: {panel['title']} {target['refId']}", panel, target)
        for board in all_dashboards().values()
        for panel in board["panels"]
        for target in panel["targets"]
        if not target.get("instant")
    ]


@pytest.fixture(scope="module")
def grafana() -> Grafana:
    reason = tsc_available()
    if reason:
        pytest.skip(reason)
    g = Grafana()
    g.prepare(
        [LEGACY]
        + [
            (range_ms, panel["maxDataPoints"], panel.get("interval") or SCRAPE_INTERVAL)
            for _, panel, _ in _range_targets()
            for range_ms in RANGES.values()
        ]
    )
    return g


def effective(
    panel: dict[str, Any],
    target: dict[str, Any],
    range_ms: int,
    grafana: Grafana,
    time_interval: str = SCRAPE_INTERVAL,
) -> dict[str, int]:
    """Step, $__interval and $__rate_interval in ms, as Grafana computes them (see above)."""
    max_data_points = panel.get("maxDataPoints")
    assert max_data_points, f"{panel['title']}: no maxDataPoints (Grafana would use the width)"
    # 1. frontend: Grafana's own code.
    interval_ms = grafana.frontend(
        range_ms, max_data_points, panel.get("interval") or time_interval
    )
    # 3. backend: calculatePrometheusInterval.
    query_interval = target.get("interval") or ""
    min_interval = ms(query_interval) if query_interval else interval_ms
    raw = range_ms // max_data_points
    calculated = min_interval if raw < min_interval else grafana.round(raw, backend=True)
    safe = grafana.round(range_ms // SAFE_RESOLUTION, backend=True)
    factor = target.get("intervalFactor") or 1
    step = max(calculated, safe) * factor
    scrape = ms(time_interval)
    rate = max(interval_ms + scrape, 4 * scrape)
    return {"step": step, "interval": step, "rate_interval": rate}


def test_the_emulation_reproduces_grafanalibs_30_minute_step(grafana: Grafana) -> None:
    """grafanalib's defaults (maxDataPoints 100, intervalFactor 2) on 24 h: a 30-minute step."""
    range_ms, max_data_points, _ = LEGACY
    assert grafana.frontend(*LEGACY) == 15 * 60_000  # Grafana's frontend: 24 h / 100, rounded
    legacy_panel = {"title": "legacy", "maxDataPoints": max_data_points}
    got = effective(legacy_panel, {"refId": "A", "intervalFactor": 2}, range_ms, grafana)
    assert got["step"] == 30 * 60_000
    # Without maxDataPoints Grafana would use the panel's width in pixels: refused above.
    with pytest.raises(AssertionError):
        effective({"title": "x"}, {"refId": "A"}, HOUR, grafana)


def test_the_rounding_table_is_grafanas(grafana: Grafana) -> None:
    """The table read from rangeutil.js gives what Grafana's calculateInterval gives."""
    cases = [
        (range_ms, points, "1ms")
        for range_ms in (5 * 60_000, HOUR, 6 * HOUR, 24 * HOUR, 48 * HOUR, 7 * 24 * HOUR)
        for points in (100, 500, 1000, 1500, 11000)
    ]
    grafana.prepare(cases)
    for range_ms, points, low in cases:
        assert grafana.frontend(range_ms, points, low) == grafana.round(range_ms / points)


def test_the_datasource_interval_is_the_scrape_interval() -> None:
    assert datasources()["datasources"][0]["jsonData"]["timeInterval"] == SCRAPE_INTERVAL


def test_stat_and_table_panels_query_the_present() -> None:
    """Instant queries: the value now, not the last point of a range query."""
    for board in all_dashboards().values():
        for panel in board["panels"]:
            if panel["type"] not in ("stat", "table"):
                continue
            for target in panel["targets"]:
                assert target["instant"] is True, panel["title"]
                assert target["range"] is False, panel["title"]
                assert "intervalFactor" not in target, panel["title"]


@pytest.mark.parametrize("range_name", list(RANGES))
def test_every_range_panel_resolves_to_the_scrape_interval(
    range_name: str, grafana: Grafana
) -> None:
    range_ms = RANGES[range_name]
    scrape = ms(SCRAPE_INTERVAL)
    # The finest step Prometheus and Grafana allow on this range.
    finest = max(scrape, grafana.round(range_ms // SAFE_RESOLUTION, backend=True))
    targets = _range_targets()
    assert targets, "no range panel"
    for name, panel, target in targets:
        assert panel["maxDataPoints"] == MAX_DATA_POINTS, name
        assert "intervalFactor" not in target, name
        got = effective(panel, target, range_ms, grafana)
        expr = target["expr"]
        if "[$__interval]" in expr:
            # Event bars: the window is the step, so each event lands in exactly one bar.
            assert got["step"] == max(ms(EVENT_INTERVAL), finest), (name, got)
            assert got["interval"] == got["step"]
        else:
            assert got["step"] == finest, (name, range_name, got)
        if "$__rate_interval" in expr:
            # A rate over the last 4 scrapes (at least), not over half an hour.
            assert got["rate_interval"] <= max(4 * scrape, got["step"] + scrape), (name, got)
    if range_name in ("1h", "24h"):
        assert finest == scrape  # every scrape is a point of every timeline
    else:
        assert finest == 60_000  # 7 days: 1 minute, Prometheus' 11000-point limit
