"""The collector's one base exception.

Hierarchy::

    CollectorError            anything the collector refuses to start with (a PantauError)
    +-- SettingsError         a config value that is well-typed but unusable (files, combinations);
                              it subclasses pantau.contract.config.ConfigError, so the CLI prints one line
                              and exits 2 for it like for any other config mistake
    +-- StartupError          the HTTP port cannot be bound, the inventory cannot be read, ...

Malformed MQTT payloads never raise: they are counted by reason (see :mod:`pantau.collector.fleet`).
"""

from __future__ import annotations

from pantau.contract.config import ConfigError
from pantau.contract.errors import PantauError


class CollectorError(PantauError):
    """Base class of the collector's errors."""


class SettingsError(CollectorError, ConfigError):
    """A config value that passed type checks but cannot be used (names file and dotted key)."""


class StartupError(CollectorError):
    """The collector could not start (port in use, unreadable inventory, ...)."""
