"""pantau.contract.inventory: the shared inventory CSV parser (a table of invalid examples, blackbox style)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pantau.contract.inventory import (
    InventoryEntry,
    InventoryError,
    entries_for_filters,
    filter_matches,
    load_inventory,
    parse_inventory,
    shard_coverage,
)

HEADER = "station,provinsi,kabkota,kecamatan,device_classes\n"


def test_parses_entries_comments_blank_lines_and_bom() -> None:
    text = (
        "\ufeff# Klaten\n"
        + HEADER
        + "\n"
        + "3310-juwiring-01,33,3310,Juwiring,fingerprint;iris;camera;signature\n"
        + "  # a comment\n"
        + '3310-office-01,33,3310,"Klaten Tengah", fingerprint ; camera \n'
        + "3310-server-01,33,3310,Klaten Utara,\n"
    )
    entries = parse_inventory(text, "x.csv")
    assert entries == [
        InventoryEntry(
            "3310-juwiring-01",
            "33",
            "3310",
            "Juwiring",
            ("fingerprint", "iris", "camera", "signature"),
            4,
        ),
        InventoryEntry(
            "3310-office-01", "33", "3310", "Klaten Tengah", ("fingerprint", "camera"), 6
        ),
        InventoryEntry("3310-server-01", "33", "3310", "Klaten Utara", (), 7),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "x.csv: empty inventory: no header line"),
        ("# only a comment\n", "x.csv: empty inventory"),
        ("station,provinsi,kabkota\n", "x.csv:1: expected the header line"),
        (HEADER + "a,33,3310,Bayat\n", "x.csv:2: expected 5 fields"),
        (HEADER + "a b,33,3310,Bayat,camera\n", "x.csv:2: station 'a b' is not a valid id"),
        (HEADER + "a/+,33,3310,Bayat,camera\n", "x.csv:2: station 'a/+' is not a valid id"),
        (HEADER + "a,,3310,Bayat,camera\n", "x.csv:2: provinsi '' is not a valid id"),
        (HEADER + "a,33,#,Bayat,camera\n", "x.csv:2: kabkota '#' is not a valid id"),
        (HEADER + "a,33,3310,,camera\n", "x.csv:2: kecamatan '' must be 1-64"),
        (HEADER + "a,33,3310,Bayat,Camera\n", "x.csv:2: device class 'Camera' is not valid"),
        (HEADER + "a,33,3310,Bayat,camera,iris\n", "x.csv:2: expected 5 fields"),
        (HEADER + "a,33,3310,Bayat,camera;;iris\n", "x.csv:2: device class '' is not valid"),
        (
            HEADER + "a,33,3310,Bayat,camera;camera\n",
            "x.csv:2: device class 'camera' is listed twice",
        ),
        (
            HEADER + "a,33,3310,Bayat,camera\n# x\nb,33,3310,Wedi,\na,33,3310,Cawas,iris\n",
            "x.csv:5: station 'a' already defined on line 2",
        ),
        (HEADER + 'a,33,3310,"Bayat,camera\n', "x.csv:2: not valid CSV"),
        (
            HEADER + "a,33,3310,Bayat," + ";".join(f"c{i}" for i in range(17)) + "\n",
            "x.csv:2: more than 16 distinct device classes",
        ),
    ],
)
def test_invalid_inventories(text: str, message: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(text, "x.csv")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_distinct_classes_bounded_across_file() -> None:
    lines = [f"s{i},33,3310,Bayat,k{i}\n" for i in range(17)]
    with pytest.raises(InventoryError, match=r"x.csv:18: more than 16 distinct"):
        parse_inventory(HEADER + "".join(lines), "x.csv")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InventoryError, match=r"nope.csv: file not found$"):
        load_inventory(missing)
    with pytest.raises(InventoryError, match="is a directory"):
        load_inventory(tmp_path)
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(HEADER.encode() + "a,33,3310,Kab\xe9,camera\n".encode("latin-1"))
    with pytest.raises(InventoryError, match=r"latin1\.csv: not valid UTF-8"):
        load_inventory(bad)
    good = tmp_path / "ok.csv"
    good.write_text(HEADER + "a,33,3310,Bayat,camera\n", encoding="utf-8")
    assert [e.station for e in load_inventory(good)] == ["a"]


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("pantau/v1/#", "pantau/v1/33/3310/s/state", True),
        ("pantau/v1/33/#", "pantau/v1/33/3310/s/state", True),
        ("pantau/v1/33/#", "pantau/v1/34/3310/s/state", False),
        ("pantau/v1/33/+/+/+", "pantau/v1/33/3310/s/state", True),
        ("pantau/v1/33/+/+", "pantau/v1/33/3310/s/state", False),
        ("pantau/v1/+/3310/+/state", "pantau/v1/33/3310/s/state", True),
        ("pantau/v1/+/3310/+/state", "pantau/v1/33/3310/s/status", False),
        ("pantau/v1/33/3310/s/state/#", "pantau/v1/33/3310/s/state", True),
        ("$share/g/pantau/v1/33/#", "pantau/v1/33/3310/s/state", True),
        ("pantau/v1/3", "pantau/v1/33", False),
        ("#", "pantau/v1/33/3310/s/event", True),
    ],
)
def test_filter_matches_mqtt_semantics(topic_filter: str, topic: str, expected: bool) -> None:
    assert filter_matches(topic_filter, topic) is expected


def test_entries_for_filters_and_shard_coverage() -> None:
    entries = parse_inventory(
        HEADER
        + "a,33,3310,Bayat,camera\n"
        + "b,33,3311,Wedi,camera\n"
        + "c,34,3401,Wates,camera\n"
        + "d,35,3501,Pacitan,camera\n",
        "x.csv",
    )
    jateng = entries_for_filters(entries, ["pantau/v1/33/+/+/+"])
    assert [e.station for e in jateng] == ["a", "b"]
    shards = {"one": ["pantau/v1/33/#", "pantau/v1/34/#"], "two": ["pantau/v1/35/+/+/+"]}
    assert shard_coverage(entries, shards) == {
        "a": ["one"],
        "b": ["one"],
        "c": ["one"],
        "d": ["two"],
    }
    overlapping = {"one": ["pantau/v1/33/#"], "two": ["pantau/v1/+/3310/+/+"]}
    coverage = shard_coverage(entries, overlapping)
    assert coverage["a"] == ["one", "two"]
    assert coverage["c"] == []
