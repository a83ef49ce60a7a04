"""A fake USB bus for real libusb, pyusb and pyudev: umockdev.

umockdev's preload library (``libumockdev-preload.so.0``) fakes ``/sys``, ``/dev`` and udev
uevents for the whole process, so the code under test runs unchanged on Debian's libusb-1.0
(hotplug included) and pyudev. Pieces:

- pytest re-execs itself under ``LD_PRELOAD=libumockdev-preload.so.0`` in ``pytest_configure``
  (:func:`reexec_under_preload`; guarded by ``PANTAU_UMOCKDEV_REEXEC`` against loops).
- :func:`new_testbed` creates the ``UMockdev.Testbed`` (session-wide) and copies its
  ``UMOCKDEV_DIR`` into ``os.environ`` so subprocesses (an agent under test) inherit both the
  preload and the devices.
- :class:`UsbBus` plugs and unplugs devices described by vendor/product ids and classes.

RULE: the testbed must exist before anything initialises libusb in the test process. pyusb
creates one libusb context per process and caches it (``usb.backend.libusb1``); a context
initialised before the testbed reads the real /sys and listens to the real kernel uevents, and
never sees a plugged device. tests/conftest.py therefore creates the testbed at the start of the
session (before the first test runs) whenever any collected test uses ``usb_bus`` or the
``umockdev`` marker, and initialises pyusb's libusb right after it (:func:`init_libusb`). Do not
call ``usb.core.find`` or ``libusb_init`` at import time.

Device records are umockdev text: ``P:`` sysfs path, ``N:`` device node, ``E:`` uevent/udev
properties, ``A:`` sysfs attributes (each ending in a literal ``\\n``), ``H: descriptors=`` hex
of the device descriptor followed by one configuration descriptor with one interface (carrying
``interface_class``) and one bulk endpoint. A child ``usb_interface`` record is added as the
kernel does. String descriptors need a control transfer, which umockdev does not answer: read
manufacturer/product/serial from sysfs/udev (pyudev ``attributes``, ``ID_VENDOR``...), not from
pyusb's ``dev.manufacturer``.

GOTCHA: once the testbed exists, the whole test process (and subprocesses given :attr:`UsbBus.env`
or inheriting ``os.environ``) sees the fake ``/sys`` (``/proc`` stays real): e.g.
``psutil.sensors_battery()`` raises because ``/sys/class/power_supply`` is missing. Code under
test must cope with that anyway (a station without a battery); servers started by the harness get
a clean environment (:func:`harness.procs.server_env`).

Umockdev 0.17 quirks handled here: hex in records must be UPPERCASE (lowercase a-f is "malformed
attribute"); re-adding a device whose ``/sys/bus/usb/devices`` link still exists aborts the
process (g_assert), so ports are only reused once free and interfaces are removed explicitly;
``remove_device`` sends no ``remove`` uevent: :meth:`UsbBus.unplug` sends one
(interfaces first) before removing, so libusb and udev monitors notice.

Uevent listeners (why USB tests used to break each other in one session). The preload turns every
udev monitor (libusb's, pyudev's, in this process or in a subprocess) into a Unix datagram socket
bound to ``$UMOCKDEV_DIR/event<fd>``; the testbed sends each uevent to every ``event[0-9]*`` path
with a non-blocking ``sendmsg``. Two traps, both handled by :func:`make_room` before every uevent
this module sends:

- A listener that stays open but is no longer read (a monitor whose thread stopped, left for the
  garbage collector) holds at most ``net.unix.max_dgram_qlen`` + 1 (11) uevents; the next send
  gets EAGAIN and umockdev 0.17.16 calls ``abort()``: the whole pytest process dies. The kernel
  drops events for such a listener instead. So: wait up to :data:`DRAIN_S` for a full listener to
  drain, then detach it (rename it out of the glob; it gets no more uevents) with a
  :class:`UmockdevWarning`. The ``usb_bus`` fixture also runs the garbage collector at teardown so
  a monitor dropped by a test is closed before the next test's uevents.
- ``bind()`` first unlinks ``event<fd>``, and fd numbers repeat across processes: a subprocess
  (an agent CLI inheriting the preload) whose monitor gets the same fd number as one of this
  process's takes over the path, and when it exits umockdev deletes it. Our listener, above all
  the session's libusb context cached by pyusb, then never hears a uevent again and pyusb never
  lists another plugged device. So listeners are *pinned*: renamed to ``event<fd>.<random>``
  (same socket inode, still matched by the glob, never reused by a ``bind()``). libusb is
  initialised right after the testbed (:func:`init_libusb`) and pinned at once; other listeners
  are pinned at every plug, unplug and :attr:`UsbBus.env` (i.e. before a subprocess is started
  with it).
"""

from __future__ import annotations

import ctypes.util
import os
import re
import secrets
import select
import socket
import struct
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOAD_LIB = "libumockdev-preload.so.0"
REEXEC_GUARD = "PANTAU_UMOCKDEV_REEXEC"
#: Set to 1 to behave as on a machine without umockdev (used to test the skip/CI-fail rule).
DISABLE_ENV = "PANTAU_UMOCKDEV_DISABLE"
BUS_PATH = "/devices/pci0000:00/0000:00:14.0/usb1"
BUSNUM = 1
USB_MAJOR = 189
#: How long a full uevent listener may take to drain before it is detached (see the docstring).
DRAIN_S = 3.0
#: The name the preload's ``bind()`` gives a listener: ``event<fd>`` (what a bind may unlink).
_BOUND_NAME = re.compile(r"event[0-9]+")


class UmockdevWarning(UserWarning):
    """Something in the test session misuses the fake bus (e.g. a udev monitor left unread)."""


def preloaded() -> bool:
    """True if this process runs with the umockdev preload library."""
    return "umockdev-preload" in os.environ.get("LD_PRELOAD", "")


def umockdev_missing() -> str | None:
    """Why umockdev cannot be used here, or None if it can."""
    if os.environ.get(DISABLE_ENV) == "1":
        return f"disabled by {DISABLE_ENV}=1"
    if ctypes.util.find_library("umockdev-preload") is None:
        return f"{PRELOAD_LIB} not installed (apt-get install umockdev libumockdev0)"
    try:
        import gi

        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev  # noqa: F401
    except (ImportError, ValueError) as exc:
        return f"UMockdev GObject bindings unavailable ({exc}); need gir1.2-umockdev-1.0 and PyGObject<3.51"
    return None


def reexec_under_preload(config: Any) -> None:
    """From ``pytest_configure``: replace this pytest process by the same command with the
    umockdev preload, unless already preloaded, already re-exec'd once, an xdist worker, not a
    command-line pytest, or umockdev is missing (then the umockdev tests skip or, in CI, fail)."""
    if preloaded() or os.environ.get(REEXEC_GUARD) or hasattr(config, "workerinput"):
        return
    if Path(sys.argv[0]).name not in ("pytest", "py.test", "__main__.py"):
        return  # pytest.main() inside another program: do not replace that program
    if umockdev_missing() is not None:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ)
    env["LD_PRELOAD"] = f"{PRELOAD_LIB} {env.get('LD_PRELOAD', '')}".strip()
    env[REEXEC_GUARD] = "1"
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606


def new_testbed() -> Any:
    """Create the process-wide ``UMockdev.Testbed`` and export ``UMOCKDEV_DIR``."""
    import gi

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    testbed = UMockdev.Testbed.new()
    # The testbed sets UMOCKDEV_DIR with C setenv(); Python's os.environ does not see it.
    os.environ["UMOCKDEV_DIR"] = testbed.get_root_dir()
    return testbed


def init_libusb(root: str | Path) -> None:
    """Initialise pyusb's process-wide (cached) libusb context now, right after the testbed, and
    pin its uevent listener before any subprocess can take its ``event<fd>`` path over. Without
    pyusb there is nothing to protect."""
    try:
        import usb.backend.libusb1
    except ImportError:
        return
    usb.backend.libusb1.get_backend()
    pin_listeners(Path(root))


# --------------------------------------------------------------------------- uevent listeners


def pin_listeners(root: Path) -> None:
    """Rename each ``event<fd>`` listener socket to ``event<fd>.<random>``: the same socket (a
    rename keeps the inode that ``connect()`` resolves), still found by the testbed's
    ``event[0-9]*`` glob, but a name no other process's ``bind()`` unlinks."""
    for path in root.glob("event*"):
        if not _BOUND_NAME.fullmatch(path.name):
            continue
        target = path.with_name(f"{path.name}.{secrets.token_hex(4)}")
        if os.path.lexists(target):
            continue  # practically never; pinned at the next call
        try:
            path.rename(target)
        except FileNotFoundError:  # removed or being re-bound right now
            continue


def _has_room(path: Path, drain_s: float) -> bool | None:
    """Whether the listener at ``path`` can queue one more datagram, waiting up to ``drain_s``
    for it to drain; None if nobody listens there any more. A connected datagram socket polls
    writable exactly when the peer's queue is not full (what decides EAGAIN), sending nothing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        poller = select.poll()
        poller.register(probe, select.POLLOUT)
        return bool(poller.poll(int(drain_s * 1000)))


def make_room(root: Path, drain_s: float = DRAIN_S) -> list[str]:
    """Before one uevent: pin listeners, drop paths nobody listens on, and detach listeners whose
    queue stays full for ``drain_s`` (else umockdev 0.17 aborts the process). Returns the names
    detached."""
    pin_listeners(root)
    detached = []
    for path in root.glob("event[0-9]*"):
        room = _has_room(path, drain_s)
        if room is None:
            path.unlink(missing_ok=True)  # what umockdev does on ECONNREFUSED
        elif not room:
            path.rename(path.with_name(f"unread-{path.name}"))
            detached.append(path.name)
    return detached


# --------------------------------------------------------------------------- descriptors


def device_descriptor(
    vid: int,
    pid: int,
    *,
    device_class: int = 0,
    bcd_device: int = 0x0100,
    strings: tuple[bool, bool, bool] = (False, False, False),
) -> bytes:
    """An 18-byte USB 2.0 device descriptor (string indexes 1-3 where a string exists)."""
    i_manufacturer, i_product, i_serial = (i + 1 if s else 0 for i, s in enumerate(strings))
    return struct.pack(
        "<BBHBBBBHHHBBBB",
        18,  # bLength
        1,  # bDescriptorType: DEVICE
        0x0200,  # bcdUSB
        device_class,
        0,  # bDeviceSubClass
        0,  # bDeviceProtocol
        64,  # bMaxPacketSize0
        vid,
        pid,
        bcd_device,
        i_manufacturer,
        i_product,
        i_serial,
        1,  # bNumConfigurations
    )


def config_descriptor(interface_class: int) -> bytes:
    """Configuration descriptor + one interface (``interface_class``) + one bulk IN endpoint."""
    interface = struct.pack("<BBBBBBBBB", 9, 4, 0, 0, 1, interface_class, 0, 0, 0)
    endpoint = struct.pack("<BBBBHB", 7, 5, 0x81, 0x02, 512, 0)
    total = 9 + len(interface) + len(endpoint)
    config = struct.pack("<BBHBBBBB", 9, 2, total, 1, 1, 0, 0x80, 50)
    return config + interface + endpoint


@dataclass(frozen=True)
class UsbDevice:
    """What was plugged (``syspath`` is the testbed's /sys path of the usb_device)."""

    syspath: str
    vid: int
    pid: int
    device_class: int
    interface_class: int
    busnum: int
    devnum: int
    port: int
    manufacturer: str
    product: str
    serial: str
    #: Kernel driver bound to the interface (a ``driver`` link in sysfs); "" for none.
    driver: str = ""

    @property
    def minor(self) -> int:
        return (self.busnum - 1) * 128 + self.devnum - 1

    @property
    def devnode(self) -> str:
        return f"/dev/bus/usb/{self.busnum:03d}/{self.devnum:03d}"


def _attr(name: str, value: str) -> str:
    return f"A: {name}={value}\\n"


def device_records(dev: UsbDevice) -> tuple[str, str]:
    """umockdev text records for the usb_device and for its one usb_interface."""
    descriptors = device_descriptor(
        dev.vid,
        dev.pid,
        device_class=dev.device_class,
        strings=(bool(dev.manufacturer), bool(dev.product), bool(dev.serial)),
    ) + config_descriptor(dev.interface_class)
    name = f"{dev.busnum}-{dev.port}"
    product_prop = f"{dev.vid:x}/{dev.pid:x}/100"
    devname = f"bus/usb/{dev.busnum:03d}/{dev.devnum:03d}"
    minor = dev.minor
    props = {
        "DEVNAME": f"/dev/{devname}",
        "DEVTYPE": "usb_device",
        "DRIVER": "usb",
        "PRODUCT": product_prop,
        "TYPE": f"{dev.device_class}/0/0",
        "BUSNUM": f"{dev.busnum:03d}",
        "DEVNUM": f"{dev.devnum:03d}",
        "MAJOR": str(USB_MAJOR),
        "MINOR": str(minor),
        "SUBSYSTEM": "usb",
        "ID_VENDOR_ID": f"{dev.vid:04x}",
        "ID_MODEL_ID": f"{dev.pid:04x}",
        "ID_REVISION": "0100",
        "ID_BUS": "usb",
        "ID_USB_INTERFACES": f":{dev.interface_class:02x}0000:",
    }
    if dev.manufacturer:
        props["ID_VENDOR"] = dev.manufacturer.replace(" ", "_")
    if dev.product:
        props["ID_MODEL"] = dev.product.replace(" ", "_")
    if dev.serial:
        props["ID_SERIAL_SHORT"] = dev.serial
    attrs = {
        "busnum": str(dev.busnum),
        "devnum": str(dev.devnum),
        "devpath": str(dev.port),
        "speed": "480",
        "version": " 2.00",
        "idVendor": f"{dev.vid:04x}",
        "idProduct": f"{dev.pid:04x}",
        "bcdDevice": "0100",
        "bDeviceClass": f"{dev.device_class:02x}",
        "bDeviceSubClass": "00",
        "bDeviceProtocol": "00",
        "bMaxPacketSize0": "64",
        "bNumConfigurations": "1",
        "bConfigurationValue": "1",
        "bNumInterfaces": " 1",
        "bmAttributes": "80",
        "maxchild": "0",
        "removable": "removable",
        "authorized": "1",
        "dev": f"{USB_MAJOR}:{minor}",
    }
    strings = {"manufacturer": dev.manufacturer, "product": dev.product, "serial": dev.serial}
    attrs.update({key: value for key, value in strings.items() if value})
    lines = [f"P: {BUS_PATH}/{name}", f"N: {devname}={descriptors.hex().upper()}"]
    lines += [f"E: {k}={v}" for k, v in props.items()]
    lines += [_attr(k, v) for k, v in attrs.items()]
    lines.append(f"H: descriptors={descriptors.hex().upper()}")

    iface = [
        f"P: {BUS_PATH}/{name}/{name}:1.0",
        "E: DEVTYPE=usb_interface",
        f"E: DRIVER={dev.driver}",
        f"E: PRODUCT={product_prop}",
        f"E: TYPE={dev.device_class}/0/0",
        f"E: INTERFACE={dev.interface_class}/0/0",
        f"E: MODALIAS=usb:v{dev.vid:04X}p{dev.pid:04X}d0100dc{dev.device_class:02X}dsc00dp00ic{dev.interface_class:02X}isc00ip00in00",
        "E: SUBSYSTEM=usb",
        _attr("bInterfaceNumber", "00"),
        _attr("bAlternateSetting", " 0"),
        _attr("bNumEndpoints", "01"),
        _attr("bInterfaceClass", f"{dev.interface_class:02x}"),
        _attr("bInterfaceSubClass", "00"),
        _attr("bInterfaceProtocol", "00"),
    ]
    if dev.driver:  # as the kernel shows a bound interface: a link to the driver
        iface.append(f"L: driver=../../../../../../bus/usb/drivers/{dev.driver}")
    return "\n".join(lines) + "\n", "\n".join(iface) + "\n"


# --------------------------------------------------------------------------- bus


class UsbBus:
    """Plug and unplug fake USB devices on bus 1 of a umockdev testbed."""

    def __init__(self, testbed: Any, *, drain_s: float = DRAIN_S) -> None:
        self.testbed = testbed
        self.devices: dict[str, UsbDevice] = {}
        self.drain_s = drain_s
        self._root = Path(testbed.get_root_dir())

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that must see this bus (preload + UMOCKDEV_DIR). Also
        pins this process's uevent listeners, as the subprocess is about to bind its own."""
        pin_listeners(self._root)
        env = dict(os.environ)
        if "umockdev-preload" not in env.get("LD_PRELOAD", ""):
            env["LD_PRELOAD"] = f"{PRELOAD_LIB} {env.get('LD_PRELOAD', '')}".strip()
        env["UMOCKDEV_DIR"] = self.testbed.get_root_dir()
        return env

    def plug(  # noqa: PLR0917 - the documented harness API takes them positionally too
        self,
        vid: int,
        pid: int,
        device_class: int = 0,
        interface_class: int | None = None,
        manufacturer: str = "",
        product: str = "",
        serial: str = "",
        *,
        driver: str = "",
    ) -> str:
        """Add a device (emits udev ``add``) and return its syspath. ``interface_class``
        defaults to ``device_class``, or 0xff (vendor specific) when that is 0 (class defined
        per interface), as for most fingerprint and iris scanners. ``driver``: the kernel driver
        bound to the interface (its sysfs ``driver`` link), e.g. ``usbhid``; none by default."""
        if interface_class is None:
            interface_class = device_class or 0xFF
        port = self._free_port()
        devnum = port + 1  # 1 is the root hub's
        syspath = f"/sys{BUS_PATH}/{BUSNUM}-{port}"
        dev = UsbDevice(
            syspath=syspath,
            vid=vid,
            pid=pid,
            device_class=device_class,
            interface_class=interface_class,
            busnum=BUSNUM,
            devnum=devnum,
            port=port,
            manufacturer=manufacturer,
            product=product,
            serial=serial,
            driver=driver,
        )
        device, interface = device_records(dev)
        self._before_uevent()
        self.testbed.add_from_string(device)  # one "add" uevent each
        self._before_uevent()
        self.testbed.add_from_string(interface)
        self.devices[syspath] = dev
        return syspath

    def _before_uevent(self) -> None:
        for name in make_room(self._root, self.drain_s):
            warnings.warn(
                f"umockdev: uevent listener {name} read nothing for {self.drain_s} s with its queue"
                " full (a udev monitor left open and unread?); it gets no more uevents",
                UmockdevWarning,
                stacklevel=3,
            )

    def _free_port(self) -> int:
        # umockdev aborts the whole process (g_assert) if a device's /sys/bus symlink exists.
        bus_links = self._root / "sys/bus/usb/devices"
        for port in range(1, 127):
            if not os.path.lexists(bus_links / f"{BUSNUM}-{port}"):
                return port
        raise RuntimeError("fake USB bus full (126 devices)")

    def unplug(self, syspath: str) -> None:
        """Send ``remove`` uevents (interface, then device) and remove the device."""
        dev = self.devices.pop(syspath)
        iface = f"{syspath}/{BUSNUM}-{dev.port}:1.0"
        self._before_uevent()
        self.testbed.uevent(iface, "remove")
        self._before_uevent()
        self.testbed.uevent(syspath, "remove")
        self.testbed.remove_device(iface)
        self.testbed.remove_device(syspath)
        # umockdev 0.17 leaves the /sys/dev/char/MAJOR:MINOR link behind, dangling.
        char_link = self._root / f"sys/dev/char/{USB_MAJOR}:{dev.minor}"
        if char_link.is_symlink() and not char_link.exists():
            char_link.unlink()

    def unplug_all(self) -> None:
        for syspath in list(self.devices):
            self.unplug(syspath)
