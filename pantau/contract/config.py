"""Strict TOML configuration shared by the agent and collector.

Config classes are msgspec Structs declared with ``forbid_unknown_fields=True`` and ``frozen=True``;
:func:`load` reads a TOML file (stdlib ``tomllib``) and converts it, turning every mistake into a
:class:`ConfigError` whose message names the file and the dotted key, e.g.::

    /etc/pantau/agent.toml: mqtt.port: Expected `int`, got `str`

so that a command-line tool can print one line and exit 2 instead of a traceback.

The agent and the collector load their configs through the same :class:`Pipeline`, step by step:

1. ``read``: the TOML file (:func:`read_toml`), or data given as a dict;
2. ``convert``: types, ranges and unknown keys (:func:`convert`);
3. ``check(cfg, source)``: what types cannot say (cross-field rules), raising the first mistake;
4. ``resolve_paths(cfg, base_dir)``: every file setting through :func:`expand_path` (``$VARS``,
   ``~``, relative to the config file's directory);
5. ``file_errors(cfg, source)``: every named file that cannot be used, one error each; loading
   raises the first (``check_files=False`` skips the step, e.g. for a config built for another
   machine).

Both have a ``[log]`` table (:class:`LogSettings`) applied by :func:`configure_logging`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec

from pantau.contract import files
from pantau.contract.credentials import read_secret, readable_by_others
from pantau.contract.errors import ConfigError

__all__ = [
    "ConfigError",
    "LogSettings",
    "Pipeline",
    "configure_logging",
    "convert",
    "expand_path",
    "load",
    "read_secret",
    "read_toml",
    "readable_by_others",
]

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


# --------------------------------------------------------------------------- the pipeline

C = TypeVar("C", bound=msgspec.Struct)


def expand_path(path: str, base_dir: Path) -> str:
    """A file setting as used: ``$VARS`` and ``~`` expanded, relative to ``base_dir``; empty
    stays empty (not set). An unset variable stays as written (``$CREDENTIALS_DIRECTORY`` outside
    systemd), so the file check can name it."""
    if not path:
        return path
    p = Path(os.path.expandvars(path)).expanduser()
    return os.fspath(p if p.is_absolute() else base_dir / p)


def _no_file_errors(cfg: Any, source: str) -> list[ConfigError]:  # noqa: ARG001 - a step
    return []


@dataclass(frozen=True, slots=True)
class Pipeline(Generic[C]):
    """The steps that turn a TOML file (or parsed data) into a checked config (module doc)."""

    cls: type[C]
    check: Callable[[C, str], None]
    resolve_paths: Callable[[C, Path], C]
    file_errors: Callable[[C, str], list[ConfigError]] = _no_file_errors

    def load(self, path: str | os.PathLike[str], *, check_files: bool = True) -> C:
        """Read a config file; relative paths resolve against its directory."""
        source = os.fspath(path)
        cfg = convert(read_toml(source), self.cls, source)
        return self.finish(cfg, source, Path(source).resolve().parent, check_files=check_files)

    def from_data(
        self,
        data: dict[str, Any],
        source: str,
        base_dir: Path | None = None,
        *,
        check_files: bool = True,
    ) -> C:
        """Parsed TOML data; relative paths resolve against ``base_dir`` (None: left as they
        are, for a config written for another machine)."""
        return self.finish(
            convert(data, self.cls, source), source, base_dir, check_files=check_files
        )

    def finish(self, cfg: C, source: str, base_dir: Path | None, *, check_files: bool = True) -> C:
        """Steps 3-5 on a converted config."""
        self.check(cfg, source)
        if base_dir is not None:
            cfg = self.resolve_paths(cfg, base_dir)
        if check_files and (errors := self.file_errors(cfg, source)):
            raise errors[0]
        return cfg


# --------------------------------------------------------------------------- logging

LogLevel = Literal["debug", "info", "warning", "error"]
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """``[log]``: where and how much the service logs (stderr: journald, WinSW, docker)."""

    level: LogLevel = "info"


def configure_logging(settings: LogSettings, level: str | None = None) -> None:
    """Log to stderr at ``level`` (a command-line override) or the configured level."""
    logging.basicConfig(
        level=(level or settings.level).upper(), format=LOG_FORMAT, stream=sys.stderr
    )
