"""HTTP endpoints on a real socket: metrics (gzip and streamed), JSON, board, auth, TLS, and a
headless-Chromium screenshot of the fleet board.

The broker here is deliberately absent (a free port nobody listens on): the collector keeps
serving while it retries. Reports are fed straight into its fleet with ``Fleet.ingest``, the
function the MQTT callback calls.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from collector_support import INVENTORY_CSV, get, state, topic
from harness import TlsCerts, free_port
from prometheus_client.parser import text_string_to_metric_families

from pantau.collector.config import from_dict, hash_password
from pantau.collector.service import Collector
from pantau.contract.inventory import parse_inventory

INV = parse_inventory(
    INVENTORY_CSV
    + "".join(
        f"3310-{k.lower().replace(' ', '-')}-01,33,3310,{k},fingerprint;iris;camera;signature\n"
        for k in ("Ceper", "Gantiwarno", "Delanggu", "Klaten Tengah", "Trucuk", "Wedi")
    )
    + "3301-kroya-01,33,3301,Kroya,fingerprint;iris;camera;signature\n",
    "<test>",
)


def start(**sections: object) -> Collector:
    http = {"port": 0, **sections.pop("http", {})}  # type: ignore[dict-item]
    cfg = from_dict({"mqtt": {"port": free_port()}, "http": http, **sections})
    c = Collector(cfg, inventory=INV).start()
    now = time.time()
    ok = ("3310-bayat-01", "3310-pedan-01", "3310-ceper-01", "3310-delanggu-01", "3310-wedi-01")
    for station in ok:
        c.fleet.ingest(topic(station), state(station, ts=now), now)
    c.fleet.ingest(
        topic("3310-juwiring-01"),
        state("3310-juwiring-01", missing=("camera", "iris"), ts=now),
        now,
    )
    c.fleet.ingest(
        topic("3310-gantiwarno-01"), state("3310-gantiwarno-01", ts=now, interval_s=1), now - 10
    )
    c.fleet.ingest(
        wire_topic := "pantau/v1/33/3399/3399-baru-01/state", state("3399-baru-01", ts=now), now
    )
    assert wire_topic
    return c


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = start()
    try:
        yield c
    finally:
        c.stop()


def fams(text: str) -> list[object]:
    return [m for m in text_string_to_metric_families(text) if not m.name.startswith("process_")]


def test_healthz_and_404(collector: Collector) -> None:
    assert get(collector.url + "/healthz")[0] == 200
    assert get(collector.url + "/nope")[0] == 404
    assert collector.http_address[0] == "127.0.0.1"


def test_server_header_names_the_package_version(collector: Collector) -> None:
    from pantau import __version__

    assert get(collector.url + "/healthz")[1]["Server"] == f"pantau-collector/{__version__}"
    assert get(collector.url + "/nope")[1]["Server"] == f"pantau-collector/{__version__}"


def test_metrics_gzip_and_plain_are_the_same_page(collector: Collector) -> None:
    status, headers, body = get(collector.url + "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    zipped = gzip.decompress(body).decode()
    status, headers, plain = get(collector.url + "/metrics")
    assert "Content-Encoding" not in headers
    assert fams(zipped) == fams(plain.decode())
    assert (
        'pantau_peripheral_present{station="3310-juwiring-01",provinsi="33",kabkota="3310",kecamatan="Juwiring",device_class="camera"} 0'
        in zipped
    )
    assert "pantau_collector_mqtt_connected 0\n" in zipped  # no broker


def test_api_stations(collector: Collector) -> None:
    status, headers, body = get(collector.url + "/api/stations")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    st = {s["station"]: s for s in doc["stations"]}
    juw = st["3310-juwiring-01"]
    assert juw["up"] is True
    assert juw["problems"] == ["iris scanner missing", "camera missing"]
    assert [p["device_class"] for p in juw["peripherals"] if not p["present"]] == ["iris", "camera"]
    assert juw["probes"] == [
        {
            "target": "login",
            "up": True,
            "duration_s": 0.01,
            "reason": "ok",
            "cause": "ok",
            "status_code": None,
            "cert_expiry_ts": None,
        }
    ]
    assert st["3310-cawas-01"]["status"] == "never_reported"
    assert st["3310-gantiwarno-01"]["status"] == "stale"
    assert st["3399-baru-01"]["inventory"] is False
    assert doc["summary"]["ready"] == 6
    assert doc["summary"]["never_reported"] == 4


def test_board_lists_problems_first(collector: Collector) -> None:
    status, headers, body = get(collector.url + "/")
    page = body.decode()
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<meta http-equiv="refresh" content="15">' in page
    assert "<script" not in page
    # Bahasa Indonesia by default.
    assert "<html lang=id>" in page
    problems = page[page.index("<h2>Masalah") : page.index('<h2><a href="/?kabkota=')]
    assert "3310-juwiring-01" in problems
    assert "pemindai iris hilang sejak " in problems
    assert "kamera hilang sejak " in problems
    assert "belum pernah melapor sejak " in problems
    assert "3310-cawas-01" in problems
    assert "3310-bayat-01" not in problems
    # Regions by name: the province's from its code (33 = Jawa Tengah), kabkota codes otherwise.
    assert "3310, Jawa Tengah" in page
    english = get(collector.url + "/?lang=en")[2].decode()
    assert "<html lang=en>" in english
    problems = english[english.index("<h2>Problems") : english.index('<h2><a href="/?kabkota=')]
    assert "iris scanner missing for " in problems
    assert "never reported for " in problems


def test_basic_auth_with_hash(tmp_path: Path) -> None:
    c = start(
        http={
            "basic_auth_user": "it",
            "basic_auth_password_hash": hash_password("rahasia", iterations=1000),
        }
    )
    try:
        good = "Basic " + base64.b64encode(b"it:rahasia").decode()
        bad = "Basic " + base64.b64encode(b"it:salah").decode()
        assert get(c.url + "/metrics")[0] == 401
        assert get(c.url + "/metrics", {"Authorization": bad})[0] == 401
        assert get(c.url + "/", {"Authorization": "Basic !!!"})[0] == 401
        assert get(c.url + "/metrics", {"Authorization": good})[0] == 200
        assert get(c.url + "/api/stations", {"Authorization": good})[0] == 200
        assert get(c.url + "/healthz")[0] == 200  # liveness stays open
        assert get(c.url + "/readyz")[0] == 503  # so does readiness (no broker here)
    finally:
        c.stop()


def test_basic_auth_with_password_file_and_tls(tmp_path: Path, tls_certs: TlsCerts) -> None:
    pw = tmp_path / "pw"
    pw.write_text("rahasia\n")
    c = start(
        http={
            "basic_auth_user": "it",
            "basic_auth_password_file": str(pw),
            "tls_cert_file": str(tls_certs.server_cert),
            "tls_key_file": str(tls_certs.server_key),
        }
    )
    try:
        assert c.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(tls_certs.ca_cert))
        good = "Basic " + base64.b64encode(b"it:rahasia").decode()
        assert get(c.url + "/metrics", {"Authorization": good}, ctx)[0] == 200
        assert get(c.url + "/metrics", {}, ctx)[0] == 401
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            get(
                c.url + "/healthz",
                {},
                ssl.create_default_context(cafile=str(tls_certs.other_ca_cert)),
            )
    finally:
        c.stop()


def test_port_in_use_is_a_startup_error() -> None:
    c = start()
    try:
        port = c.http_address[1]
        cfg = from_dict({"mqtt": {"port": free_port()}, "http": {"port": port}})
        from pantau.collector.errors import StartupError

        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}"):
            Collector(cfg, inventory=[]).start()
    finally:
        c.stop()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed")
def test_board_screenshot_in_headless_chromium(collector: Collector, tmp_path: Path) -> None:
    shot = tmp_path / "board.png"
    res = subprocess.run(
        [
            str(_chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            # console messages (Content-Security-Policy violations among them) on stderr
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,1100",
            f"--screenshot={shot}",
            collector.url + "/",
        ],
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert shot.exists(), res.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank or error page compresses to a few KB
    # the board works under its Content-Security-Policy: nothing on it was blocked
    assert "Content Security Policy" not in res.stderr.decode(errors="replace")
    keep = os.environ.get("PANTAU_BOARD_SCREENSHOT")
    if keep:  # e.g. PANTAU_BOARD_SCREENSHOT=/tmp/board.png, to look at it after the run
        Path(keep).write_bytes(data)


def test_api_filters(collector: Collector) -> None:
    doc = json.loads(get(collector.url + "/api/stations?problems=1&kabkota=3310")[2])
    names = sorted(s["station"] for s in doc["stations"])
    assert names == [
        "3310-cawas-01",
        "3310-gantiwarno-01",
        "3310-juwiring-01",
        "3310-klaten-tengah-01",
        "3310-trucuk-01",
    ]
    assert doc["summary"]["total"] == 5
    one = json.loads(get(collector.url + "/api/stations?station=3310-bayat-01")[2])
    assert [s["station"] for s in one["stations"]] == ["3310-bayat-01"]


def test_board_for_one_kabkota(collector: Collector) -> None:
    page = get(collector.url + "/?kabkota=3301")[2].decode()
    assert "3301-kroya-01" in page
    assert "3310-juwiring-01" not in page
    flat = page.replace("<b>", "").replace("</b>", "")
    assert "0 siap" in flat
    assert "= 1 stasiun" in flat


def test_big_fleets_get_a_summary_per_kabkota_instead_of_tiles(collector: Collector) -> None:
    from pantau.collector.board import render_board

    page = render_board(collector.snapshot(), max_tiles=3, lang="en")
    assert '<a href="/?kabkota=3310&amp;lang=en">3310</a>' in page
    assert "<div class=tiles>" not in page
    assert page.count("<tr><td class=kab>") == 3  # the problem list is cut at max_tiles
    assert "... and 3 more" in page
