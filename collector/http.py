"""HTTP: ``/metrics``, ``/healthz``, ``/readyz``, ``/api/stations`` (JSON), ``/`` (fleet board).

stdlib ``ThreadingHTTPServer``; loopback by default; optional TLS and basic auth (``/healthz``
and ``/readyz`` stay open for liveness and readiness checks: they tell only whether MQTT is
connected, nothing about the fleet). Passwords are never logged;
request logs go to the ``pantau.collector.http`` logger at debug level without headers.

``/metrics`` takes a snapshot (references only, under the fleet lock for well under a
millisecond per thousand stations) and renders outside the lock, so a scrape never stalls ingest
for longer than that. The renderer keeps the page compressed per chunk of stations and family
(``http.gzip_level``) and re-renders only what changed; with ``Accept-Encoding: gzip`` those
blocks are sent as one gzip member, otherwise they are inflated and streamed. Neither holds the
whole uncompressed page.

Resource bounds (a hostile client must not lock Prometheus out): at most ``http.max_connections``
connections are open (lowered to fit the process's file descriptor limit); at the cap, the
oldest connection that has not sent a complete request head yet is closed to admit the new one,
so held idle sockets cannot starve scrapes, and only when every connection is busy answering is a
new one refused. A client has ``http.header_timeout_s`` from connecting (TLS handshake included)
to a complete request head; each blocked write of a response gives up after
``http.write_timeout_s``. The listen backlog is 1024 (the stdlib's default is 5), and an
``accept`` that fails for lack of descriptors pauses the accept loop briefly instead of spinning.
Request heads are bounded by the stdlib (64 KiB per line, 100 header lines); one request per
connection (HTTP/1.0).

Failed basic-auth attempts are limited per client address (``http.auth_failure_burst``, then one
per ``http.auth_failure_interval_s``); beyond that the answer is 429 without checking the
password, and at most one password hash is computed at a time, so wrong passwords cannot buy the
collector's CPU. Credentials already verified are remembered and never limited.

Headers: every response has ``X-Content-Type-Options: nosniff`` and ``Cache-Control: no-store``;
every response also carries a Content-Security-Policy that forbids framing (and the board,
``X-Frame-Options: DENY``): the board's policy allows its own inline styles and nothing else (no
script at all, no external resource). See :data:`BOARD_CSP`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hmac
import logging
import resource
import socket
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final

import msgspec

from pantau import __version__
from pantau.collector import diagnosis
from pantau.collector.board import event_text, local_time, render_board
from pantau.collector.config import HttpConfig, verify_password
from pantau.collector.errors import StartupError
from pantau.collector.exposition import CONTENT_TYPE, Renderer
from pantau.collector.fleet import (
    Snapshot,
    StationView,
    clock_skew,
    last_report,
    problems,
    station_status,
    summarize,
)
from pantau.contract.vocabulary import StationStatus, province_name

log = logging.getLogger(__name__)

#: The board: inline styles (it is one server-rendered page with a ``<style>`` block and a few
#: ``style`` attributes) and nothing else: no script runs, nothing loads from elsewhere, no page may
#: frame it, forms and links stay on this server. Style cannot execute code; every value in the
#: page is HTML-escaped besides.
BOARD_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: Every other response (text, JSON): nothing to run, load or frame.
DEFAULT_CSP: Final = "default-src 'none'; frame-ancestors 'none'"
#: Kept free below the file descriptor limit for the MQTT socket, log and inventory files.
_FD_RESERVE: Final = 64
#: Listen backlog (socketserver's default of 5 drops connections under a burst).
LISTEN_BACKLOG: Final = 1024


def connection_cap(configured: int) -> int:
    """``configured``, lowered to fit the soft file descriptor limit (with a reserve)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return configured
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(8, min(configured, int(soft) - _FD_RESERVE))


class _Connections:
    """Open connections and whether each has sent its request head yet (thread-safe)."""

    def __init__(self, cap: int, header_timeout: float) -> None:
        self.cap = cap
        self.header_timeout = header_timeout
        self._lock = threading.Lock()
        #: socket -> accept time, in accept order, for connections still waiting for a request.
        self._waiting: OrderedDict[socket.socket, float] = OrderedDict()
        self._busy: set[socket.socket] = set()
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._busy)

    def admit(self, sock: socket.socket) -> bool:
        """Register a new connection; at the cap, close the oldest waiting one to make room."""
        with self._lock:
            if len(self._waiting) + len(self._busy) >= self.cap:
                if not self._waiting:
                    self.refused += 1
                    return False
                oldest, _ = self._waiting.popitem(last=False)
                self.evicted += 1
                _hang_up(oldest)
            self._waiting[sock] = time.monotonic()
            return True

    def busy(self, sock: socket.socket) -> None:
        """The request head is complete: no longer evictable."""
        with self._lock:
            if self._waiting.pop(sock, None) is not None:
                self._busy.add(sock)

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(sock, None)
            self._busy.discard(sock)

    def expire(self) -> None:
        """Close connections that did not send a complete request head in time."""
        horizon = time.monotonic() - self.header_timeout
        with self._lock:
            while self._waiting:
                sock, since = next(iter(self._waiting.items()))
                if since > horizon:
                    break
                del self._waiting[sock]
                self.timed_out += 1
                _hang_up(sock)


def _hang_up(sock: socket.socket) -> None:
    """Wake the thread blocked reading ``sock`` (it sees end of file and closes it)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a connection cap, request-head deadline and a larger backlog."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        connections: _Connections,
    ) -> None:
        self.connections = connections
        self._next_accept_warning = 0.0
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # The listening socket stays readable: retrying at once would spin a CPU.
                now = time.monotonic()
                if now >= self._next_accept_warning:  # once a minute while it lasts
                    self._next_accept_warning = now + 60.0
                    log.warning("HTTP accept failed (%s); pausing accepts briefly", exc.strerror)
                time.sleep(0.1)
            raise

    def verify_request(self, request: Any, client_address: Any) -> bool:  # noqa: ARG002
        return self.connections.admit(request)

    def shutdown_request(self, request: Any) -> None:
        self.connections.release(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        super().service_actions()
        self.connections.expire()

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        # A connection closed under the handler (evicted, timed out, reset): no traceback.
        log.debug("HTTP connection from %s ended with an error", client_address, exc_info=True)


class _AuthLimiter:
    """Failed logins per client address: a token bucket each (bounded number of addresses)."""

    MAX_ADDRESSES: Final = 4096

    def __init__(self, burst: int, interval: float, clock: Callable[[], float] = time.monotonic):
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        #: address -> (tokens, time of the last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.limited = 0

    def _tokens(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.interval)

    def allowed(self, address: str) -> bool:
        """May ``address`` try a password now?"""
        with self._lock:
            ok = self._tokens(address, self.clock()) >= 1.0
            if not ok:
                self.limited += 1
            return ok

    def failed(self, address: str) -> None:
        with self._lock:
            now = self.clock()
            tokens = self._tokens(address, now) - 1.0
            self._buckets[address] = (max(tokens, 0.0), now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.MAX_ADDRESSES:
                self._buckets.popitem(last=False)

    def retry_after(self, address: str) -> int:
        with self._lock:
            missing = 1.0 - self._tokens(address, self.clock())
        return max(1, int(missing * self.interval + 0.999))


def station_json(
    view: StationView, now: float, stale: float, status: StationStatus | None = None
) -> dict[str, Any]:
    """One station for ``/api/stations`` (``status``: the snapshot's, blindness included)."""
    if status is None:
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
        "last_report": last_report(view) or None,
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
            {
                "target": p.target,
                "up": p.up,
                "duration_s": p.duration_s,
                "reason": p.reason,
                "cause": p.cause,
                "status_code": p.status_code,
                "cert_expiry_ts": p.cert_expiry_ts,
            }
            for p in (report.probes if report else ())
        ],
        "problems": problems(view, now, stale, status),
        "issues": [diagnosis.as_json(p, now) for p in diagnosis.diagnose(view, now, stale)],
        "timezone": view.tz,
        "kabkota_name": view.kabkota_name,
        "provinsi_name": province_name(view.provinsi),
        "recent_events": [
            {
                "at": at,
                "local_time": local_time(at, view.tz, now),
                "kind": kind,
                "subject": subject,
                "detail": detail,
                "text_id": event_text(kind, subject, "id"),
                "text_en": event_text(kind, subject, "en"),
            }
            for at, kind, subject, detail in view.recent
        ],
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
        and (not problems_only or problems(v, now, stale, snapshot.status(v)))
    ]
    return msgspec.json.encode(
        {
            "generated_at": now,
            "summary": summarize(snapshot._replace(stations=views))._asdict(),
            "mqtt_connected": snapshot.mqtt_connected,
            "collector_blind": snapshot.blind,
            "stations": [station_json(v, now, stale, snapshot.status(v)) for v in views],
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
        #: One password hash at a time: wrong passwords from many addresses cost one core at most.
        self._hashing = threading.Lock()
        #: Passwords checked (not answered from the cache of verified credentials).
        self.verifications = 0

    def known(self, header: str | None) -> bool:
        """True if ``header`` holds credentials already verified (no hashing)."""
        with self._lock:
            return header is not None and header in self._good

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
        with self._hashing:
            self.verifications += 1
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
        self.auth_limiter = _AuthLimiter(cfg.auth_failure_burst, cfg.auth_failure_interval_s)
        cap = connection_cap(cfg.max_connections)
        if cap < cfg.max_connections:
            log.warning(
                "http.max_connections %d lowered to %d to fit the open file limit",
                cfg.max_connections,
                cap,
            )
        self.connections = _Connections(cap, cfg.header_timeout_s)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        handler = _make_handler(self)
        try:
            server = _Server((self.cfg.host, self.cfg.port), handler, self.connections)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {self.cfg.host}:{self.cfg.port}: {exc.strerror}"
            ) from None
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


class _Handler(BaseHTTPRequestHandler):
    server_version = f"pantau-collector/{__version__}"
    #: The server this handler answers for (set by :func:`_make_handler`).
    app: ClassVar[HttpServer]

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self.app.connections.busy(self.connection)
            self.connection.settimeout(self.app.cfg.write_timeout_s)
        return ok

    _board_headers = False

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        # On every response, errors of the stdlib's request parsing included.
        self._board_headers = False
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")

    def _board(self) -> None:
        """The board's policy instead of the default one (exactly one policy per response:
        a browser enforces every policy it gets)."""
        self._board_headers = True
        self.send_header("Content-Security-Policy", BOARD_CSP)
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")

    def end_headers(self) -> None:
        if not self._board_headers:
            self.send_header("Content-Security-Policy", DEFAULT_CSP)
        super().end_headers()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if ctype.startswith("text/html"):
            self._board()
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
            self._route(path, params)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away during %s", path)
        except Exception:
            log.exception("error serving %s", path)
            with contextlib.suppress(OSError):
                self._send(500, b"internal error\n", "text/plain; charset=utf-8")

    def _route(self, path: str, params: dict[str, str]) -> None:
        if path == "/healthz":
            # Liveness: 200 while the process serves; the body tells the MQTT state.
            mqtt = b"connected" if self.app.mqtt_connected() else b"disconnected"
            self._send(200, b"ok\nmqtt: " + mqtt + b"\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            if self.app.mqtt_connected():
                self._send(200, b"ready\n", "text/plain; charset=utf-8")
            else:
                self._send(503, b"mqtt: disconnected\n", "text/plain; charset=utf-8")
        elif self.app.auth is not None and not self._authorized(self.app.auth):
            return
        elif path == "/metrics":
            self._metrics()
        elif path == "/api/stations":
            body = stations_json(
                self.app.snapshot(),
                kabkota=params.get("kabkota", ""),
                station=params.get("station", ""),
                problems_only=params.get("problems", "") in ("1", "true", "yes"),
            )
            self._send(200, body, "application/json")
        elif path in ("/", "/index.html"):
            page = render_board(
                self.app.snapshot(),
                refresh_s=self.app.cfg.board_refresh_s,
                title=self.app.title,
                kabkota=params.get("kabkota", ""),
                station=params.get("station", ""),
                lang=params.get("lang", "id"),
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _authorized(self, auth: _Auth) -> bool:
        """Check basic auth; answers 401 or 429 itself when the request may not go on."""
        header = self.headers.get("Authorization")
        if auth.known(header):
            return True
        address = self.client_address[0] if self.client_address else ""
        limiter = self.app.auth_limiter
        if header and not limiter.allowed(address):
            self._send(
                429,
                b"too many failed logins; try again later\n",
                "text/plain; charset=utf-8",
                {"Retry-After": str(limiter.retry_after(address))},
            )
            return False
        if auth.check(header):
            return True
        if header:
            limiter.failed(address)
        self._send(
            401,
            b"authentication required\n",
            "text/plain; charset=utf-8",
            {"WWW-Authenticate": 'Basic realm="pantau", charset="UTF-8"'},
        )
        return False

    def _metrics(self) -> None:
        snap = self.app.snapshot()
        accepts = self.headers.get("Accept-Encoding", "")
        level = self.app.cfg.gzip_level
        if level and "gzip" in accepts:
            # One gzip member sent in pieces as it is joined (never copied whole).
            length, pieces = self.app.renderer.gzip_pieces(snap, level)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Encoding", "gzip")
            self.end_headers()
            if self.command != "HEAD":
                for piece in pieces:
                    self.wfile.write(piece)
            return
        # Streamed; HTTP/1.0 without Content-Length: the end of the body closes the connection.
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.end_headers()
        if self.command != "HEAD":
            for chunk in self.app.renderer.chunks(snap):
                self.wfile.write(chunk)


def _make_handler(app: HttpServer) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to ``app``; its socket timeout is per blocking read until the
    request head is complete (the total is bounded by http.header_timeout_s, enforced by the
    server), then per blocking write."""
    return type("Handler", (_Handler,), {"app": app, "timeout": app.cfg.header_timeout_s})
