"""Everything Windows-specific in the agent, in one place.

- paths: the config, spool and logs under ``%ProgramData%\\pantau``; the system disk;
- stop signals: what a service wrapper sends (WinSW: Ctrl+C, i.e. SIGINT; Ctrl+Break: SIGBREAK);
- the libusb backend: Windows has no system libusb, the ``libusb-package`` wheel bundles one;
- the ACL of the password file: who besides administrators, SYSTEM and the service may read it;
- Device Manager's view of USB devices: a device can enumerate while its driver failed
  (problem codes such as 10 or 43), which to the operator is as bad as missing.

The decisions are pure functions over plain data (an environment mapping, ACE tuples, device
node tuples), tested on Linux. The Windows API calls (advapi32 for the ACL, cfgmgr32 for device
nodes) are thin ctypes wrappers in :class:`Win32Api`, defined only on Windows; ``mypy
--platform win32`` type-checks them in CI, but no test here calls them (this project's tests run
on Linux). docs/agent.md says what has and has not run on Windows.
"""

from __future__ import annotations

import ntpath
import re
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

# --------------------------------------------------------------------------- paths


def data_dir(env: Mapping[str, str]) -> str:
    """``%ProgramData%\\pantau``: config, password, CA, spool and logs of the agent."""
    return ntpath.join(env.get("PROGRAMDATA") or r"C:\ProgramData", "pantau")


def default_config_path(env: Mapping[str, str]) -> str:
    return ntpath.join(data_dir(env), "agent.toml")


def default_spool_path(env: Mapping[str, str]) -> str:
    return ntpath.join(data_dir(env), "spool.sqlite")


def system_disks(env: Mapping[str, str]) -> tuple[str, ...]:
    """The system drive's root (``C:\\``), the disk the host check reports by default."""
    drive = (env.get("SYSTEMDRIVE") or "C:").rstrip("\\")
    return (drive + "\\",)


# --------------------------------------------------------------------------- stop signals


def stop_signals(signals: Any = signal) -> tuple[signal.Signals, ...]:
    """Signals that mean "stop in an orderly way" on this platform.

    SIGTERM (systemd, ``kill``), SIGINT (Ctrl+C: WinSW v2 stops its child by sending it a
    console Ctrl+C) and, where it exists (Windows only), SIGBREAK (Ctrl+Break, which other
    service wrappers such as NSSM can send)."""
    names = ("SIGTERM", "SIGINT", "SIGBREAK")
    return tuple(getattr(signals, n) for n in names if hasattr(signals, n))


# --------------------------------------------------------------------------- libusb


def libusb_backend() -> Any:
    """pyusb's libusb1 backend on the DLL of the ``libusb-package`` wheel (None if unusable).
    Raises ImportError when the wheel is not installed."""
    import libusb_package

    return libusb_package.get_libusb1_backend()


# --------------------------------------------------------------------------- secret file ACL

#: Principals that must never be able to read the broker password, by well-known SID (names are
#: translated on an Indonesian Windows; SIDs are not).
BROAD_PRINCIPALS: Final = {
    "S-1-1-0": "Everyone",
    "S-1-5-7": "ANONYMOUS LOGON",
    "S-1-5-11": "Authenticated Users",
    "S-1-5-32-545": "Users",
    "S-1-5-32-546": "Guests",
}
ACCESS_ALLOWED_ACE_TYPE: Final = 0
#: FILE_READ_DATA, GENERIC_READ, GENERIC_ALL.
_READ_BITS: Final = 0x0001 | 0x80000000 | 0x10000000
#: INHERIT_ONLY_ACE: applies to children, not to the file itself.
_INHERIT_ONLY: Final = 0x08


@dataclass(frozen=True, slots=True)
class Ace:
    """One access control entry: type, flags, access mask, trustee SID (``S-1-5-18``)."""

    ace_type: int
    flags: int
    mask: int
    sid: str


def broad_readers(aces: Iterable[Ace] | None) -> list[str]:
    """Names of broad principals that may read the file (pure). ``None`` is a NULL DACL:
    everyone has full access."""
    if aces is None:
        return [BROAD_PRINCIPALS["S-1-1-0"]]
    out: list[str] = []
    for ace in aces:
        if ace.ace_type != ACCESS_ALLOWED_ACE_TYPE or ace.flags & _INHERIT_ONLY:
            continue
        name = BROAD_PRINCIPALS.get(ace.sid)
        if name and ace.mask & _READ_BITS and name not in out:
            out.append(name)
    return out


def password_acl_warning(path: str, api: Win32ApiLike) -> str:
    """One sentence if the password file is readable by a broad group, else ``""``."""
    try:
        readers = broad_readers(api.file_aces(path))
    except OSError as exc:
        return f"cannot read the permissions of {path}: {exc.strerror or exc}"
    if not readers:
        return ""
    return (
        f"mqtt.password_file {path} is readable by {', '.join(readers)}: limit it with "
        f'icacls "{path}" /inheritance:r /grant:r *S-1-5-32-544:F *S-1-5-18:F *S-1-5-19:R'
    )


# --------------------------------------------------------------------------- device problems

#: Device Manager problem codes (CM_PROB_*) with what an IT officer reads in Device Manager.
PROBLEM_TEXT: Final = {
    1: "not configured correctly",
    3: "driver may be corrupted or out of memory",
    10: "cannot start",
    12: "not enough free resources",
    14: "needs a restart",
    18: "drivers must be reinstalled",
    19: "registry information is incomplete or damaged",
    21: "Windows is removing the device",
    22: "disabled",
    24: "not present, not working properly, or drivers not all installed",
    28: "drivers are not installed",
    29: "disabled by the firmware",
    31: "not working properly (Windows cannot load its drivers)",
    32: "driver service is disabled",
    37: "driver failed to initialise",
    38: "a previous instance of the driver is still loaded",
    39: "driver is corrupted or missing",
    43: "stopped after it reported problems",
    48: "driver blocked from starting",
    52: "driver signature cannot be verified",
}
#: DN_HAS_PROBLEM in a device node's status.
DN_HAS_PROBLEM: Final = 0x00000400
_USB_ID_RE: Final = re.compile(
    r"^USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:&|\\|$)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class DevNode:
    """One present device node as CM_Get_DevNode_Status reports it."""

    instance_id: str  # USB\VID_04A9&PID_3218\5&2A7E0B1&0&2  (interfaces: ...&MI_00\...)
    status: int
    problem: int


def usb_ids(instance_id: str) -> tuple[int, int] | None:
    """(vid, pid) of a USB device or interface instance id; None for anything else."""
    m = _USB_ID_RE.match(instance_id)
    return (int(m.group(1), 16), int(m.group(2), 16)) if m else None


def problem_text(code: int) -> str:
    return f"code {code}: {PROBLEM_TEXT.get(code, 'driver problem')}"


def driver_problems(nodes: Iterable[DevNode]) -> dict[tuple[int, int], int]:
    """(vid, pid) -> problem code of USB devices whose node, or one of whose interface nodes,
    has a problem (pure). The device's own node wins over its interfaces."""
    out: dict[tuple[int, int], int] = {}
    for node in nodes:
        ids = usb_ids(node.instance_id)
        if ids is None or not (node.status & DN_HAS_PROBLEM or node.problem):
            continue
        is_interface = "&MI_" in node.instance_id.upper()
        if ids not in out or not is_interface:
            out[ids] = node.problem
    return out


# --------------------------------------------------------------------------- the Windows API


class Win32ApiLike(Protocol):
    def file_aces(self, path: str) -> list[Ace] | None: ...

    def usb_devnodes(self) -> list[DevNode]: ...


if sys.platform == "win32":  # type-checked with mypy --platform win32; never run by the tests
    import ctypes
    from ctypes import wintypes

    class _AceHeader(ctypes.Structure):
        _fields_ = (
            ("AceType", wintypes.BYTE),
            ("AceFlags", wintypes.BYTE),
            ("AceSize", wintypes.WORD),
        )

    class _AllowedAce(ctypes.Structure):
        _fields_ = (("Header", _AceHeader), ("Mask", wintypes.DWORD), ("SidStart", wintypes.DWORD))

    class _Acl(ctypes.Structure):
        _fields_ = (
            ("AclRevision", wintypes.BYTE),
            ("Sbz1", wintypes.BYTE),
            ("AclSize", wintypes.WORD),
            ("AceCount", wintypes.WORD),
            ("Sbz2", wintypes.WORD),
        )

    class Win32Api:
        """advapi32 (file ACLs) and cfgmgr32 (device nodes) through ctypes."""

        SE_FILE_OBJECT: Final = 1
        DACL_SECURITY_INFORMATION: Final = 0x4
        CM_GETIDLIST_FILTER_ENUMERATOR: Final = 0x1
        CR_SUCCESS: Final = 0

        def __init__(self) -> None:
            self.advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
            self.kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
            self.cfgmgr32 = ctypes.WinDLL("cfgmgr32")

        def file_aces(self, path: str) -> list[Ace] | None:
            dacl = ctypes.c_void_p()
            descriptor = ctypes.c_void_p()
            rc = self.advapi32.GetNamedSecurityInfoW(
                ctypes.c_wchar_p(path),
                self.SE_FILE_OBJECT,
                self.DACL_SECURITY_INFORMATION,
                None,
                None,
                ctypes.byref(dacl),
                None,
                ctypes.byref(descriptor),
            )
            if rc != 0:
                raise OSError(rc, ctypes.FormatError(rc))
            try:
                if not dacl.value:
                    return None
                acl = _Acl.from_address(dacl.value)
                out = []
                for i in range(acl.AceCount):
                    ace_ptr = ctypes.c_void_p()
                    if (
                        not self.advapi32.GetAce(dacl, i, ctypes.byref(ace_ptr))
                        or not ace_ptr.value
                    ):
                        continue
                    ace = _AllowedAce.from_address(ace_ptr.value)
                    sid = ctypes.c_wchar_p()
                    sid_addr = ace_ptr.value + _AllowedAce.SidStart.offset
                    if not self.advapi32.ConvertSidToStringSidW(
                        ctypes.c_void_p(sid_addr), ctypes.byref(sid)
                    ):
                        continue
                    text = sid.value or ""
                    self.kernel32.LocalFree(sid)
                    out.append(Ace(ace.Header.AceType, ace.Header.AceFlags, ace.Mask, text))
                return out
            finally:
                self.kernel32.LocalFree(descriptor)

        def usb_devnodes(self) -> list[DevNode]:
            size = wintypes.ULONG()
            flags = self.CM_GETIDLIST_FILTER_ENUMERATOR
            rc = self.cfgmgr32.CM_Get_Device_ID_List_SizeW(ctypes.byref(size), "USB", flags)
            if rc != self.CR_SUCCESS:
                raise OSError(f"CM_Get_Device_ID_List_SizeW: CONFIGRET {rc}")
            buf = ctypes.create_unicode_buffer(size.value)
            rc = self.cfgmgr32.CM_Get_Device_ID_ListW("USB", buf, size, flags)
            if rc != self.CR_SUCCESS:
                raise OSError(f"CM_Get_Device_ID_ListW: CONFIGRET {rc}")
            out = []
            for instance_id in ctypes.wstring_at(buf, size.value).split("\0"):
                if not instance_id:
                    continue
                devinst = wintypes.DWORD()
                # CM_LOCATE_DEVNODE_NORMAL (0) finds present devices only
                if self.cfgmgr32.CM_Locate_DevNodeW(ctypes.byref(devinst), instance_id, 0):
                    continue
                status, problem = wintypes.ULONG(), wintypes.ULONG()
                if self.cfgmgr32.CM_Get_DevNode_Status(
                    ctypes.byref(status), ctypes.byref(problem), devinst, 0
                ):
                    continue
                out.append(DevNode(instance_id, status.value, problem.value))
            return out


# --------------------------------------------------------------------------- boot identity

#: Windows raises this REG_DWORD by one at every boot (it lives with the prefetcher's settings).
#: Unlike the boot time (wall clock minus uptime), a clock step leaves it alone.
BOOT_ID_KEY: Final = (
    r"SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters"
)
BOOT_ID_VALUE: Final = "BootId"
#: winreg.REG_DWORD (the constant is only importable on Windows).
REG_DWORD: Final = 4


def parse_boot_id(value: object, value_type: int) -> str:
    """A boot id from ``winreg.QueryValueEx``'s ``(value, type)``, or "" (pure).

    Only a REG_DWORD, i.e. an integer in [0, 2**32), is accepted; 0 means the counter is not
    kept (then reboots are told by the boot time, as without a boot id).
    """
    if value_type != REG_DWORD or isinstance(value, bool) or not isinstance(value, int):
        return ""
    if not 0 < value < 2**32:
        return ""
    return f"windows-bootid-{value}"


def read_boot_id(registry: Any = None) -> str:
    """This boot's id from the registry (``registry``: the ``winreg`` module, or a stand-in in
    tests); "" when the key or value is missing or unreadable."""
    if registry is None:
        import winreg as registry
    try:
        with registry.OpenKey(registry.HKEY_LOCAL_MACHINE, BOOT_ID_KEY) as key:
            value, value_type = registry.QueryValueEx(key, BOOT_ID_VALUE)
    except OSError:
        return ""
    return parse_boot_id(value, value_type)
