"""The agent service: rounds of checks -> state and events -> spool and publisher.

:class:`Agent` ties the parts together and is what both ``pantau-agent run`` and simulations
build (with :func:`build_agent`). Hardware is read through injectable readers, so a simulator
drives the real agent code with simulated devices::

    from pantau.agent.service import build_agent
    agent = build_agent(cfg, usb_reader=my_usb, host_reader=my_host, prober=my_prober,
                        clock=my_clock, hotplug=None)
    stop = threading.Event()
    threading.Thread(target=agent.run, args=(stop,)).start()
    my_usb.unplug(...); agent.trigger_usb()     # what udev does on Linux
    ...; stop.set()                             # orderly offline, then disconnect

Or step it by hand without the loop: ``agent.start()``, ``agent.round()``, ``agent.close()``.

Each round runs the due checks (:mod:`pantau.agent.runner`), keeps the latest findings of every check,
compares them with the remembered :class:`~pantau.agent.changes.Baseline` (events), writes events to the
spool before publishing them, and publishes the state at once when something significant changed
and otherwise every ``intervals.state_s`` (report by exception: an hour by default). When nothing
was published for ``intervals.heartbeat_s`` the loop asks the publisher for a compact heartbeat:
it comes from this loop, not the network thread, so a hung agent goes stale at the collector
even while paho keeps the connection alive.
"""

from __future__ import annotations

import itertools
import logging
import platform
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

import msgspec

from pantau.agent import __version__
from pantau.agent.changes import Baseline, Change, Snapshot, advance, significant
from pantau.agent.checks import Check, Findings, Sources, build
from pantau.agent.checks.host import HostReader
from pantau.agent.checks.login import Prober, default_prober
from pantau.agent.checks.usb import UsbReader
from pantau.agent.clock import Clock, SystemClock
from pantau.agent.config import (
    AgentConfig,
    default_spool_path,
    read_password,
)
from pantau.agent.errors import SpoolError
from pantau.agent.loglimit import LogLimiter
from pantau.agent.publisher import Connection, Publisher, Topics
from pantau.agent.runner import Outcome, Runner
from pantau.agent.spool import Spool
from pantau.contract import wire
from pantau.contract.wire import EventKind

BASELINE_KEY: Final = "baseline"
#: The check a hotplug notification (udev, a simulator) runs at once.
HOTPLUG_CHECK: Final = "usb"
#: After a hotplug event: wait this long for the burst of uevents to end, then look.
HOTPLUG_SETTLE_S: Final = 0.05
#: ... and look once more a little later (libusb's device list can lag udev by milliseconds).
HOTPLUG_RECHECK_S: Final = 1.0

#: A disk's free space that moved by this share of its size since the last published state is
#: news (published at once): a filling disk is reported long before the 6-hourly refresh.
DISK_STEP: Final = 0.01

_BASELINE_DECODER: Final = msgspec.json.Decoder(Baseline)


class Hotplug(Protocol):
    """A source of "USB changed" notifications (udev on Linux; a simulator; none)."""

    def start(self, callback: Callable[[], None]) -> None: ...

    def stop(self) -> None: ...


def os_name() -> str:
    return f"{platform.system()} {platform.release()}".strip()[:256]


def build_checks(
    cfg: AgentConfig,
    usb_reader: UsbReader,
    host_reader: HostReader,
    prober: Prober,
    agent_start_ts: float,
) -> list[Check]:
    """The configured checks of every registered kind, in report order (usb, login, host)."""
    return build(cfg, Sources(usb_reader, host_reader, prober, agent_start_ts))


def summary(state: wire.State) -> str:
    """One log line: what is missing or down (``all healthy`` when nothing is)."""
    bad = [f"{p.device_class} {p.reason}" for p in state.peripherals if not p.present]
    bad += [f"{p.target} {p.reason}" for p in state.probes if not p.up]
    bad += [f"{c.name} check: {c.reason}" for c in state.checks if not c.ok]
    return "; ".join(bad) or "all healthy"


def merge(findings: dict[str, Findings]) -> Findings:
    """One Findings from the latest of every check."""
    peripherals: list[wire.Peripheral] = []
    probes: list[wire.Probe] = []
    host = None
    boot_id = ""
    missing: dict[str, str] = {}
    for f in findings.values():
        peripherals += f.peripherals
        probes += f.probes
        host = f.host or host
        boot_id = f.boot_id or boot_id
        missing.update(f.missing)
    return Findings(tuple(peripherals), tuple(probes), host, missing=missing, boot_id=boot_id)


class Agent:
    """One station's agent. Thread-safe entry points: :meth:`trigger_usb`, ``run``'s stop."""

    def __init__(
        self,
        cfg: AgentConfig,
        checks: Sequence[Check],
        spool: Spool,
        *,
        clock: Clock | None = None,
        publisher: Publisher | None = None,
        hotplug: Hotplug | None = None,
        session: str | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.cfg = cfg
        self.checks = {c.name: c for c in checks}
        self.spool = spool
        self.clock = clock or SystemClock()
        self.publisher = publisher
        self.hotplug = hotplug
        self.session = session or secrets.token_hex(8)
        self.log = log or logging.getLogger("pantau.agent.service")
        #: Errors that repeat on every change (a full disk): one line per kind every 5 min.
        self.log_limit = LogLimiter(self.log)
        self.started_ts = self.clock.time()
        self.os = os_name()
        st = cfg.station
        self.topics = Topics(
            state=wire.topic(st.provinsi, st.kabkota, st.id, "state"),
            status=wire.topic(st.provinsi, st.kabkota, st.id, "status"),
            event=wire.topic(st.provinsi, st.kabkota, st.id, "event"),
            beat=wire.topic(st.provinsi, st.kabkota, st.id, "beat"),
        )
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        #: Held while an event takes its seq and enters the spool, and while the publisher sends
        #: what is spooled and then stamps and publishes a state: seqs go out in order, so the
        #: collector's gap count means loss, not reordering.
        self.order_lock = threading.RLock()
        self._runner = Runner()
        self._findings: dict[str, Findings] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._state: wire.State | None = None
        self._state_lock = threading.Lock()
        self._published_key: tuple[object, ...] | None = None
        self._published_at = float("-inf")
        self._published_disks: dict[str, int] = {}
        self._beat_asked_at = float("-inf")
        self._lost = 0  # events that could not even be spooled (disk full)
        self._lost_streak = 0  # ... since the last event that could
        self._baseline = self._load_baseline()
        self._wake = threading.Event()
        self._usb_changed = threading.Event()
        self._round_lock = threading.Lock()
        self._background: threading.Thread | None = None

    # ------------------------------------------------------------------ payloads

    def next_seq(self) -> int:
        """The next sequence number. Only for a message that is published (or spooled to be):
        a seq taken and never sent is a gap the collector counts as loss."""
        with self._seq_lock:
            return next(self._seq)

    def _header(self) -> wire.HeaderFields:
        return wire.header(
            self.cfg.station.id, __version__, self.session, self.next_seq(), self.clock.time()
        )

    def status_payload(self, value: wire.StatusValue, reason: str) -> bytes:
        """Birth/will/shutdown payload (a publisher callback; each gets a new seq)."""
        status = wire.Status(status=value, reason=reason, **self._header())
        return wire.encode(status)

    def state_payload(self) -> bytes | None:
        """The latest state re-stamped with a new seq and time (a publisher callback)."""
        with self._state_lock:
            state = self._state
        if state is None:
            return None
        fresh = msgspec.structs.replace(
            state, seq=self.next_seq(), ts=self.clock.time(), spool=self.spool_stats()
        )
        return wire.encode(fresh)

    def beat_payload(self) -> bytes:
        """A heartbeat ``[v, session, seq]`` (a publisher callback; each gets a new seq)."""
        return wire.encode(wire.Beat(wire.SCHEMA_VERSION, self.session, self.next_seq()))

    def spool_stats(self) -> wire.SpoolStats:
        return wire.SpoolStats(
            queued=self.spool.queued, dropped_total=self.spool.dropped_total + self._lost
        )

    @property
    def state(self) -> wire.State | None:
        with self._state_lock:
            return self._state

    # ------------------------------------------------------------------ events

    def emit(self, kind: EventKind, subject: str = "", detail: str = "") -> None:
        """Spool an event (then the publisher sends it when it can)."""
        with self.order_lock:
            self._emit(kind, subject, detail)
        if self.publisher is not None:
            self.publisher.events_added()

    def _emit(self, kind: EventKind, subject: str, detail: str) -> None:
        event = wire.Event(kind=kind, subject=subject[:64], detail=detail[:1024], **self._header())
        try:
            dropped = self.spool.append(self.topics.event, wire.encode(event))
            if self._lost_streak:
                self.log.warning("spool: writing again, %d event(s) were lost", self._lost_streak)
                self._lost_streak = 0
            if dropped:
                self.log_limit.log_limited(
                    logging.WARNING,
                    "spool-dropped",
                    "spool full: dropped %d oldest event(s)",
                    dropped,
                )
                note = wire.Event(
                    kind=EventKind.SPOOL_DROPPED,
                    subject="spool",
                    detail=f"dropped {dropped} oldest event(s); {self.spool.dropped_total} in total",
                    **self._header(),
                )
                self.spool.append(self.topics.event, wire.encode(note))
        except SpoolError as exc:
            self._lost += 1
            self._lost_streak += 1
            self.log_limit.log_limited(
                logging.ERROR, "spool-append", "event %s lost: %s", kind.value, exc
            )

    def _load_baseline(self) -> Baseline:
        raw = self.spool.get(BASELINE_KEY)
        if raw:
            try:
                return _BASELINE_DECODER.decode(raw)
            except msgspec.DecodeError:
                self.log.warning("spool: unreadable baseline, starting afresh")
        return Baseline()

    def _save_baseline(self) -> None:
        try:
            self.spool.set(BASELINE_KEY, msgspec.json.encode(self._baseline).decode())
        except SpoolError as exc:
            self.log_limit.log_limited(
                logging.ERROR, "baseline-save", "cannot save the baseline: %s", exc
            )

    # ------------------------------------------------------------------ rounds

    def round(self, names: Iterable[str] | None = None) -> wire.State:
        """Run the named checks (default all), update state, spool events, publish if due."""
        wanted = list(self.checks) if names is None else [n for n in names if n in self.checks]
        outcomes = self._runner.run([self.checks[n] for n in wanted])
        with self._round_lock:  # a login round may finish while a usb round does
            return self._apply(outcomes)

    def _apply(self, outcomes: list[Outcome]) -> wire.State:
        for o in outcomes:
            self._findings[o.name] = o.findings
            self._outcomes[o.name] = o
            if not o.ok:
                self.log.warning("check %s failed: %s", o.name, o.reason)
        ran = merge({o.name: o.findings for o in outcomes})
        snapshot = Snapshot(
            peripherals=ran.peripherals,
            probes=ran.probes,
            checks=tuple(o.to_wire() for o in outcomes),
            host=ran.host,
            missing=dict(ran.missing),
            boot_id=ran.boot_id,
        )
        before = self._baseline
        self._baseline, changes = advance(before, snapshot)
        for change in changes:
            self._log_change(change)
            self.emit(change.kind, change.subject, change.detail)
        if self._baseline != before:
            self._save_baseline()
        state = self._build_state()
        with self._state_lock:
            first, self._state = self._state is None, state
        if first:
            self.log.info("first round: %s", summary(state))
        self._maybe_publish(state)
        return state

    def _log_change(self, change: Change) -> None:
        self.log.info("change: %s %s %s", change.kind.value, change.subject, change.detail)

    def _build_state(self) -> wire.State:
        merged = merge(self._findings)
        host = merged.host
        pinned = self._baseline.boot_ts
        if host is not None and pinned is not None and host.boot_ts != pinned:
            # The boot time as first seen in this boot: a clock step must not move it
            # (pantau.agent.changes.advance keeps it while the boot id stays).
            host = msgspec.structs.replace(host, boot_ts=pinned)
        order = [n for n in self.checks if n in self._outcomes]
        return wire.State(
            station=self.cfg.station.id,
            agent_version=__version__,
            session=self.session,
            # Not a seq yet: most rounds' states are never published. state_payload() stamps
            # the one that is.
            seq=0,
            ts=self.clock.time(),
            os=self.os,
            kecamatan=self.cfg.station.kecamatan,
            interval_s=self.cfg.intervals.state_s,
            heartbeat_s=self.cfg.intervals.heartbeat_s,
            peripherals=merged.peripherals,
            probes=merged.probes,
            host=host,
            checks=tuple(self._outcomes[n].to_wire() for n in order),
            spool=self.spool_stats(),
        )

    def _disks_moved(self, state: wire.State) -> bool:
        disks = state.host.disks if state.host else ()
        for d in disks:
            before = self._published_disks.get(d.mount)
            if before is None or abs(d.free_bytes - before) >= DISK_STEP * d.size_bytes:
                return True
        return False

    def _maybe_publish(self, state: wire.State, force: bool = False) -> None:
        key = significant(state)
        now = time.monotonic()
        due = now - self._published_at >= self.cfg.intervals.state_s
        if force or due or key != self._published_key or self._disks_moved(state):
            self._published_key = key
            self._published_at = now
            disks = state.host.disks if state.host else ()
            self._published_disks = {d.mount: d.free_bytes for d in disks}
            if self.publisher is not None:
                self.publisher.publish_state()

    def _beat_due(self) -> float | None:
        """When the next heartbeat is due (monotonic), or None without heartbeats."""
        every = self.cfg.intervals.heartbeat_s
        if not every or self.publisher is None:
            return None
        return max(self.publisher.last_publish, self._beat_asked_at) + every

    def _maybe_beat(self, now: float) -> None:
        due = self._beat_due()
        if due is not None and due <= now and self.publisher is not None:
            self._beat_asked_at = now
            self.publisher.request_beat()

    # ------------------------------------------------------------------ service loop

    def trigger_usb(self) -> None:
        """USB devices changed (udev, a simulator): run the :data:`HOTPLUG_CHECK` now."""
        self._usb_changed.set()
        self._wake.set()

    def start(self) -> None:
        """Start publishing (connect in the background) and announce the start."""
        if self.publisher is not None:
            self.publisher.start()
        self.emit(EventKind.AGENT_STARTED, "agent", f"pantau-agent {__version__} on {self.os}")
        if self.hotplug is not None:
            try:
                self.hotplug.start(self.trigger_usb)
            except Exception as exc:  # noqa: BLE001 - polling still works without hotplug
                self.log.warning("hotplug unavailable, polling only: %s", exc)
                self.hotplug = None

    def close(self) -> None:
        """Stop hotplug, publish the orderly offline, disconnect, close the spool."""
        if self.hotplug is not None:
            self.hotplug.stop()
        if self._background is not None:  # let a login round finish before the spool closes
            self._background.join(max(c.timeout_s for c in self.checks.values()))
        if self.publisher is not None:
            self.publisher.stop()
        self._runner.close()
        self.spool.close()

    def _interval(self, name: str) -> float:
        return self.checks[name].interval_s

    def run(self, stop: threading.Event) -> None:
        """The service loop until ``stop`` is set (then :meth:`close`)."""
        self.start()
        due = dict.fromkeys(self.checks, 0.0)
        recheck_at: float | None = None
        try:
            while not stop.is_set():
                now = time.monotonic()
                names = [n for n, at in due.items() if at <= now]
                if self._usb_changed.is_set() or (recheck_at is not None and recheck_at <= now):
                    if self._usb_changed.is_set():
                        stop.wait(HOTPLUG_SETTLE_S)
                        self._usb_changed.clear()
                        recheck_at = time.monotonic() + HOTPLUG_RECHECK_S
                    else:
                        recheck_at = None
                    if HOTPLUG_CHECK in self.checks and HOTPLUG_CHECK not in names:
                        names.insert(0, HOTPLUG_CHECK)
                slow = [n for n in names if self.checks[n].background]
                if slow:
                    names = [n for n in names if not self.checks[n].background]
                    self._round_in_background(slow)
                    for n in slow:
                        due[n] = now + self._interval(n)
                if names:
                    self.round(names)
                    done = time.monotonic()
                    for n in names:
                        due[n] = done + self._interval(n)
                elif self._state is not None:
                    with self._round_lock:
                        self._maybe_publish(self._state)
                self._maybe_beat(time.monotonic())
                beat_at = self._beat_due()
                wake_at = min(
                    [*due.values(), self._published_at + self.cfg.intervals.state_s]
                    + ([recheck_at] if recheck_at is not None else [])
                    + ([beat_at] if beat_at is not None else [])
                )
                self._wake.clear()
                if stop.is_set() or self._usb_changed.is_set():
                    continue
                self._wait(stop, max(0.0, wake_at - time.monotonic()))
        finally:
            self.close()

    def _round_in_background(self, names: list[str]) -> None:
        """Run a round of slow checks on its own thread (skipped while the last one runs)."""
        if self._background is not None and self._background.is_alive():
            return
        self._background = threading.Thread(
            target=self.round, args=(names,), name="round-" + "-".join(names), daemon=True
        )
        self._background.start()

    def _wait(self, stop: threading.Event, timeout: float) -> None:
        # Wake on hotplug or stop; stop has no callback hook, so wait in short slices for it.
        end = time.monotonic() + timeout
        while not stop.is_set() and not self._wake.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 0.5))

    def wake(self) -> None:
        """Interrupt the loop's wait (used by signal handlers after setting ``stop``)."""
        self._wake.set()


# --------------------------------------------------------------------------- factories


def connection(cfg: AgentConfig, source: str = "config") -> Connection:
    """Broker settings from the config, with the password read from its file."""
    m = cfg.mqtt
    endpoints = m.broker_endpoints()
    return Connection(
        host=endpoints[0][0],
        port=endpoints[0][1],
        endpoints=endpoints if len(endpoints) > 1 else (),
        shuffle=m.endpoint_order == "shuffled",
        protocol=m.protocol,
        tls=m.tls,
        ca_file=m.ca_file,
        username=cfg.username,
        password=read_password(cfg, source),
        client_id=cfg.client_id,
        keepalive_s=m.keepalive_s,
        connect_timeout_s=m.connect_timeout_s,
        reconnect_min_s=m.reconnect_min_s,
        reconnect_max_s=m.reconnect_max_s,
    )


def build_agent(
    cfg: AgentConfig,
    *,
    usb_reader: UsbReader | None = None,
    host_reader: HostReader | None = None,
    prober: Prober | None = None,
    clock: Clock | None = None,
    hotplug: Hotplug | bool | None = True,
    spool_path: str | None = None,
    connect: bool = True,
    source: str = "config",
    log: logging.Logger | None = None,
) -> Agent:
    """An :class:`Agent` with real parts unless given others.

    ``usb_reader``/``host_reader``/``prober``: None -> pyusb, /proc (Linux) or psutil, real
    network probes.
    ``hotplug``: True -> udev on Linux (:mod:`pantau.agent.hotplug`), else polling only; None or
    False -> polling only; or any :class:`Hotplug`. ``spool_path``: overrides ``spool.path``
    (``":memory:"`` for a simulation that needs no persistence). ``connect=False`` builds no
    publisher (rounds only, nothing is sent). Raises :class:`~pantau.contract.config.ConfigError` (bad
    password file) or :class:`~pantau.agent.errors.SpoolError`.
    """
    clock = clock or SystemClock()
    if usb_reader is None:
        from pantau.agent.checks.usb import PyUsbReader

        usb_reader = PyUsbReader(vendors={rule.vid for rule in cfg.devices})
    if host_reader is None:
        from pantau.agent.checks.host import default_host_reader

        host_reader = default_host_reader()
    started = clock.time()
    checks = build_checks(cfg, usb_reader, host_reader, prober or default_prober, started)
    spool = Spool(spool_path or default_spool_path(cfg), cfg.spool.max_events, cfg.spool.max_bytes)
    source_hotplug: Hotplug | None
    if hotplug is True:
        from pantau.agent.hotplug import default_hotplug

        source_hotplug = default_hotplug()
    elif hotplug is False:
        source_hotplug = None
    else:
        source_hotplug = hotplug
    agent = Agent(cfg, checks, spool, clock=clock, hotplug=source_hotplug, log=log)
    agent.started_ts = started
    if spool.recovered_from:
        agent.log.error("spool was unreadable; moved aside to %s", spool.recovered_from)
    if connect:
        agent.publisher = Publisher(
            connection(cfg, source),
            agent.topics,
            spool,
            status=agent.status_payload,
            state=agent.state_payload,
            beat=agent.beat_payload,
            log=agent.log.getChild("mqtt"),
            order_lock=agent.order_lock,
        )
    return agent
