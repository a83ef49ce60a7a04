"""Render :mod:`pantau.dashboards.alerts` as Grafana alert rules in the *file provisioning* format.

Documented format (Grafana "Create and manage alerting resources using file provisioning")::

    apiVersion: 1
    groups:
      - orgId, name, folder, interval
        rules:
          - uid, title, condition, data: [{refId, relativeTimeRange, datasourceUid, model}],
            noDataState, execErrState, for, labels, annotations, dashboardUid, panelId

This is deliberately NOT grafanalib's ``AlertRulev9`` output, which is the ruler-API shape
(``grafana_alert: {...}``) that file provisioning does not read.

Each rule has three queries, the shape Grafana's own editor produces: A the Prometheus value
query (instant), B reduce(last) of A, C threshold on B (the condition). ``$values.B.Value`` is
the value the texts show, the same number Prometheus' ``$value`` is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pantau.dashboards import DashboardsError
from pantau.dashboards._panels import DATASOURCE_UID
from pantau.dashboards.alerts import Alert, go_template
from pantau.dashboards.prometheus_rules import GROUP_INTERVAL

#: (dashboard uid, panel title) -> panel id, for the link from a notification to its panel.
PanelIds = Mapping[tuple[str, str], int]
FOLDER = "pantau"
_EXPR = {"type": "__expr__", "uid": "__expr__"}
_THRESHOLD_TYPE = {"<": "lt", ">": "gt"}


def _uid(alert: Alert) -> str:
    # Grafana rule UIDs: at most 40 characters of letters, digits, '-' and '_'.
    return ("pantau-" + alert.name.removeprefix("Pantau").lower())[:40]


def rule(alert: Alert, panel_ids: PanelIds) -> dict[str, Any]:
    data = [
        {
            "refId": "A",
            "relativeTimeRange": {"from": 600, "to": 0},
            "datasourceUid": DATASOURCE_UID,
            "model": {
                "refId": "A",
                "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
                "expr": alert.query,
                "instant": True,
                "range": False,
                "intervalMs": 1000,
                "maxDataPoints": 43200,
            },
        },
        {
            "refId": "B",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": {
                "refId": "B",
                "datasource": _EXPR,
                "type": "reduce",
                "expression": "A",
                "reducer": "last",
            },
        },
        {
            "refId": "C",
            "relativeTimeRange": {"from": 0, "to": 0},
            "datasourceUid": "__expr__",
            "model": {
                "refId": "C",
                "datasource": _EXPR,
                "type": "threshold",
                "expression": "B",
                "conditions": [
                    {
                        "evaluator": {
                            "type": _THRESHOLD_TYPE[alert.op],
                            "params": [alert.threshold],
                        }
                    }
                ],
            },
        },
    ]
    out: dict[str, Any] = {
        "uid": _uid(alert),
        "title": alert.name,
        "condition": "C",
        "data": data,
        # No series means nothing is wrong (the queries return only affected stations).
        "noDataState": "OK",
        "execErrState": "Error",
        "for": alert.for_,
        "labels": alert.all_labels(),
        "annotations": {k: go_template(v, "$values.B.Value") for k, v in alert.texts().items()},
        "isPaused": False,
    }
    if alert.dashboard_uid:
        out["dashboardUid"] = alert.dashboard_uid
        try:
            out["panelId"] = panel_ids[(alert.dashboard_uid, alert.panel)]
        except KeyError:
            raise DashboardsError(
                f"alert {alert.name}: no panel {alert.panel!r} on dashboard {alert.dashboard_uid}"
            ) from None
    return out


def rules_document(alerts: Iterable[Alert], panel_ids: PanelIds) -> dict[str, Any]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.group, []).append(alert)
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": f"pantau-{name}",
                "folder": FOLDER,
                "interval": GROUP_INTERVAL,
                "rules": [rule(a, panel_ids) for a in members],
            }
            for name, members in groups.items()
        ],
    }
