"""pantau-agent: peripheral, login and host checks of one recording station, published over MQTT.

Public surface (everything else is internal):

- :mod:`agent.config`: the strict TOML config (:func:`~agent.config.load_config`).
- :mod:`agent.catalog`: known USB match rules per device class (a convenience).
- :mod:`agent.errors`: :class:`~agent.errors.AgentError` and its subclasses.
"""

from __future__ import annotations

__version__ = "0.1.0"
