"""What the durable event counts cost: a spool flush ingested with and without ``fleet.state_file``.

Side by side in one process, the same messages through the same :class:`Fleet` code:

- **memory only**: ``Fleet.ingest`` of every message (what the collector does without a state
  file: paho acknowledges each message on receipt);
- **state file**: the same, each message then handed to :class:`Checkpointer` (its thread saves
  the event counts, fsynced, and releases the held acknowledgements), as the collector does with
  ``fleet.state_file``; the run ends when the last acknowledgement is released.

The messages are a broker-outage flush: ``--events`` events for each of ``--stations`` stations
(all in the inventory, so every station has counts to save), interleaved station by station. No
broker: the acknowledgement is a counter, and like the broker (``max_inflight_messages``) the
feeder sends at most ``--window`` unacknowledged messages, so held acknowledgements slow it down
as they would slow delivery. What is measured is the collector's own work (paho's ~15,000
messages/s are a separate limit).

Usage::

    .venv/bin/python bench/checkpoint.py [--stations 20000] [--events 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from pantau.collector.durable import Checkpointer
from pantau.collector.fleet import Fleet
from pantau.collector.testing.synthetic import make_inventory
from pantau.contract import wire


def messages(stations: int, events: int) -> list[tuple[str, bytes]]:
    inventory = make_inventory(stations)
    out = []
    for seq in range(1, events + 1):
        for e in inventory:
            msg = wire.Event(
                station=e.station,
                agent_version="0.1.0",
                session="s1",
                seq=seq,
                ts=1_790_000_000.0,
                kind=wire.EventKind.PERIPHERAL_REMOVED,
                subject="camera",
            )
            out.append((wire.topic(e.provinsi, e.kabkota, e.station, "event"), wire.encode(msg)))
    return out


def run(
    stations: int, msgs: list[tuple[str, bytes]], state: Path | None, window: int
) -> dict[str, float]:
    fleet = Fleet(inventory=make_inventory(stations))
    acked = 0
    done = threading.Event()
    freed = threading.Condition()

    def ack(_mid: int, _qos: int) -> None:
        nonlocal acked
        with freed:
            acked += 1
            freed.notify()
        if acked == len(msgs):
            done.set()

    cp = Checkpointer(state, fleet, ack, batch=window // 2) if state is not None else None
    if cp is not None:
        cp.start()
    t0 = time.perf_counter()
    c0 = os.times()
    for mid, (topic, payload) in enumerate(msgs, 1):
        with freed:  # the broker sends at most `window` unacknowledged messages
            freed.wait_for(lambda m=mid: m - acked <= window)
        fleet.ingest(topic, payload, 0.0)
        if cp is not None:
            cp.received(mid, 1)
        else:
            ack(mid, 1)
    done.wait(600)
    wall = time.perf_counter() - t0
    c1 = os.times()
    if cp is not None:
        cp.stop()
    counted = sum(n for v in fleet.snapshot(0.0).stations for _k, n in v.events)
    return {
        "wall": wall,
        "cpu": (c1.user - c0.user) + (c1.system - c0.system),
        "counted": counted,
        "writes": cp.writes if cp is not None else 0,
        "size": state.stat().st_size if state is not None and state.exists() else 0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=20000)
    p.add_argument("--events", type=int, default=5)
    p.add_argument(
        "--window",
        type=int,
        default=10000,
        help="in-flight window (10000: an MQTT 5 collector's; 100: deploy/mosquitto's for 3.1.1)",
    )
    args = p.parse_args()
    msgs = messages(args.stations, args.events)
    print(
        f"{args.stations} stations x {args.events} events = {len(msgs)} messages, "
        f"at most {args.window} unacknowledged"
    )
    with tempfile.TemporaryDirectory() as tmp:
        plain = run(args.stations, msgs, None, args.window)
        durable = run(args.stations, msgs, Path(tmp) / "state.json", args.window)
    for name, r in (("memory only", plain), ("state file", durable)):
        print(
            f"{name:<12} {r['wall']:6.2f} s wall {r['cpu']:6.2f} s CPU "
            f"{len(msgs) / r['wall']:8.0f} events/s  counted {int(r['counted'])}  "
            f"writes {int(r['writes'])}  file {r['size'] / 1e6:.1f} MB"
        )
    print(
        f"state file / memory only: {durable['wall'] / plain['wall']:.2f}x wall, "
        f"{durable['cpu'] / plain['cpu']:.2f}x CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
