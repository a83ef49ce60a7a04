"""What changed between two rounds, as events (pure).

:class:`Baseline` is the part of the state that events are about: presence per device class, up
per probe, ok per check, and the boot time. The service keeps the last one in the spool
database, so changes that happen while the agent is down (a camera unplugged during a reboot,
the reboot itself) are still reported when it comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec

from pantau.contract import wire
from pantau.contract.vocabulary import UNKNOWN_PRESENCE
from pantau.contract.wire import EventKind

#: Only without a boot id on either side: a boot time that moves by less than this is clock
#: adjustment, not a reboot (boot time is the wall clock minus uptime).
REBOOT_TOLERANCE_S: Final = 120.0


class Baseline(msgspec.Struct, frozen=True):
    peripherals: dict[str, bool] = {}
    probes: dict[str, bool] = {}
    checks: dict[str, bool] = {}
    #: Boot time as first seen in the current boot (kept while the boot id stays the same).
    boot_ts: float | None = None
    #: The boot id of the current boot ("" unknown: baselines of older agents, no boot id).
    boot_id: str = ""


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
    #: Per absent device class, the missing rules or the devices whose driver failed (the
    #: event detail).
    missing: dict[str, str] = field(default_factory=dict)
    #: The host's boot id ("" unknown).
    boot_id: str = ""


def _flips(
    seen: dict[str, bool], observed: Iterable[tuple[str, bool]]
) -> tuple[dict[str, bool], list[tuple[str, bool]]]:
    """Updated ``seen`` and the keys whose value flipped (first sight is no flip)."""
    after = dict(seen)
    flipped = []
    for key, value in observed:
        was = after.get(key)
        after[key] = value
        if was is not None and was != value:
            flipped.append((key, value))
    return after, flipped


def advance(before: Baseline, now: Snapshot) -> tuple[Baseline, list[Change]]:
    """The new baseline and the changes from ``before`` (first sight of a key is no change)."""
    changes: list[Change] = []
    known = [p for p in now.peripherals if p.reason not in UNKNOWN_PRESENCE]
    peripherals, flipped = _flips(before.peripherals, ((p.device_class, p.present) for p in known))
    by_class = {p.device_class: p for p in known}
    for device_class, present in flipped:
        if present:
            ids = ", ".join(f"{d.vid:04x}:{d.pid:04x}" for d in by_class[device_class].devices)
            changes.append(Change(EventKind.PERIPHERAL_ADDED, device_class, f"found {ids}"))
        else:
            what = now.missing.get(device_class, "")
            reason = by_class[device_class].reason or "missing"  # or driver_failed
            detail = f"{reason} {what}" if what else reason
            changes.append(Change(EventKind.PERIPHERAL_REMOVED, device_class, detail))
    probes, flipped = _flips(before.probes, ((p.target, p.up) for p in now.probes))
    reasons = {p.target: p.reason for p in now.probes}
    for target, up in flipped:
        kind = EventKind.PROBE_UP if up else EventKind.PROBE_DOWN
        changes.append(Change(kind, target, reasons[target]))
    checks, flipped = _flips(before.checks, ((c.name, c.ok) for c in now.checks))
    why = {c.name: c.reason for c in now.checks}
    for name, ok in flipped:
        kind = EventKind.CHECK_RECOVERED if ok else EventKind.CHECK_FAILED
        changes.append(Change(kind, name, why[name]))
    boot_ts, boot_id = before.boot_ts, before.boot_id
    if now.host is not None:
        rebooted = _rebooted(before, now.host.boot_ts, now.boot_id)
        if rebooted:
            detail = f"boot time {boot_ts or 0:.0f} -> {now.host.boot_ts:.0f}"
            changes.append(Change(EventKind.REBOOT, "", detail))
        if rebooted or boot_ts is None or not (now.boot_id and now.boot_id == before.boot_id):
            # A new boot (or no boot id to tell): take the boot time as read now. In the same
            # boot keep the first one, whatever the wall clock did since.
            boot_ts = now.host.boot_ts
        boot_id = now.boot_id or boot_id
    return Baseline(peripherals, probes, checks, boot_ts, boot_id), changes


def _rebooted(before: Baseline, boot_ts: float, boot_id: str) -> bool:
    """A reboot since ``before``: by the boot id when both sides have one (a clock step leaves it
    alone), else by a boot time moved by more than :data:`REBOOT_TOLERANCE_S`."""
    if before.boot_ts is None:
        return False  # first sight
    if boot_id and before.boot_id:
        return boot_id != before.boot_id
    return abs(boot_ts - before.boot_ts) > REBOOT_TOLERANCE_S


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
