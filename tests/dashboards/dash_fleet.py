"""A simulated fleet (the model) and a static /metrics server following the metrics contract.

A small HTTP server renders the model as exposition text exactly as the collector's metric
families (``pantau/contract/metrics.py``) describe
(per-station series with station/provinsi/kabkota/kecamatan, never-reported inventory stations as
``up 0`` + ``inventory="yes"`` and no last report). Expectations in the tests are computed from
:data:`FLEET` (not from the server), so switching to the real collector means only replacing the
fixture that provides the scrape target.

Kabupaten codes 3399 (static server), 3398 (real collector) and 3397 (alert delivery) are
fictional on purpose: the harness Prometheus is shared by the session, other tests scrape Klaten
(3310) fleets, and each variant's series must not mix with another's in range functions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pantau.contract.wire import Reason

PROVINSI = "33"
CLASSES = ("fingerprint", "iris", "camera", "signature")


@dataclass(frozen=True)
class Login:
    up: int
    reason: str
    duration: float
    cause: str = ""
    status: int | None = None
    #: Days until the server certificate expires (None: not a TLS probe).
    expires_in_days: float | None = None

    @property
    def cause_value(self) -> str:
        return self.cause or ("ok" if self.up else "network")


@dataclass(frozen=True)
class Station:
    station: str
    kecamatan: str
    up: int
    kabkota: str = "3399"
    reported: bool = True
    peripherals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 1))
    login: dict[str, Login] = field(default_factory=lambda: {"central": Login(1, "ok", 0.12)})
    disks: dict[str, tuple[int, int]] = field(default_factory=lambda: {"C:": (600, 1000)})
    skew: float = 0.4
    #: The boot timestamp changes on every scrape (a PC in a lightning storm).
    rebooting: bool = False
    #: Events counted on every scrape, by kind.
    events: tuple[str, ...] = ()
    #: Classes the inventory expects and the agent config has no rule for.
    unconfigured: tuple[str, ...] = ()
    #: How long its problems have held (static source; the collector measures its own).
    broken_days: float = 0.0

    @property
    def labels(self) -> dict[str, str]:
        return {
            "station": self.station,
            "provinsi": PROVINSI,
            "kabkota": self.kabkota,
            "kecamatan": self.kecamatan,
        }

    @property
    def ready(self) -> int:
        if not self.up or not self.reported:
            return 0
        return int(
            all(self.peripherals.values())
            and all(x.up for x in self.login.values())
            and not self.unconfigured
        )

    def problems(self) -> list[tuple[str, str]]:
        """``(problem, subject)`` as the collector's diagnosis names them (cert warnings too)."""
        if not self.reported:
            return [("never_reported", "")]
        out = [] if self.up else [("offline", "")]
        out += [("peripheral_missing", c) for c, v in self.peripherals.items() if not v]
        out += [("not_configured", c) for c in self.unconfigured]
        out += [("login_failed", t) for t, x in self.login.items() if not x.up]
        out += [
            ("cert_expiring", t)
            for t, x in self.login.items()
            if x.up and x.reason == "cert_expiring"
        ]
        return out


def make_fleet(kabkota: str) -> tuple[Station, ...]:
    """Five stations of kabupaten ``kabkota``, one per kind of trouble."""
    return (
        # Ready, but its PC keeps rebooting (lightning) and its disk is almost full.
        Station(
            f"{kabkota}-juwiring-01",
            "Juwiring",
            1,
            kabkota,
            rebooting=True,
            disks={"C:": (50, 1000)},
        ),
        # The login service refuses the station after a failed reinstall (Bayat, 2016).
        Station(
            f"{kabkota}-bayat-01",
            "Bayat",
            1,
            kabkota,
            login={"central": Login(0, "http_status", 0.05, "denied", 403)},
            events=("probe_down",),
        ),
        # Every other way a login can fail, a certificate about to expire, and a device class
        # the inventory expects that its config has no rule for.
        Station(
            f"{kabkota}-pedan-01",
            "Pedan",
            1,
            kabkota,
            peripherals={"fingerprint": 1, "iris": 1, "camera": 1},
            unconfigured=("signature",),
            login={
                "central": Login(1, "ok", 0.1, "ok"),
                "vpn": Login(0, "timeout", 5.0, "network"),
                "sso": Login(0, "cert_untrusted", 0.02, "tls"),
                "api": Login(0, "http_status", 0.04, "service_error", 503),
                "web": Login(0, "http_status", 0.03, "unexpected", 404),
                "portal": Login(1, "cert_expiring", 0.05, "ok", None, 5.0),
            },
        ),
        # Iris scanner and camera missing; the PC clock is an hour behind (dead CMOS battery).
        Station(
            f"{kabkota}-cawas-01",
            "Cawas",
            1,
            kabkota,
            peripherals={"fingerprint": 1, "iris": 0, "camera": 0, "signature": 1},
            skew=-3600.0,
            events=("peripheral_removed",),
        ),
        # Offline now; it reported before (its last state is kept).
        Station(f"{kabkota}-ceper-01", "Ceper", 0, kabkota),
        # In the inventory, never reported: only up 0 and the info series.
        # Broken and silent for ten days.
        Station(
            f"{kabkota}-gantiwarno-01", "Gantiwarno", 0, kabkota, reported=False, broken_days=10.0
        ),
    )


FLEET = make_fleet("3399")

AGENT_VERSION = "0.1.0"
#: Every ``reason`` of the rejection counter, and those the simulated fleet keeps producing.
REJECT_REASONS = tuple(r.value for r in Reason)
REJECTING = ("bad_json",)
STATES = ("up", "offline", "stale", "never_reported")


def _fmt(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def exposition(
    scrape: int, now: float, stations: tuple[Station, ...] = FLEET, *, mqtt_connected: int = 0
) -> str:
    """The collector's /metrics for the fleet at the ``scrape``-th scrape."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str, rows: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{_fmt(labels)} {value!r}" for labels, value in rows)

    reported = [s for s in stations if s.reported]
    family("pantau_station_up", "gauge", "Station online.", [(s.labels, s.up) for s in stations])
    family(
        "pantau_station_last_report_timestamp_seconds",
        "gauge",
        "Receive time of the last state.",
        [(s.labels, now - 30.0) for s in reported],
    )
    family(
        "pantau_station_info",
        "gauge",
        "Station info.",
        [
            (
                {
                    **s.labels,
                    "agent_version": AGENT_VERSION if s.reported else "",
                    "os": "windows" if s.reported else "",
                    "inventory": "yes",
                },
                1,
            )
            for s in stations
        ],
    )
    family(
        "pantau_peripheral_present",
        "gauge",
        "Peripheral present.",
        [({**s.labels, "device_class": c}, v) for s in reported for c, v in s.peripherals.items()],
    )
    family(
        "pantau_peripheral_configured",
        "gauge",
        "Peripheral configured.",
        [({**s.labels, "device_class": c}, 1) for s in reported for c in s.peripherals]
        + [({**s.labels, "device_class": c}, 0) for s in reported for c in s.unconfigured],
    )
    family(
        "pantau_peripheral_last_change_timestamp_seconds",
        "gauge",
        "Presence last changed.",
        [({**s.labels, "device_class": c}, now - 600) for s in reported for c in s.peripherals],
    )
    family(
        "pantau_login_up",
        "gauge",
        "Login probe up.",
        [({**s.labels, "target": t}, x.up) for s in reported for t, x in s.login.items()],
    )
    family(
        "pantau_login_probe_duration_seconds",
        "gauge",
        "Login probe duration.",
        [({**s.labels, "target": t}, x.duration) for s in reported for t, x in s.login.items()],
    )
    family(
        "pantau_login_probe_info",
        "gauge",
        "Login probe reason.",
        [
            (
                {
                    **s.labels,
                    "target": t,
                    "reason": x.reason,
                    "cause": x.cause_value,
                    "status": "" if x.status is None else str(x.status),
                },
                1,
            )
            for s in reported
            for t, x in s.login.items()
        ],
    )
    family(
        "pantau_login_cert_expiry_timestamp_seconds",
        "gauge",
        "Certificate expiry.",
        [
            ({**s.labels, "target": t}, now + x.expires_in_days * 86400)
            for s in reported
            for t, x in s.login.items()
            if x.expires_in_days is not None
        ],
    )
    family("pantau_host_cpu_usage_ratio", "gauge", "CPU.", [(s.labels, 0.25) for s in reported])
    family(
        "pantau_host_memory_available_bytes",
        "gauge",
        "Memory available.",
        [(s.labels, 2.0e9) for s in reported],
    )
    family(
        "pantau_host_memory_total_bytes",
        "gauge",
        "Memory total.",
        [(s.labels, 8.0e9) for s in reported],
    )
    family(
        "pantau_host_disk_free_bytes",
        "gauge",
        "Disk free.",
        [({**s.labels, "mount": mnt}, fs[0]) for s in reported for mnt, fs in s.disks.items()],
    )
    family(
        "pantau_host_disk_size_bytes",
        "gauge",
        "Disk size.",
        [({**s.labels, "mount": mnt}, fs[1]) for s in reported for mnt, fs in s.disks.items()],
    )
    family(
        "pantau_host_boot_timestamp_seconds",
        "gauge",
        "Boot time.",
        [(s.labels, 1.7e9 + (scrape * 60 if s.rebooting else 0)) for s in reported],
    )
    family(
        "pantau_host_clock_skew_seconds",
        "gauge",
        "Clock skew.",
        [(s.labels, s.skew) for s in reported],
    )
    family(
        "pantau_station_problem_since_timestamp_seconds",
        "gauge",
        "Problem first seen.",
        [
            ({**s.labels, "problem": problem, "subject": subject}, now - s.broken_days * 86400)
            for s in stations
            for problem, subject in s.problems()
        ],
    )
    family(
        "pantau_station_events_total",
        "counter",
        "Events received.",
        [({**s.labels, "kind": k}, scrape) for s in reported for k in s.events],
    )
    family(
        "pantau_collector_reports_received_total",
        "counter",
        "Reports received.",
        [({}, 10.0 * scrape)],
    )
    family(
        "pantau_collector_reports_rejected_total",
        "counter",
        "Reports rejected.",
        [({"reason": r}, float(scrape if r in REJECTING else 0)) for r in REJECT_REASONS],
    )
    family("pantau_collector_mqtt_connected", "gauge", "MQTT connected.", [({}, mqtt_connected)])
    # Not blind although "disconnected": a blind collector's station series are left out of every
    # station alert, which this stand-in exists to exercise (test_dashboards_blind.py makes a
    # real collector blind).
    family("pantau_collector_blind", "gauge", "Collector blind.", [({}, 0)])
    states = state_counts(stations)
    family(
        "pantau_collector_stations",
        "gauge",
        "Stations by state.",
        [({"state": k}, v) for k, v in states.items()],
    )
    return "\n".join(out) + "\n"


def state_counts(stations: tuple[Station, ...]) -> dict[str, int]:
    return {
        "up": sum(1 for s in stations if s.up),
        "offline": sum(1 for s in stations if not s.up and s.reported),
        "stale": 0,
        "never_reported": sum(1 for s in stations if not s.reported),
    }


class StaticCollector:
    """Serves :func:`exposition` on ``http://127.0.0.1:<port>/metrics``; its MQTT is "down"."""

    mqtt_connected = 0
    reject_reasons = REJECT_REASONS

    def __init__(self, stations: tuple[Station, ...] = FLEET) -> None:
        #: Replace (under no lock: one tuple assignment) to change what the next scrape sees.
        self.stations = stations
        self.scrapes = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                with server._lock:
                    server.scrapes += 1
                    n = server.scrapes
                body = exposition(n, time.time(), server.stations).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.target = f"127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def __enter__(self) -> StaticCollector:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
