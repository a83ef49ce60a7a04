"""The ``login`` check: blackbox-style probes of the login services.

One prober per kind, each a function ``(ProbeSettings) -> wire.Probe``:

- ``tcp``: connect to ``host:port``.
- ``tls``: connect and complete a verified TLS handshake; reports the certificate's expiry.
- ``http`` / ``https``: ``GET`` the URL (no redirects followed) and compare the status with
  ``expect_status`` (default: any 2xx or 3xx); https also reports the certificate's expiry.

A failed probe is ``up=False`` with an enumerated
:class:`~pantau.contract.vocabulary.ProbeReason` (blackbox keeps the reason
in its logs only; here it reaches the dashboard). Mapping an exception to a reason is the pure
:func:`reason_for`. Probes of one round run concurrently, so one hanging target costs its own
timeout, not the sum.
"""

from __future__ import annotations

import errno
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

from pantau.agent.checks import Findings, Sources, register
from pantau.agent.config import AgentConfig, ProbeSettings, split_host_port
from pantau.contract import wire
from pantau.contract.vocabulary import ProbeReason

USER_AGENT: Final = "pantau-agent"


#: OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED.
_X509_EXPIRED: Final = 10


def reason_for(exc: BaseException) -> ProbeReason:
    """The enumerated reason for an exception raised while probing (pure)."""
    if isinstance(exc, socket.gaierror):
        return ProbeReason.DNS
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == _X509_EXPIRED:
            return ProbeReason.CERT_EXPIRED
        return ProbeReason.TLS
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProbeReason.TIMEOUT
    if isinstance(exc, ssl.SSLError):
        return ProbeReason.TLS
    if isinstance(exc, ConnectionRefusedError):
        return ProbeReason.REFUSED
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return ProbeReason.RESET
    if isinstance(exc, http.client.HTTPException):
        return ProbeReason.HTTP_PROTOCOL
    if isinstance(exc, OSError) and exc.errno in (
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
    ):
        return ProbeReason.UNREACHABLE
    return ProbeReason.ERROR


def status_ok(status: int, expect: Sequence[int]) -> bool:
    return status in expect if expect else 200 <= status < 400


def cert_expiry(cert: object) -> float | None:
    """``notAfter`` of a ``getpeercert()`` dict as Unix seconds (None if absent)."""
    if isinstance(cert, dict) and isinstance(not_after := cert.get("notAfter"), str):
        try:
            return float(ssl.cert_time_to_seconds(not_after))
        except ValueError:
            return None
    return None


def expiry_reason(expiry: float | None, now: float, min_cert_days: int) -> ProbeReason:
    if expiry is not None and min_cert_days and expiry - now < min_cert_days * 86400:
        return ProbeReason.CERT_EXPIRING
    return ProbeReason.OK


def tls_context(ca_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# --------------------------------------------------------------------------- probers


def _result(
    settings: ProbeSettings,
    started: float,
    reason: ProbeReason,
    status: int | None = None,
    expiry: float | None = None,
) -> wire.Probe:
    return wire.Probe(
        target=settings.name,
        kind=settings.kind,
        up=reason is ProbeReason.OK,
        duration_s=max(0.0, time.perf_counter() - started),
        reason=reason.value,
        status_code=status,
        cert_expiry_ts=expiry,
    )


def probe_tcp(settings: ProbeSettings) -> wire.Probe:
    host, port = split_host_port(settings.target)
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=settings.timeout_s):
            pass
    except OSError as exc:
        return _result(settings, started, reason_for(exc))
    return _result(settings, started, ProbeReason.OK)


def probe_tls(settings: ProbeSettings, now: Callable[[], float] = time.time) -> wire.Probe:
    host, port = split_host_port(settings.target)
    ctx = tls_context(settings.ca_file)
    started = time.perf_counter()
    try:
        with (
            socket.create_connection((host, port), timeout=settings.timeout_s) as raw,
            ctx.wrap_socket(raw, server_hostname=settings.server_name or host) as tls,
        ):
            expiry = cert_expiry(tls.getpeercert())
    except OSError as exc:
        return _result(settings, started, reason_for(exc))
    return _result(
        settings, started, expiry_reason(expiry, now(), settings.min_cert_days), expiry=expiry
    )


def probe_http(settings: ProbeSettings, now: Callable[[], float] = time.time) -> wire.Probe:
    url = urlsplit(settings.target)
    host = url.hostname or ""
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    conn: http.client.HTTPConnection
    if settings.kind == "https":
        conn = http.client.HTTPSConnection(
            host, url.port, timeout=settings.timeout_s, context=tls_context(settings.ca_file)
        )
    else:
        conn = http.client.HTTPConnection(host, url.port, timeout=settings.timeout_s)
    started = time.perf_counter()
    expiry = None
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Connection": "close"})
        if isinstance(conn.sock, ssl.SSLSocket):
            expiry = cert_expiry(conn.sock.getpeercert())
        response = conn.getresponse()
        status = response.status
        response.close()
    except (OSError, http.client.HTTPException) as exc:
        return _result(settings, started, reason_for(exc), expiry=expiry)
    finally:
        conn.close()
    if not status_ok(status, settings.expect_status):
        return _result(settings, started, ProbeReason.HTTP_STATUS, status, expiry)
    reason = expiry_reason(expiry, now(), settings.min_cert_days)
    return _result(settings, started, reason, status, expiry)


Prober = Callable[[ProbeSettings], wire.Probe]

PROBERS: Final[dict[str, Prober]] = {
    "tcp": probe_tcp,
    "tls": probe_tls,
    "http": probe_http,
    "https": probe_http,
}


def default_prober(settings: ProbeSettings) -> wire.Probe:
    """Run the prober of ``settings.kind``."""
    return PROBERS[settings.kind](settings)


# --------------------------------------------------------------------------- the check


class LoginCheck:
    """Run every configured probe concurrently; ``prober`` is injectable (simulator, tests)."""

    name: Final = "login"
    #: Probes wait on the network: the service runs this check on its own thread.
    background: Final = True

    def __init__(
        self,
        probes: Sequence[ProbeSettings],
        prober: Prober = default_prober,
        interval_s: float = 30.0,
    ) -> None:
        self.probes = tuple(probes)
        self.prober = prober
        self.interval_s = interval_s
        #: Every probe bounds itself; DNS lookups do not, so the runner's timeout adds a margin.
        self.timeout_s = max((p.timeout_s for p in self.probes), default=1.0) * 2 + 1.0

    def _one(self, settings: ProbeSettings) -> wire.Probe:
        started = time.perf_counter()
        try:
            return self.prober(settings)
        except Exception:  # noqa: BLE001 - a prober bug must not lose the other probes
            return _result(settings, started, ProbeReason.ERROR)

    def run(self) -> Findings:
        if len(self.probes) <= 1:
            return Findings(probes=tuple(self._one(p) for p in self.probes))
        results: list[wire.Probe | None] = [None] * len(self.probes)

        def work(i: int, settings: ProbeSettings) -> None:
            results[i] = self._one(settings)

        threads = [
            threading.Thread(target=work, args=(i, p), name=f"probe-{p.name}", daemon=True)
            for i, p in enumerate(self.probes)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return Findings(probes=tuple(r for r in results if r is not None))

    def failed(self, exc: Exception | None) -> Findings:
        why = ProbeReason.TIMEOUT if exc is None else ProbeReason.ERROR
        return Findings(
            probes=tuple(
                wire.Probe(target=p.name, kind=p.kind, up=False, duration_s=0.0, reason=why.value)
                for p in self.probes
            )
        )


@register("login", order=20)
def _build(cfg: AgentConfig, sources: Sources) -> LoginCheck | None:
    """Built when ``[[probes]]`` are configured."""
    if not cfg.probes:
        return None
    return LoginCheck(cfg.probes, sources.prober, cfg.intervals.login_s)
