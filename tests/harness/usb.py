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
``umockdev`` marker. Do not call ``usb.core.find`` or ``libusb_init`` at import time.

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
"""

from __future__ import annotations

import ctypes.util
import os
import struct
import sys
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

    @property
    def minor(self) -> int:
        return (self.busnum - 1) * 128 + self.devnum - 1

    @property
    def devnode(self) -> str:
        return f"/dev/bus/usb/{self.busnum:03d}/{self.devnum:03d}"


def _attr(name: str, value: str) -> str:
    return f"A: {name}={value}\\n"


def device_records(dev: UsbDevice) -> str:
    """umockdev text records for the usb_device and its one usb_interface."""
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
        "E: DRIVER=",
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
    return "\n".join(lines) + "\n\n" + "\n".join(iface) + "\n"


# --------------------------------------------------------------------------- bus


class UsbBus:
    """Plug and unplug fake USB devices on bus 1 of a umockdev testbed."""

    def __init__(self, testbed: Any) -> None:
        self.testbed = testbed
        self.devices: dict[str, UsbDevice] = {}
        self._root = Path(testbed.get_root_dir())

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that must see this bus (preload + UMOCKDEV_DIR)."""
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
    ) -> str:
        """Add a device (emits udev ``add``) and return its syspath. ``interface_class``
        defaults to ``device_class``, or 0xff (vendor specific) when that is 0 (class defined
        per interface), as for most fingerprint and iris scanners."""
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
        )
        self.testbed.add_from_string(device_records(dev))
        self.devices[syspath] = dev
        return syspath

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
        self.testbed.uevent(iface, "remove")
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
