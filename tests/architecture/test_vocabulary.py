"""One vocabulary: device names, reasons and limits are declared once, in
``pantau.contract.vocabulary``, and every part shows the same words."""

from __future__ import annotations

import re
from pathlib import Path

from pantau.agent import report
from pantau.agent.checks import login, usb
from pantau.agent.config import MAX_DEVICE_CLASSES as AGENT_MAX_CLASSES
from pantau.collector import fleet
from pantau.collector.config import CollectorConfig
from pantau.contract import inventory, klaten, vocabulary, wire
from pantau.dashboards import alerts
from pantau.dashboards import metrics as m

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for folder in ("agent", "collector", "dashboards", "pantau/contract", "pantau/tools")
    for p in (REPO / folder).rglob("*.py")
    if p.name != "vocabulary.py"
]


def test_agent_report_and_alerts_name_each_class_alike() -> None:
    for cls, (name_id, name_en) in vocabulary.DEVICE_NAMES.items():
        assert report.class_names(cls) == (
            vocabulary.capitalized(name_id),
            vocabulary.capitalized(name_en),
        )
        labels = {"device_class": cls}
        assert alerts.concrete_text("{device_id}", labels, 0) == name_id
        assert alerts.concrete_text("{device_en}", labels, 0) == name_en
    # A class without a name is shown as itself.
    assert report.class_names("printer") == ("printer", "printer")


def test_every_part_uses_the_one_class_list_and_limits() -> None:
    assert klaten.DEVICE_CLASSES == vocabulary.DEVICE_CLASSES
    assert m.DEVICE_CLASSES == vocabulary.DEVICE_CLASSES
    assert CollectorConfig().fleet.device_classes == vocabulary.DEVICE_CLASSES
    assert inventory.MAX_DEVICE_CLASSES == AGENT_MAX_CLASSES == vocabulary.MAX_DEVICE_CLASSES


def test_reasons_come_from_the_vocabulary() -> None:
    assert login.ProbeReason is vocabulary.ProbeReason
    assert {
        usb.MISSING,
        usb.LIBUSB_UNAVAILABLE,
        usb.CHECK_FAILED,
        usb.DRIVER_FAILED,
        usb.NOT_CONFIGURED,
    } == set(vocabulary.PeripheralReason)
    assert (
        *(r.value for r in wire.Reason),
        *vocabulary.FLEET_REJECT_REASONS,
    ) == fleet.REJECT_REASONS


def test_no_second_table_of_names_or_classes() -> None:
    """Source outside the vocabulary spells no device name and no list of the four classes."""
    names = [
        n for pair in vocabulary.DEVICE_NAMES.values() for n in pair if " " in n
    ]  # a table entry
    class_list = re.compile(r"""\(\s*["']fingerprint["'],\s*["']iris["']""")
    offenders = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        lowered = text.lower()
        offenders += [f"{path.relative_to(REPO)}: {n!r}" for n in names if f'"{n}"' in lowered]
        if class_list.search(text):
            offenders.append(f"{path.relative_to(REPO)}: a literal device class list")
    assert offenders == []
