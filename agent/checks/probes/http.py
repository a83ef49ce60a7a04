"""The ``http`` and ``https`` probe kinds: ``GET`` the URL (no redirects followed) and compare
the status with ``expect_status`` (default: any 2xx or 3xx); https verifies the certificate
(TLS 1.2 or newer) and reports its expiry like the ``tls`` kind."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from pantau.agent.checks.login import probe_result, reason_for
from pantau.agent.checks.probes import Hint, Mistake, ProbeKind, register
from pantau.agent.checks.probes.tls import TLS_HINTS, cert_expiry, expiry_reason, tls_context
from pantau.agent.config import ProbeSettings
from pantau.contract import wire
from pantau.contract.vocabulary import ProbeReason

USER_AGENT: Final = "pantau-agent"


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """An http(s) probe's settings: ``target`` is an ``http://`` or ``https://`` URL."""

    secure: bool
    host: str
    port: int | None
    #: Path and query, as requested.
    path: str
    timeout_s: float
    #: Accepted status codes; empty: any 2xx or 3xx.
    expect_status: tuple[int, ...]
    ca_file: str
    min_cert_days: int

    @classmethod
    def parse(cls, settings: ProbeSettings) -> HttpSettings:
        """Raises ``ValueError`` (the message names what is expected)."""
        kind, target = settings.kind, settings.target
        try:
            url = urlsplit(target)
        except ValueError as exc:  # e.g. "Invalid IPv6 URL" for an unclosed bracket
            raise ValueError(f"expected a {kind}:// URL, got {target!r} ({exc})") from None
        if url.scheme != kind or not url.hostname:
            raise ValueError(f"expected a {kind}:// URL, got {target!r}")
        try:
            port = url.port
        except ValueError:
            raise ValueError("invalid port in URL") from None
        return cls(
            secure=kind == "https",
            host=url.hostname,
            port=port,
            path=(url.path or "/") + (f"?{url.query}" if url.query else ""),
            timeout_s=settings.timeout_s,
            expect_status=settings.expect_status,
            ca_file=settings.ca_file,
            min_cert_days=settings.min_cert_days,
        )


HTTP_HINTS: Final[dict[str, Hint]] = {
    ProbeReason.HTTP_STATUS: (
        "Server menjawab dengan kode yang tidak diharapkan: layanan bermasalah, hubungi "
        "pengelola server.",
        "The server answered with an unexpected status: the service has a problem.",
    ),
}


def validate(settings: ProbeSettings) -> list[Mistake]:
    try:
        HttpSettings.parse(settings)
    except ValueError as exc:
        return [("target", str(exc))]
    return []


def status_ok(status: int, expect: Sequence[int]) -> bool:
    return status in expect if expect else 200 <= status < 400


def probe_http(settings: ProbeSettings, now: Callable[[], float] = time.time) -> wire.Probe:
    target = HttpSettings.parse(settings)
    conn: http.client.HTTPConnection
    if target.secure:
        conn = http.client.HTTPSConnection(
            target.host, target.port, timeout=target.timeout_s, context=tls_context(target.ca_file)
        )
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=target.timeout_s)
    started = time.perf_counter()
    expiry = None
    try:
        conn.request("GET", target.path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        if isinstance(conn.sock, ssl.SSLSocket):
            expiry = cert_expiry(conn.sock.getpeercert())
        response = conn.getresponse()
        status = response.status
        response.close()
    except (OSError, http.client.HTTPException) as exc:
        return probe_result(settings, started, reason_for(exc), expiry=expiry)
    finally:
        conn.close()
    if not status_ok(status, target.expect_status):
        return probe_result(settings, started, ProbeReason.HTTP_STATUS, status, expiry)
    reason = expiry_reason(expiry, now(), target.min_cert_days)
    return probe_result(settings, started, reason, status, expiry)


HTTP: Final = register(
    ProbeKind("http", probe_http, validate, hints=HTTP_HINTS, exclusive=("expect_status",))
)
HTTPS: Final = register(
    ProbeKind(
        "https",
        probe_http,
        validate,
        hints={**TLS_HINTS, **HTTP_HINTS},
        exclusive=("expect_status",),
        files=("ca_file",),
    )
)
