"""Fleet state: the inventory merged with what stations report. Pure; the clock is passed in.

:class:`Fleet` keeps, per station, an immutable :class:`StationView` that is replaced (never
mutated) whenever a message changes it, so :meth:`Fleet.snapshot` only copies a list of
references under the lock and renderers read the views without holding it.

Rules (wire contract v1):

- Region labels come from the inventory when the station is in it, else from the topic
  (provinsi, kabkota) and the report (kecamatan).
- Stations not in the inventory are accepted up to ``max_unknown_stations``; messages of further
  ones are rejected as ``over_cap``. They are forgotten after ``forget_unknown_after_s`` without
  any message.
- Sessions are ordered by when the collector first saw them. A message of a session older than
  the station's current one is rejected as ``stale_session``; so is an ``offline`` status of a
  session never seen while another session is current, but it is held (one per station): if that
  session's first state or birth comes next, the will applies (a retained replay may send a dead
  newer session's will before its state). Within a session, a will
  whose ``seq`` is not newer than what the collector had seen before the latest birth belongs to
  an earlier connection and is rejected as ``stale_will``.
- ``online`` is set by a birth, cleared by a will/shutdown, and set again by a *live* (not
  retained-replay) state or event newer than the offline message: a live message proves the agent
  is connected, so a stuck retained ``offline`` cannot hide a working station. A state of a new
  session resets it to unknown (None): the previous session's status says nothing about it.
- A station is up when it has a state, is not offline, and its last accepted message of any kind
  (a state, heartbeat, event or birth; collector clock) arrived less than
  ``stale_after_intervals x`` its liveness interval ago: the state's ``heartbeat_s`` when the agent
  sends heartbeats, else its ``interval_s`` (agents publishing the full state periodically). A
  station is never stale because nothing changed: an agent that reports by exception still
  beats.
- A heartbeat (``beat``) counts only for the station's current session (else ``stale_session``);
  one not newer than the last heartbeat applied is ``stale_seq``.
- A state, birth or event whose ``seq`` is not newer than the last one applied of its session
  (and kind) changes nothing and is counted as ``stale_seq`` (every reconnect replays each
  station's retained state and birth).
- Sequence gaps are counted between consecutive live messages of one connection. A seq that is
  skipped is a *hole*; a hole filled by a later message (a late event: reordering, or a spooled
  event resent after a reconnect) is not loss. A hole still open ``reorder_window_s`` after it was
  noticed is counted as lost (``seq_gaps``), so the counter means messages that never arrived.
- Events are counted per kind, once per ``(session, seq)``.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal, NamedTuple, TypeVar

from pantau.contract import wire
from pantau.contract.inventory import InventoryEntry
from pantau.contract.vocabulary import (
    FLEET_REJECT_REASONS,
    INTERNAL_ERROR,
    OVER_CAP,
    STALE_SEQ,
    STALE_SESSION,
    STALE_WILL,
    STATION_STATUSES,
    LoginCause,
    PeripheralReason,
    ProbeReason,
    StationStatus,
    login_cause,
    time_zone,
)

_T = TypeVar("_T")
#: Every value of the ``reason`` label of ``pantau_collector_reports_rejected_total``.
REJECT_REASONS: Final[tuple[str, ...]] = (*(r.value for r in wire.Reason), *FLEET_REJECT_REASONS)
_MAX_SESSIONS: Final = 4
#: The retained replay after a (re)connect is over when no retained message arrived for this long
#: after the subscriptions were acknowledged; until then the collector is still blind.
REPLAY_QUIET_S: Final = 1.0
#: Events kept per station for the board's clues.
MAX_RECENT: Final = 8
#: Keys of :meth:`Fleet.memory` besides the report problem keys.
KNOWN_KEY: Final = "known"
OFFLINE_KEY: Final = "offline"
#: Open holes kept per station; a larger gap is counted as lost at once beyond this many.
MAX_HOLES: Final = 256
#: At most this many probe targets and disk mounts per station are kept (bounded series).
MAX_PER_STATION: Final = 16
#: Distinct probe ``reason`` values (a label of ``pantau_login_probe_info``) accepted fleet-wide;
#: the agent's enumeration has 13. Later new values, and values that are not lower-case words,
#: are exported as ``other``.
MAX_PROBE_REASONS: Final = 32
_REASON_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class ProbeView(NamedTuple):
    """One login probe of the last state (strings interned, reason bounded)."""

    target: str
    up: bool
    duration_s: float
    #: The agent's reason as a bounded label value (see :data:`MAX_PROBE_REASONS`).
    reason: str
    #: A :class:`~pantau.contract.vocabulary.LoginCause` value (derived when the agent sent none).
    cause: str
    status_code: int | None = None
    cert_expiry_ts: float | None = None


_CAUSES: Final = frozenset(c.value for c in LoginCause)


def probe_cause(probe: wire.Probe) -> str:
    """The probe's cause: the agent's when it is a known value consistent with ``up``, else
    derived from its reason and HTTP status (older agents send none)."""
    return _cause(probe.cause, probe.up, probe.reason, probe.status_code)


def _cause(cause: str, up: bool, reason: str, status_code: int | None) -> str:
    if cause not in _CAUSES or (cause == LoginCause.OK) != up:
        cause = login_cause(reason, status_code).value
        if not up and cause == LoginCause.OK:
            cause = LoginCause.UNEXPECTED.value
        elif up:
            cause = LoginCause.OK.value
    return sys.intern(cause)


class Report(NamedTuple):
    """The parts of a station's last state the collector keeps (compact; strings interned).

    ``wire.State`` objects are not kept: at 20,000 stations they would cost ~5 KB each.
    """

    agent_version: str
    os: str
    #: Agent clock at the report (only for clock skew).
    ts: float
    interval_s: float
    #: ``heartbeat_s`` of the state, or its ``interval_s`` when the agent sends no heartbeats:
    #: how often the station speaks when healthy (the unit of staleness).
    liveness_s: float
    #: Unique targets, at most :data:`MAX_PER_STATION`.
    probes: tuple[ProbeView, ...]
    #: ``(cpu_ratio, mem_available_bytes, mem_total_bytes, boot_ts)`` or None.
    host: tuple[float, int, int, float] | None
    #: ``(mount, free_bytes, size_bytes)``, unique mounts, at most :data:`MAX_PER_STATION`.
    disks: tuple[tuple[str, int, int], ...]
    #: ``(name, reason)`` of checks that failed in the agent's round.
    failed_checks: tuple[tuple[str, str], ...]
    spool_queued: int


#: Values of the ``reason`` label of ``pantau_peripheral_problem_info``: the agent's reasons
#: (``not_configured`` also for an expected class the agent does not report), ``other`` (anything
#: else an agent sends: a label stays bounded whatever arrives).
PROBLEM_REASONS: Final[tuple[str, ...]] = (*PeripheralReason, "other")


def problem_reason(reason: str) -> str:
    """The bounded label value for a Presence's reason."""
    return reason if reason in PROBLEM_REASONS else "other"


class Presence(NamedTuple):
    """One device class of a station: expected by the inventory and/or reported by the agent."""

    device_class: str
    present: bool
    #: Collector clock when ``present`` last changed (or was first seen).
    since: float
    expected: int = 1
    found: int = 0
    #: Empty when present, else the agent's reason (``missing``, ...) or ``not_configured`` (the
    #: inventory expects the class and the agent does not report it: no rule in its config).
    reason: str = ""
    #: ``vid:pid`` of each matched device, comma separated.
    devices: str = ""


class StationView(NamedTuple):
    """What the collector knows about one station (immutable; replaced on every change)."""

    station: str
    provinsi: str
    kabkota: str
    kecamatan: str
    inventory: bool
    #: Device classes the inventory expects (empty for stations not in the inventory).
    expected: tuple[str, ...]
    report: Report | None = None
    #: Collector clock when the last state arrived (0.0: never).
    state_rx: float = 0.0
    #: Collector clock of the last accepted message of any kind (0.0: never).
    last_seen: float = 0.0
    #: True after a birth or a live message, False after a will/shutdown, None: no status yet.
    online: bool | None = None
    offline_reason: str = ""
    #: Expected (inventory) classes first, then other reported classes.
    presence: tuple[Presence, ...] = ()
    #: ``(kind, count)`` of events received, sorted by kind.
    events: tuple[tuple[str, int], ...] = ()
    seq_gaps: int = 0
    session: str = ""
    #: Collector clock when the last heartbeat of the current session arrived (0.0: never).
    beat_rx: float = 0.0
    #: ``(key, collector time first seen)`` of the problems the last state carries (see
    #: :func:`report_problem_keys`): a problem keeps its start while it lasts.
    since: tuple[tuple[str, float], ...] = ()
    #: Collector time the station became known (inventory load or first message).
    known_since: float = 0.0
    #: Collector time of the offline status that made it offline (0.0: not offline).
    offline_since: float = 0.0
    #: The last :data:`MAX_RECENT` events, oldest first: ``(collector time, kind, subject,
    #: detail)`` (the clues on the board: a reboot, then every device gone = lightning).
    recent: tuple[tuple[float, str, str, str], ...] = ()
    #: The kabupaten/kota's name (inventory column ``kabkota_name``; empty: not given).
    kabkota_name: str = ""
    #: ``WIB``/``WITA``/``WIT``: the station's local time zone.
    tz: str = "WIB"
    #: Kecamatan where residents can record instead, nearest first (inventory ``neighbours``).
    neighbours: tuple[str, ...] = ()


def last_report(view: StationView) -> float:
    """Collector clock of the station's last report: its last state or heartbeat (0.0: never).

    An agent that reports by exception sends its full state on change and every few hours; its
    heartbeats say "nothing changed" in between, so they are reports too.
    """
    return max(view.state_rx, view.beat_rx)


def _unique(items: tuple[_T, ...], key: Callable[[_T], str]) -> tuple[_T, ...]:
    """``items`` without repeated keys, at most :data:`MAX_PER_STATION` (the usual case: as is)."""
    if len(items) <= MAX_PER_STATION and len({key(i) for i in items}) == len(items):
        return items
    seen: dict[str, _T] = {}
    for item in items:
        if len(seen) < MAX_PER_STATION:
            seen.setdefault(key(item), item)
    return tuple(seen.values())


def _report(msg: wire.State, reason_of: Callable[[str], str], old: Report | None) -> Report:
    """The parts of ``msg`` to keep. Parts equal to those of the ``old`` report are shared with
    it (the usual case: only timestamps and load change), which keeps memory churn low, lets the
    renderer tell what changed by identity, and skips de-duplicating and interning them again
    (the hot path of ingest)."""
    intern = sys.intern
    host = msg.host
    disks = (
        () if host is None else tuple([(d.mount, d.free_bytes, d.size_bytes) for d in host.disks])
    )
    probes = tuple(
        [
            ProbeView(
                p.target,
                p.up,
                p.duration_s,
                p.reason,
                p.cause,
                p.status_code,
                p.cert_expiry_ts,
            )
            for p in msg.probes
        ]
    )
    failed = tuple([(c.name, c.reason) for c in msg.checks if not c.ok])
    agent_version, os_name = msg.agent_version, msg.os
    if old is not None:
        # Equal to what was kept (unique, capped, reasons mapped): keep that object.
        probes = old.probes if probes == old.probes else probes
        disks = old.disks if disks == old.disks else disks
        failed = old.failed_checks if failed == old.failed_checks else failed
        agent_version = old.agent_version if agent_version == old.agent_version else agent_version
        os_name = old.os if os_name == old.os else os_name
    if old is None or disks is not old.disks:
        disks = tuple([(intern(m), f, z) for m, f, z in _unique(disks, lambda d: d[0])])
    if old is None or probes is not old.probes:
        probes = tuple(
            [
                ProbeView(
                    intern(p.target),
                    p.up,
                    p.duration_s,
                    reason_of(p.reason),
                    _cause(p.cause, p.up, p.reason, p.status_code),
                    p.status_code,
                    p.cert_expiry_ts,
                )
                for p in _unique(probes, lambda p: p.target)
            ]
        )
    if old is None or failed is not old.failed_checks:
        failed = tuple([(intern(n), intern(r)) for n, r in failed[:MAX_PER_STATION]])
    return Report(
        intern(agent_version),
        intern(os_name),
        msg.ts,
        msg.interval_s,
        msg.heartbeat_s or msg.interval_s,
        probes,
        None
        if host is None
        else (host.cpu_ratio, host.mem_available_bytes, host.mem_total_bytes, host.boot_ts),
        disks,
        failed,
        msg.spool.queued,
    )


class EventRecord(NamedTuple):
    """A station's durable event bookkeeping (see :mod:`pantau.collector.durable`)."""

    station: str
    provinsi: str
    kabkota: str
    #: kind -> events counted
    events: dict[str, int]
    #: session -> seq of the last event counted (at most the 4 latest sessions, oldest first)
    sessions: dict[str, int]


class Snapshot(NamedTuple):
    """A consistent copy of the fleet at ``now`` (views are immutable)."""

    now: float
    stations: list[StationView]
    received_total: int
    rejected: dict[str, int]
    seq_gaps_total: int
    mqtt_connected: bool
    stale_after_intervals: float
    #: The collector cannot see the stations: disconnected from the broker, or connected but
    #: still receiving the retained replay (see :meth:`Fleet.snapshot`).
    blind: bool = False
    #: The clock for staleness: ``now``, or while blind the moment it began (frozen).
    status_now: float = 0.0
    #: Silence counts only from here (when the collector could last see again).
    heard_from: float = 0.0

    def status(self, view: StationView) -> StationStatus:
        """The station's status in this snapshot (blindness taken into account)."""
        return station_status(view, self.status_now, self.stale_after_intervals, self.heard_from)


def station_status(
    view: StationView, now: float, stale_after_intervals: float, heard_from: float = 0.0
) -> StationStatus:
    """The station's status at ``now`` (collector clock).

    A station is stale only after silence while the collector was listening: silence counts
    from ``heard_from`` (when the collector could see again after being blind) at the earliest.
    """
    report = view.report
    if report is None:
        return "never_reported"
    if view.online is False:
        return "offline"
    if now - max(view.last_seen, heard_from) > stale_after_intervals * report.liveness_s:
        return "stale"
    return "up"


def clock_skew(view: StationView) -> float | None:
    """Agent clock minus collector clock at the last state (seconds), or None."""
    if view.report is None:
        return None
    return view.report.ts - view.state_rx


def problems(
    view: StationView, now: float, stale_after_intervals: float, status: StationStatus | None = None
) -> list[str]:
    """Short English descriptions of what is wrong with the station (empty: ready).

    Warnings (a certificate that expires soon) are not problems: the station is ready. The full
    verdict, with causes, first-seen times and texts in both languages, is
    :func:`pantau.collector.diagnosis.diagnose`.
    """
    if status is None:
        status = station_status(view, now, stale_after_intervals)
    report = view.report
    if (
        status == "up"
        and report is not None
        and all(p.present for p in view.presence)
        and all(p.up for p in report.probes)
        and not report.failed_checks
    ):
        return []  # the usual healthy station: nothing to diagnose
    from pantau.collector.diagnosis import critical, diagnose, text

    return [text(p, "en") for p in critical(diagnose(view, now, stale_after_intervals))]


def report_problem_keys(view: StationView) -> list[str]:
    """Keys of the problems a state report carries (their first-seen times are kept by key)."""
    keys = [f"device:{p.device_class}" for p in view.presence if not p.present]
    report = view.report
    if report is not None:
        keys += [
            f"login:{p.target}" if not p.up else f"cert:{p.target}"
            for p in report.probes
            if not p.up or p.reason == ProbeReason.CERT_EXPIRING
        ]
        keys += [f"check:{name}" for name, _ in report.failed_checks]
    return keys


def _since(view: StationView, now: float, seed: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """The first-seen times of ``view``'s report problems: kept for those that persist, taken
    from ``seed`` (a previous run's, see :meth:`Fleet.remember`) for those first seen now."""
    keys = report_problem_keys(view)
    if not keys:
        return ()
    old = dict(view.since)
    return tuple((k, old.get(k) or seed.get(k) or now) for k in keys)


def _with_since(view: StationView, track: _Track, now: float) -> StationView:
    """``view`` (just updated by a state) with its problems' first-seen times."""
    report = view.report
    if report is not None and (
        view.since
        or any(not p.present for p in view.presence)
        or report.failed_checks
        or any(not p.up or p.reason == ProbeReason.CERT_EXPIRING for p in report.probes)
    ):
        view = view._replace(since=_since(view, now, track.seed))
    if view.online and view.offline_since:
        view = view._replace(offline_since=0.0)
    if track.seed:  # the first report after a restart has used what it could
        track.seed = {k: v for k, v in track.seed.items() if k == OFFLINE_KEY and not view.online}
    return view


class _Track:
    """Mutable per-station bookkeeping (under the fleet lock)."""

    __slots__ = (
        "beat_seq",
        "birth_prev_max",
        "current",
        "event_hw",
        "held_will",
        "holes",
        "last_live_seq",
        "max_seq",
        "offline_seq",
        "periph_hash",
        "seed",
        "sessions",
        "state_seq",
        "status_seq",
        "view",
    )

    def __init__(self, view: StationView) -> None:
        self.view = view
        self.sessions: dict[str, int] = {}
        self.current: str | None = None
        self.max_seq = -1
        self.beat_seq = -1
        self.state_seq = -1
        self.status_seq = -1
        self.birth_prev_max = -1
        self.offline_seq = -1
        self.last_live_seq: int | None = None
        self.event_hw: dict[str, int] = {}
        #: The offline status of a session not seen yet (at most one): applied if that session's
        #: first state or birth follows, dropped when another session starts.
        self.held_will: wire.Status | None = None
        #: hash of the last state's peripherals: unchanged (the usual case) -> reuse presence.
        self.periph_hash = 0
        #: Open holes: ``(session, seq)`` -> collector time noticed (see the module docstring).
        self.holes: dict[tuple[str, int], float] = {}
        #: First-seen times of a previous run, used once when the first report after a restart
        #: shows the same problem (:meth:`Fleet.remember`).
        self.seed: dict[str, float] = {}

    def classify(self, session: str) -> Literal["current", "retired", "new"]:
        if session == self.current:
            return "current"
        if session in self.sessions:
            return "retired"
        return "new"

    def switch(self, session: str, order: int) -> wire.Status | None:
        """Make ``session`` current; returns the will held for it, if any."""
        held, self.held_will = self.held_will, None
        self.sessions[session] = order
        while len(self.sessions) > _MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]
        self.current = session
        self.max_seq = self.state_seq = self.status_seq = self.beat_seq = -1
        self.birth_prev_max = self.offline_seq = -1
        self.last_live_seq = None
        return held if held is not None and held.session == session else None


class Fleet:
    """The fleet state. Thread-safe: :meth:`ingest` and :meth:`snapshot` take the lock."""

    def __init__(
        self,
        *,
        inventory: Sequence[InventoryEntry] = (),
        device_classes: Iterable[str] = (),
        stale_after_intervals: float = 3.0,
        max_unknown_stations: int = 1000,
        forget_unknown_after_s: float = 7 * 86400.0,
        reorder_window_s: float = 300.0,
        known_since: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._tracks: dict[str, _Track] = {}
        self._unknown: set[str] = set()
        classes = list(dict.fromkeys(device_classes))
        for entry in inventory:
            classes.extend(c for c in entry.device_classes if c not in classes)
            self._tracks[entry.station] = _Track(
                StationView(
                    station=entry.station,
                    provinsi=entry.provinsi,
                    kabkota=entry.kabkota,
                    kecamatan=entry.kecamatan,
                    inventory=True,
                    expected=entry.device_classes,
                    known_since=known_since,
                    kabkota_name=entry.kabkota_name,
                    tz=time_zone(entry.provinsi, entry.timezone),
                    neighbours=entry.neighbours,
                )
            )
        #: Device classes that may become label values (bounded by config + inventory).
        self.device_classes: tuple[str, ...] = tuple(classes)
        self._allowed = frozenset(classes)
        self.stale_after_intervals = stale_after_intervals
        self.max_unknown_stations = max_unknown_stations
        self.forget_unknown_after_s = forget_unknown_after_s
        self._order = 0
        self.received_total = 0
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        self.seq_gaps_total = 0
        self.reorder_window_s = reorder_window_s
        #: Stations with open holes (so a snapshot does not walk the whole fleet).
        self._holey: set[str] = set()
        self.mqtt_connected = False
        self._reasons: dict[str, str] = {"ok": "ok"}
        #: Grows whenever an event is counted (a checkpoint of the counts is due when it moved).
        self.events_version = 0
        # Blindness (collector clock): since when the collector cannot see (None: it can; the
        # MQTT adapter marks a new fleet blind until its first connection has replayed), when
        # the subscriptions were acknowledged, when the last retained (replayed) message
        # arrived, and from when silence counts.
        self._blind_since: float | None = None
        self._subscribed_at: float | None = None
        self._last_replay_rx = 0.0
        self._heard_from = 0.0

    def _probe_reason(self, reason: str) -> str:
        """A bounded, label-safe version of a probe's reason (see :data:`MAX_PROBE_REASONS`)."""
        known = self._reasons.get(reason)
        if known is not None:
            return known
        if len(self._reasons) >= MAX_PROBE_REASONS or not _REASON_RE.match(reason):
            return "other"
        self._reasons[reason] = reason = sys.intern(reason)
        return reason

    # ------------------------------------------------------------------ ingest (hot path)

    def ingest(self, topic: str, payload: bytes, now: float, *, retained: bool = False) -> str:
        """Decode and apply one MQTT message; returns ``""`` or the rejection reason.

        Never raises for any topic or payload (that is the MQTT callback's contract).
        """
        try:
            parsed, message = wire.decode(topic, payload)
        except wire.WireError as exc:
            reason: str = exc.reason.value
            with self._lock:
                self.received_total += 1
                self.rejected[reason] += 1
            return reason
        with self._lock:
            self.received_total += 1
            if retained:
                self._last_replay_rx = now
            reason = self._apply(parsed, message, now, retained)
            if reason:
                self.rejected[reason] += 1
        return reason

    def count_rejection(self, reason: str) -> None:
        """Count a message rejected before decoding (e.g. an internal error in the adapter)."""
        with self._lock:
            self.received_total += 1
            self.rejected[reason if reason in self.rejected else INTERNAL_ERROR] += 1

    def set_connected(self, connected: bool, now: float | None = None) -> None:
        """The MQTT connection is up or down. Down (or up but not yet subscribed and replayed)
        makes the collector blind from ``now`` (see :meth:`snapshot`)."""
        with self._lock:
            if now is not None:
                self._settle(now)
            self.mqtt_connected = connected
            self._subscribed_at = None
            if now is not None and self._blind_since is None:
                self._blind_since = now

    def set_subscribed(self, now: float) -> None:
        """The broker acknowledged the subscriptions: the retained replay starts now."""
        with self._lock:
            self._subscribed_at = self._last_replay_rx = now

    def _settle(self, now: float) -> None:
        """End the blind period if the replay is over (quiet for :data:`REPLAY_QUIET_S`)."""
        if self._blind_since is None or not self.mqtt_connected or self._subscribed_at is None:
            return
        if now - self._last_replay_rx >= REPLAY_QUIET_S:
            self._heard_from = self._last_replay_rx
            self._blind_since = None

    def apply(
        self, topic: wire.Topic, message: wire.Message, now: float, *, retained: bool = False
    ) -> str:
        """Apply an already decoded message (tests, simulations); returns the rejection reason."""
        with self._lock:
            self.received_total += 1
            reason = self._apply(topic, message, now, retained)
            if reason:
                self.rejected[reason] += 1
            return reason

    def _track_for(self, topic: wire.Topic, now: float) -> _Track | None:
        track = self._tracks.get(topic.station)
        if track is not None:
            return track
        if len(self._unknown) >= self.max_unknown_stations:
            return None
        track = _Track(
            StationView(
                station=topic.station,
                provinsi=topic.provinsi,
                kabkota=topic.kabkota,
                kecamatan="",
                inventory=False,
                expected=(),
                last_seen=now,
                known_since=now,
                tz=time_zone(topic.provinsi),
            )
        )
        self._tracks[topic.station] = track
        self._unknown.add(topic.station)
        return track

    def _apply(self, topic: wire.Topic, message: wire.Message, now: float, retained: bool) -> str:
        track = self._track_for(topic, now)
        if track is None:
            return OVER_CAP
        if isinstance(message, wire.State):
            return self._apply_state(track, message, now, retained)
        if isinstance(message, wire.Status):
            return self._apply_status(track, message, now, retained)
        if isinstance(message, wire.Beat):
            return self._apply_beat(track, message, now, retained)
        return self._apply_event(track, message, now, retained)

    def _new_session(self, track: _Track, session: str) -> wire.Status | None:
        """Switch to ``session``; returns the will held for it (see :meth:`_apply_status`)."""
        self._order += 1
        return track.switch(session, self._order)

    def _offline(self, track: _Track, msg: wire.Status, now: float) -> None:
        track.offline_seq = max(msg.seq, track.max_seq)
        track.last_live_seq = None
        view = track.view
        if view.online is False and view.offline_since:
            since = view.offline_since
        else:
            since = track.seed.pop(OFFLINE_KEY, now)
        track.view = view._replace(
            online=False,
            offline_reason="shutdown" if msg.reason == "shutdown" else "will",
            last_seen=now,
            session=msg.session,
            offline_since=since,
        )

    def _count_gap(self, track: _Track, session: str, seq: int, retained: bool, now: float) -> int:
        """Advance the live-sequence baseline, open holes for skipped seqs, fill a hole a late
        message closes; returns the number of seqs newly counted as lost."""
        if retained:
            return 0
        holes = track.holes
        last = track.last_live_seq
        lost = 0
        if last is None or seq > last:
            if last is not None and seq > last + 1:
                for missing in range(max(last + 1, seq - MAX_HOLES), seq):
                    holes[(session, missing)] = now
                lost = max(0, seq - last - 1 - MAX_HOLES)  # too far apart to wait for
                self._holey.add(track.view.station)
            track.last_live_seq = seq
        elif holes:
            holes.pop((session, seq), None)
        return lost + self._expire_holes(track, now)

    def _expire_holes(self, track: _Track, now: float) -> int:
        """Count (and close) the holes of ``track`` older than the reorder window."""
        holes = track.holes
        if not holes:
            return 0
        horizon = now - self.reorder_window_s
        expired = [key for key, at in holes.items() if at <= horizon]
        for key in expired:
            del holes[key]
        while len(holes) > MAX_HOLES:
            del holes[next(iter(holes))]
            expired.append(("", 0))
        if not holes:
            self._holey.discard(track.view.station)
        return len(expired)

    def _apply_state(self, track: _Track, msg: wire.State, now: float, retained: bool) -> str:
        kind = track.classify(msg.session)
        if kind == "retired":
            return STALE_SESSION
        held = None
        if kind == "new":
            held = self._new_session(track, msg.session)
            if held is not None:
                # This session's will came before its first state (a retained replay may send the
                # status first): it is dead, whatever a retained state's seq (a will carries the
                # connect-time seq, below every later one); a live state newer than the will
                # still revives it below.
                self._offline(track, held, now)
        elif msg.seq <= track.state_seq:
            return STALE_SEQ  # the same or an older state again (retained replay): nothing new
        gap = self._count_gap(track, msg.session, msg.seq, retained, now)
        self.seq_gaps_total += gap
        view = track.view
        online = view.online
        reason = view.offline_reason
        if kind == "new" and held is None:
            # A new agent process: the previous session's birth or will says nothing about it.
            online, reason = None, ""
        elif online is False and not retained and msg.seq > track.offline_seq:
            online, reason = True, ""
        track.state_seq = msg.seq
        track.max_seq = max(track.max_seq, msg.seq)
        report = _report(msg, self._probe_reason, view.report)
        periph_hash = hash(msg.peripherals)
        if periph_hash == track.periph_hash and view.presence:
            presence = view.presence
        else:
            presence = self._presence(view, msg, now)
            track.periph_hash = periph_hash
        kecamatan = view.kecamatan
        if not view.inventory and msg.kecamatan != kecamatan:
            kecamatan = sys.intern(msg.kecamatan)
        new = view._replace(
            report=report,
            state_rx=now,
            last_seen=now,
            online=online,
            offline_reason=reason,
            presence=presence,
            kecamatan=kecamatan,
            seq_gaps=view.seq_gaps + gap,
            session=view.session if msg.session == view.session else msg.session,
        )
        track.view = _with_since(new, track, now)
        return ""

    def _presence(self, view: StationView, msg: wire.State, now: float) -> tuple[Presence, ...]:
        allowed = self._allowed
        reported = {p.device_class: p for p in msg.peripherals if p.device_class in allowed}
        old = {p.device_class: p for p in view.presence}
        out: list[Presence] = []
        intern = sys.intern
        for cls in (*view.expected, *(c for c in reported if c not in view.expected)):
            rep = reported.get(cls)
            present = rep is not None and rep.present
            previous = old.get(cls)
            since = previous.since if previous is not None and previous.present == present else now
            if rep is None:
                # Expected, yet the agent reports nothing about it: its config has no rule for
                # the class (an agent reports every class it has rules for).
                out.append(Presence(cls, False, since, 0, 0, PeripheralReason.NOT_CONFIGURED))
            else:
                devices = ",".join(f"{d.vid:04x}:{d.pid:04x}" for d in rep.devices)
                out.append(
                    Presence(
                        intern(cls),
                        present,
                        since,
                        rep.expected,
                        rep.found,
                        intern(rep.reason),
                        intern(devices),
                    )
                )
        return tuple(out)

    def _apply_status(self, track: _Track, msg: wire.Status, now: float, retained: bool) -> str:
        kind = track.classify(msg.session)
        if kind == "retired":
            return STALE_SESSION
        held = None
        if kind == "new":
            if msg.status == "offline" and track.current is not None:
                # Either a late will of a session older than the one we follow, or the will of a
                # newer one whose state has not arrived yet (a retained replay may send the status
                # first): held (one per station) until that session's first state or birth.
                track.held_will = msg
                return STALE_SESSION
            held = self._new_session(track, msg.session)
        view = track.view
        if msg.status == "online":
            if msg.seq <= track.status_seq:
                return STALE_SEQ  # replay of the birth we already applied
            track.birth_prev_max = track.max_seq
            track.status_seq = msg.seq
            track.max_seq = max(track.max_seq, msg.seq)
            # A birth starts a new connection: the live-sequence baseline restarts here.
            track.last_live_seq = None if retained else msg.seq
            track.view = view._replace(
                online=True,
                offline_reason="",
                last_seen=now,
                session=msg.session,
                offline_since=0.0,
            )
            track.seed.pop(OFFLINE_KEY, None)
            if held is not None and held.seq > msg.seq:
                self._offline(track, held, now)  # the will of a later connection than this birth
            return ""
        if msg.seq <= track.birth_prev_max:
            return STALE_WILL
        if view.online is False and view.session == msg.session and msg.seq <= track.offline_seq:
            # The same will again (a retained replay after a reconnect): not news, and it must
            # not refresh last_seen, or a dead unknown station would never be forgotten.
            return STALE_SEQ
        self._offline(track, msg, now)
        return ""

    def _apply_beat(self, track: _Track, msg: wire.Beat, now: float, retained: bool) -> str:
        if msg.session != track.current:
            # A beat says "alive" about a session whose state we have; of any other session
            # (an older one, or one whose first state has not arrived) it says nothing usable.
            return STALE_SESSION
        if msg.seq <= track.beat_seq:
            return STALE_SEQ
        track.beat_seq = msg.seq
        gap = self._count_gap(track, msg.session, msg.seq, retained, now)
        self.seq_gaps_total += gap
        view = track.view
        track.max_seq = max(track.max_seq, msg.seq)
        online, reason = view.online, view.offline_reason
        if online is False and not retained and msg.seq > track.offline_seq:
            online, reason = True, ""
        track.view = view._replace(
            last_seen=now,
            beat_rx=now,
            seq_gaps=view.seq_gaps + gap,
            online=online,
            offline_reason=reason,
        )
        return ""

    def _apply_event(self, track: _Track, msg: wire.Event, now: float, retained: bool) -> str:
        hw = track.event_hw.get(msg.session, -1)
        if msg.seq <= hw:
            return STALE_SEQ  # delivered twice (counted once per (session, seq))
        track.event_hw[msg.session] = msg.seq
        while len(track.event_hw) > _MAX_SESSIONS:
            del track.event_hw[next(iter(track.event_hw))]
        self.events_version += 1
        gap = 0
        if msg.session == track.current:
            gap = self._count_gap(track, msg.session, msg.seq, retained, now)
        elif track.holes and track.holes.pop((msg.session, msg.seq), None) is not None:
            gap = self._expire_holes(track, now)  # a spooled event of an earlier session
        self.seq_gaps_total += gap
        view = track.view
        online = view.online
        reason = view.offline_reason
        if msg.session == track.current:
            track.max_seq = max(track.max_seq, msg.seq)
            if online is False and not retained and msg.seq > track.offline_seq:
                online, reason = True, ""
        counts = dict(view.events)
        kind = msg.kind.value
        counts[kind] = counts.get(kind, 0) + 1
        recent = (
            *view.recent[-(MAX_RECENT - 1) :],
            (now, kind, sys.intern(msg.subject), msg.detail[:160]),
        )
        track.view = view._replace(
            events=tuple(sorted(counts.items())),
            last_seen=now,
            seq_gaps=view.seq_gaps + gap,
            online=online,
            offline_reason=reason,
            recent=recent,
        )
        return ""

    # ------------------------------------------------------------------ durable event counts

    def export_events(self) -> tuple[int, list[EventRecord]]:
        """``(events_version, records)``: every station's event counts and per-session high-water
        marks (stations with neither are left out), consistent under the lock."""
        with self._lock:
            records = [
                EventRecord(
                    t.view.station,
                    t.view.provinsi,
                    t.view.kabkota,
                    dict(t.view.events),
                    dict(t.event_hw),
                )
                for t in self._tracks.values()
                if t.event_hw or t.view.events
            ]
            return self.events_version, records

    def restore_events(self, records: Iterable[EventRecord], now: float) -> int:
        """Load counts saved by :meth:`export_events` (before any message); returns how many
        stations were restored. Stations not in the inventory count against
        ``max_unknown_stations`` (beyond it they are skipped) and are forgotten as usual."""
        restored = 0
        with self._lock:
            for rec in records:
                topic = wire.Topic(rec.provinsi, rec.kabkota, rec.station, "event")
                track = self._track_for(topic, now)
                if track is None:
                    continue
                track.event_hw = dict(list(rec.sessions.items())[-_MAX_SESSIONS:])
                track.view = track.view._replace(
                    events=tuple(sorted((sys.intern(k), n) for k, n in rec.events.items()))
                )
                restored += 1
        return restored

    # ------------------------------------------------------------------ reading

    def snapshot(self, now: float) -> Snapshot:
        """Copy the fleet for rendering (cheap: references to immutable views).

        Also forgets stations not in the inventory that have been silent for
        ``forget_unknown_after_s``.
        """
        with self._lock:
            if self._unknown:
                horizon = now - self.forget_unknown_after_s
                for station in [
                    s for s in self._unknown if self._tracks[s].view.last_seen < horizon
                ]:
                    del self._tracks[station]
                    self._unknown.discard(station)
            for station in list(self._holey):
                track = self._tracks.get(station)
                if track is None:
                    self._holey.discard(station)
                    continue
                lost = self._expire_holes(track, now)
                if lost:
                    self.seq_gaps_total += lost
                    track.view = track.view._replace(seq_gaps=track.view.seq_gaps + lost)
            views = [track.view for track in self._tracks.values()]
            self._settle(now)
            blind = self._blind_since is not None
            status_now = now if self._blind_since is None else min(self._blind_since, now)
            return Snapshot(
                now=now,
                stations=views,
                received_total=self.received_total,
                rejected=dict(self.rejected),
                seq_gaps_total=self.seq_gaps_total,
                mqtt_connected=self.mqtt_connected,
                stale_after_intervals=self.stale_after_intervals,
                blind=blind,
                status_now=status_now,
                heard_from=self._heard_from,
            )

    def __len__(self) -> int:
        return len(self._tracks)

    # ------------------------------------------------------------------ memory across restarts

    def memory(self) -> dict[str, dict[str, float]]:
        """Per station, the first-seen times worth keeping across a collector restart: when the
        station became known, went offline, and each current report problem (by key)."""
        with self._lock:
            out: dict[str, dict[str, float]] = {}
            for station, track in self._tracks.items():
                v = track.view
                entry = dict(v.since)
                entry.update(track.seed)
                if v.known_since:
                    entry[KNOWN_KEY] = v.known_since
                if v.online is False and v.offline_since:
                    entry[OFFLINE_KEY] = v.offline_since
                if entry:
                    out[station] = entry
            return out

    def remember(self, memory: dict[str, dict[str, float]]) -> int:
        """Seed first-seen times from :meth:`memory` of a previous run (before ingest starts).

        Inventory stations only (others start afresh). ``known`` applies at once (the earlier of
        the two); the others are used when the first report after the restart shows the same
        problem, so a problem that ended while the collector was down starts afresh when it
        returns. Returns how many stations were seeded.
        """
        seeded = 0
        with self._lock:
            for station, entry in memory.items():
                track = self._tracks.get(station)
                if track is None or not track.view.inventory:
                    continue
                seed = {k: float(t) for k, t in entry.items() if t > 0}
                known = seed.pop(KNOWN_KEY, 0.0)
                view = track.view
                if known and (not view.known_since or known < view.known_since):
                    track.view = view._replace(known_since=known)
                track.seed = seed
                seeded += 1
        return seeded


class Summary(NamedTuple):
    """Fleet counts at a glance (for the demo, /healthz and the board header)."""

    total: int
    up: int
    ready: int
    offline: int
    stale: int
    never_reported: int
    in_inventory: int
    not_in_inventory: int


def summarize(snapshot: Snapshot) -> Summary:
    """Counts per status; ``ready`` = up with no problem at all."""
    counts = dict.fromkeys(STATION_STATUSES, 0)
    ready = 0
    inventory = 0
    for view in snapshot.stations:
        status = snapshot.status(view)
        counts[status] += 1
        inventory += view.inventory
        if status == "up" and not problems(
            view, snapshot.now, snapshot.stale_after_intervals, status
        ):
            ready += 1
    total = len(snapshot.stations)
    return Summary(
        total=total,
        up=counts["up"],
        ready=ready,
        offline=counts["offline"],
        stale=counts["stale"],
        never_reported=counts["never_reported"],
        in_inventory=inventory,
        not_in_inventory=total - inventory,
    )
