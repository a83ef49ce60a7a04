"""Changes between rounds become events; unknown presence (check failed) infers nothing."""

from __future__ import annotations

from pantau.agent.changes import Baseline, Snapshot, advance
from pantau.contract import wire
from pantau.contract.wire import EventKind


def per(cls: str, present: bool, reason: str = "") -> wire.Peripheral:
    devices = (wire.Device(vid=0x04A9, pid=0x3218),) if present else ()
    return wire.Peripheral(
        device_class=cls, present=present, found=int(present), devices=devices, reason=reason
    )


def host(boot: float) -> wire.Host:
    return wire.Host(
        cpu_ratio=0.1, mem_available_bytes=1, mem_total_bytes=2, boot_ts=boot, agent_start_ts=0
    )


def test_first_sight_is_no_change() -> None:
    base, changes = advance(Baseline(), Snapshot(peripherals=[per("camera", False)]))
    assert changes == []
    assert base.peripherals == {"camera": False}


def test_peripheral_removed_and_added() -> None:
    base, _ = advance(Baseline(), Snapshot(peripherals=[per("camera", True)]))
    base, changes = advance(
        base,
        Snapshot(
            peripherals=[per("camera", False, "missing")], missing={"camera": "Canon (04a9:*)"}
        ),
    )
    assert [(c.kind, c.subject, c.detail) for c in changes] == [
        (EventKind.PERIPHERAL_REMOVED, "camera", "missing Canon (04a9:*)")
    ]
    base, changes = advance(base, Snapshot(peripherals=[per("camera", True)]))
    assert [(c.kind, c.detail) for c in changes] == [
        (EventKind.PERIPHERAL_ADDED, "found 04a9:3218")
    ]


def test_unknown_presence_infers_nothing() -> None:
    base, _ = advance(Baseline(), Snapshot(peripherals=[per("camera", True)]))
    base, changes = advance(
        base, Snapshot(peripherals=[per("camera", False, "libusb_unavailable")])
    )
    assert changes == []
    assert base.peripherals == {"camera": True}


def test_probe_and_check_transitions() -> None:
    up = wire.Probe(target="login", kind="tcp", up=True, duration_s=0.01)
    down = wire.Probe(target="login", kind="tcp", up=False, duration_s=5, reason="timeout")
    ok = wire.CheckRun(name="usb", ok=True, duration_s=0.001)
    bad = wire.CheckRun(name="usb", ok=False, duration_s=10, reason="timeout")
    base, _ = advance(Baseline(), Snapshot(probes=[up], checks=[ok]))
    base, changes = advance(base, Snapshot(probes=[down], checks=[bad]))
    assert [(c.kind, c.subject, c.detail) for c in changes] == [
        (EventKind.PROBE_DOWN, "login", "timeout"),
        (EventKind.CHECK_FAILED, "usb", "timeout"),
    ]
    base, changes = advance(base, Snapshot(probes=[up], checks=[ok]))
    assert [c.kind for c in changes] == [EventKind.PROBE_UP, EventKind.CHECK_RECOVERED]


def test_reboot_is_a_boot_time_change_beyond_tolerance() -> None:
    base, changes = advance(Baseline(), Snapshot(host=host(1000.0)))
    assert changes == []
    base, changes = advance(base, Snapshot(host=host(1030.0)))  # clock adjustment
    assert changes == []
    base, changes = advance(base, Snapshot(host=host(90000.0)))
    assert [c.kind for c in changes] == [EventKind.REBOOT]
    base, changes = advance(base, Snapshot())  # host check did not run: keep the boot time
    assert base.boot_ts == 90000.0
    assert changes == []
