"""One file-opening error mapping: a config file, the inventory and a provisioning template that
cannot be read get the same one-line reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pantau.agent.config import AgentConfig
from pantau.contract import config, files
from pantau.contract.errors import PantauError
from pantau.contract.inventory import load_inventory
from pantau.tools.provision import load_template

LOADERS: list[Callable[[Path], object]] = [
    lambda p: config.load(p, AgentConfig),
    load_inventory,
    load_template,
]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing", "file not found"),
        (lambda d: d / "file" / "x", "cannot read: Not a directory"),
        (lambda d: Path(str(d / "a") + "\0b"), "not a valid file name"),
        (lambda d: d / "binary", "not valid UTF-8 text"),
    ],
)
@pytest.mark.parametrize("load", LOADERS)
def test_each_loader_gives_the_same_reason(
    tmp_path: Path, make: Callable[[Path], Path], reason: str, load: Callable[[Path], object]
) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    path = make(tmp_path)
    with pytest.raises(PantauError) as err:
        load(path)
    assert str(err.value).endswith(f": {reason}")


def test_a_directory_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(PantauError, match=r"is a directory, expected a CSV file$"):
        load_inventory(tmp_path)
    with pytest.raises(PantauError, match=r"is a directory, expected a TOML file$"):
        config.load(tmp_path, AgentConfig)


def test_named_problem_phrases_a_file_a_setting_names() -> None:
    assert files.named_problem(FileNotFoundError(2, "No such file or directory"), "/x") == (
        "cannot read /x: No such file or directory"
    )
    assert files.named_problem(ValueError("embedded null byte"), "a\0b") == (
        "'a\\x00b' is not a valid file name"
    )
