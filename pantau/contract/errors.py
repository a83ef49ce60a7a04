"""The root of every exception pantau raises on purpose.

Catching :class:`PantauError` catches every mistake pantau knows how to explain in one line (a
command line prints ``str(exc)`` and exits 2); anything else is a bug. Each part derives its own
errors from it::

    PantauError
    ├── ConfigError               here (and pantau.contract.config): a config file or a file it names
    │   └── SettingsError         pantau.collector.errors (also a CollectorError)
    ├── WireError                 pantau.contract.wire: a payload or topic (also a ValueError)
    ├── InventoryError            pantau.contract.inventory: the inventory CSV (also a ValueError)
    ├── AgentError                pantau.agent.errors
    │   ├── UsbUnavailable
    │   └── SpoolError
    ├── CollectorError            pantau.collector.errors
    │   ├── SettingsError
    │   └── StartupError
    ├── DashboardsError           pantau.dashboards
    ├── ProvisionError            pantau.tools.provision
    └── BrokerError               pantau.tools.broker (also a RuntimeError)

``tests/architecture/test_errors.py`` keeps this true: every exception class defined in a pantau
module derives from :class:`PantauError`.
"""

from __future__ import annotations


class PantauError(Exception):
    """Base of every error pantau raises on purpose (its message is one line)."""


class ConfigError(PantauError):
    """A configuration file is missing, unreadable, not TOML, or has a bad key or value.

    ``str(exc)`` is one line: ``{source}: {key}: {message}`` (``{source}: {message}`` when it
    concerns the whole file). Also importable as :class:`pantau.contract.config.ConfigError`.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)
        self.source = source
        self.key = key
        self.message = message
