"""/metrics render cost: the collector's direct text rendering vs prometheus-client, same state.

For 1k, 5k and 20k stations (each a realistic state: 4 peripherals, 2 probes, host with 2 disks,
2 event kinds: ~19 series per station), in one run:

- ``reference``: prometheus-client ``generate_latest`` over a custom Collector yielding families
  (pantau.collector.reference.FleetCollector), the straightforward implementation;
- ``fast``: pantau.collector.exposition.Renderer (text built directly from the snapshot);
- ``fast+gz1``: the same streamed through gzip level 1 (what /metrics serves to Prometheus) vs
  ``ref+gz9``: the reference plus gzip level 9 (prometheus-client's HTTP server compresses at 9);
- gzip of the page alone at levels 1, 6 and 9; the RSS of a fresh process that holds a 20k fleet
  and has served one gzip scrape (goal < 150 MB).

Usage::

    .venv/bin/python bench/collector_render.py [--sizes 1000,5000,20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import time
from collections.abc import Callable

from pantau.collector.exposition import Renderer
from pantau.collector.fleet import Fleet
from pantau.collector.reference import reference_render
from pantau.collector.synthetic import make_inventory, make_state
from pantau.contract import wire

NOW = 1_790_000_010.0


def build(n: int, *, wire_bytes: bool = False) -> tuple[Fleet, list[object]]:
    """A fleet of ``n`` stations; ``wire_bytes``: via encode + Fleet.ingest (decode), as live."""
    inventory = make_inventory(n)
    fleet = Fleet(
        inventory=inventory, device_classes=("fingerprint", "iris", "camera", "signature")
    )
    for i, entry in enumerate(inventory):
        topic = wire.Topic(entry.provinsi, entry.kabkota, entry.station, "state")
        state = make_state(entry, seq=10, missing=("camera",) if i % 7 == 0 else ())
        if wire_bytes:
            fleet.ingest(str(topic), wire.encode(state), NOW)
        else:
            fleet.apply(topic, state, NOW)
        for seq, kind in (
            (11, wire.EventKind.AGENT_STARTED),
            (12, wire.EventKind.PERIPHERAL_REMOVED),
        ):
            ev = wire.Event(
                station=entry.station, agent_version="0.1.0", session="s1", seq=seq, ts=NOW,
                kind=kind,
            )  # fmt: skip
            fleet.apply(wire.Topic(entry.provinsi, entry.kabkota, entry.station, "event"), ev, NOW)
    return fleet, list(inventory)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rss_child(n: int) -> None:
    fleet, _ = build(n, wire_bytes=True)
    renderer = Renderer()
    gz = renderer.render_gzip(fleet.snapshot(NOW + 1), 1)
    size = sum(len(c) for c in renderer.chunks(fleet.snapshot(NOW + 1)))
    # VmHWM (peak RSS of this process image); ru_maxrss survives exec and would show the parent's.
    with open("/proc/self/status") as fh:
        hwm = next(ln for ln in fh if ln.startswith("VmHWM:"))
    print(f"{int(hwm.split()[1]) / 1024:.0f} {size} {len(gz)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"python {sys.version.split()[0]}; best of {args.repeat}; times in ms")
    header = (
        f"{'stations':>8} {'series':>8} {'MB':>6} {'reference':>10} {'fast':>7} {'ratio':>7}"
        f" {'fast+gz1':>9} {'ref+gz9':>8} {'ratio':>7} {'gz1':>5} {'gz6':>5} {'gz9':>5} {'gz1 MB':>7}"
    )
    print(header)
    for n in sizes:
        fleet, _ = build(n)
        snap = fleet.snapshot(NOW + 1)
        renderer = Renderer(process_metrics=False)
        out = renderer.render(snap)
        ref_out = reference_render(snap)
        assert abs(len(out) - len(ref_out)) < len(ref_out) * 0.2
        ref = best(lambda s=snap: reference_render(s), args.repeat)  # type: ignore[misc]
        fast = best(lambda s=snap, r=renderer: r.render(s), args.repeat)  # type: ignore[misc]
        fast_gz = best(lambda s=snap, r=renderer: r.render_gzip(s, 1), args.repeat)  # type: ignore[misc]
        gz = {lvl: best(lambda o=out, v=lvl: gzip.compress(o, v), args.repeat) for lvl in (1, 6, 9)}  # type: ignore[misc]
        ref_gz9 = ref + gz[9]  # prometheus-client's own HTTP server compresses at level 9
        series = out.count(b"\n") - out.count(b"\n#")
        print(
            f"{n:>8} {series:>8} {len(out) / 1e6:>6.1f} {ref * 1e3:>10.0f} {fast * 1e3:>7.0f}"
            f" {ref / fast:>6.1f}x {fast_gz * 1e3:>9.0f} {ref_gz9 * 1e3:>8.0f} {ref_gz9 / fast_gz:>6.1f}x"
            f" {gz[1] * 1e3:>5.0f} {gz[6] * 1e3:>5.0f} {gz[9] * 1e3:>5.0f}"
            f" {len(gzip.compress(out, 1)) / 1e6:>7.1f}"
        )
        del fleet, snap, renderer, out, ref_out
    n = max(sizes)
    res = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    rss, size, gz = res.stdout.split()
    print(
        f"RSS of a fresh process holding {n} stations after one fast scrape (+ gzip 1): {rss} MB"
        f" (goal < 150 MB); page {int(size) / 1e6:.1f} MB, gzip-1 {int(gz) / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
