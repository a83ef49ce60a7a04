"""Grafana dashboards, alert rules (Grafana and Prometheus) and alert routing, as Python data.

Modules:

- :mod:`dashboards.metrics`: metric and label names of the metrics contract.
- :mod:`dashboards.alerts`: every alert, defined once (query, threshold, texts, promtool case).
- :mod:`dashboards.prometheus_rules`: Prometheus rules file and promtool unit tests.
- :mod:`dashboards.grafana_alerting`: Grafana alert rules in the file-provisioning format.
- :mod:`dashboards.routing`: contact points, policies, mute timings; Alertmanager config.
- :mod:`dashboards.boards`: Fleet overview, Station detail and Collector health (grafanalib).
- :mod:`dashboards.build`: render all of it into files; :mod:`dashboards.cli` the command.

Exceptions: :class:`DashboardsError` is the base of every error this package raises on purpose.
"""

from __future__ import annotations


class DashboardsError(Exception):
    """A definition cannot be rendered (bad placeholder, layout overflow, ...)."""


__all__ = ["DashboardsError"]
