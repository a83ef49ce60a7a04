"""tls_certs: each certificate variant behaves as its name says against a real TLS client."""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

import pytest
from harness import LocalHttpServer, TlsCerts


def _get(url: str, cafile: Path, *, host: str | None = None) -> bytes:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if host is not None:
        url = url.replace("127.0.0.1", host)
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
        body: bytes = resp.read()
        return body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_server_cert_is_trusted_through_the_ca(tls_certs: TlsCerts, host: str) -> None:
    with LocalHttpServer(certfile=tls_certs.server_cert, keyfile=tls_certs.server_key) as srv:
        assert _get(srv.url, tls_certs.ca_cert, host=host) == b"ok"
        assert srv.requests == [("GET", "/", b"")]


@pytest.mark.parametrize(
    ("cert", "cafile", "why"),
    [
        ("server", "other_ca", "unable to get local issuer certificate"),
        ("expired", "ca", "certificate has expired"),
        ("self_signed", "ca", "self-signed certificate"),
        ("wrong_host", "ca", "mismatch"),
    ],
)
def test_bad_certs_are_refused(tls_certs: TlsCerts, cert: str, cafile: str, why: str) -> None:
    certfile = getattr(tls_certs, f"{cert}_cert")
    keyfile = getattr(tls_certs, f"{cert}_key")
    with (
        LocalHttpServer(certfile=certfile, keyfile=keyfile) as srv,
        pytest.raises(urllib.error.URLError) as info,
    ):
        _get(srv.url, getattr(tls_certs, f"{cafile}_cert"))
    reason = info.value.reason
    assert isinstance(reason, ssl.SSLCertVerificationError)
    assert why in str(reason)


def test_plain_http_responder(tls_certs: TlsCerts) -> None:
    def teapot(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        return 418, {"X-Path": path}, method.encode() + body

    with LocalHttpServer(teapot) as srv:
        req = urllib.request.Request(f"{srv.url}/login", data=b"!", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 418
        assert info.value.headers["X-Path"] == "/login"
        assert info.value.read() == b"POST!"
