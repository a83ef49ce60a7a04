"""Render :mod:`pantau.dashboards.alerts` as a Prometheus rules file and its promtool unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pantau.dashboards.alerts import Alert, concrete_text, go_template

#: Rule group evaluation interval (Prometheus ``interval``), also the Grafana group interval.
GROUP_INTERVAL = "30s"
RULES_FILE = "pantau.rules.yml"


def _groups(alerts: Iterable[Alert]) -> dict[str, list[Alert]]:
    groups: dict[str, list[Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.group, []).append(alert)
    return groups


def rule(alert: Alert, *, for_override: str | None = None) -> dict[str, Any]:
    for_ = for_override if for_override is not None else alert.for_
    return {
        "alert": alert.name,
        "expr": alert.expr,
        "for": for_,
        "labels": alert.all_labels(),
        "annotations": {k: go_template(v, "$value") for k, v in alert.texts(for_).items()},
    }


def rules_document(
    alerts: Iterable[Alert],
    *,
    interval: str = GROUP_INTERVAL,
    for_override: str | None = None,
) -> dict[str, Any]:
    """The ``groups:`` document. ``for_override`` shortens every ``for`` (end-to-end tests)."""
    return {
        "groups": [
            {
                "name": f"pantau-{name}",
                "interval": interval,
                "rules": [rule(a, for_override=for_override) for a in members],
            }
            for name, members in _groups(alerts).items()
        ]
    }


def _expected(alert: Alert, labels: dict[str, str], value: float) -> dict[str, Any]:
    return {
        "exp_labels": {**labels, **alert.all_labels()},
        "exp_annotations": {k: concrete_text(v, labels, value) for k, v in alert.texts().items()},
    }


def promtool_tests_document(alerts: Iterable[Alert], rule_file: str) -> dict[str, Any]:
    """promtool ``test rules`` document: one test group per alert, from its :class:`Case`."""
    tests = []
    for alert in alerts:
        case = alert.case
        tests.append(
            {
                "name": alert.name,
                "interval": case.interval,
                "input_series": [{"series": s, "values": v} for s, v in case.series],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": alert.name,
                        "exp_alerts": [_expected(alert, dict(e.labels), e.value) for e in expected],
                    }
                    for at, expected in case.checks
                ],
            }
        )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": tests}


def write_rules_file(
    path: Path,
    *,
    alerts: Iterable[Alert] | None = None,
    for_override: str | None = None,
    interval: str = GROUP_INTERVAL,
) -> Path:
    """Write the rules to ``path`` (e.g. to load them into a test Prometheus with short ``for``
    and evaluation ``interval``: ``prometheus.load_rules([write_rules_file(p, for_override="1s",
    interval="1s")])``). Returns ``path``."""
    from pantau.dashboards._yaml import dump_yaml
    from pantau.dashboards.alerts import default_alerts

    chosen = default_alerts() if alerts is None else tuple(alerts)
    doc = rules_document(chosen, interval=interval, for_override=for_override)
    path.write_text(dump_yaml(doc), encoding="utf-8")
    return path
