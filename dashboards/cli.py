"""``pantau dashboards build [--out DIR] [--holidays FILE] [--check]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pantau.dashboards import DashboardsError

USAGE = "pantau dashboards build [--out DIR] [--holidays FILE] [--check]"


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
        "--holidays",
        type=Path,
        default=None,
        help="public holidays, one YYYY-MM-DD per line, excluded from office hours in the "
        "availability rules (default: OUT/prometheus/holidays.txt if it exists)",
    )
    build.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list the files that are out of date",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from pantau.dashboards.availability import HolidayError, load_holidays
    from pantau.dashboards.build import HOLIDAYS_PATH, differences, render, write

    out: Path = args.out
    holidays_file: Path | None = args.holidays
    if holidays_file is None and (out / HOLIDAYS_PATH).is_file():
        holidays_file = out / HOLIDAYS_PATH
    try:
        holidays = load_holidays(holidays_file) if holidays_file is not None else ()
        files = render(holidays=holidays)
    except (DashboardsError, HolidayError) as exc:
        print(f"pantau dashboards: {exc}", file=sys.stderr)
        return 2
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
