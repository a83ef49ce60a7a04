"""The Klaten fleet of September 2016: 26 kecamatan, five of which could not record.

Used by ``pantau demo`` (and its test) and as the default fleet of ``pantau simulate``. The
station ids follow the deployment convention ``{kabkota}-{kecamatan slug}-{nn}``; Klaten is
kabupaten 33.10 (provinsi 33, Jawa Tengah).

| kecamatan  | 2016 fault                                                   | simulated as       |
|------------|--------------------------------------------------------------|--------------------|
| Juwiring   | recording kit destroyed by lightning                         | ``lightning``      |
| Bayat      | failed reinstall, locked out of the login service            | ``login_locked``   |
| Cawas      | broken for two years, nobody acted                           | ``silent``         |
| Gantiwarno | equipment broken (cause not reported)                        | ``broken``         |
| Ceper      | equipment broken (cause not reported)                        | ``broken``         |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from pantau.contract import vocabulary
from pantau.contract.inventory import InventoryEntry

PROVINSI: Final = "33"
KABKOTA: Final = "3310"
KABKOTA_NAME: Final = "Klaten"
#: Every Klaten station expects the full kit.
DEVICE_CLASSES: Final = vocabulary.DEVICE_CLASSES

KECAMATAN: Final = (
    "Bayat", "Cawas", "Ceper", "Delanggu", "Gantiwarno", "Jatinom", "Jogonalan", "Juwiring",
    "Kalikotes", "Karanganom", "Karangdowo", "Karangnongko", "Kebonarum", "Kemalang",
    "Klaten Selatan", "Klaten Tengah", "Klaten Utara", "Manisrenggo", "Ngawen", "Pedan",
    "Polanharjo", "Prambanan", "Trucuk", "Tulung", "Wedi", "Wonosari",
)  # fmt: skip

#: Where residents can record instead, nearest first (the inventory's ``neighbours`` column).
#: In 2016 Cawas' residents were sent to Trucuk and Pedan; the other pairs are adjacent
#: kecamatan picked for the example, not an official referral list.
NEIGHBOURS: Final[dict[str, tuple[str, ...]]] = {
    "Cawas": ("Trucuk", "Pedan"),
    "Bayat": ("Cawas", "Wedi"),
    "Juwiring": ("Wonosari", "Pedan"),
    "Gantiwarno": ("Wedi", "Prambanan"),
    "Ceper": ("Pedan", "Ngawen"),
    "Kemalang": ("Manisrenggo", "Karangnongko"),
}

FaultKind = Literal["healthy", "lightning", "login_locked", "silent", "broken"]


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    #: Device classes that are (or become) missing.
    missing: tuple[str, ...] = ()
    #: What the demo prints for it.
    story: str = ""


FAULTS_2016: Final[dict[str, Fault]] = {
    "Juwiring": Fault(
        "lightning", DEVICE_CLASSES, "lightning strike: every peripheral gone, PC rebooted"
    ),
    "Bayat": Fault("login_locked", (), "failed reinstall: the login service refuses the station"),
    "Cawas": Fault("silent", (), "broken for two years: the station never reports"),
    "Gantiwarno": Fault("broken", ("camera", "signature"), "camera and signature pad broken"),
    "Ceper": Fault("broken", ("iris",), "iris scanner broken"),
}
HEALTHY: Final = Fault("healthy")


def slug(name: str) -> str:
    """``Klaten Selatan`` -> ``klaten-selatan``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def station_id(kecamatan: str, number: int = 1) -> str:
    return f"{KABKOTA}-{slug(kecamatan)}-{number:02d}"


def inventory() -> list[InventoryEntry]:
    """One recording station per kecamatan, each expecting the four device classes."""
    return [
        InventoryEntry(
            station_id(name),
            PROVINSI,
            KABKOTA,
            name,
            DEVICE_CLASSES,
            neighbours=NEIGHBOURS.get(name, ()),
            kabkota_name=KABKOTA_NAME,
        )
        for name in KECAMATAN
    ]


def inventory_csv() -> str:
    lines = ["station,provinsi,kabkota,kecamatan,device_classes,neighbours,kabkota_name"]
    lines += [
        f"{e.station},{e.provinsi},{e.kabkota},{e.kecamatan},{';'.join(e.device_classes)},"
        f"{';'.join(e.neighbours)},{e.kabkota_name}"
        for e in inventory()
    ]
    return "\n".join(lines) + "\n"


def fault_of(kecamatan: str) -> Fault:
    return FAULTS_2016.get(kecamatan, HEALTHY)
