"""The collector's HTTP server against hostile clients: idle and slow sockets, wrong passwords,
content sniffing and framing.

The connection test runs the real ``pantau-collector run`` with the open file limit many hosts
give a service (1024): ~1,100 held idle or half-sent connections used to exhaust its descriptors
(scrapes then timed out) and spin its accept loop. Failure bounds on waits are generous timeouts,
never asserted durations.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _shipped import BIN, http_get
from harness import LocalHttpServer, Prometheus, TlsCerts, procs

from pantau.collector.config import from_dict, hash_password
from pantau.collector.http import BOARD_CSP, DEFAULT_CSP
from pantau.collector.service import Collector

HOSTILE = 1100
FD_LIMIT = 1024


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def collector_process(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``pantau-collector run`` under ``ulimit -n 1024``, no broker (it keeps retrying);
    ``http.header_timeout_s`` from the test's indirect parameter (default 2 s)."""
    header_timeout = getattr(request, "param", 2.0)
    port = procs.free_port()
    config = tmp_path / "collector.toml"
    config.write_text(
        f"[mqtt]\nport = {procs.free_port()}\nreconnect_max_s = 5.0\n"
        f'[http]\nhost = "127.0.0.1"\nport = {port}\nheader_timeout_s = {header_timeout}\n'
    )
    command = f"ulimit -n {FD_LIMIT} && exec {BIN / 'pantau-collector'} run --config {config}"
    proc = procs.spawn(["sh", "-c", command], tmp_path / "collector.log")
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_for(
            lambda: http_get(url + "/healthz", timeout=2)[0] == 200,
            timeout=20,
            what="collector HTTP",
            alive=proc,
            log=lambda: (tmp_path / "collector.log").read_text(errors="replace"),
        )
        yield proc, url
    finally:
        procs.stop(proc)


# A request-head timeout far beyond the test: only the connection cap keeps room for scrapes
# (with the cap disabled, this test fails: the scrape is never accepted).
@pytest.mark.parametrize("collector_process", [600.0], indirect=True)
def test_scrapes_answer_while_1100_hostile_connections_are_held(
    collector_process: tuple[subprocess.Popen[bytes], str], prometheus: Prometheus
) -> None:
    proc, url = collector_process
    port = int(url.rsplit(":", 1)[1])
    job = "adversarial-held"
    prometheus.scrape(job, [f"127.0.0.1:{port}"])
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        """Keep 1,100 connections open: each one the server closes is opened again."""
        while not stop.is_set():
            for i, sock in enumerate(held):
                try:
                    sock.settimeout(0)
                    gone = sock.recv(1) == b""
                except (BlockingIOError, TimeoutError):
                    gone = False
                except OSError:
                    gone = True
                if gone and not stop.is_set():
                    sock.close()
                    with contextlib.suppress(OSError):
                        held[i] = socket.create_connection(("127.0.0.1", port), timeout=10)
                        if i % 2:
                            held[i].sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stop.wait(0.05)

    holder = threading.Thread(target=hold, daemon=True)
    try:
        for i in range(HOSTILE):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:  # half send a request head that never ends (slowloris), half nothing
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        flood_started = time.time()
        holder.start()
        # the scrape still answers (the timeout is a failure bound, not a measurement)
        status, _, body = http_get(url + "/metrics", timeout=30)
        assert status == 200
        assert b"pantau_collector_mqtt_connected 0" in body
        assert http_get(url + "/healthz", timeout=30)[0] == 200
        # and Prometheus keeps scraping it: three successful scrapes since the flood began
        seen: set[str] = set()

        def scraped(result: list[Any]) -> bool:
            seen.update(r["value"][1] for r in result if float(r["value"][1]) > flood_started)
            return len(seen) >= 3

        prometheus.wait_until(f'timestamp(up{{job="{job}"}} == 1)', scraped, 60)
        # descriptors stayed under the limit: the cap closed the oldest waiting connections
        assert _fds(proc.pid) < FD_LIMIT
        # with the connections held still (no more re-opening), the accept loop does not spin
        stop.set()
        holder.join(10)
        before = _cpu_seconds(proc.pid)
        time.sleep(3.0)
        assert _cpu_seconds(proc.pid) - before < 1.5
    finally:
        stop.set()
        if holder.is_alive():
            holder.join(10)
        for sock in held:
            sock.close()
        prometheus.unscrape(job)
    assert proc.poll() is None


def test_a_slow_request_head_is_cut_after_the_header_timeout(
    collector_process: tuple[subprocess.Popen[bytes], str],
) -> None:
    _, url = collector_process
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        deadline = time.monotonic() + 30  # failure bound; the server's limit is 2 s
        got = b"x"
        while got and time.monotonic() < deadline:
            sock.sendall(b"X-Slow: 1\r\n")  # one header line at a time, never the blank line
            time.sleep(0.5)
            try:
                sock.settimeout(0.01)
                got = sock.recv(1024)
            except TimeoutError:
                got = b"x"
            except (ConnectionResetError, BrokenPipeError):
                got = b""
        assert got == b"", "the server kept a slow request head open"


# --------------------------------------------------------------------------- in-process collector


@pytest.fixture
def with_auth() -> Iterator[Collector]:
    cfg = from_dict(
        {
            "mqtt": {"port": procs.free_port()},
            "http": {
                "port": 0,
                "basic_auth_user": "ops",
                "basic_auth_password_hash": hash_password("right", iterations=200_000),
                "auth_failure_burst": 5,
                "auth_failure_interval_s": 60.0,
            },
        }
    )
    c = Collector(cfg, inventory=[]).start()
    try:
        yield c
    finally:
        c.stop()


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_failed_logins_are_rate_limited_per_address(with_auth: Collector) -> None:
    url = with_auth.url + "/metrics"
    auth = with_auth.http.auth
    assert auth is not None
    assert http_get(url, _basic("ops", "right"))[0] == 200  # verified once, then remembered
    statuses = [http_get(url, _basic("ops", f"wrong{i}"))[0] for i in range(30)]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    status, headers, _ = http_get(url, _basic("ops", "wrong-again"))
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    # 30 wrong passwords cost 5 hash computations, not 30
    assert auth.verifications == 1 + 5
    # the credentials already verified still work from the same address
    assert http_get(url, _basic("ops", "right"))[0] == 200
    # no credentials at all is a plain 401 (a browser's first request), not limited
    assert http_get(url)[0] == 401


def _responses(base: str) -> dict[str, http.client.HTTPResponse]:
    out: dict[str, http.client.HTTPResponse] = {}
    host, port = base.removeprefix("http://").rsplit(":", 1)
    requests = {
        "metrics": ("GET", "/metrics", {}),
        "metrics-gzip": ("GET", "/metrics", {"Accept-Encoding": "gzip"}),
        "head": ("HEAD", "/metrics", {}),
        "healthz": ("GET", "/healthz", {}),
        "readyz": ("GET", "/readyz", {}),
        "api": ("GET", "/api/stations", {}),
        "board": ("GET", "/", {}),
        "missing": ("GET", "/nothing", {}),
        "bad-method": ("DELETE", "/", {}),
    }
    for name, (method, path, headers) in requests.items():
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out[name] = resp
        conn.close()
    return out


def test_security_headers_on_every_response(tmp_path: Path) -> None:
    cfg = from_dict({"mqtt": {"port": procs.free_port()}, "http": {"port": 0}})
    c = Collector(cfg, inventory=[]).start()
    try:
        responses = _responses(c.url)
        # a request head the stdlib refuses itself (431: more than 100 header lines)
        host, port = c.http.address
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
    finally:
        c.stop()
    for name, resp in responses.items():
        assert resp.getheader("X-Content-Type-Options") == "nosniff", name
        policies = resp.headers.get_all("Content-Security-Policy") or []
        assert len(policies) == 1, (name, policies)  # browsers enforce every policy they get
        assert "frame-ancestors 'none'" in policies[0], name
    board = responses["board"]
    assert board.getheader("Content-Security-Policy") == BOARD_CSP
    assert board.getheader("X-Frame-Options") == "DENY"
    assert "script-src" not in BOARD_CSP  # default-src 'none' covers scripts: none run
    assert responses["metrics"].getheader("Content-Security-Policy") == DEFAULT_CSP
    assert responses["bad-method"].status == 501
    head = raw.decode(errors="replace").split("\r\n\r\n", 1)[0]
    assert head.startswith("HTTP/1.0 431")
    assert "X-Content-Type-Options: nosniff" in head
    assert f"Content-Security-Policy: {DEFAULT_CSP}" in head


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium not installed")
def test_control_chromium_reports_what_the_board_policy_blocks(tmp_path: Path) -> None:
    """The board's screenshot test asserts Chromium logs no policy violation; this shows that it
    would: under the same policy, a page with a script and an external stylesheet gets both
    blocked and logged, while its inline style applies."""
    page = (
        b"<!doctype html><html><head><style>body{background:#123}</style>"
        b'<link rel=stylesheet href="http://example.invalid/x.css"></head>'
        b'<body><b style="color:red">x</b><script>document.title="ran"</script></body></html>'
    )

    def respond(_m: str, _p: str, _b: bytes) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/html", "Content-Security-Policy": BOARD_CSP}, page

    with LocalHttpServer(respond) as server:
        res = subprocess.run(
            [
                str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run", "--enable-logging=stderr",
                "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                server.url + "/",
            ],
            capture_output=True, timeout=90, check=False,
        )  # fmt: skip
    log = res.stderr.decode(errors="replace")
    assert "Executing inline script violates the following Content Security Policy" in log
    assert re.search(r"Loading the stylesheet '\S+' violates the following Content Security", log)
    assert "Applying inline style violates" not in log
    assert "<title>ran</title>" not in res.stdout.decode(errors="replace")


def test_over_https_idle_sockets_without_a_handshake_are_cut_and_scrapes_answer(
    tls_certs: TlsCerts,
) -> None:
    """With HTTPS, the handshake happens in the connection's thread and counts against the
    request-head deadline: sockets that never start TLS are closed, scrapes still answer."""
    cfg = from_dict(
        {
            "mqtt": {"port": procs.free_port()},
            "http": {
                "port": 0,
                "tls_cert_file": str(tls_certs.server_cert),
                "tls_key_file": str(tls_certs.server_key),
                "header_timeout_s": 1.0,
                "max_connections": 64,
            },
        }
    )
    c = Collector(cfg, inventory=[]).start()
    held: list[socket.socket] = []
    try:
        host, port = c.http.address
        held = [socket.create_connection((host, port), timeout=10) for _ in range(200)]
        context = ssl.create_default_context(cafile=str(tls_certs.ca_cert))
        with urllib.request.urlopen(c.url + "/metrics", timeout=30, context=context) as resp:
            assert resp.status == 200
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert len(c.http.connections) <= 64
        # every held socket is closed by the server: evicted at the cap or cut at the deadline
        deadline = time.monotonic() + 30  # failure bound
        open_ = list(held)
        while open_ and time.monotonic() < deadline:
            still = []
            for sock in open_:
                sock.settimeout(0.01)
                try:
                    if sock.recv(1) != b"":
                        still.append(sock)
                except TimeoutError:
                    still.append(sock)
                except OSError:
                    pass
            open_ = still
            time.sleep(0.2)
        assert open_ == []
    finally:
        for sock in held:
            sock.close()
        c.stop()


def test_accept_without_descriptors_pauses_instead_of_spinning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE from accept() (a real errno, raised by a stand-in listening socket: exhausting this
    process's descriptors would break the test run itself): each failure pauses the accept loop,
    and the warning is logged once, not per attempt."""
    from http.server import BaseHTTPRequestHandler
    from types import SimpleNamespace

    from pantau.collector import http as chttp

    sleeps: list[float] = []
    monkeypatch.setattr(
        chttp, "time", SimpleNamespace(sleep=sleeps.append, monotonic=time.monotonic)
    )
    server = chttp._Server(("127.0.0.1", 0), BaseHTTPRequestHandler, chttp._Connections(8, 1.0))

    class Exhausted:
        def accept(self) -> tuple[Any, Any]:
            raise OSError(errno.EMFILE, "Too many open files")

    real = server.socket
    server.socket = Exhausted()  # type: ignore[assignment]
    try:
        with caplog.at_level("WARNING", logger="pantau.collector.http"):
            for _ in range(3):
                server._handle_request_noblock()
    finally:
        server.socket = real
        server.server_close()
    assert sleeps == [0.1, 0.1, 0.1]
    assert [r.getMessage() for r in caplog.records if "accept failed" in r.getMessage()] == [
        "HTTP accept failed (Too many open files); pausing accepts briefly"
    ]
