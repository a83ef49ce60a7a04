"""Grafana dashboards, alert rules (Grafana and Prometheus) and alert routing, as Python data.

Modules:

- :mod:`pantau.dashboards.metrics`: metric and label names of the metrics contract.
- :mod:`pantau.dashboards.alerts`: every alert, defined once (query, threshold, texts, promtool case).
- :mod:`pantau.dashboards.prometheus_rules`: Prometheus rules file and promtool unit tests.
- :mod:`pantau.dashboards.grafana_alerting`: Grafana alert rules in the file-provisioning format.
- :mod:`pantau.dashboards.routing`: contact points, policies, mute timings; Alertmanager config.
- :mod:`pantau.dashboards.boards`: Fleet overview, Station detail and Collector health (grafanalib).
- :mod:`pantau.dashboards.build`: render all of it into files; :mod:`pantau.dashboards.cli` the command.

Exceptions: :class:`DashboardsError` is the base of every error this package raises on purpose.
"""

from __future__ import annotations

from pantau.contract.errors import PantauError


class DashboardsError(PantauError):
    """A definition cannot be rendered (bad placeholder, layout overflow, ...)."""


__all__ = ["DashboardsError"]
