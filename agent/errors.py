"""The agent's exceptions.

Hierarchy::

    AgentError                  base of every error the agent raises on purpose (a PantauError)
    ├── UsbUnavailable          no libusb backend (not installed, wrong architecture)
    └── SpoolError              the on-disk spool cannot be opened or written

Configuration mistakes are :class:`pantau.contract.config.ConfigError` (shared with the collector); the
command line turns them into one line and exit code 2.
"""

from __future__ import annotations

from pantau.contract.errors import PantauError


class AgentError(PantauError):
    """Base of the agent's exceptions."""


class UsbUnavailable(AgentError):
    """No usable libusb backend: the USB check cannot enumerate devices."""


class SpoolError(AgentError):
    """The event spool cannot be opened or written."""
