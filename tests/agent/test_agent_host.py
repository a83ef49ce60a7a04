"""The host check's readers: the pure /proc parsing, ProcReader on this Linux host (checked
against psutil, which it replaces on Linux), and the guarantee that the service does not import
psutil on Linux (real subprocess, real pyusb and paho)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pantau.agent.checks.host import (
    DiskSample,
    HostSample,
    ProcReader,
    PsutilReader,
    cpu_ratio,
    default_host_reader,
    parse_btime,
    parse_cpu_times,
    parse_meminfo,
    to_host,
)
from pantau.contract import wire

REPO = Path(__file__).resolve().parents[2]

STAT = """\
cpu  1000 50 300 8000 200 10 20 5 100 0
cpu0 500 25 150 4000 100 5 10 2 50 0
intr 12345 0 0
ctxt 999
btime 1764370000
processes 4321
"""

MEMINFO = """\
MemTotal:        8000000 kB
MemFree:         1000000 kB
MemAvailable:    5000000 kB
Buffers:          200000 kB
Cached:          2000000 kB
HugePages_Total:       0
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="/proc exists on Linux only"
)


def test_parse_cpu_times_reads_the_aggregate_line() -> None:
    assert parse_cpu_times(STAT) == (1000, 50, 300, 8000, 200, 10, 20, 5, 100, 0)
    assert parse_cpu_times("cpu  1 2 3 4 5 6 7\n") == (1, 2, 3, 4, 5, 6, 7)  # kernel < 2.6.11
    with pytest.raises(ValueError, match="no aggregate cpu line"):
        parse_cpu_times("cpu0 1 2 3 4\nbtime 1\n")


def test_cpu_ratio_counts_busy_time_like_psutil() -> None:
    before = (100, 0, 100, 800, 0, 0, 0, 0, 0, 0)
    # 100 user ticks (all of them guest time, already inside user) and 100 idle ticks.
    after = (200, 0, 100, 900, 0, 0, 0, 0, 100, 0)
    assert cpu_ratio(before, after) == 0.5  # guest not counted twice (else 2/3)
    # iowait is not busy; irq and steal are.
    assert cpu_ratio((0,) * 8, (0, 0, 0, 50, 50, 25, 0, 75)) == 0.5
    assert cpu_ratio(before, before) == 0.0  # no time passed
    # a counter going backwards counts as 0 (psutil, top), never a negative ratio
    assert cpu_ratio((100, 0, 0, 100), (50, 0, 0, 200)) == 0.0
    assert cpu_ratio((1, 2, 3, 4, 5, 6, 7), (11, 2, 3, 14, 5, 6, 7)) == 0.5  # short lines


def test_parse_meminfo_and_btime() -> None:
    assert parse_meminfo(MEMINFO) == (5_000_000 * 1024, 8_000_000 * 1024)
    old_kernel = MEMINFO.replace("MemAvailable:    5000000 kB\n", "")
    assert parse_meminfo(old_kernel) == (3_200_000 * 1024, 8_000_000 * 1024)
    with pytest.raises(ValueError, match="no MemTotal"):
        parse_meminfo("MemFree: 1 kB\n")
    assert parse_btime(STAT) == 1764370000.0
    with pytest.raises(ValueError, match="no btime"):
        parse_btime("cpu 1 2 3 4\n")


def test_proc_reader_on_a_given_proc_directory(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(STAT)
    (tmp_path / "meminfo").write_text(MEMINFO)
    reader = ProcReader(str(tmp_path))
    (tmp_path / "stat").write_text(STAT.replace("cpu  1000 50 300 8000", "cpu  1300 50 300 8300"))
    sample = reader.sample(["/", str(tmp_path / "no-such-mount")])
    assert sample.cpu_ratio == 0.5
    assert (sample.mem_available_bytes, sample.mem_total_bytes) == (5_000_000 * 1024, 8_192_000_000)
    assert sample.boot_ts == 1764370000.0
    root, missing = sample.disks
    assert root.mount == "/"
    assert 0 < root.free_bytes <= root.size_bytes
    assert not root.error
    assert missing.error == "No such file or directory"
    host, problem = to_host(sample, agent_start_ts=1764370100.0)
    assert [d.mount for d in host.disks] == ["/"]
    assert problem == f"disk {tmp_path / 'no-such-mount'}: No such file or directory"


def test_host_numbers_are_clamped_to_the_wire_bounds() -> None:
    """A PC whose clock stands at 1970 (dead clock battery) computes a boot time before the
    epoch; the state must still be accepted, so the number is clamped, never sent out of bounds."""
    sample = HostSample(
        cpu_ratio=1.5,
        mem_available_bytes=-1,
        mem_total_bytes=2**60,
        boot_ts=-3600.0,
        disks=(DiskSample("/", free_bytes=-5, size_bytes=2**54),),
    )
    host, _ = to_host(sample, agent_start_ts=1e13)
    assert (host.cpu_ratio, host.mem_available_bytes, host.boot_ts) == (1.0, 0, 0.0)
    assert host.mem_total_bytes == host.disks[0].size_bytes == wire.EXACT_INT_MAX
    assert host.agent_start_ts == wire.TIMESTAMP_MAX
    state = wire.State(station="s", agent_version="v", session="s", seq=1, ts=1.0, host=host)
    wire.decode("pantau/v1/33/3310/s/state", wire.encode(state))  # accepted


def test_proc_reader_agrees_with_psutil_on_this_host() -> None:
    ours = ProcReader().sample(["/"])
    theirs = PsutilReader().sample(["/"])
    assert ours.mem_total_bytes == theirs.mem_total_bytes
    assert abs(ours.mem_available_bytes - theirs.mem_available_bytes) < 0.05 * ours.mem_total_bytes
    assert ours.boot_ts == theirs.boot_ts
    assert ours.disks[0].size_bytes == theirs.disks[0].size_bytes
    assert (
        abs(ours.disks[0].free_bytes - theirs.disks[0].free_bytes) < 0.01 * ours.disks[0].size_bytes
    )
    assert 0.0 <= ours.cpu_ratio <= 1.0


def test_default_host_reader_on_linux_is_proc() -> None:
    assert isinstance(default_host_reader(), ProcReader)


SERVICE = """
import sys
import pantau.agent.cli  # what pantau-agent imports first
from pantau.agent.config import convert_config
from pantau.agent.service import build_agent
import msgspec
cfg = convert_config(msgspec.json.decode(sys.argv[1]), "test")
agent = build_agent(cfg, hotplug=False, spool_path=sys.argv[2], connect=True)
state = agent.round()
agent.close()
print(msgspec.json.encode({"modules": sorted(sys.modules), "host": state.host is not None}).decode())
"""


def test_the_linux_service_does_not_import_psutil_or_json(tmp_path: Path) -> None:
    """A USB + host station builds its publisher, runs a round and never loads psutil (~0.7 MB
    RSS) or the json module (~0.1 MB; only ``check --json`` and ``usb --json`` print JSON)."""
    cfg = {
        "station": {"id": "3310-juwiring-01", "provinsi": "33", "kabkota": "3310"},
        "mqtt": {"host": "127.0.0.1", "port": 1, "tls": False},
        "devices": [{"device_class": "camera", "vid": 0x04A9}],
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", SERVICE, json.dumps(cfg), str(tmp_path / "spool.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    modules = set(result["modules"])
    assert result["host"]
    assert "paho.mqtt.client" in modules  # the publisher was really built
    assert "usb.core" in modules  # and the real USB reader
    assert "psutil" not in modules
    assert "json" not in modules
