"""The agent's Windows-specific logic (pantau.agent.windows), tested on Linux.

Windows APIs cannot exist here, so they are mocked, and said so where it happens: the
``signal`` module of a Windows Python (one with SIGBREAK) and the :class:`Win32ApiLike` object
(advapi32 ACLs, cfgmgr32 device nodes) are fakes; the device-node data is a fixture in the
shapes the cfgmgr32 calls return. What is real: the ``libusb-package`` backend, whose wheel
bundles a libusb for Linux as it does for Windows, enumerating a umockdev bus; and ``mypy
--platform win32`` (scripts/test), which type-checks the ctypes code that no test here runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from harness import UsbBus

from pantau.agent import windows
from pantau.agent.windows import Ace, DevNode

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "windows" / "usb-devnodes.json"
ADMINS, SYSTEM, LOCAL_SERVICE, USERS, EVERYONE = (
    "S-1-5-32-544",
    "S-1-5-18",
    "S-1-5-19",
    "S-1-5-32-545",
    "S-1-1-0",
)
FULL, READ_EXECUTE, READ = 0x1F01FF, 0x1200A9, 0x120089


def test_paths_follow_programdata_and_the_system_drive() -> None:
    env = {"PROGRAMDATA": r"D:\ProgramData", "SYSTEMDRIVE": "D:"}
    assert windows.data_dir(env) == r"D:\ProgramData\pantau"
    assert windows.default_config_path(env) == r"D:\ProgramData\pantau\agent.toml"
    assert windows.default_spool_path(env) == r"D:\ProgramData\pantau\spool.sqlite"
    assert windows.system_disks(env) == ("D:\\",)
    # variables missing (a service with an empty environment): the Windows defaults
    assert windows.default_config_path({}) == r"C:\ProgramData\pantau\agent.toml"
    assert windows.system_disks({"SYSTEMDRIVE": "C:\\"}) == ("C:\\",)


def test_install_scripts_and_service_use_the_same_paths() -> None:
    xml = (REPO / "deploy" / "windows" / "pantau-agent.xml").read_text()
    assert r"%ProgramData%\pantau\agent.toml" in xml
    script = (REPO / "deploy" / "windows" / "install.ps1").read_text()
    assert '$DataDir = Join-Path $env:ProgramData "pantau"' in script


def test_stop_signals_include_sigbreak_only_where_it_exists() -> None:
    # a Windows Python's signal module (mocked: this is Linux)
    win = SimpleNamespace(SIGTERM=15, SIGINT=2, SIGBREAK=21)
    assert windows.stop_signals(win) == (15, 2, 21)
    assert windows.stop_signals() == (signal.SIGTERM, signal.SIGINT)


# --------------------------------------------------------------------------- ACLs

# What `icacls` grants after install.ps1: Administrators and SYSTEM full, LocalService read.
INSTALLED = [Ace(0, 0, FULL, ADMINS), Ace(0, 0, FULL, SYSTEM), Ace(0, 0, READ, LOCAL_SERVICE)]
# A file copied into C:\ProgramData without install.ps1: inherited BUILTIN\Users read & execute.
INHERITED = [
    Ace(0, 0x10, FULL, SYSTEM),
    Ace(0, 0x10, FULL, ADMINS),
    Ace(0, 0x10, READ_EXECUTE, USERS),
]


def test_broad_readers() -> None:
    assert windows.broad_readers(INSTALLED) == []
    assert windows.broad_readers(INHERITED) == ["Users"]
    assert windows.broad_readers(None) == ["Everyone"]  # a NULL DACL
    # deny entries and inherit-only entries do not let anyone read this file
    assert windows.broad_readers([Ace(1, 0, FULL, EVERYONE)]) == []
    assert windows.broad_readers([Ace(0, 0x08 | 0x01, FULL, EVERYONE)]) == []
    assert windows.broad_readers([Ace(0, 0, 0x80000000, EVERYONE)]) == ["Everyone"]  # GENERIC_READ
    assert windows.broad_readers([Ace(0, 0, 0x0002, USERS)]) == []  # write-only


class FakeApi:
    """Stands in for advapi32/cfgmgr32 (mocked: no Windows here)."""

    def __init__(self, aces: list[Ace] | OSError | None = None, nodes: list[DevNode] | None = None):
        self.aces = aces
        self.nodes = nodes or []

    def file_aces(self, path: str) -> list[Ace] | None:  # noqa: ARG002 - the API signature
        if isinstance(self.aces, OSError):
            raise self.aces
        return self.aces

    def usb_devnodes(self) -> list[DevNode]:
        return self.nodes


def test_password_acl_warning() -> None:
    path = r"C:\ProgramData\pantau\password"
    assert windows.password_acl_warning(path, FakeApi(INSTALLED)) == ""
    warning = windows.password_acl_warning(path, FakeApi(INHERITED))
    assert warning.startswith(
        rf"mqtt.password_file {path} is readable by Users: limit it with icacls"
    )
    assert "*S-1-5-19:R" in warning  # by SID: works on a Windows in any language
    failed = windows.password_acl_warning(path, FakeApi(OSError(5, "Access is denied")))
    assert failed == f"cannot read the permissions of {path}: Access is denied"


# --------------------------------------------------------------------------- device problems


def recorded_nodes() -> list[DevNode]:
    return [DevNode(**n) for n in json.loads(FIXTURE.read_text())["nodes"]]


def test_usb_ids_from_instance_ids() -> None:
    assert windows.usb_ids(r"USB\VID_04A9&PID_3218\5&2A7E0B1&0&2") == (0x04A9, 0x3218)
    assert windows.usb_ids(r"usb\vid_06a8&pid_0057&mi_00\7&2c3d4e5&0&0000") == (0x06A8, 0x0057)
    assert windows.usb_ids(r"USB\ROOT_HUB30\4&1A2B3C4D&0&0") is None
    assert windows.usb_ids(r"HID\VID_06A8&PID_0057\7&1") is None
    assert windows.usb_ids(r"USB\VID_04A9&PID_32189\x") is None


def test_driver_problems_on_recorded_device_nodes() -> None:
    problems = windows.driver_problems(recorded_nodes())
    assert problems == {
        (0x08FF, 0x0009): 10,  # fingerprint scanner: cannot start
        (0x06A8, 0x0057): 43,  # signature pad: its interface stopped
        (0x046D, 0x0825): 22,  # webcam disabled
    }
    assert windows.problem_text(43) == "code 43: stopped after it reported problems"
    assert windows.problem_text(99) == "code 99: driver problem"
    # the device's own node decides over an interface's
    own = [
        DevNode(r"USB\VID_06A8&PID_0057&MI_00\7&1", windows.DN_HAS_PROBLEM, 43),
        DevNode(r"USB\VID_06A8&PID_0057\T1", windows.DN_HAS_PROBLEM, 28),
        DevNode(r"USB\VID_06A8&PID_0057&MI_01\7&2", windows.DN_HAS_PROBLEM, 10),
    ]
    assert windows.driver_problems(own) == {(0x06A8, 0x0057): 28}


# --------------------------------------------------------------------------- libusb-package


@pytest.mark.umockdev
def test_libusb_package_backend_enumerates_the_bus(usb_bus: UsbBus) -> None:
    """The backend Windows uses (the libusb-package wheel's own libusb) is real here too: its
    Linux build enumerates the umockdev bus through pyusb."""
    import usb.core

    usb_bus.plug(0x04A9, 0x3218, 0, 6, "Canon Inc.", "Canon Digital Camera", "W1")
    backend = windows.libusb_backend()
    assert backend is not None
    found = {(d.idVendor, d.idProduct) for d in usb.core.find(find_all=True, backend=backend)}
    assert (0x04A9, 0x3218) in found


# --------------------------------------------------------------------------- mypy win32


def test_mypy_for_win32_checks_the_windows_branches(tmp_path: Path) -> None:
    """What `mypy --platform win32` (scripts/test) adds: a Linux-only call in code reachable on
    Windows is an error for win32 and passes for linux."""
    mod = tmp_path / "probe.py"
    mod.write_text(
        textwrap.dedent(
            """\
            import os
            import sys

            def free(path: str) -> int:
                if sys.platform == "win32":
                    return os.statvfs(path).f_bavail
                return 0
            """
        )
    )
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--strict", str(mod)]
    win = subprocess.run([*cmd, "--platform", "win32"], capture_output=True, text=True, check=False)
    lin = subprocess.run([*cmd, "--platform", "linux"], capture_output=True, text=True, check=False)
    assert win.returncode == 1, win.stdout
    assert 'Module has no attribute "statvfs"' in win.stdout
    assert lin.returncode == 0, lin.stdout
    script = (REPO / "scripts" / "test").read_text()
    assert "mypy --platform win32 -p pantau.agent" in script
