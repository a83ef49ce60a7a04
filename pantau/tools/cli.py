"""The ``pantau`` command: demo, dashboards, provisioning and simulation.

Each subcommand lives in its own module and is imported only when used, so ``pantau provision``
does not need grafanalib and ``pantau dashboards build`` does not need paho.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from pantau.contract.errors import missing_extra

# subcommand -> (module, one-line help). Each module has ``main(argv: list[str]) -> int``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("pantau.tools.demo", "run the whole pipeline locally with the simulated Klaten fleet"),
    "dashboards": (
        "pantau.dashboards.cli",
        "build Grafana dashboards, alert rules and Prometheus rules",
    ),
    "provision": (
        "pantau.tools.provision",
        "per-station credentials, broker ACL and agent configs",
    ),
    "simulate": ("pantau.tools.simulate", "publish a simulated fleet with fault scenarios"),
    "shards": ("pantau.tools.shards", "check that collector shards claim every station once"),
    "report": ("pantau.tools.report", "availability report of a region (HTML, PDF, CSV)"),
    "status-page": ("pantau.tools.status_page", "public page: which kecamatan can record today"),
}


#: The extra a subcommand needs when the missing module is not in the table of errors.py.
EXTRA_OF_COMMAND: dict[str, str] = {
    "demo": "demo",
    "dashboards": "dashboards",
    "report": "report",
    "status-page": "report",
    "simulate": "demo",
}


def _usage() -> str:
    lines = ["usage: pantau <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run 'pantau <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version"}:
        from pantau import __version__

        print(f"pantau {__version__}")
        return 0
    entry = SUBCOMMANDS.get(args[0])
    if entry is None:
        print(f"pantau: unknown command {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(entry[0])
        code: int = module.main(args[1:])
    except ModuleNotFoundError as exc:
        line = missing_extra(f"pantau {args[0]}", exc, EXTRA_OF_COMMAND.get(args[0], "demo"))
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
