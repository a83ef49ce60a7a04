"""Why a file could not be read, in words: the one mapping from an open/read exception to a
one-line reason, used for config files, the inventory, provisioning inputs, secrets and CA files.

Two phrasings, for the two ways a file comes up:

- the file is the subject (``agent.toml: file not found``): :func:`problem`;
- a setting names the file (``agent.toml: mqtt.ca_file: cannot read /x/ca.crt: No such file or
  directory``): :func:`named_problem`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

#: What reading a file may raise for a reason that is the file's, not a bug: OS errors (missing,
#: permission, a directory, name too long, symlink loop, I/O), text that is not UTF-8 and a path
#: with a NUL byte (``ValueError``).
READ_ERRORS: Final = (OSError, UnicodeDecodeError, ValueError)


def problem(exc: BaseException, expected: str = "a file") -> str:
    """``file not found``, ``permission denied``, ``is a directory, expected a TOML file``,
    ``not valid UTF-8 text``, ``not a valid file name`` or ``cannot read: {reason}``."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return f"is a directory, expected {expected}"
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8 text"
    if isinstance(exc, OSError):  # not a directory, name too long, symlink loop, I/O error, ...
        return f"cannot read: {exc.strerror or exc}"
    return "not a valid file name"  # ValueError: a NUL byte in the path


def named_problem(exc: BaseException, name: str) -> str:
    """``cannot read {name}: {reason}``, ``{name} is not UTF-8 text`` or
    ``'{name}' is not a valid file name`` (a setting named the file)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"{name} is not UTF-8 text"
    if isinstance(exc, OSError):
        return f"cannot read {name}: {exc.strerror or exc}"
    return f"{name!r} is not a valid file name"


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's UTF-8 text with line endings as they are (CSV needs them); raises one of
    :data:`READ_ERRORS`."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        return fh.read()
