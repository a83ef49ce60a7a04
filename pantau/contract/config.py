"""Strict TOML configuration shared by the agent and collector.

Config classes are msgspec Structs declared with ``forbid_unknown_fields=True`` and ``frozen=True``;
:func:`load` reads a TOML file (stdlib ``tomllib``) and converts it, turning every mistake into a
:class:`ConfigError` whose message names the file and the dotted key, e.g.::

    /etc/pantau/agent.toml: mqtt.port: Expected `int`, got `str`

so that a command-line tool can print one line and exit 2 instead of a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any, TypeVar

import msgspec

from pantau.contract import files
from pantau.contract.credentials import read_secret, readable_by_others
from pantau.contract.errors import ConfigError

__all__ = ["ConfigError", "convert", "load", "read_secret", "read_toml", "readable_by_others"]

T = TypeVar("T")

_AT_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def _dotted(path: str) -> str:
    """``.mqtt.targets[1].host`` -> ``mqtt.targets[1].host``."""
    return path.lstrip(".")


def convert(data: dict[str, Any], cls: type[T], source: str) -> T:
    """Convert parsed TOML into ``cls`` or raise :class:`ConfigError` naming the dotted key."""
    try:
        return msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as exc:
        match = _AT_RE.match(str(exc))
        msg = match.group("msg") if match else str(exc)
        path = _dotted(match.group("path") or "") if match else ""
        if m := _UNKNOWN_RE.match(msg):
            key = f"{path}.{m.group('field')}" if path else m.group("field")
            raise ConfigError(source, key, "unknown key (check the spelling)") from None
        if m := _MISSING_RE.match(msg):
            key = f"{path}.{m.group('field')}" if path else m.group("field")
            raise ConfigError(source, key, "required key is missing") from None
        raise ConfigError(source, path, msg[0].lower() + msg[1:] if msg else msg) from None


def load(path: str | os.PathLike[str], cls: type[T]) -> T:
    """Read and validate a TOML config file."""
    return convert(read_toml(path), cls, os.fspath(path))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a TOML file; every problem is a one-line :class:`ConfigError` naming the file."""
    source = os.fspath(path)
    try:
        return tomllib.loads(files.read_text(source))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    except files.READ_ERRORS as exc:
        raise ConfigError(source, "", files.problem(exc, "a TOML file")) from None
