"""The root of every exception pantau raises on purpose.

Catching :class:`PantauError` catches every mistake pantau knows how to explain in one line (a
command line prints ``str(exc)`` and exits 2); anything else is a bug. Each part derives its own
errors from it::

    PantauError
    ├── LocatedError              here: a mistake at a place in a file
    │   ├── ConfigError           here (and pantau.contract.config): a config file or a file it names
    │   │   └── SettingsError     pantau.collector.errors (also a CollectorError)
    │   └── InventoryError        pantau.contract.inventory: the inventory CSV (also a ValueError)
    ├── WireError                 pantau.contract.wire: a payload or topic (also a ValueError)
    ├── AgentError                pantau.agent.errors
    │   ├── UsbUnavailable
    │   └── SpoolError
    ├── CollectorError            pantau.collector.errors
    │   ├── SettingsError
    │   ├── StartupError
    │   └── StateFileError    pantau.collector.durable (also a ValueError)
    ├── DashboardsError           pantau.dashboards
    │   └── HolidayError          pantau.dashboards.availability (also a ValueError)
    ├── ProvisionError            pantau.tools.provision
    ├── ReportError               pantau.tools.report
    └── BrokerError               pantau.tools.broker (also a RuntimeError)

``tests/architecture/test_errors.py`` keeps this true: every exception class defined in a pantau
module derives from :class:`PantauError`.
"""

from __future__ import annotations


class PantauError(Exception):
    """Base of every error pantau raises on purpose (its message is one line)."""


class LocatedError(PantauError):
    """A mistake at a place in a file: ``{source}{sep}{place}: {message}``, or
    ``{source}: {message}`` when it concerns the whole file (``place`` empty)."""

    def __init__(self, source: str, place: str, message: str, sep: str = ": ") -> None:
        super().__init__(f"{source}{sep}{place}: {message}" if place else f"{source}: {message}")
        self.source = source
        self.message = message


class ConfigError(LocatedError):
    """A configuration file is missing, unreadable, not TOML, or has a bad key or value.

    ``str(exc)`` is one line: ``{source}: {key}: {message}`` (``{source}: {message}`` when it
    concerns the whole file). Also importable as :class:`pantau.contract.config.ConfigError`.
    """

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(source, key, message)
        self.key = key


#: Third-party module -> the optional extra of ``pantau`` that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "paho": "agent",
    "psutil": "agent",
    "usb": "agent",
    "prometheus_client": "collector",
    "grafanalib": "dashboards",
    "yaml": "dashboards",
    "matplotlib": "report",
    "reportlab": "report",
    "amqtt": "demo",
}


def missing_extra(program: str, exc: ModuleNotFoundError, default_extra: str) -> str | None:
    """One line naming the extra to install when ``exc`` is a missing third-party dependency
    (``pip install 'pantau[collector]'``), or None when it is not one (a bug: let it raise)."""
    top = (exc.name or "").split(".")[0]
    if not top or top == "pantau":
        return None
    extra = EXTRA_OF_MODULE.get(top, default_extra)
    return (
        f"{program}: the Python module {top!r} is not installed; install the optional "
        f"dependencies with: pip install 'pantau[{extra}]'"
    )
