"""The station inventory: which stations exist and which peripherals each must have.

One CSV file is the input of the collector (stations that never reported are still exported, with
``pantau_station_up 0``), of ``pantau provision`` (credentials, ACL, agent configs) and of the
example ``deploy/inventory/klaten.csv``. Format::

    # comment lines start with '#'; blank lines are ignored
    station,provinsi,kabkota,kecamatan,device_classes
    3310-juwiring-01,33,3310,Juwiring,fingerprint;iris;camera;signature

An optional last column ``neighbours`` names, ``;``-separated and nearest first, the kecamatan
where residents can record instead when this station's kecamatan cannot (the fleet report and
the public status page name the ones that can). Each must be a kecamatan of the inventory.
Two more optional columns may follow it, in this order: ``kabkota_name`` (the kabupaten/kota's
name shown on the board, e.g. ``Klaten``; the province's name comes from its code) and
``timezone`` (``WIB``, ``WITA`` or ``WIT``, only where the province's zone is wrong for the
station; empty: the province's).

- ``station``, ``provinsi``, ``kabkota``: topic segments (:data:`pantau.contract.wire.SEGMENT_PATTERN`);
  station ids are unique in the file.
- ``kecamatan``: display name (free text, 1-64 characters, no control characters).
- ``device_classes``: ``;``-separated names like ``fingerprint`` (lower case letters, digits and
  ``_``, starting with a letter), no duplicates; may be empty for a station with no USB kit. At
  most :data:`MAX_DEVICE_CLASSES` distinct classes in the whole file (they become label values).

Parsing is pure (:func:`parse_inventory` takes text); :func:`load_inventory` reads the file. Every
mistake raises :class:`InventoryError` naming the file and the line, e.g.::

    deploy/inventory/klaten.csv:7: station '3310-bayat-01' already defined on line 4

Sharding (docs/scale.md): :func:`entries_for_filters` keeps the stations whose topics a collector
shard's MQTT topic filters match, so each shard exports exactly its part of the inventory, and
:func:`shard_coverage` tells, per station, which shards would claim it (exactly one, or a plan is
wrong).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pantau.contract import files
from pantau.contract.errors import LocatedError
from pantau.contract.vocabulary import DEVICE_CLASS_PATTERN, MAX_DEVICE_CLASSES, TIME_ZONES
from pantau.contract.wire import SEGMENT_PATTERN, topic, valid_segment

HEADER: Final = ("station", "provinsi", "kabkota", "kecamatan", "device_classes")
#: Optional columns after :data:`HEADER`, in this order.
OPTIONAL_COLUMNS: Final = ("neighbours", "kabkota_name", "timezone")
_DEVICE_CLASS_RE: Final = re.compile(DEVICE_CLASS_PATTERN)
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class InventoryError(LocatedError, ValueError):
    """The inventory file is missing, unreadable or has a bad line.

    ``str(exc)`` is one line: ``{source}:{line}: {message}`` (``line`` 0 when it concerns the
    whole file, then the form is ``{source}: {message}``).
    """

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(source, str(line) if line else "", message, sep=":")
        self.line = line


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One expected station."""

    station: str
    provinsi: str
    kabkota: str
    kecamatan: str
    device_classes: tuple[str, ...]
    #: 1-based line number in the source file (for error messages downstream).
    line: int = 0
    #: Kecamatan to record at instead, nearest first (optional column ``neighbours``).
    neighbours: tuple[str, ...] = ()
    #: Display name of the kabupaten/kota, e.g. ``Klaten`` (optional column ``kabkota_name``).
    kabkota_name: str = ""
    #: ``WIB``, ``WITA`` or ``WIT`` when the province's zone is wrong for the station (optional
    #: column ``timezone``; empty: the province's, see :func:`pantau.contract.vocabulary.time_zone`).
    timezone: str = ""


def _fields(raw: str, source: str, lineno: int) -> list[str]:
    try:
        rows = list(csv.reader([raw], strict=True))
    except csv.Error as exc:
        raise InventoryError(source, lineno, f"not valid CSV: {exc}") from None
    return [field.strip() for field in rows[0]] if rows else []


def _valid_kecamatan(name: str) -> bool:
    return bool(name) and len(name) <= 64 and not _CONTROL_RE.search(name)


def _entry(
    fields: list[str], source: str, lineno: int, header: tuple[str, ...] = HEADER
) -> InventoryEntry:
    if len(fields) != len(header):
        raise InventoryError(
            source, lineno, f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}"
        )
    station, provinsi, kabkota, kecamatan, classes_text = fields[: len(HEADER)]
    neighbours: list[str] = []
    if "neighbours" in header:
        text = fields[header.index("neighbours")]
        for part in text.split(";") if text else []:
            name = part.strip()
            if not _valid_kecamatan(name) or name in neighbours:
                raise InventoryError(
                    source,
                    lineno,
                    f"neighbour {name!r} must be a kecamatan name (1-64 printable characters), "
                    "listed once; separate them with ';'",
                )
            neighbours.append(name)
    for name, value in (("station", station), ("provinsi", provinsi), ("kabkota", kabkota)):
        if not valid_segment(value):
            raise InventoryError(
                source,
                lineno,
                f"{name} {value!r} is not a valid id (letters, digits, '.', '_', '-'; "
                f"pattern {SEGMENT_PATTERN})",
            )
    if not _valid_kecamatan(kecamatan):
        raise InventoryError(
            source, lineno, f"kecamatan {kecamatan!r} must be 1-64 printable characters"
        )
    classes: list[str] = []
    for part in classes_text.split(";") if classes_text else []:
        name = part.strip()
        if not _DEVICE_CLASS_RE.match(name):
            raise InventoryError(
                source,
                lineno,
                f"device class {name!r} is not valid (lower case letters, digits, '_'; "
                "separate classes with ';')",
            )
        if name in classes:
            raise InventoryError(source, lineno, f"device class {name!r} is listed twice")
        classes.append(name)
    kabkota_name, zone = _names(fields, header, source, lineno)
    return InventoryEntry(
        station,
        provinsi,
        kabkota,
        kecamatan,
        tuple(classes),
        lineno,
        tuple(neighbours),
        kabkota_name,
        zone,
    )


def _names(fields: list[str], header: tuple[str, ...], source: str, lineno: int) -> tuple[str, str]:
    """The optional ``kabkota_name`` and ``timezone`` columns (empty when absent)."""
    kabkota_name = fields[header.index("kabkota_name")].strip() if "kabkota_name" in header else ""
    if kabkota_name and not _valid_kecamatan(kabkota_name):
        raise InventoryError(
            source, lineno, f"kabkota_name {kabkota_name!r} must be 1-64 printable characters"
        )
    zone = fields[header.index("timezone")].strip().upper() if "timezone" in header else ""
    if zone and zone not in TIME_ZONES:
        raise InventoryError(
            source, lineno, f"timezone {zone!r} must be WIB, WITA or WIT (or empty)"
        )
    return kabkota_name, zone


def _header(fields: list[str], raw: str, source: str, lineno: int) -> tuple[str, ...]:
    names = tuple(f.lower() for f in fields)
    extra = names[len(HEADER) :]
    if names[: len(HEADER)] != HEADER or extra != OPTIONAL_COLUMNS[: len(extra)]:
        optional = "".join(f"[,{c}]" for c in OPTIONAL_COLUMNS)
        raise InventoryError(
            source, lineno, f"expected the header line {','.join(HEADER)!r}{optional}, got {raw!r}"
        )
    return names


def parse_inventory(text: str, source: str = "<inventory>") -> list[InventoryEntry]:
    """Parse inventory CSV text (header required) or raise :class:`InventoryError`."""
    text = text.removeprefix("\ufeff")  # a BOM from spreadsheet exports
    entries: list[InventoryEntry] = []
    seen: dict[str, int] = {}
    all_classes: set[str] = set()
    header: tuple[str, ...] = ()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = _fields(raw, source, lineno)
        if not header:
            header = _header(fields, raw, source, lineno)
            continue
        entry = _entry(fields, source, lineno, header)
        if entry.station in seen:
            raise InventoryError(
                source,
                lineno,
                f"station {entry.station!r} already defined on line {seen[entry.station]}",
            )
        seen[entry.station] = lineno
        all_classes.update(entry.device_classes)
        if len(all_classes) > MAX_DEVICE_CLASSES:
            raise InventoryError(
                source,
                lineno,
                f"more than {MAX_DEVICE_CLASSES} distinct device classes in the inventory",
            )
        entries.append(entry)
    if not header:
        raise InventoryError(source, 0, f"empty inventory: no header line {','.join(HEADER)!r}")
    known = {e.kecamatan for e in entries}
    for e in entries:
        for name in e.neighbours:
            if name not in known:
                raise InventoryError(
                    source, e.line, f"neighbour {name!r} is not a kecamatan of this inventory"
                )
    return entries


def load_inventory(path: str | os.PathLike[str]) -> list[InventoryEntry]:
    """Read and validate an inventory CSV file; errors name the file and the line."""
    source = os.fspath(path)
    try:
        text = files.read_text(source)
    except files.READ_ERRORS as exc:
        raise InventoryError(source, 0, files.problem(exc, "a CSV file")) from None
    return parse_inventory(text, source)


# --------------------------------------------------------------------------- sharding


def filter_matches(topic_filter: str, topic_name: str) -> bool:
    """MQTT topic-filter matching (``+`` one level, ``#`` the rest including the parent level).

    A shared-subscription prefix ``$share/{group}/`` is ignored: it changes who receives a
    message, not which topics match.
    """
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        topic_filter = parts[2] if len(parts) == 3 else ""
    levels = topic_filter.split("/")
    names = topic_name.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return i == len(levels) - 1
        if i >= len(names):
            return False
        if level not in ("+", names[i]):
            return False
    return len(names) == len(levels)


def _claims(entry: InventoryEntry, topic_filters: Iterable[str]) -> bool:
    state = topic(entry.provinsi, entry.kabkota, entry.station, "state")
    status = topic(entry.provinsi, entry.kabkota, entry.station, "status")
    return any(filter_matches(f, state) or filter_matches(f, status) for f in topic_filters)


def entries_for_filters(
    entries: Iterable[InventoryEntry], topic_filters: Iterable[str]
) -> list[InventoryEntry]:
    """The inventory entries whose ``state`` or ``status`` topic one of the filters matches."""
    filters = tuple(topic_filters)
    return [e for e in entries if _claims(e, filters)]


def shard_coverage(
    entries: Iterable[InventoryEntry], shards: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    """Station -> names of the shards whose filters claim it (a good plan: exactly one each)."""
    plan = {name: tuple(filters) for name, filters in shards.items()}
    return {e.station: [n for n, fs in plan.items() if _claims(e, fs)] for e in entries}
