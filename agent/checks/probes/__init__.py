"""Probe kinds, the blackbox_exporter way: each kind is one module that owns its settings, their
validation, its prober and the hints for its failures, and registers under its name.

A ``[[probes]]`` table of the agent config is :class:`~pantau.agent.config.ProbeSettings` (name,
kind, target, timeout and the optional settings of every kind). Its kind turns it into the kind's
own settings struct (``parse``), says what is wrong with it (``validate``, run when the config is
loaded), probes it (``probe``) and explains a failure to the operator (``hints``, by reason). The
``login`` check (:mod:`pantau.agent.checks.login`) runs the probes; the agent config, the check
and ``pantau-agent check`` ask the registry, never a kind by name.

The kinds are the modules of this package, each imported (so registered) on first use: ``tcp``,
``tls``, ``http`` and ``https`` today; docs/architecture.md has the recipe for adding one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from pantau.contract.vocabulary import ProbeReason

if TYPE_CHECKING:
    from pantau.agent.config import ProbeSettings
    from pantau.contract import wire

#: A mistake in one probe's settings: (the setting's key, the message).
Mistake = tuple[str, str]
#: (Bahasa Indonesia, English) text for an operator.
Hint = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ProbeKind:
    """One kind of probe."""

    name: str
    #: Probe one target; bounded by the settings' timeout; returns, never raises, for a failure
    #: of the target (a raise is a bug: the check reports ``error``).
    probe: Callable[[ProbeSettings], wire.Probe]
    #: What is wrong with the settings for this kind (empty: nothing).
    validate: Callable[[ProbeSettings], list[Mistake]]
    #: Operator hints for this kind's own failure reasons (network reasons have common hints).
    hints: Mapping[str, Hint] = field(default_factory=dict)
    #: Settings that only this kind (and others declaring them too) may set.
    exclusive: tuple[str, ...] = ()
    #: Settings naming files (CA bundles) loaded when the config is loaded.
    files: tuple[str, ...] = ()


#: Hints for the network reasons every kind can fail with.
COMMON_HINTS: Final[dict[str, Hint]] = {
    ProbeReason.DNS: (
        "Nama server tidak dikenal: periksa jaringan dan DNS, atau hubungi teknisi TI.",
        "The server name does not resolve: check the network and DNS, or call IT.",
    ),
    ProbeReason.REFUSED: (
        "Tidak ada layanan yang menerima koneksi di server (port tertutup): layanan di server "
        "mati atau alamatnya salah, hubungi pengelola server.",
        "Nothing accepts connections at the server (port closed): the service is down or the "
        "address is wrong, call the server admins.",
    ),
    ProbeReason.TIMEOUT: (
        "Server tidak menjawab: periksa kabel jaringan, modem/VPN ke server regional.",
        "The server did not answer: check the network cable and the modem/VPN link.",
    ),
    ProbeReason.UNREACHABLE: (
        "Jaringan tidak terhubung: periksa kabel jaringan dan modem.",
        "No route to the server: check the network cable and the modem.",
    ),
    ProbeReason.RESET: (
        "Koneksi terputus di tengah jalan: periksa jaringan/VPN.",
        "The connection was cut: check the network/VPN.",
    ),
}


def hint(kind: str, reason: str) -> Hint | None:
    """The operator's hint for ``reason`` of a probe of ``kind``: the kind's own, the common
    network one, or another kind's for that reason (a state from an agent with other kinds);
    None when there is none."""
    registry = kinds()
    own = registry[kind].hints if kind in registry else {}
    if found := own.get(reason) or COMMON_HINTS.get(reason):
        return found
    return next((k.hints[reason] for k in registry.values() if reason in k.hints), None)


#: Every registered kind by name.
KINDS: Final[dict[str, ProbeKind]] = {}


def register(kind: ProbeKind) -> ProbeKind:
    """Make ``kind`` available under its name."""
    if kind.name in KINDS and KINDS[kind.name] is not kind:
        raise ValueError(f"probe kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kinds() -> Mapping[str, ProbeKind]:
    """Every kind: the modules of this package are imported (so registered) first."""
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        importlib.import_module(module.name)
    return KINDS


def mistakes(settings: ProbeSettings) -> list[Mistake]:
    """Everything wrong with one ``[[probes]]`` table: an unknown kind, the kind's own
    validation, a setting that belongs to other kinds."""
    registry = kinds()
    kind = registry.get(settings.kind)
    if kind is None:
        return [("kind", f"invalid enum value {settings.kind!r}")]
    out = kind.validate(settings)
    for key in sorted({k for other in registry.values() for k in other.exclusive}):
        owners = sorted(n for n, other in registry.items() if key in other.exclusive)
        if settings.kind not in owners and getattr(settings, key):
            out.append((key, f"only for {' and '.join(owners)} probes"))
    return out
