"""Cost of the exposition's sample-value guard on a whole /metrics render.

Same snapshot, same process, side by side, cold renders (a new Renderer each time, so every
family is rendered, not served from its cache of unchanged blocks): ``guarded`` is the shipped Renderer, in which every
report-derived value (probe durations, host and disk numbers, clock skew) is checked to be a
float or an integer of at most 2**53 before it is printed as is, else goes through
``pantau.collector.exposition.sample_value``; ``naive`` is the same Renderer with those five
family functions replaced, for the run, by the unguarded one-liners the page had before (which
would print a 310-digit integer verbatim). Stations as in bench/collector_render.py, decoded from
wire bytes as live (``SimFleet``).

Usage::

    .venv/bin/python bench/exposition_guard.py [--sizes 5000,20000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collector_render import SimFleet

from pantau.collector import exposition
from pantau.collector.exposition import Renderer, escape_label
from pantau.contract import metrics

Text = Callable[..., str]


def _naive_host(index: int, name: str) -> Text:
    def text(views: list, labels: list, _now: float, _stale: float) -> str:  # type: ignore[type-arg]
        return "".join(
            [
                f"{name}{{{ls}}} {h[index]!r}\n"
                for v, ls in zip(views, labels, strict=True)
                if (r := v.report) is not None and (h := r.host) is not None
            ]
        )

    return text


def _naive_disk(index: int, name: str) -> Text:
    def text(views: list, labels: list, _now: float, _stale: float) -> str:  # type: ignore[type-arg]
        return "".join(
            [
                f'{name}{{{ls},mount="{escape_label(d[0])}"}} {d[index]}\n'
                for v, ls in zip(views, labels, strict=True)
                if (r := v.report) is not None
                for d in r.disks
            ]
        )

    return text


def _naive_duration(views: list, labels: list, _now: float, _stale: float) -> str:  # type: ignore[type-arg]
    return "".join(
        [
            f'pantau_login_probe_duration_seconds{{{ls},target="{escape_label(t)}"}} {d!r}\n'
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for t, _, d, _ in r.probes
        ]
    )


def _naive_skew(views: list, labels: list, _now: float, _stale: float) -> str:  # type: ignore[type-arg]
    return "".join(
        [
            f"pantau_host_clock_skew_seconds{{{ls}}} {r.ts - v.state_rx!r}\n"
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
        ]
    )


NAIVE: dict[metrics.Family, Text] = {
    metrics.LOGIN_DURATION: _naive_duration,
    metrics.HOST_CPU: _naive_host(0, metrics.HOST_CPU.name),
    metrics.HOST_MEM_AVAILABLE: _naive_host(1, metrics.HOST_MEM_AVAILABLE.name),
    metrics.HOST_MEM_TOTAL: _naive_host(2, metrics.HOST_MEM_TOTAL.name),
    metrics.HOST_DISK_FREE: _naive_disk(1, metrics.HOST_DISK_FREE.name),
    metrics.HOST_DISK_SIZE: _naive_disk(2, metrics.HOST_DISK_SIZE.name),
    metrics.HOST_BOOT: _naive_host(3, metrics.HOST_BOOT.name),
    metrics.HOST_CLOCK_SKEW: _naive_skew,
}


def interleaved(snap: object, repeat: int) -> tuple[float, float, float, float]:
    """Best times (whole page guarded, naive; the eight guarded families alone, guarded,
    naive), alternating runs: a shared machine drifts."""
    shipped = dict(exposition.RENDER)
    naive = {f: r._replace(text=NAIVE[f]) if f in NAIVE else r for f, r in shipped.items()}
    views = snap.stations  # type: ignore[attr-defined]
    labels = [exposition.label_set(v) for v in views]
    times: list[list[float]] = [[], [], [], []]
    for _ in range(repeat):
        for i, table in enumerate((shipped, naive)):
            exposition.RENDER.update(table)  # type: ignore[attr-defined]
            try:
                t0 = time.perf_counter()
                Renderer(process_metrics=False).render(snap)  # type: ignore[arg-type]  # cold
                times[i].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for family in NAIVE:
                    table[family].text(views, labels, 0.0, 3.0)
                times[2 + i].append(time.perf_counter() - t0)
            finally:
                exposition.RENDER.update(shipped)  # type: ignore[attr-defined]
    return min(times[0]), min(times[1]), min(times[2]), min(times[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    print(
        f"{'stations':>8} {'page guarded ms':>16} {'naive ms':>9} {'ratio':>6}"
        f" {'8 families guarded ms':>22} {'naive ms':>9} {'ratio':>6}"
    )
    shipped = dict(exposition.RENDER)
    for n in (int(s) for s in args.sizes.split(",")):
        snap = SimFleet(n, wire_bytes=True).snapshot()
        guarded_page = Renderer(process_metrics=False).render(snap)
        exposition.RENDER.update(  # type: ignore[attr-defined]
            {f: r._replace(text=NAIVE[f]) for f, r in shipped.items() if f in NAIVE}
        )
        try:
            naive_page = Renderer(process_metrics=False).render(snap)
        finally:
            exposition.RENDER.update(shipped)  # type: ignore[attr-defined]
        assert guarded_page == naive_page, "the guard changed an ordinary page"
        g, n_, fg, fn = interleaved(snap, args.repeat)
        print(
            f"{n:>8} {g * 1000:>16.0f} {n_ * 1000:>9.0f} {g / n_:>5.2f}x"
            f" {fg * 1000:>22.0f} {fn * 1000:>9.0f} {fg / fn:>5.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
