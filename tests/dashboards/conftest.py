"""Fixtures of the dashboards tests.

``pantau_rules``: the generated alert rules loaded into the session's harness Prometheus with
every ``for`` and the evaluation interval shortened to 1 s, unloaded afterwards. Other test
directories can do the same in two lines::

    from pantau.dashboards.prometheus_rules import write_rules_file
    copied = prometheus.load_rules([write_rules_file(tmp_path / "r.yml", for_override="1s", interval="1s")])
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Prometheus

from pantau.dashboards.prometheus_rules import write_rules_file


@pytest.fixture
def pantau_rules(prometheus: Prometheus, tmp_path: Path) -> Iterator[list[Path]]:
    path = write_rules_file(tmp_path / "pantau.rules.yml", for_override="1s", interval="1s")
    copied = prometheus.load_rules([path])
    try:
        yield copied
    finally:
        prometheus.unload_rules(copied)
