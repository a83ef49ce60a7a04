"""A shipped catalog of known USB match rules per device class: a convenience, not the truth.

Kits differ between procurement rounds, so the agent only ever checks what the config's
``[[devices]]`` list says. This catalog helps write that list (``pantau provision`` fills a new
station's config from it, ``pantau-agent usb`` marks enumerated devices the catalog knows).
Entries name a vendor and, where it narrows the match, a USB class; product ids are left open
on purpose. Confirm every rule on a real station with ``pantau-agent usb`` before relying on it.
The iris class has no entry: no vendor id could be confirmed, so configure it from the station.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pantau.agent.config import DeviceRule

#: USB class codes used below (usb.org "Defined Class Codes").
STILL_IMAGE: Final = 0x06
HID: Final = 0x03


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    device_class: str
    vendor: str
    vid: int
    interface_class: int | None = None
    note: str = ""

    def rule(self) -> DeviceRule:
        return DeviceRule(
            device_class=self.device_class,
            vid=self.vid,
            interface_class=self.interface_class,
            name=self.vendor,
        )


CATALOG: Final[tuple[CatalogEntry, ...]] = (
    CatalogEntry(
        "camera",
        "Canon",
        0x04A9,
        STILL_IMAGE,
        "EOS DSLR of the original kit; the still-image interface excludes Canon printers",
    ),
    CatalogEntry("signature", "Topaz Systems", 0x06A8, None, "SignatureGem / SigLite pads"),
    CatalogEntry("signature", "Wacom", 0x056A, None, "STU signature tablets"),
    CatalogEntry("fingerprint", "Cross Match Technologies", 0x080B, None, "ten-print scanners"),
    CatalogEntry("fingerprint", "DigitalPersona", 0x05BA, None, "U.are.U readers"),
    CatalogEntry("fingerprint", "SecuGen", 0x1162, None, "Hamster readers"),
    CatalogEntry("fingerprint", "Futronic", 0x1491, None, "FS8x ten-print scanners"),
    CatalogEntry("fingerprint", "Suprema", 0x16D1, None, "RealScan scanners"),
    CatalogEntry("fingerprint", "Integrated Biometrics", 0x113F, None, "Kojak / Watson"),
)


def entries(device_class: str | None = None) -> tuple[CatalogEntry, ...]:
    """Catalog entries, all or of one device class."""
    return tuple(e for e in CATALOG if device_class is None or e.device_class == device_class)


def known_vendor(vid: int) -> CatalogEntry | None:
    """The first catalog entry for a vendor id, if any (for labelling enumerated devices)."""
    return next((e for e in CATALOG if e.vid == vid), None)


def suggest_rules(device_classes: Iterable[str]) -> tuple[DeviceRule, ...]:
    """One rule per device class from the catalog's first entry (classes without one are skipped).

    A starting point for a new station's config; the first entry is the original kit's vendor.
    """
    out = []
    for device_class in device_classes:
        found = entries(device_class)
        if found:
            out.append(found[0].rule())
    return tuple(out)
