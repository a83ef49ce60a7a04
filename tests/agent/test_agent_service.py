"""The service without a broker: isolation in a round, reboot across restarts, spool overflow,
backoff. (Windows-only paths, SIGBREAK and the libusb-package backend, are not exercised here.)"""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agent_support import STATION

from pantau.agent.checks.usb import UsbDevice
from pantau.agent.config import AgentConfig, convert_config
from pantau.agent.loglimit import LogLimiter
from pantau.agent.publisher import backoff_delay
from pantau.agent.service import Agent, build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedProber, SimulatedUsb
from pantau.agent.spool import Spool
from pantau.contract import wire
from pantau.contract.wire import EventKind

CAMERA = UsbDevice(0x04A9, 0x3218, 1, "1-2", 0, (6,))


def cfg(tmp_path: Path, **spool: Any) -> AgentConfig:
    return convert_config(
        {
            "station": {"id": STATION, "provinsi": "33", "kabkota": "3310"},
            "spool": {"path": str(tmp_path / "spool.sqlite"), **spool},
            "intervals": {"check_timeout_s": 1.0},
            "devices": [{"device_class": "camera", "vid": 0x04A9}],
            "probes": [{"name": "login", "kind": "tcp", "target": "login.example:443"}],
        },
        "test",
    )


def make(tmp_path: Path, usb: Any, host: Any = None, prober: Any = None, **spool: Any) -> Agent:
    """A real agent on the given readers, without a broker (rounds by hand)."""
    return build_agent(
        cfg(tmp_path, **spool),
        usb_reader=usb,
        host_reader=host or SimulatedHost(),
        prober=prober or SimulatedProber(),
        hotplug=None,
        connect=False,
    )


def events(spool: Spool) -> list[wire.Event]:
    out = []
    for row in spool.after(0, 1000):
        message = wire.decode(row.topic, row.payload)[1]
        assert isinstance(message, wire.Event)
        out.append(message)
    return out


class HangingUsb:
    def __init__(self) -> None:
        self.release = threading.Event()

    def devices(self) -> list[UsbDevice]:
        self.release.wait(10)
        return []


def test_a_hanging_check_fails_alone(tmp_path: Path) -> None:
    usb = HangingUsb()
    agent = make(tmp_path, usb)
    try:
        state = agent.round()
        checks = {c.name: (c.ok, c.reason) for c in state.checks}
        assert checks == {"usb": (False, "timeout"), "login": (True, ""), "host": (True, "")}
        assert state.peripherals[0].reason == "check_failed"
        assert state.probes[0].up
        assert state.host is not None
    finally:
        usb.release.set()
        agent.close()


def test_reboot_and_unplug_while_down_are_reported_after_restart(tmp_path: Path) -> None:
    host = SimulatedHost(boot_ts=1_000_000.0)
    usb = SimulatedUsb([CAMERA])
    prober = SimulatedProber()
    first = make(tmp_path, usb, host, prober)
    first.round()
    first.close()

    host.boot_ts = 1_090_000.0  # the PC rebooted (lightning), the camera stayed off
    usb.unplug(0x04A9)
    prober.set("login", "timeout")
    second = make(tmp_path, usb, host, prober)
    try:
        second.round()
        got = [(e.kind, e.subject) for e in events(second.spool)]
        assert got == [
            (EventKind.PERIPHERAL_REMOVED, "camera"),
            (EventKind.PROBE_DOWN, "login"),
            (EventKind.REBOOT, ""),
        ]
    finally:
        second.close()


def test_full_spool_drops_oldest_and_says_so(tmp_path: Path) -> None:
    usb = SimulatedUsb([CAMERA])
    agent = make(tmp_path, usb, max_events=10)
    try:
        agent.round(["usb"])
        for _ in range(6):
            usb.unplug(0x04A9)
            agent.round(["usb"])
            usb.plug(CAMERA)
            agent.round(["usb"])
        queued = events(agent.spool)
        assert len(queued) == 10
        assert any(e.kind is EventKind.SPOOL_DROPPED for e in queued)
        state = agent.round(["usb"])
        assert state.spool.queued == 10
        assert state.spool.dropped_total == agent.spool.dropped_total > 0
        seqs = [e.seq for e in queued]
        assert seqs == sorted(seqs)
    finally:
        agent.close()


def test_full_disk_logs_once_per_kind_and_counts_what_it_held_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A real SQLITE_FULL ("database or disk is full"): the spool's own connection is capped at
    # its current size with PRAGMA max_page_count, as a full disk caps it.
    usb = SimulatedUsb([CAMERA])
    agent = make(tmp_path, usb)
    try:
        agent.round(["usb"])
        queued_before = agent.spool.queued
        db = agent.spool._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        with caplog.at_level(logging.WARNING, logger="agent"):
            for _ in range(20):  # 40 changes, each an event that cannot be spooled
                usb.unplug(0x04A9)
                agent.round(["usb"])
                usb.plug(CAMERA)
                agent.round(["usb"])
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        lost = [r for r in errors if "lost" in r.getMessage()]
        assert lost, "the first lost event is logged"
        assert "database or disk is full" in lost[0].getMessage()
        assert len(errors) <= 2, [r.getMessage() for r in errors]  # one per kind, not per change
        state = agent.round(["usb"])
        lost_events = 40 - (state.spool.queued - queued_before)
        assert lost_events >= 20  # most of the 40 (the last page still took a few)
        assert state.spool.dropped_total == lost_events  # every lost event is counted
        assert agent.log_limit.suppressed_total >= lost_events - 1
        db.execute("PRAGMA max_page_count = 1073741823")  # space again
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="agent"):
            usb.unplug(0x04A9)
            agent.round(["usb"])
        assert "spool: writing again" in caplog.text
        assert events(agent.spool)[-1].kind is EventKind.PERIPHERAL_REMOVED
    finally:
        agent.close()


def test_log_limiter_holds_back_repeats_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    limiter = LogLimiter(
        logging.getLogger("agent.test"), interval_s=300.0, monotonic=lambda: now[0]
    )
    with caplog.at_level(logging.ERROR, logger="agent.test"):
        assert limiter.log_limited(logging.ERROR, "disk", "event %s lost", "a")
        for _ in range(5):
            now[0] += 10
            assert not limiter.log_limited(logging.ERROR, "disk", "event %s lost", "b")
        assert limiter.log_limited(logging.ERROR, "other", "other kind")  # keys are separate
        now[0] = 400.0
        assert limiter.log_limited(logging.ERROR, "disk", "event %s lost", "c")
    assert [r.getMessage() for r in caplog.records] == [
        "event a lost",
        "other kind",
        "event c lost (5 more like this in the last 300 s)",
    ]
    assert limiter.suppressed_total == 5


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 1.0, 120.0, rng.random()) for n in range(12)]
    for n, d in enumerate(delays):
        ceiling = min(120.0, 2.0**n)
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(100, 1.0, 120.0, 0.999) <= 120.0
    # two stations with different draws do not reconnect at the same instant
    assert backoff_delay(5, 1.0, 120.0, 0.1) != backoff_delay(5, 1.0, 120.0, 0.9)


def test_missing_libusb_in_run_is_a_failed_check_not_a_crash(tmp_path: Path) -> None:
    from pantau.agent.errors import UsbUnavailable

    usb = SimulatedUsb([CAMERA])
    agent = make(tmp_path, usb)
    try:
        agent.round()
        usb.error = UsbUnavailable("libusb not found: install it")
        state = agent.round()
        usb_run = next(c for c in state.checks if c.name == "usb")
        assert (usb_run.ok, usb_run.reason) == (
            False,
            "UsbUnavailable: libusb not found: install it",
        )
        assert state.peripherals[0].reason == "libusb_unavailable"
        kinds = [(e.kind, e.subject) for e in events(agent.spool)]
        assert kinds == [(EventKind.CHECK_FAILED, "usb")]  # not "camera removed": unknown
    finally:
        agent.close()


def test_a_slow_login_probe_does_not_delay_a_usb_change(tmp_path: Path) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck_prober(settings: Any) -> wire.Probe:
        entered.set()
        release.wait(10)  # the login server does not answer
        return wire.Probe(target=settings.name, kind=settings.kind, up=False, duration_s=5.0)

    usb = SimulatedUsb([CAMERA])
    agent = build_agent(
        cfg(tmp_path),
        usb_reader=usb,
        hotplug=usb,
        host_reader=SimulatedHost(),
        prober=stuck_prober,
        connect=False,
    )
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    loop.start()
    try:
        assert entered.wait(10)
        deadline = time.monotonic() + 10
        while agent.state is None and time.monotonic() < deadline:
            time.sleep(0.01)
        usb.unplug(0x04A9)
        while time.monotonic() < deadline:
            state = agent.state
            if state is not None and state.peripherals and not state.peripherals[0].present:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the unplug waited for the login probe")
        assert not release.is_set()  # the probe is still hanging
    finally:
        release.set()
        stop.set()
        agent.wake()
        loop.join(15)
