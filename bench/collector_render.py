"""/metrics scrape cost: cached blocks vs rendering everything, and vs prometheus-client.

Each station has a realistic state (``make_state``: 4 peripherals, 2 login probes, host with 2
disks) and 2 event kinds: 28 series per station. Per fleet size, in one run and one process:

- ``reference``: prometheus-client ``generate_latest`` over a custom Collector yielding families
  (the tests' reference rendering), uncompressed; only up to ``--reference-max`` stations (it
  takes ~0.3 s per 1,000);
- ``cold gz``: a fresh ``Renderer`` per scrape: every series rendered and compressed, which is
  what every scrape cost before blocks were cached;
- ``warm gz``: one long-lived ``Renderer`` (as in the collector) after the fleet changed as in
  each scenario since the previous scrape:

  - ``idle``: nothing changed (15 s passed);
  - ``beats``: every station sent a heartbeat (every view replaced, no exported value changed);
  - ``beats+1%``, ``beats+10%``: 1% or 10% of the stations sent a new state (new timestamps, CPU
    and available memory, as ``pantau simulate`` does), the others a heartbeat: agents reporting
    by exception;
  - ``50%``, ``100%``: that share sent a new state, nobody a heartbeat (50%: agents sending
    their full state every 30 s, scraped every 15 s).

Times are gzip scrapes (Prometheus always asks for gzip) in ms, min/median/max of ``--repeat``
runs; each row is printed as soon as it is measured. Every warm page is checked to be identical
to a fresh rendering, and at the smallest size to parse into the same families as the reference.
Then, per size and for the ``beats+1%`` and ``50%`` scenarios, a fresh child process holds the
fleet (built from wire bytes through ``Fleet.ingest``, as live), serves a cold scrape and three
scrapes of the scenario; its peak RSS is printed (goal at 100,000 stations: <= 400 MB; children
are killed on any exit).

Usage::

    .venv/bin/python bench/collector_render.py [--sizes 1000,20000,50000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from pantau.collector.exposition import Renderer
from pantau.collector.fleet import Fleet, Snapshot
from pantau.collector.testing.reference import reference_render
from pantau.collector.testing.synthetic import make_inventory, make_state
from pantau.contract import wire

NOW = 1_790_000_010.0
BOOT = NOW - 86_400.0
#: name -> (fraction of stations sending a new state, whether all others send a heartbeat)
SCENARIOS = {
    "idle": (0.0, False),
    "beats": (0.0, True),
    "beats+1%": (0.01, True),
    "beats+10%": (0.1, True),
    "50%": (0.5, False),
    "100%": (1.0, False),
}


class SimFleet:
    """A fleet of ``n`` stations and the changes of the scenarios."""

    def __init__(self, n: int, *, wire_bytes: bool = False) -> None:
        self.inventory = make_inventory(n)
        self.fleet = Fleet(
            inventory=self.inventory, device_classes=("fingerprint", "iris", "camera", "signature")
        )
        self.rng = random.Random(n)  # a reproducible simulation
        self.now = NOW
        #: Each station's last sequence number: consecutive, as a real agent's (a gap would be
        #: counted and remembered as missing messages).
        self.seqs = [10] * n
        for i, entry in enumerate(self.inventory):
            state = self.state(i, missing=("camera",) if i % 7 == 0 else ())
            topic = wire.Topic(entry.provinsi, entry.kabkota, entry.station, "state")
            if wire_bytes:
                self.fleet.ingest(str(topic), wire.encode(state), self.now)
            else:
                self.fleet.apply(topic, state, self.now)
            for seq, kind in (
                (11, wire.EventKind.AGENT_STARTED),
                (12, wire.EventKind.PERIPHERAL_REMOVED),
            ):
                ev = wire.Event(
                    station=entry.station, agent_version="0.1.0", session="s1", seq=seq,
                    ts=self.now, kind=kind,
                )  # fmt: skip
                event_topic = wire.Topic(entry.provinsi, entry.kabkota, entry.station, "event")
                self.fleet.apply(event_topic, ev, self.now)
            self.seqs[i] = 12

    def state(self, i: int, missing: tuple[str, ...] = ()) -> wire.State:
        """A state as ``pantau simulate`` sends it: new CPU and available memory every time."""
        self.seqs[i] += 1
        state = make_state(self.inventory[i], seq=self.seqs[i], ts=self.now + 0.25, missing=missing)
        assert state.host is not None
        host = msgspec.structs.replace(
            state.host,
            cpu_ratio=round(self.rng.uniform(0.02, 0.4), 3),
            mem_available_bytes=self.rng.randint(1, 6) * 2**30,
            boot_ts=BOOT,
        )
        return msgspec.structs.replace(state, host=host)

    def change(self, fraction: float, beats: bool = False) -> None:
        """15 s pass; ``fraction`` of the stations send a state, the others maybe a heartbeat."""
        self.now += 15.0
        changed = self.rng.sample(range(len(self.inventory)), int(len(self.inventory) * fraction))
        for i in changed:
            e = self.inventory[i]
            topic = wire.Topic(e.provinsi, e.kabkota, e.station, "state")
            self.fleet.apply(topic, self.state(i), self.now)
        if beats:
            skip = set(changed)
            for i, e in enumerate(self.inventory):
                if i not in skip:
                    self.seqs[i] += 1
                    beat = wire.Beat(v=1, session="s1", seq=self.seqs[i])
                    topic = wire.Topic(e.provinsi, e.kabkota, e.station, "beat")
                    self.fleet.apply(topic, beat, self.now)

    def snapshot(self) -> Snapshot:
        return self.fleet.snapshot(self.now + 1.0)


def scrape(renderer: Renderer, snap: Snapshot) -> int:
    """A gzip scrape as the HTTP server serves it (pieces, never joined); returns its size."""
    _, pieces = renderer.gzip_pieces(snap)
    return sum(len(p) for p in pieces)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def spread(times: list[float]) -> str:
    ms = [t * 1e3 for t in times]
    return f"{min(ms):7.0f} {statistics.median(ms):7.0f} {max(ms):7.0f}"


def families(text: str) -> list[object]:
    return [m for m in text_string_to_metric_families(text) if not m.name.startswith("process_")]


def rss_child(n: int, scenario: str) -> None:
    sim = SimFleet(n, wire_bytes=True)
    with open("/proc/self/status") as fh:
        fleet_mb = int(next(ln for ln in fh if ln.startswith("VmRSS:")).split()[1]) / 1024
    renderer = Renderer()
    gz = scrape(renderer, sim.snapshot())
    for _ in range(3):
        sim.change(*SCENARIOS[scenario])
        scrape(renderer, sim.snapshot())
    # VmHWM (peak RSS of this process image); ru_maxrss survives exec and would show the parent's.
    with open("/proc/self/status") as fh:
        hwm = int(next(ln for ln in fh if ln.startswith("VmHWM:")).split()[1]) / 1024
    print(f"{hwm:.0f} {fleet_mb:.0f} {gz}", flush=True)


def run_child(n: int, scenario: str, timeout: float) -> str:
    """The RSS child; killed (with its process group) on any exit, timeout included."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--rss-child", str(n), "--scenarios", scenario],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"RSS child for {n} stations failed ({proc.returncode})")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,20000,50000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-max", type=int, default=20000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS children")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.scenarios)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    scenarios = args.scenarios.split(",")
    print(
        f"python {sys.version.split()[0]}; {args.repeat} runs each, times in ms (min median max);"
        " gzip level 1",
        flush=True,
    )
    print(f"{'stations':>8} {'what':<22} {'min':>7} {'median':>7} {'max':>7}  notes", flush=True)
    for n in sizes:
        t0 = time.perf_counter()
        sim = SimFleet(n)
        snap = sim.snapshot()
        fresh = Renderer(process_metrics=False)
        page = fresh.render(snap)
        series = page.count(b"\n") - page.count(b"\n#")
        print(
            f"{n:>8} {'(fleet built)':<22} {'':>23}  {series} series, page {len(page) / 1e6:.1f} MB,"
            f" built in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        if n <= args.reference_max:
            ref = [timed(lambda s=snap: reference_render(s)) for _ in range(args.repeat)]  # type: ignore[misc]
            print(f"{n:>8} {'reference (no gzip)':<22} {spread(ref)}", flush=True)
        if n == min(sizes):
            assert families(page.decode()) == families(reference_render(snap).decode())
        del page
        cold = [
            timed(lambda s=snap: scrape(Renderer(process_metrics=False), s))  # type: ignore[misc]
            for _ in range(args.repeat)
        ]
        print(f"{n:>8} {'cold gz (everything)':<22} {spread(cold)}", flush=True)
        warm = Renderer(process_metrics=False)
        gz_size = scrape(warm, snap)
        for name in scenarios:
            times, rendered = [], []
            for _ in range(args.repeat):
                sim.change(*SCENARIOS[name])
                snap = sim.snapshot()
                times.append(timed(lambda s=snap, w=warm: scrape(w, s)))  # type: ignore[misc]
                rendered.append(warm.last_rendered[0] / warm.last_rendered[1])
            # the warm page is the page (checked once per scenario, outside the timing)
            assert gzip.decompress(warm.render_gzip(snap)) == fresh.render(snap)
            ratio = statistics.median(cold) / statistics.median(times)
            print(
                f"{n:>8} {'warm gz, ' + name:<22} {spread(times)}  {ratio:5.1f}x cold;"
                f" {statistics.median(rendered):.0%} of blocks re-rendered",
                flush=True,
            )
        print(f"{n:>8} {'gzip page':<22} {'':>23}  {gz_size / 1e6:.1f} MB", flush=True)
        del sim, snap, fresh, warm
        for scenario in [] if args.no_rss else ["beats+1%", "50%"]:
            hwm, fleet_mb, _ = run_child(n, scenario, timeout=900).split()
            print(
                f"{n:>8} {'peak RSS, ' + scenario:<22} {'':>23}  {hwm} MB (a fresh process: fleet"
                f" alone {fleet_mb} MB, then a cold and three {scenario} scrapes)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
