"""The ``tls`` probe kind: connect and complete a verified TLS handshake (TLS 1.2 or newer);
reports the certificate's expiry, and ``cert_expiring`` within ``min_cert_days``.

The certificate helpers here serve the ``https`` kind too.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pantau.agent.checks.login import probe_result, reason_for
from pantau.agent.checks.probes import Hint, ProbeKind, register
from pantau.agent.checks.probes.tcp import TcpSettings, validate_host_port
from pantau.agent.config import ProbeSettings
from pantau.contract import wire
from pantau.contract.vocabulary import ProbeReason


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """A tls probe's settings: where to connect (as for tcp) and what to verify."""

    address: TcpSettings
    #: CA bundle to verify against; empty: the system's trusted CAs.
    ca_file: str
    #: Name to verify (SNI); the target's host when empty.
    server_name: str
    min_cert_days: int

    @classmethod
    def parse(cls, settings: ProbeSettings) -> TlsSettings:
        """Raises ``ValueError`` (the message names what is expected)."""
        address = TcpSettings.parse(settings)
        name = settings.server_name or address.host
        return cls(address, settings.ca_file, name, settings.min_cert_days)


#: Hints for the certificate and handshake reasons (the https kind shares them).
TLS_HINTS: Final[dict[str, Hint]] = {
    ProbeReason.TLS: (
        "Sertifikat server tidak dipercaya atau koneksi aman gagal: hubungi teknisi TI "
        "(periksa juga tanggal dan jam komputer).",
        "TLS handshake or certificate verification failed: call IT (also check the PC's date "
        "and time).",
    ),
    ProbeReason.CERT_EXPIRED: (
        "Sertifikat server sudah kedaluwarsa (atau jam komputer salah): hubungi teknisi TI.",
        "The server certificate has expired (or the PC clock is wrong): call IT.",
    ),
    ProbeReason.CERT_UNTRUSTED: (
        "Sertifikat server tidak ditandatangani CA yang dipercaya PC ini: pasang CA yang benar "
        "(probes.ca_file) atau hubungi pengelola server.",
        "The server certificate is signed by no CA this PC trusts: install the right CA "
        "(probes.ca_file) or call the server admins.",
    ),
    ProbeReason.CERT_HOSTNAME: (
        "Sertifikat server dibuat untuk nama lain: periksa alamat server di konfigurasi, atau "
        "hubungi pengelola server.",
        "The server certificate is for another name: check the server address in the config, "
        "or call the server admins.",
    ),
    ProbeReason.CERT_EXPIRING: (
        "Sertifikat server akan segera kedaluwarsa: beri tahu pengelola server.",
        "The server certificate expires soon: tell the server admins.",
    ),
}


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


def probe_tls(settings: ProbeSettings, now: Callable[[], float] = time.time) -> wire.Probe:
    target = TlsSettings.parse(settings)
    ctx = tls_context(target.ca_file)
    started = time.perf_counter()
    try:
        with (
            socket.create_connection(
                (target.address.host, target.address.port), timeout=target.address.timeout_s
            ) as raw,
            ctx.wrap_socket(raw, server_hostname=target.server_name) as tls,
        ):
            expiry = cert_expiry(tls.getpeercert())
    except OSError as exc:
        return probe_result(settings, started, reason_for(exc))
    reason = expiry_reason(expiry, now(), target.min_cert_days)
    return probe_result(settings, started, reason, expiry=expiry)


KIND = register(
    ProbeKind("tls", probe_tls, validate_host_port, hints=TLS_HINTS, files=("ca_file",))
)
