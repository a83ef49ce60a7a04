"""The metric-family table: well formed, and docs/collector.md shows exactly it."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pantau.contract import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "collector.md"
START = "<!-- metrics table: generated from pantau/contract/metrics.py -->\n"
END = "<!-- end of metrics table -->\n"


def test_names_types_and_labels_follow_prometheus_conventions() -> None:
    assert len(metrics.BY_NAME) == len(metrics.FAMILIES)  # no name declared twice
    for f in metrics.FAMILIES:
        assert re.fullmatch(r"pantau_[a-z_]+", f.name), f.name
        assert f.name.endswith("_total") == (f.kind == "counter"), f.name
        assert len(set(f.labels)) == len(f.labels), f.name
        assert all(re.fullmatch(r"[a-z_]+", label) for label in f.labels), f.name
        # HELP text goes into the page verbatim: no backslash or newline to escape.
        assert "\\" not in f.help, f.name
        assert "\n" not in f.help, f.name
        if f.per_station:
            assert f.labels[:4] == metrics.STATION_LABELS, f.name
        else:
            assert not set(f.labels) & set(metrics.STATION_LABELS), f.name


def test_station_families_come_first_in_page_order() -> None:
    assert (*metrics.STATION_FAMILIES, *metrics.COLLECTOR_FAMILIES) == metrics.FAMILIES
    assert metrics.FAMILIES[0] is metrics.STATION_UP
    # Every declared family is in the table (none declared after it was frozen).
    declared = [v for v in vars(metrics).values() if isinstance(v, metrics.Family)]
    assert sorted(declared) == sorted(metrics.FAMILIES)


def test_docs_metrics_table_is_generated_from_the_table() -> None:
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    table, _, tail = rest.partition(END)
    assert table, f"{DOC} lost its generated metrics table markers"
    if os.environ.get("PANTAU_REGEN_DOCS"):
        DOC.write_text(head + START + metrics.markdown_table() + END + tail)
        table = metrics.markdown_table()
    assert table == metrics.markdown_table()
    for f in metrics.FAMILIES:
        assert f"| `{f.name}` |" in table
