"""pantau-agent: peripheral, login and host checks of one recording station, published over MQTT.

Public surface (the rest is internal; docs/agent.md describes all of it):

- :mod:`pantau.agent.config`: the strict TOML config (:func:`~pantau.agent.config.load_config`,
  :func:`~pantau.agent.config.render_toml`).
- :mod:`pantau.agent.service`: :func:`~pantau.agent.service.build_agent` and :class:`~pantau.agent.service.Agent`
  (``run(stop)``, or ``start()``/``round()``/``close()``).
- :mod:`pantau.agent.checks`: the :class:`~pantau.agent.checks.Check` protocol; the readers to inject are
  :class:`~pantau.agent.checks.usb.UsbReader`, :class:`~pantau.agent.checks.host.HostReader` and a prober
  ``(ProbeSettings) -> wire.Probe``.
- :mod:`pantau.agent.simulated`: simulated USB bus, host and probes for the demo and simulations.
- :mod:`pantau.agent.catalog`: known USB match rules per device class (a convenience).
- :mod:`pantau.agent.errors`: :class:`~pantau.agent.errors.AgentError` and its subclasses.
"""

from __future__ import annotations

from pantau import __version__

__all__ = ["__version__"]
