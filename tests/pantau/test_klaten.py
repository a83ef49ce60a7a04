"""The Klaten fleet used by the demo agrees with the shipped example inventory."""

from __future__ import annotations

from pathlib import Path

from pantau.contract import klaten
from pantau.contract.inventory import load_inventory, parse_inventory

ROOT = Path(__file__).resolve().parents[2]


def test_demo_fleet_is_in_the_example_inventory() -> None:
    shipped = {e.station: e for e in load_inventory(ROOT / "deploy/inventory/klaten.csv")}
    for entry in klaten.inventory():
        assert entry.station in shipped, entry.station
        other = shipped[entry.station]
        assert (
            other.provinsi,
            other.kabkota,
            other.kecamatan,
            other.device_classes,
            other.neighbours,
        ) == (
            entry.provinsi,
            entry.kabkota,
            entry.kecamatan,
            entry.device_classes,
            entry.neighbours,
        )


def test_twenty_six_kecamatan_and_five_faults() -> None:
    assert len(set(klaten.KECAMATAN)) == 26
    assert {k for k in klaten.KECAMATAN if klaten.fault_of(k).kind != "healthy"} == {
        "Juwiring",
        "Bayat",
        "Cawas",
        "Gantiwarno",
        "Ceper",
    }
    assert len(parse_inventory(klaten.inventory_csv())) == 26
