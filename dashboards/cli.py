"""``pantau dashboards build [--out DIR] [--check]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pantau.dashboards import DashboardsError

USAGE = "pantau dashboards build [--out DIR] [--check]"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau dashboards",
        description="Build Grafana dashboards, Grafana alerting provisioning, Prometheus rules "
        "(+ promtool tests) and the Alertmanager configuration from one Python definition.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the generated files")
    build.add_argument(
        "--out",
        type=Path,
        default=Path("deploy"),
        help="output directory, the repository's deploy/ by default (default: %(default)s)",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files that are out of date",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from pantau.dashboards.build import differences, render, write

    try:
        files = render()
    except DashboardsError as exc:
        print(f"pantau dashboards: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    if args.check:
        diffs = differences(out, files)
        for rel in diffs:
            print(f"out of date: {out / rel}", file=sys.stderr)
        if diffs:
            print("run: pantau dashboards build", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files up to date in {out}")
        return 0
    try:
        written = write(out, files)
    except OSError as exc:
        print(f"pantau dashboards: cannot write to {out}: {exc.strerror}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
