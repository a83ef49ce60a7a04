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
import stat
import sys
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pantau.contract.errors import PantauError

T = TypeVar("T")

_AT_RE = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_RE = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`$")
_MISSING_RE = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


class ConfigError(PantauError):
    """A configuration file is missing, unreadable, not TOML, or has a bad key or value."""

    def __init__(self, source: str, key: str, message: str) -> None:
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)
        self.source = source
        self.key = key
        self.message = message


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
    source = os.fspath(path)
    try:
        with open(source, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except PermissionError:
        raise ConfigError(source, "", "permission denied") from None
    except IsADirectoryError:
        raise ConfigError(source, "", "is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not valid UTF-8 text") from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(source, "", "not a valid file name") from None
    except OSError as exc:  # not a directory, name too long, symlink loop, I/O error, ...
        raise ConfigError(source, "", f"cannot read: {exc.strerror or exc}") from None
    return convert(data, cls, source)


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """True if a secret file can be read by group or others (POSIX only; False on Windows)."""
    if sys.platform == "win32":
        return False
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def read_secret(path: str | os.PathLike[str], source: str, key: str) -> str:
    """Read a one-line secret (password) file; errors name the config key that pointed to it."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, key, f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, key, f"{name} is not UTF-8 text") from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(source, key, f"{name!r} is not a valid file name") from None
    secret = text.strip()
    if not secret:
        raise ConfigError(source, key, f"{name} is empty")
    return secret
