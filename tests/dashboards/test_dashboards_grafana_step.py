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

``roundInterval`` is read from the pinned @grafana/data (rangeutil.js), not copied: the Go
backend's gtime.RoundInterval has the same table (its comparisons are ``<=`` where JavaScript's
are ``<``; the ranges below never fall on a boundary, which the test asserts).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from dash_grafana_types import tsc_available, types_dir

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


@pytest.fixture(scope="module")
def round_interval() -> Callable[[float], int]:
    """Grafana's roundInterval, its table read from the pinned @grafana/data."""
    reason = tsc_available()
    if reason:
        pytest.skip(reason)
    source = (types_dir() / "node_modules/@grafana/data/dist/esm/datetime/rangeutil.js").read_text(
        encoding="utf-8"
    )
    body = source[source.index("function roundInterval(") :]
    body = body[: body.index("default:") + 60]
    table = [
        (float(bound), int(float(result)))
        for bound, result in re.findall(r"case interval < ([\d.e]+):\s*return ([\d.e]+);", body)
    ]
    default = int(float(re.search(r"default:\s*return ([\d.e]+);", body).group(1)))  # type: ignore[union-attr]
    assert len(table) > 25, table
    assert table == sorted(table), table

    def rnd(interval: float) -> int:
        for bound, result in table:
            assert interval != bound, f"{interval} ms falls on a rounding boundary"
            if interval < bound:
                return result
        return default

    return rnd


def effective(
    panel: dict[str, Any],
    target: dict[str, Any],
    range_ms: int,
    round_interval: Callable[[float], int],
    time_interval: str = SCRAPE_INTERVAL,
) -> dict[str, int]:
    """Step, $__interval and $__rate_interval in ms, as Grafana computes them (see above)."""
    max_data_points = panel.get("maxDataPoints")
    assert max_data_points, f"{panel['title']}: no maxDataPoints (Grafana would use the width)"
    low_limit = ms(panel.get("interval") or time_interval)
    interval_ms = max(low_limit, round_interval(range_ms / max_data_points))
    query_interval = target.get("interval") or ""
    min_interval = ms(query_interval) if query_interval else interval_ms
    raw = range_ms // max_data_points
    calculated = min_interval if raw < min_interval else round_interval(raw)
    safe = round_interval(range_ms // SAFE_RESOLUTION)
    factor = target.get("intervalFactor") or 1
    step = max(calculated, safe) * factor
    scrape = ms(time_interval)
    rate = max(interval_ms + scrape, 4 * scrape)
    return {"step": step, "interval": step, "rate_interval": rate}


def _range_targets() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (f"{board['uid']}: {panel['title']} {target['refId']}", panel, target)
        for board in all_dashboards().values()
        for panel in board["panels"]
        for target in panel["targets"]
        if not target.get("instant")
    ]


def test_the_emulation_reproduces_grafanalibs_30_minute_step(
    round_interval: Callable[[float], int],
) -> None:
    """grafanalib's defaults (maxDataPoints 100, intervalFactor 2) on 24 h: a 30-minute step."""
    legacy_panel = {"title": "legacy", "maxDataPoints": 100}
    got = effective(
        legacy_panel, {"refId": "A", "intervalFactor": 2}, RANGES["24h"], round_interval
    )
    assert got["step"] == 30 * 60_000
    # Without maxDataPoints Grafana would use the panel's width in pixels: refused above.
    with pytest.raises(AssertionError):
        effective({"title": "x"}, {"refId": "A"}, HOUR, round_interval)


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
    range_name: str, round_interval: Callable[[float], int]
) -> None:
    range_ms = RANGES[range_name]
    scrape = ms(SCRAPE_INTERVAL)
    # The finest step Prometheus and Grafana allow on this range.
    finest = max(scrape, round_interval(range_ms // SAFE_RESOLUTION))
    targets = _range_targets()
    assert targets, "no range panel"
    for name, panel, target in targets:
        assert panel["maxDataPoints"] == MAX_DATA_POINTS, name
        assert "intervalFactor" not in target, name
        got = effective(panel, target, range_ms, round_interval)
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
