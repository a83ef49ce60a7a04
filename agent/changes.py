"""What changed between two rounds, as events (pure).

:class:`Baseline` is the part of the state that events are about: presence per device class, up
per probe, ok per check, and the boot time. The service keeps the last one in the spool
database, so changes that happen while the agent is down (a camera unplugged during a reboot,
the reboot itself) are still reported when it comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from pantau import wire
from pantau.wire import EventKind

#: A boot time that moves by less than this is clock adjustment, not a reboot (Windows derives
#: boot time from the wall clock minus uptime).
REBOOT_TOLERANCE_S: Final = 120.0
#: Peripheral reasons that mean "could not look", not "missing": no presence change is inferred.
UNKNOWN_PRESENCE: Final = frozenset({"libusb_unavailable", "check_failed"})


class Baseline(msgspec.Struct, frozen=True):
    peripherals: dict[str, bool] = {}
    probes: dict[str, bool] = {}
    checks: dict[str, bool] = {}
    boot_ts: float | None = None


@dataclass(frozen=True, slots=True)
class Change:
    kind: EventKind
    subject: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The event-relevant findings of one round (only checks that ran are included)."""

    peripherals: Sequence[wire.Peripheral] = ()
    probes: Sequence[wire.Probe] = ()
    checks: Sequence[wire.CheckRun] = ()
    host: wire.Host | None = None
    #: Per device class, labels of missing rules (for the event detail).
    missing: dict[str, str] = field(default_factory=dict)


def advance(before: Baseline, now: Snapshot) -> tuple[Baseline, list[Change]]:
    """The new baseline and the changes from ``before`` (first sight of a key is no change)."""
    changes: list[Change] = []
    peripherals = dict(before.peripherals)
    for p in now.peripherals:
        if p.reason in UNKNOWN_PRESENCE:
            continue
        was = peripherals.get(p.device_class)
        peripherals[p.device_class] = p.present
        if was is None or was == p.present:
            continue
        if p.present:
            found = ", ".join(f"{d.vid:04x}:{d.pid:04x}" for d in p.devices)
            changes.append(Change(EventKind.PERIPHERAL_ADDED, p.device_class, f"found {found}"))
        else:
            missing = now.missing.get(p.device_class, "")
            detail = f"missing {missing}" if missing else "missing"
            changes.append(Change(EventKind.PERIPHERAL_REMOVED, p.device_class, detail))
    probes = dict(before.probes)
    for probe in now.probes:
        was = probes.get(probe.target)
        probes[probe.target] = probe.up
        if was is None or was == probe.up:
            continue
        kind = EventKind.PROBE_UP if probe.up else EventKind.PROBE_DOWN
        changes.append(Change(kind, probe.target, probe.reason))
    checks = dict(before.checks)
    for run in now.checks:
        was = checks.get(run.name)
        checks[run.name] = run.ok
        if was is None or was == run.ok:
            continue
        kind = EventKind.CHECK_RECOVERED if run.ok else EventKind.CHECK_FAILED
        changes.append(Change(kind, run.name, run.reason))
    boot_ts = before.boot_ts
    if now.host is not None:
        if boot_ts is not None and abs(now.host.boot_ts - boot_ts) > REBOOT_TOLERANCE_S:
            changes.append(
                Change(
                    EventKind.REBOOT,
                    "",
                    f"boot time {boot_ts:.0f} -> {now.host.boot_ts:.0f}",
                )
            )
        boot_ts = now.host.boot_ts
    return Baseline(peripherals, probes, checks, boot_ts), changes


def significant(state: wire.State) -> tuple[object, ...]:
    """The parts of a state whose change makes the service publish at once.

    Host numbers (CPU, free memory) move every round and wait for the regular interval.
    """
    return (
        tuple((p.device_class, p.present, p.found, p.reason, p.devices) for p in state.peripherals),
        tuple((p.target, p.up, p.reason, p.status_code) for p in state.probes),
        tuple((c.name, c.ok, c.reason) for c in state.checks),
        state.host.boot_ts if state.host else None,
        (state.spool.dropped_total,),
    )
