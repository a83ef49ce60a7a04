"""argparse value types shared by the ``pantau`` subcommands: a bad value is a one-line usage
error (exit 2), never a traceback or a silently odd run."""

from __future__ import annotations

import argparse
import math
import re

_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|[0-9A-Fa-f:.]{2,45}")


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    value = _int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return value


def port_or_zero(text: str) -> int:
    """A TCP port, or 0 for "choose one"."""
    return 0 if _int(text) == 0 else port(text)


def interval(text: str) -> float:
    """Seconds between reports: 0.1 s to one day (the agent config's own bounds allow no more)."""
    value = _float(text)
    if not 0.1 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds from 0.1 to 86400")
    return value


def duration(text: str) -> float:
    """A run time in seconds: 0 (no limit) up to a year."""
    value = _float(text)
    if not 0 <= value <= 366 * 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be 0 (no limit) or a number of seconds up to a year"
        )
    return value


def span(text: str) -> float:
    """A positive duration with a unit: ``30s``, ``5m``, ``4h``, ``1d`` (seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        value = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration like 30s, 5m, 4h, 1d"
        ) from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def stations(text: str) -> int:
    """A fleet size: 1 to 100,000 stations (5x a national fleet)."""
    value = _int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fleet size (1-100000)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def valid_host(text: str) -> bool:
    """A DNS name or an IP address literal (what a TLS certificate can name)."""
    return bool(_HOST_RE.fullmatch(text))
