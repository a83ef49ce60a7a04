"""A tiny real HTTP(S) server on a free loopback port, for probe and webhook tests.

``LocalHttpServer(respond, certfile=, keyfile=)`` runs a ThreadingHTTPServer in a daemon thread;
``respond(method, path, body) -> (status, headers, body)`` decides every answer (default: 200
"ok"). With ``certfile``/``keyfile`` (e.g. from ``tls_certs``) it serves HTTPS. Every request is
recorded in ``.requests`` as ``(method, path, body)``. Use it as a context manager.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Response = tuple[int, Mapping[str, str], bytes]
Responder = Callable[[str, str, bytes], Response]


def _ok(_method: str, _path: str, _body: bytes) -> Response:
    return 200, {"Content-Type": "text/plain"}, b"ok"


class LocalHttpServer:
    def __init__(
        self,
        respond: Responder = _ok,
        *,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, body))
                status, headers, payload = respond(self.command, self.path, body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_PUT = _handle

            def log_message(self, *_args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        scheme = "http"
        if certfile is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> LocalHttpServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
