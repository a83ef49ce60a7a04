"""HTTP: ``/metrics``, ``/healthz``, ``/readyz``, ``/api/stations`` (JSON), ``/`` (fleet board).

stdlib ``ThreadingHTTPServer``; loopback by default; optional TLS and basic auth (``/healthz``
and ``/readyz`` stay open for liveness and readiness checks: they tell only whether MQTT is
connected, nothing about the fleet). Passwords are never logged;
request logs go to the ``pantau.collector.http`` logger at debug level without headers.

``/metrics`` takes a snapshot (references only, under the fleet lock for well under a
millisecond per thousand stations) and renders outside the lock, so a scrape never stalls ingest
for longer than that. With ``Accept-Encoding: gzip`` the page is compressed family by family at
``http.gzip_level``; otherwise it is streamed. Neither holds the whole uncompressed page.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from pantau import __version__
from pantau.collector.board import render_board
from pantau.collector.config import HttpConfig, verify_password
from pantau.collector.errors import StartupError
from pantau.collector.exposition import CONTENT_TYPE, Renderer
from pantau.collector.fleet import (
    Snapshot,
    StationView,
    clock_skew,
    problems,
    station_status,
    summarize,
)

log = logging.getLogger(__name__)


def station_json(view: StationView, now: float, stale: float) -> dict[str, Any]:
    """One station for ``/api/stations``."""
    status = station_status(view, now, stale)
    report = view.report
    return {
        "station": view.station,
        "provinsi": view.provinsi,
        "kabkota": view.kabkota,
        "kecamatan": view.kecamatan,
        "inventory": view.inventory,
        "status": status,
        "up": status == "up",
        "last_seen": view.last_seen or None,
        "last_report": view.state_rx or None,
        "agent_version": report.agent_version if report else None,
        "os": report.os if report else None,
        "clock_skew_s": clock_skew(view),
        "peripherals": [
            {
                "device_class": p.device_class,
                "present": p.present,
                "expected": p.expected,
                "found": p.found,
                "reason": p.reason,
                "devices": p.devices.split(",") if p.devices else [],
                "since": p.since,
            }
            for p in view.presence
        ],
        "probes": [
            {"target": t, "up": up, "duration_s": d, "reason": why}
            for t, up, d, why in (report.probes if report else ())
        ],
        "problems": problems(view, now, stale),
        "events": dict(view.events),
        "seq_gaps": view.seq_gaps,
    }


def stations_json(
    snapshot: Snapshot, *, kabkota: str = "", station: str = "", problems_only: bool = False
) -> bytes:
    """``/api/stations[?kabkota=..][&station=..][&problems=1]``; the summary is of the selection."""
    now, stale = snapshot.now, snapshot.stale_after_intervals
    views = [
        v
        for v in snapshot.stations
        if (not kabkota or v.kabkota == kabkota)
        and (not station or v.station == station)
        and (not problems_only or problems(v, now, stale))
    ]
    return msgspec.json.encode(
        {
            "generated_at": now,
            "summary": summarize(snapshot._replace(stations=views))._asdict(),
            "mqtt_connected": snapshot.mqtt_connected,
            "stations": [station_json(v, now, stale) for v in views],
        }
    )


class _Auth:
    """Basic auth against a PBKDF2 hash or a plain password read from a file."""

    def __init__(self, user: str, password_hash: str = "", password: str = "") -> None:
        self.user = user
        self.password_hash = password_hash
        self.password = password
        self._good: set[str] = set()  # Authorization values already verified (hashing is slow)
        self._lock = threading.Lock()

    def check(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        with self._lock:
            if header in self._good:
                return True
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        if self.password_hash:
            ok = verify_password(password, self.password_hash)
        else:
            ok = hmac.compare_digest(password.encode(), self.password.encode())
        if ok and ok_user:
            with self._lock:
                if len(self._good) > 64:
                    self._good.clear()
                self._good.add(header)
            return True
        return False


class HttpServer:
    """The collector's HTTP endpoints on a background thread."""

    def __init__(
        self,
        cfg: HttpConfig,
        *,
        snapshot: Callable[[], Snapshot],
        renderer: Renderer,
        password: str = "",
        title: str = "pantau",
        mqtt_connected: Callable[[], bool] | None = None,
    ) -> None:
        self.cfg = cfg
        self.snapshot = snapshot
        #: Cheap MQTT state for /healthz and /readyz (default: from a snapshot).
        self.mqtt_connected = mqtt_connected or (lambda: snapshot().mqtt_connected)
        self.renderer = renderer
        self.title = title
        self.auth: _Auth | None = None
        if cfg.basic_auth_user:
            self.auth = _Auth(cfg.basic_auth_user, cfg.basic_auth_password_hash, password)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        handler = _make_handler(self)
        try:
            server = ThreadingHTTPServer((self.cfg.host, self.cfg.port), handler)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror}"
            ) from None
        server.daemon_threads = True
        if self.cfg.tls_cert_file:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(self.cfg.tls_cert_file, self.cfg.tls_key_file)
            except (OSError, ssl.SSLError) as exc:
                server.server_close()
                raise StartupError(f"cannot load the HTTP TLS certificate: {exc}") from None
            # Handshake in the request thread, not in the accept loop.
            server.socket = ctx.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="collector-http", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("HTTP server not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        scheme = "https" if self.cfg.tls_cert_file else "http"
        return f"{scheme}://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def _make_handler(app: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"pantau-collector/{__version__}"

        def version_string(self) -> str:
            return self.server_version  # no Python version in the Server header

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(
            self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
            try:
                if path == "/healthz":
                    # Liveness: 200 while the process serves; the body tells the MQTT state.
                    mqtt = b"connected" if app.mqtt_connected() else b"disconnected"
                    self._send(200, b"ok\nmqtt: " + mqtt + b"\n", "text/plain; charset=utf-8")
                    return
                if path == "/readyz":
                    if app.mqtt_connected():
                        self._send(200, b"ready\n", "text/plain; charset=utf-8")
                    else:
                        self._send(503, b"mqtt: disconnected\n", "text/plain; charset=utf-8")
                    return
                if app.auth is not None and not app.auth.check(self.headers.get("Authorization")):
                    self._send(
                        401,
                        b"authentication required\n",
                        "text/plain; charset=utf-8",
                        {"WWW-Authenticate": 'Basic realm="pantau", charset="UTF-8"'},
                    )
                    return
                if path == "/metrics":
                    self._metrics()
                elif path == "/api/stations":
                    body = stations_json(
                        app.snapshot(),
                        kabkota=params.get("kabkota", ""),
                        station=params.get("station", ""),
                        problems_only=params.get("problems", "") in ("1", "true", "yes"),
                    )
                    self._send(200, body, "application/json")
                elif path in ("/", "/index.html"):
                    page = render_board(
                        app.snapshot(),
                        refresh_s=app.cfg.board_refresh_s,
                        title=app.title,
                        kabkota=params.get("kabkota", ""),
                    )
                    self._send(200, page.encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")
            except (BrokenPipeError, ConnectionResetError):
                log.debug("client went away during %s", path)
            except Exception:
                log.exception("error serving %s", path)
                with contextlib.suppress(OSError):
                    self._send(500, b"internal error\n", "text/plain; charset=utf-8")

        def _metrics(self) -> None:
            snap = app.snapshot()
            accepts = self.headers.get("Accept-Encoding", "")
            level = app.cfg.gzip_level
            if level and "gzip" in accepts:
                body = app.renderer.render_gzip(snap, level)
                self._send(200, body, CONTENT_TYPE, {"Content-Encoding": "gzip"})
                return
            # Streamed; HTTP/1.0 without Content-Length: the end of the body closes the connection.
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in app.renderer.chunks(snap):
                    self.wfile.write(chunk)

    return Handler
