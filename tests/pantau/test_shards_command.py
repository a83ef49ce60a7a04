"""``pantau shards``: the shipped cluster plan claims every Klaten station once; gaps, overlaps
and bad configs are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pantau.tools import shards

REPO = Path(__file__).resolve().parents[2]
KLATEN = str(REPO / "deploy/inventory/klaten.csv")
WEST = str(REPO / "deploy/cluster/collector-west.toml")
EAST = str(REPO / "deploy/cluster/collector-east.toml")


def test_the_shipped_plan_is_good(capsys: pytest.CaptureFixture[str]) -> None:
    assert shards.main([KLATEN, WEST, EAST]) == 0
    out = capsys.readouterr().out
    assert f"{WEST}: 0 stations" in out
    assert f"{EAST}: 29 stations" in out
    assert "29 of 29 stations claimed exactly once" in out


def test_gaps_and_overlaps_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert shards.main([KLATEN, WEST]) == 1
    assert "3310-juwiring-01: claimed by no shard" in capsys.readouterr().out
    kabupaten = tmp_path / "klaten-only.toml"
    kabupaten.write_text('[mqtt]\ntopics = ["pantau/v1/33/3310/+/+"]\n')
    assert shards.main([KLATEN, EAST, str(kabupaten)]) == 1
    out = capsys.readouterr().out
    assert f"3310-juwiring-01: claimed by {EAST}, {kabupaten}" in out
    assert "0 of 29 stations claimed exactly once" in out


def test_a_bad_config_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\ntopics = ["elsewhere/#"]\n')
    assert shards.main([KLATEN, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"pantau shards: {bad}: mqtt.topics[0]: ")
