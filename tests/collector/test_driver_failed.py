"""A peripheral whose driver failed: the collector keeps the reason apart from "missing".

The golden state tests/fixtures/wire/state_driver_failed.json (a signature pad on USB whose
driver failed) goes through ingest, the station's problems (board and /api/stations), the fast
exposition and the prometheus-client reference rendering; an unknown reason from an agent stays a
bounded label value.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pantau.collector.board import render_board
from pantau.collector.exposition import Renderer
from pantau.collector.fleet import PROBLEM_REASONS, Fleet, problem_reason, problems
from pantau.collector.testing.reference import reference_render
from pantau.contract.inventory import parse_inventory
from pantau.contract.vocabulary import PeripheralReason

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wire" / "state_driver_failed.json"
TOPIC = "pantau/v1/33/3310/3310-juwiring-01/state"
T0 = 1_790_000_100.0


def fleet() -> Fleet:
    inv = parse_inventory(
        "station,provinsi,kabkota,kecamatan,device_classes\n"
        "3310-juwiring-01,33,3310,Juwiring,camera;signature;iris\n"
    )
    f = Fleet(inventory=inv, device_classes=("fingerprint", "iris", "camera", "signature"))
    assert f.ingest(TOPIC, FIXTURE.read_bytes(), T0) == ""
    return f


def problem_series(page: str) -> dict[tuple[str, str], float]:
    [fam] = [
        m
        for m in text_string_to_metric_families(page)
        if m.name == "pantau_peripheral_problem_info"
    ]
    return {(s.labels["device_class"], s.labels["reason"]): s.value for s in fam.samples}


def test_driver_failed_is_its_own_problem_everywhere() -> None:
    snap = fleet().snapshot(T0 + 1)
    [view] = snap.stations
    by_class = {p.device_class: p for p in view.presence}
    assert (by_class["signature"].present, by_class["signature"].reason) == (False, "driver_failed")
    assert by_class["signature"].devices == "06a8:0057"  # on USB: the device is known
    assert problems(view, snap.now, snap.stale_after_intervals) == [
        "signature pad driver failed",
        "iris scanner not configured (no [[devices]] rule)",  # expected, not reported
    ]
    assert "signature pad driver failed" in render_board(snap, lang="en")
    assert "alat tanda tangan (signature pad) terpasang tetapi drivernya gagal" in render_board(
        snap
    )
    fast = Renderer(process_metrics=False).render(snap).decode()
    assert problem_series(fast) == {
        ("signature", "driver_failed"): 1.0,
        ("iris", "not_configured"): 1.0,
    }
    assert problem_series(reference_render(snap).decode()) == problem_series(fast)
    present = next(
        m for m in text_string_to_metric_families(fast) if m.name == "pantau_peripheral_present"
    )
    assert {s.labels["device_class"]: s.value for s in present.samples}["signature"] == 0.0


def test_reason_label_stays_bounded() -> None:
    assert set(PROBLEM_REASONS) == {*PeripheralReason, "other"}
    assert problem_reason("driver_failed") == "driver_failed"
    assert problem_reason("not_configured") == "not_configured"
    assert problem_reason('x"} 1\nevil') == "other"
    f = fleet()
    raw = (
        FIXTURE.read_text()
        .replace('"driver_failed"', '"toaster_on_fire"')
        .replace('"seq": 7', '"seq": 8')
    )
    assert f.ingest(TOPIC, raw.encode(), T0 + 2) == ""
    page = Renderer(process_metrics=False).render(f.snapshot(T0 + 3)).decode()
    assert ("signature", "other") in problem_series(page)
