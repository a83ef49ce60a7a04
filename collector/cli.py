"""``pantau-collector``: run the collector, check its config, hash a basic-auth password.

Exit codes: 0 ok (stopped by SIGTERM/SIGINT), 2 configuration mistake (one line on stderr, no
traceback), 1 could not start (port in use, ...).
"""

from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading
from types import FrameType

from pantau.collector import config as cconfig
from pantau.collector.errors import StartupError
from pantau.contract.config import ConfigError, configure_logging
from pantau.contract.errors import missing_extra
from pantau.contract.inventory import InventoryError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau-collector",
        description="Subscribe to pantau stations over MQTT, keep the fleet state against the "
        "inventory, serve /metrics, /api/stations and a fleet board.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the collector")
    run.add_argument("--config", help="TOML config file (default: built-in defaults)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    check = sub.add_parser("check-config", help="validate a config file and its inventory")
    check.add_argument("--config", required=True)
    sub.add_parser(
        "hash-password",
        help="read a password (stdin or prompt) and print an http.basic_auth_password_hash value",
    )
    return parser


def _load(path: str | None) -> cconfig.CollectorConfig:
    if path is None:
        return cconfig.CollectorConfig()
    return cconfig.load(path)


def _run(args: argparse.Namespace) -> int:
    from pantau.collector.service import Collector

    cfg = _load(args.config)
    configure_logging(cfg.log, args.log_level or cfg.log_level or None)
    collector = Collector(cfg, source=args.config or "<defaults>")
    stop = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector.start()
    print(f"pantau-collector: serving {collector.url}", file=sys.stderr, flush=True)
    stop.wait()
    collector.stop()
    return 0


def _check(args: argparse.Namespace) -> int:
    from pantau.collector.service import read_inventory

    cfg = cconfig.load(args.config)
    stations = read_inventory(cfg.fleet.inventory)
    print(
        f"{args.config}: ok (broker "
        f"{' or '.join(f'{h}:{p}' for h, p in cfg.mqtt.broker_endpoints())}, "
        f"HTTP {cfg.http.host}:{cfg.http.port}, {len(stations)} stations in the inventory)"
    )
    return 0


def _hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("pantau-collector: passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("pantau-collector: empty password", file=sys.stderr)
        return 2
    print(cconfig.hash_password(password))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "check-config":
            return _check(args)
        return _hash_password()
    except (ConfigError, InventoryError) as exc:
        print(f"pantau-collector: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"pantau-collector: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        line = missing_extra("pantau-collector", exc, "collector")
        if line is None:
            raise
        print(line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
