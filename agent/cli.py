"""``pantau-agent``: ``check`` (one round, for people or tools), ``run`` (the service), ``usb``.

Exit codes: 0 healthy / clean stop; 1 something expected is missing or down (``check``) or the
service could not start; 2 a configuration mistake (one line on stderr, no traceback).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pantau.agent import __version__, windows
from pantau.agent.config import (
    DEFAULT_CONFIG_PATH,
    AgentConfig,
    ConfigError,
    file_errors,
    load_config,
    uses_systemd_credential,
    warnings,
)
from pantau.agent.errors import AgentError
from pantau.contract.config import configure_logging
from pantau.contract.errors import missing_extra

if TYPE_CHECKING:
    import argparse

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    import argparse  # not at import: the service's own command line does without (see main)

    parser = argparse.ArgumentParser(
        prog="pantau-agent",
        description="Health checks of an e-KTP recording station, published over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"pantau-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    config_help = f"agent config file (default {DEFAULT_CONFIG_PATH})"
    check = sub.add_parser("check", help="run every check once and print the result")
    check.add_argument("--config", default=DEFAULT_CONFIG_PATH, help=config_help)
    check.add_argument("--json", action="store_true", help="machine-readable output")
    run = sub.add_parser("run", help="run the service (publish to the broker)")
    run.add_argument("--config", default=DEFAULT_CONFIG_PATH, help=config_help)
    usb = sub.add_parser("usb", help="list the USB devices this PC enumerates (to write rules)")
    usb.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def service_config(argv: Sequence[str]) -> str | None:
    """The config path if ``argv`` is exactly ``run`` or ``run --config FILE`` (how the service
    is started), else None: argparse parses everything else, help and usage errors included.
    The service thus never imports argparse and gettext (0.4 MB: docs/performance.md), and what
    it accepts is a subset of argparse's, with the same meaning."""
    if list(argv) == ["run"]:
        return DEFAULT_CONFIG_PATH
    if len(argv) == 3 and list(argv[:2]) == ["run", "--config"] and not argv[2].startswith("-"):
        return argv[2]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = service_config(argv)
    if path is not None:
        command, config, as_json = "run", path, False
    else:
        args = _parser().parse_args(argv)
        command, as_json = args.command, getattr(args, "json", False)
        config = getattr(args, "config", DEFAULT_CONFIG_PATH)
    try:
        if command == "check" and not os.path.exists(config):
            print(_no_config(command, config), file=sys.stderr)
            return EXIT_CONFIG
        if command == "usb":
            return _usb(as_json)
        if command == "check":  # files the config names are reported as problems
            return _check(load_config(config, check_files=False), config, as_json)
        return _run(load_config(config), config)
    except ModuleNotFoundError as exc:
        line = missing_extra("pantau-agent", exc, "agent")
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(f"pantau-agent: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AgentError as exc:
        print(f"pantau-agent: {exc}", file=sys.stderr)
        return EXIT_PROBLEM


def _no_config(command: str, path: str) -> str:
    """What to do when there is no config yet (the first thing a new user runs into)."""
    return (
        f"pantau-agent: no config at {path}. Copy this station's agent.toml from the output of "
        "`pantau provision` (stations/<station id>/, with its password file) to "
        f"{DEFAULT_CONFIG_PATH}, or write one from agent.example.toml (docs/agent.md), then "
        f"run `pantau-agent {command}"
        + ("" if path == DEFAULT_CONFIG_PATH else f" --config {path}")
        + "`. `pantau-agent usb` lists the USB devices without any config."
    )


def _check(cfg: AgentConfig, source: str, as_json: bool) -> int:
    from pantau.agent import report
    from pantau.agent.service import build_agent

    for warning in warnings(cfg):
        print(f"pantau-agent: warning: {warning}", file=sys.stderr)
    files = []
    for err in file_errors(cfg, source):
        if err.key == "mqtt.password_file" and uses_systemd_credential(cfg.mqtt.password_file):
            # Only the systemd unit hands the password over; `systemctl status` shows its errors.
            print(
                "pantau-agent: note: mqtt.password_file comes from the systemd unit "
                "(LoadCredential): not checked here",
                file=sys.stderr,
            )
        else:
            files.append(err)
    agent = build_agent(
        cfg, hotplug=False, spool_path=":memory:", connect=False, source=source, log=_quiet()
    )
    try:
        state = agent.round()
    finally:
        agent.close()
    if as_json:
        import json  # here, not at import: the service never needs it (docs/performance.md)

        doc = report.render_json(state, cfg, files)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(report.render_text(state, cfg, files))
    return EXIT_OK if not report.problems(state, cfg, files) else EXIT_PROBLEM


def _quiet() -> logging.Logger:
    log = logging.getLogger("pantau.agent.cli.check")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def _run(cfg: AgentConfig, source: str) -> int:
    from pantau.agent.service import build_agent

    configure_logging(cfg.log)
    log = logging.getLogger("pantau.agent.service")
    for warning in warnings(cfg):
        log.warning("%s", warning)
    agent = build_agent(cfg, source=source, log=log)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        stop.set()
        agent.wake()

    for signum in windows.stop_signals():  # SIGTERM, SIGINT (WinSW's Ctrl+C), SIGBREAK
        signal.signal(signum, on_signal)
    log.info(
        "pantau-agent %s: station %s, broker %s:%s, session %s",
        __version__,
        cfg.station.id,
        cfg.mqtt.host,
        cfg.mqtt.effective_port(),
        agent.session,
    )
    agent.run(stop)
    log.info("stopped")
    return EXIT_OK


def _usb(as_json: bool) -> int:
    from pantau.agent import catalog
    from pantau.agent.checks.usb import PyUsbReader

    devices = PyUsbReader().devices()
    if as_json:
        import json

        rows = [
            {
                "vid": f"{d.vid:04x}",
                "pid": f"{d.pid:04x}",
                "port": d.port,
                "device_class": d.device_class,
                "interface_classes": list(d.interface_classes),
                "manufacturer": d.manufacturer,
                "product": d.product,
            }
            for d in devices
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    for d in devices:
        known = catalog.known_vendor(d.vid)
        hint = f"  [catalog: {known.device_class}, {known.vendor}]" if known else ""
        classes = ",".join(f"{c:02x}" for c in d.interface_classes)
        name = " ".join(x for x in (d.manufacturer, d.product) if x)
        print(f"{d.ids}  port {d.port or '?':8}  interfaces {classes:8}  {name}{hint}")
    if not devices:
        print("no USB devices found (hubs are not listed)")
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
