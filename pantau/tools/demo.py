"""``pantau demo``: the whole pipeline on this machine, replaying Klaten in September 2016.

What runs (all on 127.0.0.1, in a throwaway work directory):

- a broker: mosquitto with per-station credentials and the ACL made by ``pantau provision`` when
  mosquitto is installed, else the embedded pure-Python broker (anonymous, MQTT 3.1.1);
- a tiny "login service" (real HTTP) that the agents' real login probes ask;
- the collector with the Klaten inventory, serving the fleet board, ``/metrics`` and the API;
- Prometheus and Alertmanager with pantau's alert rules, when installed; their notifications come
  back to the demo, which prints them;
- 25 agents: the real agent code (checks, change events, spool, publisher, each its own MQTT
  session with birth and will) on simulated USB and host hardware. Cawas has no agent: it is in
  the inventory and never reports.

The 2016 faults (see :mod:`pantau.contract.klaten`): Gantiwarno and Ceper start with broken peripherals;
a few seconds in, lightning strikes Juwiring (every peripheral vanishes, the PC reboots) and
Bayat's reinstall locks it out of the login service. The terminal shows a live summary ("21 of 26
kecamatan ready") until Ctrl-C (or ``--duration``), then everything stops cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from pantau.contract import klaten
from pantau.contract.config import ConfigError
from pantau.contract.inventory import InventoryError
from pantau.tools import _args
from pantau.tools.broker import BrokerError, LocalBroker, choose_kind, free_port, wait_for_port

log = logging.getLogger(__name__)

#: Seconds after start when Juwiring is struck and Bayat is locked out.
STRIKE_AFTER_S = 6.0


# --------------------------------------------------------------------------- small servers


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - stdlib signature
        return


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=handler.__name__, daemon=True).start()
    return server


class LoginService:
    """Answers ``GET /login/{station}``: 200, or 403 for stations that are locked out."""

    def __init__(self) -> None:
        self.locked: set[str] = set()
        service = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                station = self.path.rsplit("/", 1)[-1]
                code = 403 if station in service.locked else 200
                body = b"locked out\n" if code == 403 else b"ok\n"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = _serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/login"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlertPrinter:
    """An Alertmanager webhook receiver that prints each notification as one line per alert."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.received: list[dict[str, Any]] = []
        printer = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                try:
                    body = json.loads(self.rfile.read(min(length, 1 << 20)))
                except ValueError:
                    body = {}
                for alert in body.get("alerts", []):
                    printer.received.append(alert)
                    labels = alert.get("labels", {})
                    notes = alert.get("annotations", {})
                    text = notes.get("summary_id") or notes.get("summary") or ""
                    say(
                        f"  [alert {alert.get('status', '?')}] {labels.get('alertname', '?')}"
                        f" {labels.get('station', '')}: {text}"
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = _serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- fleet summary


@dataclass
class Summary:
    ready: list[str] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)  # kecamatan -> problems
    #: kecamatan -> (Bahasa Indonesia, English, hint in Bahasa Indonesia) of each problem.
    said: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    total: int = 0

    def line(self) -> str:
        return f"{len(self.ready)} of {self.total} kecamatan ready"


def summarize(stations: list[dict[str, Any]]) -> Summary:
    """Group the collector's ``/api/stations`` by kecamatan: ready when every station is."""
    by_kec: dict[str, list[dict[str, Any]]] = {}
    for station in stations:
        by_kec.setdefault(str(station.get("kecamatan", "?")), []).append(station)
    summary = Summary(total=len(by_kec))
    for kec in sorted(by_kec):
        problems = [p for s in by_kec[kec] for p in s.get("problems", [])]
        if all(s.get("status") == "up" and not s.get("problems") for s in by_kec[kec]):
            summary.ready.append(kec)
        else:
            summary.faults[kec] = [str(p) for p in problems] or ["not ready"]
            summary.said[kec] = [
                (str(i.get("summary_id", "")), str(i.get("summary_en", "")), str(i.get("hint_id")))
                for s in by_kec[kec]
                for i in s.get("issues", [])
                if i.get("severity") == "critical"
            ]
    return summary


def fetch_stations(base_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base_url}/api/stations", timeout=5) as response:  # noqa: S310
        body = json.load(response)
    stations: list[dict[str, Any]] = body["stations"] if isinstance(body, dict) else body
    return stations


# --------------------------------------------------------------------------- the demo


class Demo:
    def __init__(self, args: argparse.Namespace, out: Any) -> None:
        self.args = args
        self.out = out
        #: A work directory the demo made itself is removed at exit (unless --keep); one given
        #: with --workdir is the user's and stays.
        self.own_workdir = not args.workdir
        self.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pantau-demo-"))
        self.stop_event = threading.Event()
        self._print_lock = threading.Lock()
        self._cleanup: list[Any] = []
        self.agents: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []
        self.hardware: dict[str, Any] = {}
        self.board_url = ""
        self.stack: Any = None
        self.alerts: AlertPrinter | None = None

    def say(self, text: str) -> None:
        with self._print_lock:  # alert lines come from the webhook thread
            print(text, file=self.out, flush=True)

    # -- set-up -----------------------------------------------------------------

    def provision(self, broker_port: int) -> Path:
        from pantau.tools.provision import AgentSettings, Options, provision

        inventory = self.workdir / "klaten.csv"
        inventory.write_text(klaten.inventory_csv(), encoding="utf-8")
        # The shipped USB catalog has no confirmed iris scanner vendor (agent/catalog.py), so a real
        # deployment configures it per site; the demo's simulated iris scanner uses this rule.
        template = self.workdir / "agent-template.toml"
        template.write_text(
            '[[devices]]\ndevice_class = "iris"\nvid = 0x0bd8\nname = "Iris scanner (simulated)"\n',
            encoding="utf-8",
        )
        out = self.workdir / "provisioned"
        provision(
            Options(
                inventory=inventory,
                out=out,
                settings=AgentSettings(broker_host="127.0.0.1", broker_port=broker_port, tls=False),
                template=template,
                iterations=1000,  # a throwaway demo broker; production keeps the default
            )
        )
        return out

    def start_broker(self) -> tuple[LocalBroker, Path]:
        kind = choose_kind(self.args.broker)
        port = free_port()
        provisioned = self.provision(port)
        secure = kind == "mosquitto"
        broker = LocalBroker(
            self.workdir / "broker",
            kind=kind,
            port=port,
            password_file=provisioned / "broker" / "passwd" if secure else None,
            acl_file=provisioned / "broker" / "acl" if secure else None,
        )
        broker.start()
        self._cleanup.append(broker.stop)
        if secure:
            self.say(f"broker     mosquitto on 127.0.0.1:{port} (per-station passwords + ACL)")
        else:
            self.say(
                f"broker     embedded (amqtt) on 127.0.0.1:{port}: mosquitto not installed, so "
                "anonymous MQTT 3.1.1 on loopback (no passwords, no ACL, client ids not bound: "
                "a demo only)"
            )
        return broker, provisioned

    def start_collector(self, broker: LocalBroker, provisioned: Path) -> str:
        from pantau.collector.config import CollectorConfig, FleetConfig, HttpConfig, MqttConfig
        from pantau.collector.service import Collector

        http_port = self.args.http_port or (
            9108 if not wait_for_port("127.0.0.1", 9108, 0.05) else free_port()
        )
        secure = broker.authenticated
        config = CollectorConfig(
            mqtt=MqttConfig(
                host=broker.host,
                port=broker.port,
                protocol="5" if broker.kind == "mosquitto" else "3.1.1",
                username="collector" if secure else "",
                password_file=str(provisioned / "collector" / "password") if secure else "",
                # the broker binds client ids to user names: the id is the user name
                client_id="collector" if secure else "",
            ),
            http=HttpConfig(host="127.0.0.1", port=http_port, board_refresh_s=5),
            fleet=FleetConfig(
                inventory=str(self.workdir / "klaten.csv"),
                stale_after_intervals=3.0,
                state_file=str(self.workdir / "collector-state.json"),
            ),
        )
        collector = Collector(config)
        collector.start()
        self._cleanup.append(collector.stop)
        url = f"http://127.0.0.1:{http_port}"
        self.say(f"collector  {url}/  (fleet board)   {url}/metrics   {url}/api/stations")
        return url

    def start_prometheus(self, collector_url: str) -> None:
        from pantau.tools.stack import PrometheusStack, find_binaries

        binaries = find_binaries()
        if self.args.no_prometheus or binaries is None:
            reason = "--no-prometheus" if self.args.no_prometheus else "not installed"
            self.say(f"prometheus skipped ({reason}); the board and /metrics still work")
            return
        from pantau.dashboards.prometheus_rules import write_rules_file

        rules = write_rules_file(
            self.workdir / "pantau.rules.yml", for_override="10s", interval="5s"
        )
        self.alerts = AlertPrinter(self.say)
        self._cleanup.append(self.alerts.stop)
        stack = PrometheusStack(
            self.workdir / "stack",
            binaries,
            targets=[collector_url.removeprefix("http://")],
            rules=[rules],
            webhook_url=self.alerts.url,
        )
        stack.start()
        self._cleanup.append(stack.stop)
        self.stack = stack
        prom = working_links(stack.prometheus_url, PROMETHEUS_PAGES)
        am = working_links(stack.alertmanager_url, ALERTMANAGER_PAGES)
        self.say(f"prometheus {'   '.join(prom) or stack.prometheus_url}")
        self.say(f"alertmanager {'   '.join(am) or stack.alertmanager_url}")

    def start_agents(self, provisioned: Path, login: LoginService, broker: LocalBroker) -> None:
        from pantau.agent.checks.usb import UsbDevice
        from pantau.agent.config import AgentConfig, load_config
        from pantau.agent.service import build_agent
        from pantau.agent.simulated import SimulatedHost, SimulatedUsb

        protocol = "5" if broker.kind == "mosquitto" else "3.1.1"
        (self.workdir / "spool").mkdir(exist_ok=True)
        for entry in klaten.inventory():
            fault = klaten.fault_of(entry.kecamatan)
            if fault.kind == "silent":
                continue
            path = provisioned / "stations" / entry.station / "agent.toml"
            cfg: AgentConfig = load_config(path)
            cfg = _demo_config(cfg, f"{login.url}/{entry.station}", self.args.interval, protocol)
            devices = [
                UsbDevice(
                    vid=rule.vid,
                    pid=rule.pids[0] if rule.pids else 0x0001,
                    bus=1,
                    port=f"1-{i + 2}",
                    device_class=rule.usb_class or 0,
                    interface_classes=(rule.interface_class,) if rule.interface_class else (),
                    manufacturer=rule.name.split(" ")[0] if rule.name else "",
                    product=rule.name,
                )
                for i, rule in enumerate(cfg.devices)
                if not (fault.kind == "broken" and rule.device_class in fault.missing)
            ]
            usb = SimulatedUsb(devices)
            host = SimulatedHost()
            agent = build_agent(
                cfg,
                usb_reader=usb,
                hotplug=usb,
                host_reader=host,
                spool_path=str(self.workdir / "spool" / f"{entry.station}.sqlite"),
                source=str(path),
            )
            self.agents[entry.kecamatan] = agent
            self.hardware[entry.kecamatan] = (usb, host, cfg)
            thread = threading.Thread(
                target=agent.run, args=(self.stop_event,), name=entry.station, daemon=True
            )
            thread.start()
            self.threads.append(thread)
        self.say(f"agents     {len(self.agents)} stations (real agent code, simulated hardware)")

    def strike(self, login: LoginService) -> None:
        """Juwiring: lightning. Bayat: locked out of the login service."""
        usb, host, cfg = self.hardware["Juwiring"]
        host.boot_ts = time.time()
        for rule in cfg.devices:
            usb.unplug(rule.vid)
        login.locked.add(klaten.station_id("Bayat"))
        self.say("  !! lightning strikes Juwiring; Bayat's reinstall locks it out of the login")

    # -- main loop --------------------------------------------------------------

    def run(self) -> int:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.say(f"pantau demo: Klaten, September 2016 (work dir {self.workdir})")
        login = LoginService()
        self._cleanup.append(login.stop)
        broker, provisioned = self.start_broker()
        collector_url = self.start_collector(broker, provisioned)
        self.start_prometheus(collector_url)
        self.start_agents(provisioned, login, broker)
        self.say("Ctrl-C stops everything.\n")
        started = time.monotonic()
        started_wall = time.time()
        struck = False
        last_line = ""
        summary = Summary()
        while not self.stop_event.wait(1.0):
            elapsed = time.monotonic() - started
            if not struck and elapsed >= STRIKE_AFTER_S:
                self.strike(login)
                struck = True
            try:
                summary = summarize(fetch_stations(collector_url))
            except (OSError, ValueError, KeyError):
                continue
            line = _render(summary)
            if line != last_line:
                self.say(line)
                last_line = line
            if self.args.duration and elapsed >= self.args.duration:
                break
        if self.args.report:
            self.write_report(started_wall)
        if self.args.summary_json:
            Path(self.args.summary_json).write_text(
                json.dumps(
                    {
                        "ready": summary.ready,
                        "faults": summary.faults,
                        "total": summary.total,
                        "alerts": self.alerts.received if self.alerts else [],
                    },
                    indent=2,
                ),
                encoding="utf-8",
            )
        return 0

    def write_report(self, started: float) -> None:
        """The availability report of this run (every hour counts: a demo may run at night)."""
        if self.stack is None:
            self.say("report skipped: it needs Prometheus (not running)")
            return
        from pantau.tools.report import Period, Prometheus, ReportError, build_report, write_report

        end = time.time()
        # Prometheus scrapes every 5 s; about 200 points make the timeline.
        step = max(5.0, round((end - started) / 200))
        try:
            report = build_report(
                Prometheus(self.stack.prometheus_url),
                selector=f'kabkota="{klaten.KABKOTA}"',
                region="Kabupaten Klaten (demo)",
                period=Period(started, end),
                step=step,
                lang=self.args.report_lang,
                holidays=(),
                inventory=klaten.inventory(),
                min_outage_s=step,
                broken_days=0,
                all_hours=True,
            )
            paths = write_report(report, Path(self.args.report), "pantau-demo")
        except (ReportError, OSError) as exc:
            self.say(f"report not written: {exc}")
            return
        self.say("report: " + "  ".join(str(p) for p in paths))

    def shutdown(self) -> None:
        self.stop_event.set()
        for agent in self.agents.values():
            agent.wake()
        deadline = time.monotonic() + 10
        for thread in self.threads:  # each agent publishes its orderly offline, then disconnects
            thread.join(max(0.1, deadline - time.monotonic()))
        for step in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                step()
        if self.own_workdir and not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.say("pantau demo: stopped (work dir removed; --keep keeps it).")
        else:
            self.say(f"pantau demo: stopped. Work dir kept: {self.workdir}")


#: Pages worth linking, best first: (path, what). Debian's prometheus and prometheus-alertmanager
#: packages ship without the web UIs: Prometheus answers /classic/alerts (not /alerts) and
#: Alertmanager only its API. The demo prints the ones that answer.
PROMETHEUS_PAGES: Final = (
    ("/alerts", "alerts page"),
    ("/classic/alerts", "alerts page"),
    ("/api/v1/alerts", "alerts API"),
)
ALERTMANAGER_PAGES: Final = (
    ("/#/alerts", "UI"),
    ("/api/v2/alerts", "alerts API"),
)


def working_links(base: str, pages: Sequence[tuple[str, str]]) -> list[str]:
    """``url (what)`` for each page of ``pages`` that answers 200; a UI only when it is one (not
    a 404, not the placeholder Debian serves instead of the UI)."""
    out = []
    seen_what: set[str] = set()
    for path, what in pages:
        if what in seen_what:
            continue
        try:
            probe = base + path.split("#")[0]
            with urllib.request.urlopen(probe, timeout=3) as response:  # noqa: S310 - loopback
                ok = response.status == 200
                ctype = response.headers.get("Content-Type", "")
                head = response.read(8192).decode("utf-8", "replace")
        except (OSError, ValueError):
            continue
        # Debian's Alertmanager answers / with a page saying the package has no web application.
        placeholder = "does not include a web" in " ".join(head.split())
        if ok and ("api" in path or ("html" in ctype and not placeholder)):
            out.append(f"{base}{path} ({what})")
            seen_what.add(what)
    return out


def _render(summary: Summary) -> str:
    """The live summary: each faulty kecamatan's problems in Bahasa Indonesia, then English; a
    login refusal or a configuration problem also says what to do."""
    lines = [f"== {summary.line()}"]
    for kec, problems in summary.faults.items():
        said = summary.said.get(kec)
        if not said:
            lines.append(f"   {kec:<14} {'; '.join(problems)}")
            continue
        lines.append(f"   {kec:<14} {'; '.join(i for i, _, _ in said)}")
        lines.append(f"   {'':<14} ({'; '.join(e for _, e, _ in said)})")
        hints = dict.fromkeys(h for i, _, h in said if h and ("login" in i or "dikonfigurasi" in i))
        lines.extend(f"   {'':<14} -> {h}" for h in hints)
    return "\n".join(lines)


def _demo_config(cfg: Any, login_url: str, interval: float, protocol: str) -> Any:
    """The provisioned config, with the demo's login probe, faster intervals and the broker's
    MQTT version (the embedded broker speaks 3.1.1 only)."""
    import msgspec

    from pantau.agent.config import ProbeSettings

    probe = ProbeSettings(name="enrollment", kind="http", target=login_url, timeout_s=2.0)
    intervals = msgspec.structs.replace(
        cfg.intervals, state_s=interval, poll_s=interval, login_s=min(interval, 3.0)
    )
    mqtt = msgspec.structs.replace(cfg.mqtt, protocol=protocol)
    return msgspec.structs.replace(cfg, probes=(probe,), intervals=intervals, mqtt=mqtt)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pantau demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", default="auto", choices=["auto", "mosquitto", "embedded"])
    p.add_argument(
        "--workdir",
        default="",
        help="work directory (default: a new temp dir, removed at exit unless --keep)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary work dir at exit")
    p.add_argument(
        "--http-port", type=_args.port_or_zero, default=0, help="collector port (default 9108/free)"
    )
    p.add_argument(
        "--interval", type=_args.interval, default=10.0, help="agents' state interval (10 s)"
    )
    p.add_argument(
        "--duration",
        type=_args.duration,
        default=0.0,
        help="stop after S seconds (0: Ctrl-C)",
    )
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    p.add_argument("--summary-json", default="", help="write the final summary to this file")
    p.add_argument(
        "--report",
        default="",
        metavar="DIR",
        help="at the end, write the availability report of this run (HTML, PDF, CSV) to DIR",
    )
    p.add_argument("--report-lang", choices=["id", "en"], default="id", help="report language")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    demo = Demo(args, sys.stdout)
    signal.signal(signal.SIGTERM, lambda *_: demo.stop_event.set())
    try:
        return demo.run()
    except KeyboardInterrupt:
        return 0
    except (BrokerError, ConfigError, InventoryError, OSError, RuntimeError) as exc:
        # A demo that cannot start says why in one line (port taken, broker missing, ...).
        print(f"pantau demo: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
