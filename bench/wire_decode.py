"""Decode cost of one ~1 KB state report: pantau.contract.wire (typed, validated) side by side with
untyped parsers.

    .venv/bin/python bench/wire_decode.py

Peers in the same run: stdlib ``json.loads`` and ``orjson.loads`` (parse only, no validation:
a collector built on them would still have to check every field), and msgspec untyped.
Reference figures from a ~1.5x faster machine: json 8.2 us, orjson 2.7 us, msgspec typed 4.5 us
(docs/performance.md compares).
"""

from __future__ import annotations

import json
import statistics
import sys
import timeit
from pathlib import Path

import msgspec
import orjson

from pantau.contract import wire

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "pantau/v1/33/3310/3310-juwiring-01/state"


def main() -> int:
    original = json.loads((ROOT / "tests/fixtures/wire/state_full.json").read_bytes())
    payload = json.dumps(original, separators=(",", ":")).encode()
    wire.decode(TOPIC, payload)  # validates the fixture before timing
    untyped = msgspec.json.Decoder()
    cases = {
        "pantau.contract.wire.decode (topic + typed + validated)": lambda: wire.decode(
            TOPIC, payload
        ),
        "wire.decode_payload (typed + validated, no topic)": lambda: wire.decode_payload(
            "state", payload
        ),
        "pantau.contract.wire.parse_topic alone": lambda: wire.parse_topic(TOPIC),
        "msgspec untyped (parse only)": lambda: untyped.decode(payload),
        "orjson.loads (parse only)": lambda: orjson.loads(payload),
        "json.loads (parse only)": lambda: json.loads(payload),
    }
    number = 20000
    print(f"payload: {len(payload)} bytes (tests/fixtures/wire/state_full.json, compact)")
    print(
        f"python {sys.version.split()[0]}, msgspec {msgspec.__version__}, 5 runs x {number};"
        " us/report min/median/max, the rest from the min",
        flush=True,
    )
    kb = len(payload) / 1024
    print(f"{'decoder':<52} {'us/report':>20} {'us/KB':>8} {'vs pantau':>10}", flush=True)
    ours = 0.0
    for label, fn in cases.items():  # each row printed as soon as it is measured
        runs = [t / number for t in timeit.repeat(fn, number=number, repeat=5)]
        best = min(runs)
        ours = ours or best  # the first row is pantau's
        spread = "/".join(f"{t * 1e6:.2f}" for t in (best, statistics.median(runs), max(runs)))
        print(f"{label:<52} {spread:>20} {best * 1e6 / kb:>8.2f} {best / ours:>9.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
