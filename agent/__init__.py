"""pantau-agent: peripheral, login and host checks of one recording station, published over MQTT.

Public surface (the rest is internal; docs/agent.md describes all of it):

- :mod:`agent.config`: the strict TOML config (:func:`~agent.config.load_config`,
  :func:`~agent.config.render_toml`).
- :mod:`agent.service`: :func:`~agent.service.build_agent` and :class:`~agent.service.Agent`
  (``run(stop)``, or ``start()``/``round()``/``close()``).
- :mod:`agent.checks`: the :class:`~agent.checks.Check` protocol; the readers to inject are
  :class:`~agent.checks.usb.UsbReader`, :class:`~agent.checks.host.HostReader` and a prober
  ``(ProbeSettings) -> wire.Probe``.
- :mod:`agent.simulated`: simulated USB bus, host and probes for the demo and simulations.
- :mod:`agent.catalog`: known USB match rules per device class (a convenience).
- :mod:`agent.errors`: :class:`~agent.errors.AgentError` and its subclasses.
"""

from __future__ import annotations

#: Kept equal to the distribution's version (tests/agent/test_agent_config.py checks it).
__version__ = "0.1.0"
