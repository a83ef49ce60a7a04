"""The ``usb`` check: expected peripherals per device class, present or missing.

I/O and classification are apart:

- :class:`UsbReader` is the one-method interface that enumerates devices as plain
  :class:`UsbDevice` descriptions. :class:`PyUsbReader` is the real one (pyusb on the system
  libusb on Linux, on the ``libusb-package`` wheel's libusb on Windows; names from sysfs, no
  device transfer). A simulator or a test passes any object with a ``devices()`` method.
- :func:`classify` (pure) matches the config's rules against descriptions and says, per device
  class, which rules found a device; :meth:`ClassStatus.to_wire` gives the wire
  :class:`~pantau.contract.wire.Peripheral`.

A class is present when every rule of the class matches at least one enumerated device.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from pantau.agent import windows
from pantau.agent.checks import Findings, Sources, register
from pantau.agent.config import AgentConfig, DeviceRule
from pantau.agent.errors import UsbUnavailable
from pantau.contract import wire
from pantau.contract.vocabulary import PeripheralReason

#: bDeviceClass of hubs: never an expected peripheral, skipped during enumeration.
HUB_CLASS: Final = 0x09
#: Matched devices listed per class (a vid-only rule on a PC full of one vendor's devices must
#: not blow up the state payload).
MAX_DEVICES_REPORTED: Final = 16
#: Peripheral.reason values (the vocabulary's, by their short names).
MISSING: Final = PeripheralReason.MISSING
LIBUSB_UNAVAILABLE: Final = PeripheralReason.LIBUSB_UNAVAILABLE
CHECK_FAILED: Final = PeripheralReason.CHECK_FAILED
DRIVER_FAILED: Final = PeripheralReason.DRIVER_FAILED
NO_KERNEL_DRIVER: Final = "no kernel driver bound"
NOT_CONFIGURED: Final = PeripheralReason.NOT_CONFIGURED

#: Environment variable naming the libusb shared library to load (an unusual location, or a
#: specific DLL on Windows); unset: the system's libusb (Windows: the libusb-package wheel's).
LIBUSB_ENV: Final = "PANTAU_LIBUSB"
LIBUSB_HINT: Final = (
    "libusb not found: install it (Debian/Ubuntu: apt-get install libusb-1.0-0; "
    "Windows: pip install libusb-package)"
)


@dataclass(frozen=True, slots=True)
class UsbDevice:
    """One enumerated USB device, as far as matching and reporting need it."""

    vid: int
    pid: int
    bus: int = 0
    #: sysfs-style port path, e.g. ``1-2.3`` (bus 1, port 2, hub port 3).
    port: str = ""
    device_class: int = 0
    interface_classes: tuple[int, ...] = ()
    manufacturer: str = ""
    product: str = ""
    #: Windows: the Device Manager problem code of the device or one of its interfaces (0: none).
    problem: int = 0
    #: Linux: a kernel driver is bound to one of its interfaces (None: not known, not Linux).
    driver_bound: bool | None = None

    @property
    def ids(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"

    def to_wire(self) -> wire.Device:
        return wire.Device(
            vid=self.vid,
            pid=self.pid,
            bus=self.bus,
            port=self.port[:32],
            manufacturer=self.manufacturer[:256],
            product=self.product[:256],
        )


class UsbReader(Protocol):
    """Enumerates the USB devices present now. Raise :class:`UsbUnavailable` if it cannot."""

    def devices(self) -> Sequence[UsbDevice]: ...


# --------------------------------------------------------------------------- pure


def matches(rule: DeviceRule, device: UsbDevice) -> bool:
    """True if ``device`` satisfies ``rule`` (vid, optional pids and classes)."""
    if device.vid != rule.vid:
        return False
    if rule.pids and device.pid not in rule.pids:
        return False
    if rule.usb_class is not None and device.device_class != rule.usb_class:
        return False
    return rule.interface_class is None or rule.interface_class in device.interface_classes


def rule_label(rule: DeviceRule) -> str:
    """``Canon EOS camera (04a9:*)`` style label of a rule, for people."""
    pids = "|".join(f"{p:04x}" for p in rule.pids) or "*"
    ids = f"{rule.vid:04x}:{pids}"
    return f"{rule.name} ({ids})" if rule.name else ids


def driver_failure(rule: DeviceRule, device: UsbDevice) -> str:
    """Why ``device`` does not work although enumerated (``""``: it works, or no one can tell).
    Windows' problem codes always count; Linux's unbound interfaces only for ``needs_driver``."""
    if device.problem:
        return windows.problem_text(device.problem)
    if rule.needs_driver and device.driver_bound is False:
        return NO_KERNEL_DRIVER
    return ""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: DeviceRule
    devices: tuple[UsbDevice, ...]

    @property
    def failures(self) -> tuple[tuple[UsbDevice, str], ...]:
        """Matched devices whose driver failed, with why."""
        return tuple((d, why) for d in self.devices if (why := driver_failure(self.rule, d)))

    @property
    def ok(self) -> bool:
        """A matched device works."""
        return len(self.failures) < len(self.devices)


@dataclass(frozen=True, slots=True)
class ClassStatus:
    """Presence of one device class: each of its rules and the devices that matched it."""

    device_class: str
    rules: tuple[RuleMatch, ...]

    @property
    def present(self) -> bool:
        return all(m.ok for m in self.rules)

    @property
    def missing(self) -> tuple[DeviceRule, ...]:
        return tuple(m.rule for m in self.rules if not m.devices)

    @property
    def driver_failures(self) -> tuple[tuple[UsbDevice, str], ...]:
        """Devices of rules that matched only devices whose driver failed, with why."""
        return tuple(f for m in self.rules if m.devices and not m.ok for f in m.failures)

    @property
    def reason(self) -> str:
        """``""`` when present; ``missing`` if a rule matched nothing (the cable first), else
        ``driver_failed``."""
        if self.present:
            return ""
        return MISSING if self.missing else DRIVER_FAILED

    def detail(self) -> str:
        """What is wrong, for an event or a log line: the missing rules or the failed devices."""
        if self.missing:
            return ", ".join(rule_label(r) for r in self.missing)
        return ", ".join(f"{d.ids} ({why})" for d, why in self.driver_failures)

    @property
    def devices(self) -> tuple[UsbDevice, ...]:
        return tuple(dict.fromkeys(d for m in self.rules for d in m.devices))

    def to_wire(self) -> wire.Peripheral:
        return wire.Peripheral(
            device_class=self.device_class,
            present=self.present,
            expected=len(self.rules),
            found=sum(1 for m in self.rules if m.ok),
            devices=tuple(d.to_wire() for d in self.devices[:MAX_DEVICES_REPORTED]),
            reason=self.reason,
        )


def classify(rules: Sequence[DeviceRule], devices: Sequence[UsbDevice]) -> tuple[ClassStatus, ...]:
    """Per device class (in rule order), which rules matched which devices."""
    by_class: dict[str, list[RuleMatch]] = {}
    for rule in rules:
        found = tuple(d for d in devices if matches(rule, d))
        by_class.setdefault(rule.device_class, []).append(RuleMatch(rule, found))
    return tuple(ClassStatus(c, tuple(ms)) for c, ms in by_class.items())


def unavailable(rules: Sequence[DeviceRule], reason: str) -> tuple[wire.Peripheral, ...]:
    """Every expected class reported not present with ``reason`` (the check could not look)."""
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule.device_class] = counts.get(rule.device_class, 0) + 1
    return tuple(
        wire.Peripheral(device_class=c, present=False, expected=n, found=0, reason=reason)
        for c, n in counts.items()
    )


# --------------------------------------------------------------------------- the check


class UsbCheck:
    """Enumerate with ``reader`` and classify against the config's ``[[devices]]``."""

    name: Final = "usb"
    background: Final = False

    def __init__(
        self,
        rules: Sequence[DeviceRule],
        reader: UsbReader,
        timeout_s: float,
        interval_s: float = 10.0,
        expects: Sequence[str] = (),
    ) -> None:
        self.rules = tuple(rules)
        self.reader = reader
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        #: Classes expected (``station.expects``) without any rule: reported as not configured.
        ruled = {r.device_class for r in self.rules}
        self.unconfigured = tuple(c for c in dict.fromkeys(expects) if c not in ruled)
        #: The last classification (for ``pantau-agent check``'s table), set by :meth:`run`.
        self.last: tuple[ClassStatus, ...] = ()

    def _not_configured(self) -> tuple[wire.Peripheral, ...]:
        return tuple(
            wire.Peripheral(device_class=c, present=False, expected=0, reason=NOT_CONFIGURED)
            for c in self.unconfigured
        )

    def run(self) -> Findings:
        statuses = classify(self.rules, self.reader.devices())
        self.last = statuses
        # absent classes: the missing rules, or the devices whose driver failed (event detail)
        missing = {s.device_class: s.detail() for s in statuses if not s.present}
        return Findings(
            peripherals=tuple(s.to_wire() for s in statuses) + self._not_configured(),
            missing=missing,
        )

    def failed(self, exc: Exception | None) -> Findings:
        why = LIBUSB_UNAVAILABLE if isinstance(exc, UsbUnavailable) else CHECK_FAILED
        return Findings(peripherals=unavailable(self.rules, why) + self._not_configured())


@register("usb", order=10)
def _build(cfg: AgentConfig, sources: Sources) -> UsbCheck:
    """Always built: with no ``[[devices]]`` it reports that nothing is expected."""
    return UsbCheck(
        cfg.devices,
        sources.usb_reader,
        cfg.intervals.check_timeout_s,
        cfg.intervals.poll_s,
        cfg.station.expects,
    )


# --------------------------------------------------------------------------- pyusb reader


def _read_attr(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return ""


class PyUsbReader:
    """Enumerate with pyusb; names from sysfs (Linux) so no device transfer is made.

    The libusb backend is found on first use: Windows uses the ``libusb-package`` wheel's DLL,
    elsewhere the system libusb. No backend raises :class:`UsbUnavailable` with a hint.

    ``vendors``: when given, only devices of these vendor ids get the costlier details
    (interface classes from the configuration descriptor, names from sysfs); others can match
    no rule anyway and are described by ids and bus position only. That keeps a round cheap on a
    PC with many unrelated devices (hubs are skipped altogether).
    """

    def __init__(
        self,
        sysfs_root: str = "/sys/bus/usb/devices",
        find_library: Callable[[str], str | None] | None = None,
        vendors: Collection[int] | None = None,
        problems: Callable[[], Mapping[tuple[int, int], int]] | None = None,
    ) -> None:
        self.sysfs_root = sysfs_root
        #: Device Manager problem codes by (vid, pid); default on Windows: cfgmgr32.
        self.problems = problems
        if problems is None and sys.platform == "win32":
            self.problems = _windows_problems
        self.vendors = None if vendors is None else frozenset(vendors)
        #: pyusb's hook to locate the libusb shared library (None: its own search).
        self.find_library = find_library
        self._backend: Any = None

    def backend(self) -> Any:
        if self._backend is None:
            self._backend = _find_backend(self.find_library)
        return self._backend

    def devices(self) -> list[UsbDevice]:
        import usb.core

        backend = self.backend()
        out = []
        try:
            found = list(usb.core.find(find_all=True, backend=backend))
        except usb.core.USBError as exc:
            raise UsbUnavailable(f"USB enumeration failed: {exc}") from None
        for dev in found:
            if dev.bDeviceClass == HUB_CLASS:
                continue
            out.append(self._describe(dev))
        if self.problems is not None and out:
            try:
                codes = self.problems()
            except OSError:  # Device Manager cannot be asked: presence alone, as elsewhere
                codes = {}
            out = [
                replace(d, problem=code) if (code := codes.get((d.vid, d.pid), 0)) else d
                for d in out
            ]
        return out

    def _describe(self, dev: Any) -> UsbDevice:
        try:
            ports = dev.port_numbers or ()
        except (NotImplementedError, ValueError, OSError):
            ports = ()
        port = f"{dev.bus}-{'.'.join(str(p) for p in ports)}" if ports else ""
        if self.vendors is not None and dev.idVendor not in self.vendors:
            return UsbDevice(dev.idVendor, dev.idProduct, dev.bus or 0, port, dev.bDeviceClass)
        interface_classes: list[int] = []
        try:
            for cfg in dev:
                for intf in cfg:
                    if intf.bInterfaceClass not in interface_classes:
                        interface_classes.append(intf.bInterfaceClass)
        except (OSError, ValueError, NotImplementedError):
            interface_classes = []
        manufacturer = product = ""
        driver_bound = None
        if port and sys.platform.startswith("linux"):
            base = os.path.join(self.sysfs_root, port)
            manufacturer = _read_attr(os.path.join(base, "manufacturer"))
            product = _read_attr(os.path.join(base, "product"))
            driver_bound = _driver_bound(base, port)
        return UsbDevice(
            vid=dev.idVendor,
            pid=dev.idProduct,
            bus=dev.bus or 0,
            port=port,
            device_class=dev.bDeviceClass,
            interface_classes=tuple(interface_classes),
            manufacturer=manufacturer,
            product=product,
            driver_bound=driver_bound,
        )


def _driver_bound(base: str, port: str) -> bool | None:
    """Linux: is a kernel driver bound to one of the device's interfaces (``1-2:1.0/driver``)?
    None when sysfs lists no interface (cannot tell)."""
    try:
        interfaces = [e for e in os.listdir(base) if e.startswith(f"{port}:")]
    except OSError:
        return None
    if not interfaces:
        return None
    return any(os.path.lexists(os.path.join(base, i, "driver")) for i in interfaces)


def _windows_problems() -> dict[tuple[int, int], int]:
    """Device Manager problem codes of the present USB devices (Windows only)."""
    if sys.platform == "win32":
        return windows.driver_problems(windows.Win32Api().usb_devnodes())
    return {}


def _find_backend(find_library: Callable[[str], str | None] | None) -> Any:
    if find_library is None and (path := os.environ.get(LIBUSB_ENV)):
        find_library = lambda _name: path  # noqa: E731 - pyusb's hook takes a callable
    try:
        if sys.platform == "win32" and find_library is None:
            backend = windows.libusb_backend()  # the libusb-package wheel's DLL
        else:
            import usb.backend.libusb1

            backend = usb.backend.libusb1.get_backend(find_library=find_library)
    except ImportError as exc:
        raise UsbUnavailable(f"{LIBUSB_HINT} ({exc})") from None
    if backend is None:
        raise UsbUnavailable(LIBUSB_HINT)
    return backend
