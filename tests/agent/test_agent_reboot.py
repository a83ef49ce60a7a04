"""A clock step is not a reboot: reboots are told by the boot id, the boot time stays put.

On Linux the kernel's boot id (/proc/sys/kernel/random/boot_id) changes at every boot and only
then, while /proc/stat's ``btime`` is the wall clock minus uptime and moves by exactly the step
when NTP (or a person) steps the clock. The agent runs here on a fake /proc directory (the real
:class:`ProcReader`) with an injected clock, and both are stepped together as the kernel would.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from agent_support import STATION

from pantau.agent import windows
from pantau.agent.changes import Baseline, Snapshot, advance
from pantau.agent.checks.host import ProcReader, parse_boot_id
from pantau.agent.config import convert_config
from pantau.agent.service import Agent, build_agent
from pantau.agent.simulated import SimulatedUsb
from pantau.contract import wire

BOOT = 1_790_000_000.0
BOOT_A = "5b1f0c1e-8a8f-4c43-9d64-0d7a1f7f2a11"
BOOT_B = "0e6a3f52-1b0d-4b8e-a1c2-7f3e9d2c4b55"
YEARS_3 = 3 * 365 * 86400.0
STAT = "cpu  1000 50 300 8000 20 0 10 0 0 0\nbtime {btime:.0f}\n"
MEMINFO = "MemTotal:        8000000 kB\nMemAvailable:    5000000 kB\n"


def host(boot_ts: float) -> wire.Host:
    return wire.Host(
        cpu_ratio=0.1, mem_available_bytes=1, mem_total_bytes=2, boot_ts=boot_ts, agent_start_ts=1.0
    )


@pytest.mark.parametrize("step", [YEARS_3, -2 * 3600.0])
def test_a_clock_step_with_the_same_boot_id_is_no_reboot(step: float) -> None:
    first, changes = advance(Baseline(), Snapshot(host=host(BOOT), boot_id=BOOT_A))
    assert changes == []
    after, changes = advance(first, Snapshot(host=host(BOOT + step), boot_id=BOOT_A))
    assert changes == []
    assert after.boot_ts == BOOT  # the boot time as first seen in this boot
    rebooted, changes = advance(after, Snapshot(host=host(BOOT + step + 600), boot_id=BOOT_B))
    assert [c.kind for c in changes] == [wire.EventKind.REBOOT]
    assert (rebooted.boot_id, rebooted.boot_ts) == (BOOT_B, BOOT + step + 600)


def test_a_reboot_is_seen_by_its_boot_id_even_if_the_boot_time_looks_the_same() -> None:
    before, _ = advance(Baseline(), Snapshot(host=host(BOOT), boot_id=BOOT_A))
    _, changes = advance(before, Snapshot(host=host(BOOT + 5), boot_id=BOOT_B))
    assert [c.kind for c in changes] == [wire.EventKind.REBOOT]


def test_without_a_boot_id_the_boot_time_decides_as_before() -> None:
    """An older agent's saved baseline has no boot id, and some systems offer none."""
    old = msgspec.json.decode(b'{"boot_ts": 1790000000.0}', type=Baseline)
    assert old.boot_id == ""
    same, changes = advance(old, Snapshot(host=host(BOOT + 30), boot_id=BOOT_A))
    assert changes == []
    assert same.boot_id == BOOT_A
    _, changes = advance(old, Snapshot(host=host(BOOT + 3600)))
    assert [c.kind for c in changes] == [wire.EventKind.REBOOT]


def test_parse_linux_boot_id() -> None:
    assert parse_boot_id(BOOT_A.upper() + "\n") == BOOT_A
    assert parse_boot_id("") == ""
    assert parse_boot_id("not-a-uuid\n") == ""


class FakeRegistry:
    """Stands in for the ``winreg`` module: the Windows registry cannot be read on this Linux
    machine, so the API is mocked; the values are as recorded from Windows 10/11 machines
    (``reg query "HKLM\\...\\PrefetchParameters" /v BootId``: ``BootId REG_DWORD 0x39``)."""

    HKEY_LOCAL_MACHINE = 0x80000002

    def __init__(self, values: dict[str, tuple[object, int]] | None) -> None:
        self.values = values
        self.opened: list[str] = []

    def OpenKey(self, root: int, path: str) -> FakeRegistry:
        assert root == self.HKEY_LOCAL_MACHINE
        if self.values is None:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        self.opened.append(path)
        return self

    def QueryValueEx(self, _key: object, name: str) -> tuple[object, int]:
        if name not in (self.values or {}):
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return (self.values or {})[name]

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def test_windows_boot_id_from_recorded_registry_values() -> None:
    """Windows APIs are mocked here (they cannot run on Linux): the parsing is what is tested."""
    reg = FakeRegistry({"BootId": (0x39, windows.REG_DWORD)})
    assert windows.read_boot_id(reg) == "windows-bootid-57"
    assert reg.opened == [windows.BOOT_ID_KEY]
    assert windows.read_boot_id(FakeRegistry({"BootId": (0x3A, 4)})) == "windows-bootid-58"
    assert windows.read_boot_id(FakeRegistry({})) == ""  # value missing
    assert windows.read_boot_id(FakeRegistry(None)) == ""  # key missing
    assert windows.parse_boot_id(0, windows.REG_DWORD) == ""  # counter not kept
    assert windows.parse_boot_id("57", 1) == ""  # REG_SZ: not the counter
    assert windows.parse_boot_id(2**32, windows.REG_DWORD) == ""
    assert windows.parse_boot_id(True, windows.REG_DWORD) == ""


class SteppedClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


class FakeProc:
    """A /proc with stat, meminfo and the boot id, as ProcReader reads them."""

    def __init__(self, root: Path, btime: float, boot_id: str) -> None:
        self.root = root
        (root / "sys/kernel/random").mkdir(parents=True)
        (root / "meminfo").write_text(MEMINFO)
        self.set(btime, boot_id)

    def set(self, btime: float, boot_id: str) -> None:
        (self.root / "stat").write_text(STAT.format(btime=btime))
        (self.root / "sys/kernel/random/boot_id").write_text(boot_id + "\n")


def make_agent(tmp: Path, proc: FakeProc, clock: SteppedClock) -> Agent:
    cfg = convert_config(
        {
            "station": {
                "id": STATION,
                "provinsi": "33",
                "kabkota": "3310",
                "kecamatan": "Juwiring",
            },
            "mqtt": {"host": "127.0.0.1", "port": 1, "tls": False},
            "spool": {"path": str(tmp / "spool.sqlite")},
            "host": {"disks": [str(tmp)]},
        },
        "test",
    )
    return build_agent(
        cfg,
        usb_reader=SimulatedUsb([]),
        hotplug=False,
        host_reader=ProcReader(str(proc.root)),
        clock=clock,
        connect=False,
    )


def reboots(agent: Agent) -> int:
    kinds = [wire.decode(e.topic, e.payload)[1] for e in agent.spool.after(0, 1000)]
    return sum(1 for k in kinds if isinstance(k, wire.Event) and k.kind == wire.EventKind.REBOOT)


@pytest.mark.parametrize("step", [YEARS_3, -2 * 3600.0])
def test_agent_on_a_stepped_clock_reports_no_reboot_and_keeps_its_boot_time(
    tmp_path: Path, step: float
) -> None:
    now = BOOT + 3600
    clock, proc = SteppedClock(now), FakeProc(tmp_path / "proc", BOOT, BOOT_A)
    agent = make_agent(tmp_path, proc, clock)
    state = agent.round()
    assert state.host is not None
    assert state.host.boot_ts == BOOT
    # NTP steps the clock: the wall clock and the kernel's btime move together, the boot id not
    clock.now, _ = now + step, proc.set(BOOT + step, BOOT_A)
    state = agent.round()
    assert state.host is not None
    assert state.host.boot_ts == BOOT  # pantau_host_boot_timestamp_seconds does not move
    assert state.ts == now + step  # the clock skew is still reported (the collector compares)
    assert reboots(agent) == 0
    agent.spool.close()

    # the agent restarts (same boot, the clock still stepped): the saved baseline keeps both
    agent = make_agent(tmp_path, proc, clock)
    state = agent.round()
    assert state.host is not None
    assert state.host.boot_ts == BOOT
    assert reboots(agent) == 0

    # a real reboot: a new boot id
    clock.now, _ = now + step + 600, proc.set(BOOT + step + 550, BOOT_B)
    state = agent.round()
    assert state.host is not None
    assert state.host.boot_ts == BOOT + step + 550
    assert reboots(agent) == 1
    agent.spool.close()
