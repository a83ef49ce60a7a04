"""One report must not break the scrape.

A number can be valid JSON, and valid for Python's parsers, yet make Prometheus reject the whole
/metrics page (an integer of 310 digits: Go's ``strconv.ParseFloat`` fails with a range error);
``up`` then drops to 0 for the fleet, and a retained state brings it back after every restart.
Two defences, each tested against Prometheus' own parsers:

- the wire contract bounds every number (``out_of_range``): end to end, a station's poisoned
  report through the shipped broker and the real collector is counted, and Prometheus keeps
  scraping;
- the exposition prints every report-derived value with ``sample_value``: a hypothesis generator
  of hostile numbers, pushed into the fleet past the decoder (``Fleet.apply``), renders pages that
  ``promtool check metrics`` and a real Prometheus scrape accept. The control page, the same
  numbers printed naively, is rejected by both, so the check can fail.
"""

from __future__ import annotations

import math
import random
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from _shipped import Shipped, http_get, topic
from harness import LocalHttpServer, Prometheus, procs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pantau.collector.exposition import Renderer, sample_value
from pantau.collector.fleet import Fleet
from pantau.contract import wire

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

HUGE = 10**309
#: Numbers a hostile (or broken) source could put anywhere.
hostile = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([HUGE, -HUGE, 2**1024, 2**53 + 1, -0.0, 5e-324, 1.7976931348623157e308]),
    st.booleans(),
)
T0 = 1_790_000_000.0


def _promtool(page: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["promtool", "check", "metrics"], input=page, capture_output=True, timeout=30, check=False
    )


def _poisoned(station: str, numbers: list[Any]) -> wire.State:
    """A state whose every rendered number is hostile (built without the decoder's checks)."""
    n = iter(numbers * 3)
    return wire.State(
        station=station,
        agent_version="x",
        session="s1",
        seq=1,
        ts=next(n),
        probes=(wire.Probe(target="login", kind="tcp", up=True, duration_s=next(n)),),
        host=wire.Host(
            cpu_ratio=next(n),
            mem_available_bytes=next(n),
            mem_total_bytes=next(n),
            boot_ts=next(n),
            agent_start_ts=next(n),
            disks=(wire.Disk(mount="C:\\", free_bytes=next(n), size_bytes=next(n)),),
        ),
    )


def _page(fleets: list[list[Any]]) -> bytes:
    fleet = Fleet()
    for i, numbers in enumerate(fleets):
        station = f"3310-hostile-{i:03d}"
        parsed = wire.Topic("33", "3310", station, "state")
        assert fleet.apply(parsed, _poisoned(station, numbers), T0) == ""
    return Renderer(process_metrics=False).render(fleet.snapshot(T0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(numbers=st.lists(hostile, min_size=9, max_size=9))
def test_promtool_accepts_pages_of_hostile_numbers(numbers: list[Any]) -> None:
    res = _promtool(_page([numbers]))
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


def test_sample_value_forms() -> None:
    assert sample_value(42) == "42"
    assert sample_value(2**53 + 1) == repr(float(2**53 + 1))
    assert sample_value(HUGE) == "+Inf"
    assert sample_value(-HUGE) == "-Inf"
    assert sample_value(True) == "1"
    assert sample_value(math.nan) == "nan"
    assert sample_value("12") == "NaN"


def test_control_a_naive_page_is_rejected_by_promtool() -> None:
    good = _page([[1.0] * 9])
    assert _promtool(good).returncode == 0
    naive = good + f'pantau_naive_bytes{{station="x"}} {HUGE}\n'.encode()
    res = _promtool(naive)
    assert res.returncode != 0
    assert b"expected float as value" in res.stdout + res.stderr


def test_a_real_prometheus_scrapes_hostile_pages(prometheus: Prometheus) -> None:
    """One page holding 40 stations of generated hostile numbers is scraped (up 1, every
    station's series stored); the control page with one naive 310-digit sample is refused."""
    pages: dict[str, bytes] = {}
    pages["/hostile"] = _page(_examples(40))
    pages["/naive"] = pages["/hostile"] + f'pantau_naive_bytes{{station="x"}} {HUGE}\n'.encode()

    def respond(_method: str, path: str, _body: bytes) -> tuple[int, dict[str, str], bytes]:
        body = pages.get(path.split("?", maxsplit=1)[0].removesuffix("/metrics"), b"")
        return 200, {"Content-Type": "text/plain; version=0.0.4"}, body

    with LocalHttpServer(respond) as server:
        target = f"127.0.0.1:{server.port}"
        # both jobs scrape the same server; the path decides the page (the harness scrapes
        # /metrics, so the page is chosen by a path prefix through the target's __metrics_path__)
        prometheus.scrape(
            "adversarial-hostile", [target], labels={"__metrics_path__": "/hostile/metrics"}
        )
        stored = prometheus.query(
            'count(pantau_host_memory_total_bytes{job="adversarial-hostile"})'
        )
        assert stored
        assert stored[0]["value"][1] == "40"
        prometheus.scrape(
            "adversarial-naive", [target], labels={"__metrics_path__": "/naive/metrics"}, wait=False
        )
        result = prometheus.wait_until(
            'up{job="adversarial-naive"}', lambda r: bool(r) and r[0]["value"][1] == "0", 30
        )
        assert result
        targets = prometheus.api("targets")["activeTargets"]
        naive = [t for t in targets if t["labels"]["job"] == "adversarial-naive"]
        assert "out of range" in naive[0]["lastError"], naive[0]["lastError"]
        prometheus.unscrape("adversarial-naive")
        prometheus.unscrape("adversarial-hostile")


def _examples(count: int, seed: int = 12) -> list[list[Any]]:
    """``count`` x 9 hostile numbers, reproducible: special values, integers of any size and
    doubles from random bit patterns (NaNs, infinities, subnormals included)."""
    rng = random.Random(seed)
    special: list[Any] = [HUGE, -HUGE, 2**1024, 2**53 + 1, -0.0, 5e-324, math.inf, math.nan, True]

    def one() -> Any:
        pick = rng.randrange(4)
        if pick == 0:
            return rng.choice(special)
        if pick == 1:
            return rng.randrange(-(10**400), 10**400)
        if pick == 2:
            return struct.unpack("<d", rng.randbytes(8))[0]
        return rng.randrange(-(2**64), 2**64)

    return [[one() for _ in range(9)] for _ in range(count)]


def test_a_poisoned_report_through_the_shipped_stack(
    shipped: Shipped, prometheus: Prometheus
) -> None:
    """A station publishes the report that blinded Prometheus: the collector counts it as
    out_of_range, keeps the station's last good state, and Prometheus keeps scraping."""
    url = shipped.start_collector("collector")
    station = "3310-cawas-01"
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "wire" / "rejected"
    poison = (fixtures / "state.out_of_range.mem_total_bytes_310_digits.json").read_bytes()
    poison = poison.replace(b"3310-juwiring-01", station.encode())
    good = wire.encode(
        wire.State(station=station, agent_version="0.1.0", session="s1", seq=1, ts=time.time())
    )
    target = url.removeprefix("http://")
    prometheus.scrape("adversarial-collector", [target])
    try:
        with shipped.client(station) as client:
            assert not client.publish(topic(station, "state"), good, retain=True).is_failure
            assert not client.publish(topic(station, "state"), poison, retain=True).is_failure
        rejected = 'pantau_collector_reports_rejected_total{job="adversarial-collector",reason="out_of_range"}'
        prometheus.wait_until(rejected, lambda r: bool(r) and r[0]["value"][1] == "1", 30)
        up = prometheus.query('up{job="adversarial-collector"}')
        assert up[0]["value"][1] == "1"
        _, _, body = http_get(url + "/metrics")
        assert b"1" + b"0" * 100 not in body
        assert f'pantau_station_up{{station="{station}"'.encode() in body
        # after a restart the retained poison is replayed: rejected again, the scrape stays up
        started = 'process_start_time_seconds{job="adversarial-collector"}'
        before = float(prometheus.query(started)[0]["value"][1])
        proc, _, _ = shipped.collectors.pop("collector")
        procs.stop(proc)
        shipped.start_collector("collector", port=int(target.rsplit(":", 1)[1]))
        prometheus.wait_until(started, lambda r: bool(r) and float(r[0]["value"][1]) > before, 30)
        prometheus.wait_until(rejected, lambda r: bool(r) and r[0]["value"][1] == "1", 30)
        assert prometheus.query('up{job="adversarial-collector"}')[0]["value"][1] == "1"
    finally:
        prometheus.unscrape("adversarial-collector")
