"""End to end with real parts: publisher -> mosquitto -> collector -> Prometheus scrape."""

from __future__ import annotations

import pytest
from collector_support import publisher, running, state, status, topic
from harness import Mosquitto, Prometheus

from pantau.contract.inventory import parse_inventory

STATION = "3310-e2e-prom-01"
INV = parse_inventory(
    "station,provinsi,kabkota,kecamatan,device_classes\n"
    f"{STATION},33,3310,Juwiring,fingerprint;iris;camera;signature\n"
    "3310-e2e-prom-silent,33,3310,Cawas,fingerprint\n"
)


def value(result: list[dict[str, object]]) -> str | None:
    return str(result[0]["value"][1]) if len(result) == 1 else None  # type: ignore[index]


@pytest.mark.slow
def test_prometheus_sees_a_missing_camera_and_a_silent_station(
    mosquitto: Mosquitto, prometheus: Prometheus
) -> None:
    with running(mosquitto, inv=INV) as c, publisher(mosquitto) as pub:
        host, port = c.http_address
        job = "pantau-collector-e2e"
        # Prometheus asks for gzip: every value below came through the cached blocks sent as one
        # gzip member (counted here, so the test fails if it ever read the plain page instead).
        gzip_scrapes = []
        pieces = c.renderer.gzip_pieces

        def counting(*args: object, **kw: object) -> object:
            gzip_scrapes.append(1)
            return pieces(*args, **kw)  # type: ignore[arg-type]

        c.renderer.gzip_pieces = counting  # type: ignore[method-assign]
        pub.publish(topic(STATION, "status"), status(STATION, "online", seq=1), retain=True)
        pub.publish(topic(STATION), state(STATION, seq=2), retain=True)
        prometheus.scrape(job, [f"{host}:{port}"])
        camera = (
            f'pantau_peripheral_present{{job="{job}",station="{STATION}",device_class="camera"}}'
        )
        prometheus.wait_until(camera, lambda r: value(r) == "1", timeout=30)
        silent = f'pantau_station_up{{job="{job}",station="3310-e2e-prom-silent"}}'
        assert value(prometheus.query(silent)) == "0"
        info = f'pantau_station_info{{job="{job}",station="3310-e2e-prom-silent",inventory="yes"}}'
        assert value(prometheus.query(info)) == "1"

        pub.publish(topic(STATION), state(STATION, seq=3, missing=("camera",)), retain=True)
        prometheus.wait_until(camera, lambda r: value(r) == "0", timeout=30)
        up = f'pantau_station_up{{job="{job}",station="{STATION}"}}'
        assert value(prometheus.query(up)) == "1"
        prometheus.unscrape(job)
        assert len(gzip_scrapes) >= 2  # the unplug was seen on a later scrape than the plug
