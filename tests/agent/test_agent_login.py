"""Login probes against real local servers: listening, refusing, hanging, bad certificates, HTTP."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pantau.agent.checks.login import LoginCheck, ProbeReason, default_prober, reason_for
from pantau.agent.checks.probes.http import status_ok
from pantau.agent.config import ProbeSettings


def probe(kind: str, target: str, **kw: Any) -> Any:
    settings = ProbeSettings(name="t", kind=kind, target=target, **{"timeout_s": 3.0, **kw})  # type: ignore[arg-type]
    return default_prober(settings)


class Server:
    """A loopback TCP server; ``mode``: accept (and close), silent (accept, never answer)."""

    def __init__(self, mode: str, tls_cert: tuple[Path, Path] | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.ctx: ssl.SSLContext | None = None
        if tls_cert is not None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "silent":
                self.held.append(conn)
                continue
            if self.ctx is not None:
                threading.Thread(target=self._tls, args=(conn,), daemon=True).start()
            else:
                conn.close()

    def _tls(self, conn: socket.socket) -> None:
        assert self.ctx is not None
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for s in made:
        s.close()


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


def test_tcp_up_refused_dns(servers: list[Server]) -> None:
    up = Server("accept")
    servers.append(up)
    result = probe("tcp", f"127.0.0.1:{up.port}")
    assert (result.up, result.reason) == (True, "ok")
    assert result.duration_s >= 0
    down = probe("tcp", f"127.0.0.1:{free_port()}")
    assert (down.up, down.reason) == (False, "refused")
    assert probe("tcp", "no-such-host.invalid:443").reason == "dns"


def test_tcp_timeout_when_the_backlog_is_full() -> None:
    # A listener that never accepts with a full backlog drops new SYNs: the connect times out.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        assert probe("tcp", f"127.0.0.1:{port}", timeout_s=0.3).reason == "timeout"
    finally:
        for c in fillers:
            c.close()
        sock.close()


def test_tls_ok_expiry_and_bad_certificates(servers: list[Server], tls_certs: Any) -> None:
    ca = str(tls_certs.ca_cert)

    def serve(cert: str) -> int:
        s = Server(
            "accept",
            (getattr(tls_certs, f"{cert}_cert"), getattr(tls_certs, f"{cert}_key")),
        )
        servers.append(s)
        return s.port

    good = serve("server")
    ok = probe("tls", f"127.0.0.1:{good}", ca_file=ca)
    assert (ok.up, ok.reason) == (True, "ok")
    assert ok.cert_expiry_ts is not None
    # Expiring within min_cert_days: a warning, login still works (up, cause ok).
    soon = probe("tls", f"127.0.0.1:{good}", ca_file=ca, min_cert_days=3650)
    assert (soon.up, soon.reason, soon.cause) == (True, "cert_expiring", "ok")
    assert soon.cert_expiry_ts is not None
    assert probe("tls", f"localhost:{good}", ca_file=ca).up  # SAN DNS:localhost

    def why(target: str, **kw: Any) -> tuple[bool, str, str]:
        r = probe("tls", target, **kw)
        return r.up, r.reason, r.cause

    # System CAs do not trust the test CA.
    assert why(f"127.0.0.1:{good}") == (False, "cert_untrusted", "tls")
    assert why(f"127.0.0.1:{serve('expired')}", ca_file=ca) == (False, "cert_expired", "tls")
    assert why(f"127.0.0.1:{serve('self_signed')}", ca_file=ca) == (
        False,
        "cert_untrusted",
        "tls",
    )
    assert why(f"127.0.0.1:{serve('wrong_host')}", ca_file=ca) == (False, "cert_hostname", "tls")
    assert why(f"127.0.0.1:{free_port()}", ca_file=ca) == (False, "refused", "network")


def test_tls_handshake_hanging_server_times_out(servers: list[Server]) -> None:
    silent = Server("silent")
    servers.append(silent)
    assert probe("tls", f"127.0.0.1:{silent.port}", timeout_s=0.3).reason == "timeout"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = int(self.path.strip("/") or 200)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_server(tls_certs: Any) -> Iterator[tuple[int, int]]:
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tls_certs.server_cert), str(tls_certs.server_key))
    secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, secure)]
    for t in threads:
        t.start()
    yield plain.server_address[1], secure.server_address[1]
    for s in (plain, secure):
        s.shutdown()
        s.server_close()


def test_http_and_https_status(http_server: tuple[int, int], tls_certs: Any) -> None:
    http_port, https_port = http_server
    ok = probe("http", f"http://127.0.0.1:{http_port}/200")
    assert (ok.up, ok.reason, ok.status_code) == (True, "ok", 200)
    assert probe("http", f"http://127.0.0.1:{http_port}/302").up  # default: 2xx or 3xx
    bad = probe("http", f"http://127.0.0.1:{http_port}/503")
    assert (bad.up, bad.reason, bad.status_code, bad.cause) == (
        False,
        "http_status",
        503,
        "service_error",
    )
    # The service answered and refused the station (account locked, wrong credentials): denied,
    # never a network fault.
    for code in (401, 403):
        denied = probe("http", f"http://127.0.0.1:{http_port}/{code}")
        assert (denied.up, denied.status_code, denied.cause) == (False, code, "denied")
    strict = probe("http", f"http://127.0.0.1:{http_port}/302", expect_status=(200,))
    assert (strict.reason, strict.cause) == ("http_status", "unexpected")
    assert probe("http", f"http://127.0.0.1:{http_port}/404").cause == "unexpected"
    secure = probe("https", f"https://127.0.0.1:{https_port}/200", ca_file=str(tls_certs.ca_cert))
    assert (secure.up, secure.status_code) == (True, 200)
    assert secure.cert_expiry_ts is not None
    assert probe("https", f"https://127.0.0.1:{https_port}/200").reason == "cert_untrusted"
    refused = probe("http", f"http://127.0.0.1:{free_port()}/")
    assert (refused.reason, refused.cause) == ("refused", "network")


def test_http_hanging_server_times_out(servers: list[Server]) -> None:
    silent = Server("silent")
    servers.append(silent)
    result = probe("http", f"http://127.0.0.1:{silent.port}/", timeout_s=0.3)
    assert (result.up, result.reason) == (False, "timeout")


def test_http_protocol_garbage(servers: list[Server]) -> None:
    # A server that closes at once: the response is not HTTP.
    s = Server("accept")
    servers.append(s)
    result = probe("http", f"http://127.0.0.1:{s.port}/")
    assert result.reason in ("http_protocol", "reset")


def test_login_check_runs_probes_concurrently_and_survives_a_broken_prober() -> None:
    calls: list[str] = []
    release = threading.Event()

    def prober(settings: ProbeSettings) -> Any:
        calls.append(settings.name)
        if settings.name == "a":
            # b must be able to run while a waits: proves concurrency without timing.
            assert release.wait(5)
            raise RuntimeError("prober bug")
        release.set()
        return default_prober(ProbeSettings(name="b", kind="tcp", target="127.0.0.1:1"))

    check = LoginCheck(
        [
            ProbeSettings(name="a", kind="tcp", target="x:1"),
            ProbeSettings(name="b", kind="tcp", target="x:1"),
        ],
        prober,
    )
    findings = check.run()
    assert [(p.target, p.reason) for p in findings.probes] == [("a", "error"), ("b", "refused")]
    assert {p.reason for p in check.failed(None).probes} == {"timeout"}


def test_reason_mapping_and_status() -> None:
    assert reason_for(ConnectionResetError()) is ProbeReason.RESET
    assert reason_for(OSError(101, "Network is unreachable")) is ProbeReason.UNREACHABLE
    assert reason_for(ValueError()) is ProbeReason.ERROR
    assert status_ok(204, ())
    assert not status_ok(404, ())
    assert status_ok(404, (404,))
