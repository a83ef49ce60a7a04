"""/metrics text: same families as prometheus-client's rendering, promtool-clean, escaped."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pantau.collector.exposition import RENDER, Renderer
from pantau.collector.fleet import Fleet, Snapshot
from pantau.collector.testing.reference import reference_render
from pantau.collector.testing.synthetic import make_inventory, make_state, state_topic
from pantau.contract import metrics, wire

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
T0 = 1_790_000_000.0


def varied_fleet() -> Snapshot:
    """Every kind of station: healthy, missing devices, never reported, offline, stale, unknown
    with awkward label values, events, and every rejection reason at least once."""
    inventory = make_inventory(60)
    f = Fleet(inventory=inventory, device_classes=("fingerprint", "iris", "camera", "signature"))
    for i, entry in enumerate(inventory[:50]):
        msg = make_state(
            entry,
            seq=10,
            ts=T0 - i,
            missing=("camera", "iris")[: i % 3],
            login_up=i % 4 != 0,
        )
        assert (
            f.ingest(state_topic(entry), wire.encode(msg), T0 - (200 if i % 10 == 9 else 0)) == ""
        )
    off = inventory[0]
    will = wire.Status(
        station=off.station, agent_version="0.1.0", session="s1", seq=0, ts=T0, status="offline"
    )
    f.ingest(wire.topic(off.provinsi, off.kabkota, off.station, "status"), wire.encode(will), T0)
    ev = wire.Event(
        station=inventory[1].station,
        agent_version="0.1.0",
        session="s1",
        seq=11,
        ts=T0,
        kind=wire.EventKind.PERIPHERAL_REMOVED,
    )
    f.ingest(str(wire.Topic("33", "3310", inventory[1].station, "event")), wire.encode(ev), T0)
    # Not in the inventory; label values that need escaping come from the report.
    odd = wire.State(
        station="3399-aneh-01",
        agent_version='1.0 "beta"\\x',
        session="z",
        seq=1,
        ts=T0,
        os="Linux\nDebian",
        kecamatan='Kec "Aneh" \\ baru',
        probes=(
            wire.Probe(
                target='lo"gin\\',
                kind="tls",
                up=True,
                duration_s=0.5,
                reason="cert_expiring",
                cert_expiry_ts=T0 + 86400 * 5,
            ),
            wire.Probe(
                target="enrollment",
                kind="http",
                up=False,
                duration_s=0.1,
                reason="http_status",
                status_code=403,
            ),
        ),
        host=wire.Host(
            cpu_ratio=0.5,
            mem_available_bytes=1,
            mem_total_bytes=2,
            boot_ts=T0,
            agent_start_ts=T0,
            disks=(wire.Disk(mount="C:\\", free_bytes=1, size_bytes=2),),
        ),
    )
    assert f.ingest(wire.topic("33", "3399", "3399-aneh-01", "state"), wire.encode(odd), T0) == ""
    f.ingest(wire.topic("33", "3310", inventory[2].station, "state"), b"{", T0)
    f.ingest(
        wire.topic("33", "3310", inventory[2].station, "state"),
        (FIXTURES / "state_full.json").read_bytes(),
        T0,
    )
    f.set_connected(True)
    return f.snapshot(T0 + 60)


def families(text: str) -> list[object]:
    return [m for m in text_string_to_metric_families(text) if not m.name.startswith("process_")]


def test_fast_rendering_parses_to_the_same_families_as_prometheus_client() -> None:
    snap = varied_fleet()
    fast = Renderer().render(snap).decode()
    ref = reference_render(snap).decode()
    assert families(fast) == families(ref)
    names = [m.name for m in families(fast)]  # type: ignore[attr-defined]
    assert names == [f.base_name for f in metrics.FAMILIES]  # every family of the table exercised
    assert "process_cpu_seconds_total" in fast


def test_every_station_family_of_the_table_has_exactly_one_renderer() -> None:
    assert list(RENDER) == list(metrics.STATION_FAMILIES)


def test_escaped_label_values_round_trip() -> None:
    fast = Renderer().render(varied_fleet()).decode()
    info = next(m for m in text_string_to_metric_families(fast) if m.name == "pantau_station_info")
    odd = next(s for s in info.samples if s.labels["station"] == "3399-aneh-01")
    assert odd.labels == {
        "station": "3399-aneh-01",
        "provinsi": "33",
        "kabkota": "3399",
        "kecamatan": 'Kec "Aneh" \\ baru',
        "agent_version": '1.0 "beta"\\x',
        "os": "Linux\nDebian",
        "inventory": "no",
    }
    assert 'mount="C:\\\\"' in fast


def test_never_reported_inventory_stations_are_exported_down() -> None:
    fast = Renderer().render(varied_fleet()).decode()
    line = (
        'pantau_station_up{station="3310-wonosari-00051",provinsi="33",kabkota="3310",'
        'kecamatan="Wonosari"} 0\n'
    )
    assert line in fast
    assert (
        'pantau_station_info{station="3310-wonosari-00051",provinsi="33",kabkota="3310",'
        'kecamatan="Wonosari",agent_version="",os="",inventory="yes"} 1\n'
    ) in fast
    assert 'pantau_collector_stations{state="never_reported"} 10\n' in fast
    assert 'pantau_collector_reports_rejected_total{reason="bad_json"} 1\n' in fast


def test_gzip_output_is_the_same_page() -> None:
    snap = varied_fleet()
    r = Renderer(process_metrics=False)
    assert gzip.decompress(r.render_gzip(snap, 1)) == r.render(snap)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_check_metrics_is_clean() -> None:
    page = Renderer().render(varied_fleet())
    res = subprocess.run(
        ["promtool", "check", "metrics"], check=False, input=page, capture_output=True, timeout=30
    )
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()
    assert res.stdout == b""
    assert res.stderr == b""


def test_many_stations_render_in_batches_with_one_header_per_family() -> None:
    inventory = make_inventory(2500)
    f = Fleet(inventory=inventory, device_classes=("fingerprint", "iris", "camera", "signature"))
    for entry in inventory[1200:]:
        f.ingest(state_topic(entry), wire.encode(make_state(entry)), T0)
    page = Renderer(process_metrics=False).render(f.snapshot(T0)).decode()
    assert page.count("# TYPE pantau_peripheral_present gauge\n") == 1
    fams = {m.name: m for m in text_string_to_metric_families(page)}
    assert len(fams["pantau_station_up"].samples) == 2500
    assert len(fams["pantau_peripheral_present"].samples) == 1300 * 4


GOLDEN = Path(__file__).resolve().parent / "golden" / "metrics.txt"


def golden_snapshot() -> Snapshot:
    """Three stations at a fixed clock: the golden state_full fixture, never reported, offline."""
    from pantau.contract.inventory import parse_inventory

    inv = parse_inventory(
        "station,provinsi,kabkota,kecamatan,device_classes\n"
        "3310-juwiring-01,33,3310,Juwiring,fingerprint;iris;camera;signature\n"
        "3310-cawas-01,33,3310,Cawas,fingerprint;iris;camera;signature\n"
        "3310-bayat-01,33,3310,Bayat,fingerprint\n"
    )
    f = Fleet(inventory=inv, device_classes=("fingerprint", "iris", "camera", "signature"))
    base = "pantau/v1/33/3310/3310-juwiring-01/"
    f.ingest(base + "state", (FIXTURES / "state_full.json").read_bytes(), T0)
    f.ingest(base + "event", (FIXTURES / "event_peripheral_removed.json").read_bytes(), T0)
    bayat = inv[2]
    f.ingest(
        "pantau/v1/33/3310/3310-bayat-01/state",
        wire.encode(make_state(bayat, seq=5, ts=T0 + 2.5)),
        T0,
    )
    will = wire.Status(
        station="3310-bayat-01", agent_version="0.1.0", session="s1", seq=0, ts=T0, status="offline"
    )
    f.ingest("pantau/v1/33/3310/3310-bayat-01/status", wire.encode(will), T0 + 1)
    f.ingest("pantau/v1/33/3310/3310-bayat-01/state", b"[", T0 + 1)
    f.set_connected(True)
    return f.snapshot(T0 + 5)


def test_golden_exposition() -> None:
    """The page for a small fixed fleet, byte for byte (regenerate with PANTAU_REGEN_GOLDEN=1)."""
    import os

    page = Renderer(process_metrics=False).render(golden_snapshot()).decode()
    if os.environ.get("PANTAU_REGEN_GOLDEN"):
        GOLDEN.write_text(page)
    assert page == GOLDEN.read_text()
