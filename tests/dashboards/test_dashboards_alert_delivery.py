"""The generated Prometheus rules, loaded into the real Prometheus, make the real Alertmanager
deliver a firing webhook when a device disappears from a station's metrics, and a resolved one
when it comes back.

The station's agent is simulated at the wire level (dash_feed publishes its states to a real
mosquitto); the real collector turns them into /metrics. The lead's end-to-end test replaces the
simulated agent by the real agent on an emulated (umockdev) USB bus.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import dash_fleet as fleet
import pytest
from dash_feed import CollectorFeed
from harness import Alertmanager, Prometheus

pytestmark = pytest.mark.slow

JOB = "pantau-dashboards-delivery"
STATION = fleet.Station("3397-juwiring-01", "Juwiring", 1, "3397")


@pytest.fixture
def station_metrics(prometheus: Prometheus, tmp_path: Path) -> Iterator[CollectorFeed]:
    with CollectorFeed(tmp_path, (STATION,)) as feed:
        prometheus.scrape(JOB, [feed.target])
        try:
            yield feed
        finally:
            prometheus.unscrape(JOB)
        assert not feed.errors, feed.errors


def test_unplug_fires_and_plug_back_resolves(
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    pantau_rules: list[Path],
    station_metrics: CollectorFeed,
) -> None:
    labels = {"station": STATION.station, "device_class": "fingerprint"}
    since = alertmanager.mark()
    unplugged = dataclasses.replace(STATION, peripherals={**STATION.peripherals, "fingerprint": 0})
    station_metrics.stations = (unplugged,)

    alert = alertmanager.wait_for("PantauPeripheralMissing", "firing", labels, 60, since=since)
    assert alert["labels"]["kecamatan"] == "Juwiring"
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["hours"] == "office"
    assert alert["annotations"]["summary"] == (
        "Pemindai sidik jari tidak terdeteksi di Kecamatan Juwiring (stasiun 3397-juwiring-01)"
    )
    assert alert["annotations"]["summary_en"].startswith("Fingerprint scanner not detected")

    since = alertmanager.mark()
    station_metrics.stations = (STATION,)
    resolved = alertmanager.wait_for("PantauPeripheralMissing", "resolved", labels, 60, since=since)
    assert resolved["labels"]["station"] == STATION.station
