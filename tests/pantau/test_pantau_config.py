"""pantau.contract.config: every file mistake is a ConfigError naming the file (and key), never a
traceback (the agent and collector CLIs print it as one line and exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from pantau.contract.config import ConfigError, load, read_secret


class Small(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    port: int = 1883


def test_loads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("port = 8883\n")
    assert load(path, Small) == Small(8883)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.toml", "file not found"),
        (lambda d: d, "is a directory"),
        (lambda d: d / "file.toml" / "x", "cannot read: Not a directory"),
        (lambda d: d / ("n" * 300), "cannot read: File name too long"),
        (lambda d: Path(str(d / "a") + "\0b"), "not a valid file name"),
        (lambda d: d / "loop", "cannot read: Too many levels of symbolic links"),
        (lambda d: d / "binary.toml", "not valid UTF-8 text"),
        (lambda d: d / "bad.toml", "not valid TOML"),
    ],
)
def test_file_mistakes_are_config_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file.toml").write_text("port = 1\n")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    (tmp_path / "binary.toml").write_bytes(b"port = \xff\xfe\n")
    (tmp_path / "bad.toml").write_text("port = = 1\n")
    with pytest.raises(ConfigError, match=message):
        load(make(tmp_path), Small)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"\xff\xfe\n", "pw", "is not UTF-8 text"),
        (b"   \n", "pw", "is empty"),
        (None, "missing", "cannot read"),
        (None, "a\0b", "is not a valid file name"),
    ],
)
def test_secret_file_mistakes_name_the_key(
    tmp_path: Path, content: bytes | None, name: str, message: str
) -> None:
    path = tmp_path / name if "\0" not in name else Path(str(tmp_path) + "/" + name)
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as info:
        read_secret(path, "agent.toml", "mqtt.password_file")
    assert str(info.value).startswith("agent.toml: mqtt.password_file: ")


def test_secret_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("s3cret\n")
    assert read_secret(path, "a.toml", "k") == "s3cret"
