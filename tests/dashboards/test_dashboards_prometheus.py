"""Every PromQL expression of every dashboard panel, variable and alert rule, executed against
the real (harness) Prometheus scraping a collector's /metrics for a simulated fleet, each
returning the series the fleet model says it must.

The scrape target is :class:`dash_fleet.StaticCollector` until the collector can be fed the same
fleet over MQTT; expectations come from ``dash_fleet.FLEET``, so only the ``fleet_target``
fixture changes then.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import dash_fleet as fleet
import pytest
from harness import Prometheus

from dashboards import metrics as m
from dashboards.alerts import default_alerts
from dashboards.boards import COLLECTOR_UID, FLEET_UID, STATION_UID, all_dashboards

Check = float | Callable[[float], bool]
Expected = dict[tuple[tuple[str, str], ...], Check]

pytestmark = pytest.mark.slow


def positive(v: float) -> bool:
    return v > 0


def key(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@pytest.fixture(scope="module")
def fleet_target() -> Iterator[str]:
    """host:port of a /metrics endpoint serving ``dash_fleet.FLEET`` (see module docstring)."""
    with fleet.StaticCollector() as server:
        yield server.target


@pytest.fixture(scope="module")
def fleet_prometheus(prometheus: Prometheus, fleet_target: str) -> Iterator[Prometheus]:
    prometheus.scrape(m.COLLECTOR_JOB, [fleet_target])
    # Enough scrapes for rates and for the rebooting station's changes() to exceed 2.
    prometheus.wait_until(
        f'changes({m.HOST_BOOT}{{kabkota="{fleet.KABKOTA}"}}[1h]) > 3', timeout=60
    )
    yield prometheus
    prometheus.unscrape(m.COLLECTOR_JOB)


def substitute(expr: str, target: str, station: str = "") -> str:
    values = {
        "provinsi": ".*",
        "kabkota": fleet.KABKOTA,
        "kecamatan": ".*",
        "station": station,
        "instance": target,
        "__rate_interval": "1m",
        "__range": "1h",
    }

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)


def own(result: list[dict[str, Any]], target: str) -> list[dict[str, Any]]:
    """Drop series of other tests sharing the session's Prometheus."""
    out = []
    for r in result:
        labels = r["metric"]
        if "kabkota" in labels and labels["kabkota"] != fleet.KABKOTA:
            continue
        if "instance" in labels and labels["instance"] != target:
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

REPORTED = [s for s in fleet.FLEET if s.reported]


def fleet_expectations(target: str) -> dict[tuple[str, str], Expected]:
    grid: Expected = {}
    for s in fleet.FLEET:
        grid[key(station=s.station, device_class="online")] = s.up
        if s.reported:
            for cls, v in s.peripherals.items():
                grid[key(station=s.station, device_class=cls)] = v
            grid[key(station=s.station, device_class="login")] = min(x.up for x in s.login.values())
    return {
        ("Stasiun siap / Stations ready", "A"): {(): sum(s.ready for s in fleet.FLEET)},
        ("Stasiun siap / Stations ready", "B"): {(): len(fleet.FLEET)},
        ("Stasiun offline / Stations offline", "A"): {(): sum(1 - s.up for s in fleet.FLEET)},
        ("Perangkat hilang per jenis / Missing per device class", "A"): {
            key(device_class=c): sum(1 - s.peripherals[c] for s in REPORTED) for c in fleet.CLASSES
        },
        ("Status stasiun x perangkat / Station x device status", "A"): grid,
        ("Kesiapan dari waktu ke waktu / Readiness over time", "A"): {
            key(station=s.station): s.ready for s in fleet.FLEET
        },
        ("Belum pernah melapor / Never reported (inventaris / inventory)", "A"): {
            key(station=s.station): 0 for s in fleet.FLEET if not s.reported
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
        ("Alasan probe login / Login probe reason", "A"): {
            key(target=t, reason=x.reason): 1 for t, x in s.login.items()
        },
        ("CPU & memori / CPU & memory", "A"): {(): 0.25},
        ("CPU & memori / CPU & memory", "B"): {(): 0.75},
        ("Disk kosong / Disk free", "A"): {key(mount=k): f / z for k, (f, z) in s.disks.items()},
        ("Nyala ulang 24 jam / Reboots in 24 h", "A"): {
            (): (lambda v: v >= 3) if s.rebooting else 0
        },
        ("Boot terakhir / Last boot", "A"): {(): positive},
        ("Selisih jam / Clock skew", "A"): {(): s.skew},
        ("Versi agen / Agent version", "A"): {key(agent_version=fleet.AGENT_VERSION): 1},
        ("Kejadian / Events", "A"): {key(kind=k): positive for k in s.events},
    }


def collector_expectations(target: str) -> dict[tuple[str, str], Expected]:
    return {
        ("MQTT terhubung / MQTT connected", "A"): {key(instance=target): fleet.MQTT_CONNECTED},
        ("Scrape collector (up)", "A"): {key(instance=target): 1},
        ("Laporan diterima / Reports received per second", "A"): {key(instance=target): positive},
        ("Laporan ditolak per alasan / Rejections by reason", "A"): {
            key(reason=r): positive for r in fleet.REJECT_REASONS
        },
        ("Durasi scrape / Scrape duration", "A"): {key(instance=target): positive},
        ("Stasiun per keadaan / Stations by state", "A"): {
            key(state="up"): 3,
            key(state="down"): 1,
            key(state="never_reported"): 1,
        },
    }


def alert_expectations(target: str) -> dict[str, Expected]:
    cawas, bayat, ceper = "3399-cawas-01", "3399-bayat-01", "3399-ceper-01"
    return {
        "PantauPeripheralMissing": {
            key(station=cawas, device_class="iris"): 0,
            key(station=cawas, device_class="camera"): 0,
        },
        "PantauLoginUnreachable": {key(station=bayat, target="central"): 0},
        "PantauStationOffline": {key(station=ceper): 0},
        "PantauStationNeverReported": {key(station="3399-gantiwarno-01"): 0},
        "PantauRepeatedReboots": {key(station="3399-juwiring-01"): lambda v: v > 2},
        "PantauDiskAlmostFull": {key(station="3399-juwiring-01", mount="C:"): 0.05},
        "PantauClockSkew": {key(station=cawas): 3600},
        "PantauCollectorDown": {},
        "PantauBrokerUnreachable": {key(instance=target): 0},
    }


# --------------------------------------------------------------------------- tests


def _targets(uid: str) -> list[tuple[str, str, str]]:
    board = next(b for b in all_dashboards().values() if b["uid"] == uid)
    return [(p["title"], t["refId"], t["expr"]) for p in board["panels"] for t in p["targets"]]


def test_every_panel_target_has_an_expectation(fleet_target: str) -> None:
    """Adding a panel without saying what it must return fails here."""
    assert {(t, r) for t, r, _ in _targets(FLEET_UID)} == set(fleet_expectations(fleet_target))
    station = station_expectations(fleet.FLEET[0])
    assert {(t, r) for t, r, _ in _targets(STATION_UID)} == set(station)
    assert {(t, r) for t, r, _ in _targets(COLLECTOR_UID)} == set(
        collector_expectations(fleet_target)
    )
    assert set(alert_expectations(fleet_target)) == {a.name for a in default_alerts()}


def test_fleet_overview_queries(fleet_prometheus: Prometheus, fleet_target: str) -> None:
    expected = fleet_expectations(fleet_target)
    for title, ref, expr in _targets(FLEET_UID):
        query = substitute(expr, fleet_target)
        result = own(fleet_prometheus.query(query), fleet_target)
        assert_result(result, expected[(title, ref)], f"{title} {ref}: {query}")


@pytest.mark.parametrize("station", ["3399-cawas-01", "3399-juwiring-01", "3399-bayat-01"])
def test_station_detail_queries(
    fleet_prometheus: Prometheus, fleet_target: str, station: str
) -> None:
    expected = station_expectations(fleet.by_id(station))
    for title, ref, expr in _targets(STATION_UID):
        query = substitute(expr, fleet_target, station)
        result = own(fleet_prometheus.query(query), fleet_target)
        assert_result(result, expected[(title, ref)], f"{station} {title} {ref}: {query}")


def test_collector_health_queries(fleet_prometheus: Prometheus, fleet_target: str) -> None:
    expected = collector_expectations(fleet_target)
    for title, ref, expr in _targets(COLLECTOR_UID):
        query = substitute(expr, fleet_target)
        result = own(fleet_prometheus.query(query), fleet_target)
        assert_result(result, expected[(title, ref)], f"{title} {ref}: {query}")


def test_range_queries_of_time_series_panels(
    fleet_prometheus: Prometheus, fleet_target: str
) -> None:
    """Graph panels run as range queries: each must evaluate and return data over a window."""
    import time

    now = time.time()
    for uid in (FLEET_UID, STATION_UID, COLLECTOR_UID):
        board = next(b for b in all_dashboards().values() if b["uid"] == uid)
        for panel in board["panels"]:
            for t in panel["targets"]:
                if t["instant"]:
                    continue
                query = substitute(t["expr"], fleet_target, "3399-cawas-01")
                data = fleet_prometheus.api(
                    "query_range", query=query, start=str(now - 20), end=str(now), step="2"
                )
                assert data["resultType"] == "matrix", query
                if panel["title"] != "Kejadian / Events":  # Cawas has events; others may not
                    assert own(data["result"], fleet_target), f"{panel['title']}: {query}"


def test_template_variables(fleet_prometheus: Prometheus, fleet_target: str) -> None:
    """label_values(...) of each variable, as Grafana asks Prometheus for them."""
    wanted = {
        "provinsi": {fleet.PROVINSI},
        "kabkota": {fleet.KABKOTA},
        "kecamatan": {s.kecamatan for s in fleet.FLEET},
        "station": {s.station for s in fleet.FLEET},
        "instance": {fleet_target},
    }
    seen = set()
    for board in all_dashboards().values():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
            assert match, var["query"]
            selector = substitute(match.group(1), fleet_target)
            values = set(
                fleet_prometheus.api(f"label/{match.group(2)}/values", **{"match[]": selector})
            )
            assert wanted[var["name"]] <= values, (var["name"], selector, values)
            seen.add(var["name"])
    assert seen == set(wanted)


def test_alert_expressions(fleet_prometheus: Prometheus, fleet_target: str) -> None:
    """Each alert's Prometheus expression returns exactly the fleet's faults; its Grafana value
    query (A) returns those series too, among the healthy ones."""
    expected = alert_expectations(fleet_target)
    for alert in default_alerts():
        result = own(fleet_prometheus.query(alert.expr), fleet_target)
        assert_result(result, expected[alert.name], f"{alert.name}: {alert.expr}")
        values = own(fleet_prometheus.query(alert.query), fleet_target)
        names = sorted({k for labels in expected[alert.name] for k, _ in labels})
        got = {tuple((k, r["metric"].get(k, "")) for k in names) for r in values}
        assert set(expected[alert.name]) <= got, alert.name
        assert values, f"{alert.name}: value query returns nothing: {alert.query}"


def test_static_collector_exposition_passes_promtool_check_metrics() -> None:
    """The stand-in /metrics follows the same lint the collector's must pass (DESIGN.md)."""
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
