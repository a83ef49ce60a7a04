"""The ``login`` check: blackbox-style probes of the login services.

Each ``[[probes]]`` table is probed by its kind (``tcp``, ``tls``, ``http``, ``https``; one module
each under :mod:`pantau.agent.checks.probes`, registered by name), through a prober
``(ProbeSettings) -> wire.Probe`` that tests and simulators can replace.

A failed probe is ``up=False`` with an enumerated
:class:`~pantau.contract.vocabulary.ProbeReason` (blackbox keeps the reason
in its logs only; here it reaches the dashboard) and a
:class:`~pantau.contract.vocabulary.LoginCause` a person acts on (network, TLS, denied by the
service: HTTP 401/403, service error: HTTP 5xx, unexpected answer). A certificate that expires
within ``min_cert_days`` is a warning: the probe stays up with reason ``cert_expiring``. Mapping an
exception to a reason is the pure :func:`reason_for`. Probes of one round run concurrently, so one hanging target costs its own
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

from pantau.agent.checks import Findings, Sources, probes, register
from pantau.agent.config import AgentConfig, ProbeSettings
from pantau.contract import wire
from pantau.contract.vocabulary import LoginCause, ProbeReason, login_cause

#: OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED.
_X509_EXPIRED: Final = 10
#: OpenSSL verify codes meaning "no trusted CA signed this": DEPTH_ZERO_SELF_SIGNED_CERT (18),
#: SELF_SIGNED_CERT_IN_CHAIN (19), UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20),
#: UNABLE_TO_VERIFY_LEAF_SIGNATURE (21), UNABLE_TO_GET_ISSUER_CERT (2), CERT_UNTRUSTED (27).
_X509_UNTRUSTED: Final = frozenset({2, 18, 19, 20, 21, 27})
#: X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_X509_WRONG_NAME: Final = frozenset({62, 64})


def reason_for(exc: BaseException) -> ProbeReason:
    """The enumerated reason for an exception raised while probing (pure)."""
    if isinstance(exc, socket.gaierror):
        return ProbeReason.DNS
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == _X509_EXPIRED:
            return ProbeReason.CERT_EXPIRED
        if exc.verify_code in _X509_UNTRUSTED:
            return ProbeReason.CERT_UNTRUSTED
        if exc.verify_code in _X509_WRONG_NAME:
            return ProbeReason.CERT_HOSTNAME
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


# --------------------------------------------------------------------------- probers


def probe_result(
    settings: ProbeSettings,
    started: float,
    reason: ProbeReason,
    status: int | None = None,
    expiry: float | None = None,
) -> wire.Probe:
    cause = login_cause(reason, status)
    return wire.Probe(
        target=settings.name,
        kind=settings.kind,
        # An expiring certificate still works: up, with the warning in reason and the expiry.
        up=cause is LoginCause.OK,
        duration_s=max(0.0, time.perf_counter() - started),
        reason=reason.value,
        status_code=status,
        cert_expiry_ts=expiry,
        cause=cause.value,
    )


Prober = Callable[[ProbeSettings], wire.Probe]


def default_prober(settings: ProbeSettings) -> wire.Probe:
    """Run the prober of ``settings.kind`` (:mod:`pantau.agent.checks.probes`)."""
    return probes.kinds()[settings.kind].probe(settings)


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
            return probe_result(settings, started, ProbeReason.ERROR)

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
                wire.Probe(
                    target=p.name,
                    kind=p.kind,
                    up=False,
                    duration_s=0.0,
                    reason=why.value,
                    cause=login_cause(why).value,
                )
                for p in self.probes
            )
        )


@register("login", order=20)
def _build(cfg: AgentConfig, sources: Sources) -> LoginCheck | None:
    """Built when ``[[probes]]`` are configured."""
    if not cfg.probes:
        return None
    return LoginCheck(cfg.probes, sources.prober, cfg.intervals.login_s)
