"""One config pipeline: the agent and the collector load their files through the same steps,
expand paths alike and share the [log] table."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pantau.agent import config as aconfig
from pantau.collector import config as cconfig
from pantau.contract import config as base

STATION = '[station]\nid = "s-1"\nprovinsi = "33"\nkabkota = "3310"\n'


@pytest.mark.parametrize("module", [aconfig, cconfig])
def test_same_steps_same_names(module: Any) -> None:
    pipeline = module.PIPELINE
    assert isinstance(pipeline, base.Pipeline)
    assert pipeline.check is module.check
    assert pipeline.resolve_paths is module.resolve_paths
    assert pipeline.file_errors is module.file_errors


def test_paths_expand_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANTAU_TEST_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    written = ["$PANTAU_TEST_DIR/x.pem", "~/x.pem", "rel/x.pem", "/abs/x.pem"]
    expected = [
        str(tmp_path / "from-env/x.pem"),
        str(tmp_path / "home/x.pem"),
        str(tmp_path / "conf/rel/x.pem"),
        "/abs/x.pem",
    ]
    (tmp_path / "conf").mkdir()
    for value, want in zip(written, expected, strict=True):
        agent = aconfig.PIPELINE.from_data(
            {**tomllib.loads(STATION), "mqtt": {"ca_file": value}},
            "a.toml",
            tmp_path / "conf",
            check_files=False,
        )
        collector = cconfig.PIPELINE.from_data(
            {"fleet": {"inventory": value}}, "c.toml", tmp_path / "conf", check_files=False
        )
        assert agent.mqtt.ca_file == collector.fleet.inventory == want


def test_both_read_the_log_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(STATION + '[log]\nlevel = "debug"\n')
    (tmp_path / "c.toml").write_text('[log]\nlevel = "debug"\n')
    assert aconfig.load_config(tmp_path / "a.toml").log == base.LogSettings("debug")
    assert cconfig.load(tmp_path / "c.toml").log == base.LogSettings("debug")
    # The collector's old top-level name still works, alone.
    (tmp_path / "old.toml").write_text('log_level = "error"\n')
    assert cconfig.load(tmp_path / "old.toml").log_level == "error"
    (tmp_path / "both.toml").write_text('log_level = "error"\n[log]\nlevel = "debug"\n')
    with pytest.raises(base.ConfigError, match=r"both.toml: log_level: set log.level only"):
        cconfig.load(tmp_path / "both.toml")
