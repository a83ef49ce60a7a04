"""Every PromQL expression of every dashboard panel, variable and alert rule, executed against
the real (harness) Prometheus scraping a collector's /metrics for a simulated fleet, each
returning the series the fleet model (dash_fleet) says it must.

Two sources of /metrics, each with its own fictional kabupaten so their series never mix:

- ``static``: dash_fleet.StaticCollector renders the fleet as exposition text following the
  metrics contract (it was the stand-in while the collector was being built);
- ``collector``: the real pantau collector fed the same fleet over a real mosquitto by
  dash_feed.CollectorFeed (agents simulated at the wire level).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash_fleet as fleet
import pytest
from harness import Prometheus

from pantau.dashboards import metrics as m
from pantau.dashboards.alerts import default_alerts
from pantau.dashboards.boards import COLLECTOR_UID, FLEET_UID, STATION_UID, all_dashboards

Check = float | Callable[[float], bool]
Expected = dict[tuple[tuple[str, str], ...], Check]

pytestmark = pytest.mark.slow

LOGIN_REASON = ("Alasan probe login / Login probe reason", "A")


def positive(v: float) -> bool:
    return v > 0


def at_least_zero(v: float) -> bool:
    return v >= 0


def near(expected: float, tolerance: float = 2.0) -> Callable[[float], bool]:
    def check(v: float) -> bool:
        return abs(v - expected) <= tolerance

    check.__name__ = f"{expected}+-{tolerance}"
    return check


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Source:
    name: str
    target: str
    stations: tuple[fleet.Station, ...]
    mqtt_connected: int
    reject_reasons: tuple[str, ...]

    @property
    def kabkota(self) -> str:
        return self.stations[0].kabkota

    def station(self, kecamatan: str) -> fleet.Station:
        return next(s for s in self.stations if s.kecamatan == kecamatan)


def _scraped(prometheus: Prometheus, source: Source) -> Iterator[Source]:
    prometheus.scrape(m.COLLECTOR_JOB, [source.target])
    try:
        # Enough scrapes for rates and for the rebooting station's changes() to exceed 3.
        prometheus.wait_until(
            f'changes({m.HOST_BOOT}{{kabkota="{source.kabkota}"}}[1h]) > 3', timeout=60
        )
        yield source
    finally:
        prometheus.unscrape(m.COLLECTOR_JOB)


@pytest.fixture(scope="module", params=["static", "collector"])
def source(
    request: pytest.FixtureRequest, prometheus: Prometheus, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    if request.param == "static":
        stations = fleet.make_fleet("3399")
        with fleet.StaticCollector(stations) as server:
            yield from _scraped(
                prometheus,
                Source(
                    "static", server.target, stations, server.mqtt_connected, server.reject_reasons
                ),
            )
        return
    from dash_feed import CollectorFeed

    stations = fleet.make_fleet("3398")
    with CollectorFeed(Path(tmp_path_factory.mktemp("feed")), stations) as feed:
        yield from _scraped(
            prometheus,
            Source("collector", feed.target, stations, feed.mqtt_connected, feed.reject_reasons),
        )
        assert not feed.errors, feed.errors


def substitute(expr: str, source: Source, station: str = "") -> str:
    values = {
        "provinsi": ".*",
        "kabkota": source.kabkota,
        "kecamatan": ".*",
        "station": station,
        "instance": source.target,
        "__rate_interval": "1m",
        "__interval": "1m",
        "__range": "1h",
    }

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)


def own(result: list[dict[str, Any]], source: Source) -> list[dict[str, Any]]:
    """Drop series of other tests (and of the other source) sharing the session's Prometheus."""
    out = []
    for r in result:
        labels = r["metric"]
        if "kabkota" in labels and labels["kabkota"] != source.kabkota:
            continue
        if "instance" in labels and labels["instance"] != source.target:
            continue
        out.append(r)
    return out


def assert_result(result: list[dict[str, Any]], expected: Expected, what: str) -> None:
    names = sorted({k for labels in expected for k, _ in labels})
    got: dict[tuple[tuple[str, str], ...], float] = {}
    for r in result:
        proj = tuple((k, r["metric"].get(k, "")) for k in names)
        assert proj not in got, f"{what}: two series for {proj}: {result}"
        got[proj] = float(r["value"][1])
    assert set(got) == set(expected), f"{what}: series {sorted(got)} != expected {sorted(expected)}"
    for labels, check in expected.items():
        value = got[labels]
        ok = check(value) if callable(check) else abs(value - check) < 1e-6
        assert ok, f"{what}: {dict(labels)} = {value}, expected {getattr(check, '__name__', check)}"


# --------------------------------------------------------------------------- expectations


def fleet_expectations(src: Source) -> dict[tuple[str, str], Expected]:
    stations = src.stations
    reported = [s for s in stations if s.reported]
    grid: Expected = {}
    for s in stations:
        grid[key(station=s.station, device_class="online")] = s.up
        if s.reported:
            for cls, v in s.peripherals.items():
                grid[key(station=s.station, device_class=cls)] = v
            for cls in s.unconfigured:
                grid[key(station=s.station, device_class=cls)] = 2  # "not configured"
            grid[key(station=s.station, device_class="login")] = min(x.up for x in s.login.values())
    return {
        ("Stasiun siap / Stations ready", "A"): {(): sum(s.ready for s in stations)},
        ("Stasiun siap / Stations ready", "B"): {(): len(stations)},
        ("Stasiun offline / Stations offline", "A"): {(): sum(1 - s.up for s in stations)},
        ("Perangkat hilang per jenis / Missing per device class", "A"): {
            key(device_class=c): sum(1 - s.peripherals.get(c, 1) for s in reported)
            for c in fleet.CLASSES
        },
        ("Status stasiun x perangkat / Station x device status", "A"): grid,
        ("Kesiapan dari waktu ke waktu / Readiness over time", "A"): {
            key(station=s.station): s.ready for s in stations
        },
        ("Belum pernah melapor / Never reported (inventaris / inventory)", "A"): {
            key(station=s.station): 0 for s in stations if not s.reported
        },
        ("Rusak paling lama / Broken longest", "A"): {
            key(station=s.station, problem=problem, subject=subject): (
                near(s.broken_days) if src.name == "static" else at_least_zero
            )
            for s in stations
            for problem, subject in s.problems()
            if problem != "cert_expiring"
        },
    }


def station_expectations(s: fleet.Station) -> dict[tuple[str, str], Expected]:
    return {
        ("Perangkat dari waktu ke waktu / Peripheral presence over time", "A"): {
            key(device_class=c): v for c, v in s.peripherals.items()
        },
        ("Online", "A"): {(): s.up},
        ("Laporan terakhir / Last report (s ago)", "A"): {(): positive},
        ("Login", "A"): {key(target=t): x.up for t, x in s.login.items()},
        ("Durasi probe login / Login probe duration", "A"): {
            key(target=t): x.duration for t, x in s.login.items()
        },
        LOGIN_REASON: {key(target=t, reason=x.reason): 1 for t, x in s.login.items()},
        ("CPU & memori / CPU & memory", "A"): {(): 0.25},
        ("CPU & memori / CPU & memory", "B"): {(): 0.75},
        ("Disk kosong / Disk free", "A"): {key(mount=k): f / z for k, (f, z) in s.disks.items()},
        ("Nyala ulang 24 jam / Reboots in 24 h", "A"): {
            (): (lambda v: v >= 3) if s.rebooting else 0
        },
        ("Boot terakhir / Last boot", "A"): {(): positive},
        ("Selisih jam / Clock skew", "A"): {(): near(s.skew)},
        ("Versi agen / Agent version", "A"): {key(agent_version=fleet.AGENT_VERSION): 1},
        ("Kejadian / Events", "A"): {key(kind=k): positive for k in s.events},
    }


def collector_expectations(src: Source) -> dict[tuple[str, str], Expected]:
    counts = fleet.state_counts(src.stations)
    return {
        ("MQTT terhubung / MQTT connected", "A"): {key(instance=src.target): src.mqtt_connected},
        ("Scrape collector (up)", "A"): {key(instance=src.target): 1},
        ("Laporan diterima / Reports received per second", "A"): {
            key(instance=src.target): positive
        },
        ("Laporan ditolak per alasan / Rejections by reason", "A"): {
            key(reason=r): positive if r in fleet.REJECTING else 0 for r in src.reject_reasons
        },
        ("Durasi scrape / Scrape duration", "A"): {key(instance=src.target): positive},
        ("Stasiun per keadaan / Stations by state", "A"): {
            key(state=state): n for state, n in counts.items()
        },
    }


def alert_expectations(src: Source) -> dict[str, Expected]:
    cawas, bayat = src.station("Cawas").station, src.station("Bayat").station
    juwiring = src.station("Juwiring").station
    pedan = src.station("Pedan").station
    return {
        "PantauPeripheralMissing": {
            key(station=cawas, device_class="iris"): 0,
            key(station=cawas, device_class="camera"): 0,
        },
        # no station of the model has a failed driver: the query runs and finds nothing (the
        # alert's own promtool case shows it firing)
        "PantauPeripheralDriverFailed": {},
        "PantauPeripheralNotConfigured": {key(station=pedan, device_class="signature"): 0},
        "PantauLoginUnreachable": {key(station=pedan, target="vpn"): 1},
        "PantauLoginRefused": {key(station=bayat, target="central", status="403"): 1},
        "PantauLoginTlsProblem": {key(station=pedan, target="sso", reason="cert_untrusted"): 1},
        "PantauLoginServiceError": {key(station=pedan, target="api", status="503"): 1},
        "PantauLoginUnexpectedAnswer": {key(station=pedan, target="web", status="404"): 1},
        "PantauLoginCertExpiring": {key(station=pedan, target="portal"): near(5.0)},
        "PantauStationBrokenLong": (
            {key(station=src.station("Gantiwarno").station, problem="never_reported"): near(10)}
            if src.name == "static"
            else {}  # the collector under test has known its stations for seconds only
        ),
        "PantauStationOffline": {key(station=src.station("Ceper").station): 0},
        "PantauStationNeverReported": {key(station=src.station("Gantiwarno").station): 0},
        "PantauRepeatedReboots": {key(station=juwiring): lambda v: v > 2},
        "PantauDiskAlmostFull": {key(station=juwiring, mount="C:"): 0.05},
        "PantauClockSkew": {key(station=cawas): near(3600)},
        "PantauCollectorDown": {},
        # neither source is blind (test_dashboards_blind.py makes a real collector blind)
        "PantauCollectorBlind": {},
    }


# --------------------------------------------------------------------------- tests


def _targets(uid: str) -> list[tuple[str, str, str]]:
    board = next(b for b in all_dashboards().values() if b["uid"] == uid)
    return [(p["title"], t["refId"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def test_every_panel_target_has_an_expectation() -> None:
    """Adding a panel or alert without saying what it must return fails here."""
    src = Source("model", "127.0.0.1:1", fleet.FLEET, 0, fleet.REJECT_REASONS)
    assert {(t, r) for t, r, _ in _targets(FLEET_UID)} == set(fleet_expectations(src))
    assert {(t, r) for t, r, _ in _targets(STATION_UID)} == set(
        station_expectations(fleet.FLEET[0])
    )
    assert {(t, r) for t, r, _ in _targets(COLLECTOR_UID)} == set(collector_expectations(src))
    assert set(alert_expectations(src)) == {a.name for a in default_alerts()}


def _run(prometheus: Prometheus, src: Source, expr: str, expected: Expected, what: str) -> None:
    result = own(prometheus.query(expr), src)
    assert_result(result, expected, f"[{src.name}] {what}: {expr}")


def test_fleet_overview_queries(prometheus: Prometheus, source: Source) -> None:
    expected = fleet_expectations(source)
    for title, ref, expr in _targets(FLEET_UID):
        _run(prometheus, source, substitute(expr, source), expected[(title, ref)], f"{title} {ref}")


@pytest.mark.parametrize("kecamatan", ["Cawas", "Juwiring", "Bayat", "Ceper"])
def test_station_detail_queries(prometheus: Prometheus, source: Source, kecamatan: str) -> None:
    station = source.station(kecamatan)
    expected = station_expectations(station)
    for title, ref, expr in _targets(STATION_UID):
        if (title, ref) == LOGIN_REASON:
            continue  # test_login_reason_panel
        query = substitute(expr, source, station.station)
        _run(prometheus, source, query, expected[(title, ref)], f"{station.station} {title} {ref}")


def test_login_reason_panel(prometheus: Prometheus, source: Source) -> None:
    expr = next(e for t, r, e in _targets(STATION_UID) if (t, r) == LOGIN_REASON)
    for kecamatan in ("Bayat", "Cawas"):
        station = source.station(kecamatan)
        query = substitute(expr, source, station.station)
        _run(prometheus, source, query, station_expectations(station)[LOGIN_REASON], "login reason")


def test_collector_health_queries(prometheus: Prometheus, source: Source) -> None:
    expected = collector_expectations(source)
    for title, ref, expr in _targets(COLLECTOR_UID):
        _run(prometheus, source, substitute(expr, source), expected[(title, ref)], f"{title} {ref}")


def test_range_queries_of_time_series_panels(prometheus: Prometheus, source: Source) -> None:
    """Graph panels run as range queries: each must evaluate and return data over a window."""
    import time

    now = time.time()
    station = source.station("Cawas").station
    for uid in (FLEET_UID, STATION_UID, COLLECTOR_UID):
        board = next(b for b in all_dashboards().values() if b["uid"] == uid)
        for panel in board["panels"]:
            for t in panel["targets"]:
                if t["instant"]:
                    continue
                query = substitute(t["expr"], source, station)
                data = prometheus.api(
                    "query_range", query=query, start=str(now - 20), end=str(now), step="2"
                )
                assert data["resultType"] == "matrix", query
                assert own(data["result"], source), f"[{source.name}] {panel['title']}: {query}"


def test_template_variables(prometheus: Prometheus, source: Source) -> None:
    """label_values(...) of each variable, as Grafana asks Prometheus for them."""
    wanted = {
        "provinsi": {fleet.PROVINSI},
        "kabkota": {source.kabkota},
        "kecamatan": {s.kecamatan for s in source.stations},
        "station": {s.station for s in source.stations},
        "instance": {source.target},
    }
    seen = set()
    for board in all_dashboards().values():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
            assert match, var["query"]
            selector = substitute(match.group(1), source)
            values = set(prometheus.api(f"label/{match.group(2)}/values", **{"match[]": selector}))
            assert wanted[var["name"]] <= values, (var["name"], selector, values)
            seen.add(var["name"])
    assert seen == set(wanted)


def test_alert_expressions(prometheus: Prometheus, source: Source) -> None:
    """Each alert's Prometheus expression returns exactly the fleet's faults; its Grafana value
    query (A) returns those series too, among the healthy ones."""
    expected = alert_expectations(source)
    for alert in default_alerts():
        _run(prometheus, source, alert.expr, expected[alert.name], alert.name)
        values = own(prometheus.query(alert.query), source)
        assert values, f"{alert.name}: value query returns nothing: {alert.query}"
        names = sorted({k for labels in expected[alert.name] for k, _ in labels})
        got = {tuple((k, r["metric"].get(k, "")) for k in names) for r in values}
        assert set(expected[alert.name]) <= got, alert.name


def test_static_collector_exposition_passes_promtool_check_metrics() -> None:
    """The stand-in /metrics follows the same lint the collector's must pass (promtool)."""
    import subprocess
    import time

    text = fleet.exposition(3, time.time())
    res = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
