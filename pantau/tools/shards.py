"""``pantau shards``: check a plan of collector shards against the national inventory.

::

    pantau shards inventory.csv deploy/cluster/collector-west.toml deploy/cluster/collector-east.toml

Each collector config's ``[mqtt] topics`` claims the stations whose topics they match
(docs/scale.md). A good plan claims every station exactly once: a station claimed by no shard is
invisible, one claimed twice is exported twice. Prints the stations per shard and every station
that is not claimed exactly once; exit 0 for a good plan, 1 for a bad one, 2 for a usage or file
mistake. Only the topics are read from the configs: the files they name need not exist here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pantau.collector import config as cconfig
from pantau.contract.config import read_toml
from pantau.contract.errors import PantauError
from pantau.contract.inventory import load_inventory, shard_coverage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau shards",
        description="Check that collector shards claim every inventory station exactly once.",
    )
    parser.add_argument("inventory", type=Path, help="the whole inventory CSV")
    parser.add_argument("configs", type=Path, nargs="+", help="one collector config per shard")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        entries = load_inventory(args.inventory)
        plan = {}
        for path in args.configs:
            source = os.fspath(path)
            cfg = cconfig.PIPELINE.from_data(read_toml(source), source, None, check_files=False)
            plan[source] = cfg.mqtt.topics
    except PantauError as exc:
        print(f"pantau shards: {exc}", file=sys.stderr)
        return 2
    coverage = shard_coverage(entries, plan)
    for shard in plan:
        count = sum(1 for shards in coverage.values() if shard in shards)
        print(f"{shard}: {count} stations")
    bad = {station: shards for station, shards in coverage.items() if len(shards) != 1}
    for station, shards in bad.items():
        print(f"  {station}: claimed by {', '.join(shards) if shards else 'no shard'}")
    print(f"{len(entries) - len(bad)} of {len(entries)} stations claimed exactly once")
    return 1 if bad else 0
