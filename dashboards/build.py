"""Render every generated artifact into ``{relative path: text}``, then write or compare it.

Layout under the output directory (``deploy/`` in the repository)::

    grafana/provisioning/datasources/pantau.yaml           Prometheus datasource (uid pantau-prometheus)
    grafana/provisioning/dashboards/pantau.yaml            dashboard provider
    grafana/provisioning/dashboards/pantau/*.json          the three dashboards
    grafana/provisioning/alerting/pantau-rules.yaml        alert rules (file-provisioning format)
    grafana/provisioning/alerting/pantau-contact-points.yaml
    grafana/provisioning/alerting/pantau-policies.yaml
    grafana/provisioning/alerting/pantau-mute-timings.yaml
    prometheus/prometheus.yml                              scrape + rule_files + alerting
    prometheus/rules/pantau.rules.yml                      the same alerts as Prometheus rules
    prometheus/rules/pantau.rules.test.yml                 promtool unit tests of every alert
    prometheus/rules/pantau.availability.yml               availability recording rules
    alertmanager/alertmanager.yml                          routing, receivers, time intervals
    alertmanager/alertmanager-replicas.yml                 the same for collector replicas (no
                                                           fleet-wide inhibition)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from pantau.dashboards import availability, grafana_alerting, prometheus_rules, routing
from pantau.dashboards import metrics as m
from pantau.dashboards._grafana_json import SCRAPE_INTERVAL
from pantau.dashboards._panels import DATASOURCE_UID
from pantau.dashboards._yaml import dump_json, dump_yaml
from pantau.dashboards.alerts import Alert, default_alerts
from pantau.dashboards.boards import all_dashboards

GRAFANA: Final = "grafana/provisioning"
DASHBOARD_DIR: Final = f"{GRAFANA}/dashboards/pantau"
#: Where the provisioning directory is mounted in the Grafana container.
GRAFANA_MOUNT: Final = "/etc/grafana/provisioning"
RULES_PATH: Final = "prometheus/rules/pantau.rules.yml"
RULES_TEST_PATH: Final = "prometheus/rules/pantau.rules.test.yml"
AVAILABILITY_PATH: Final = "prometheus/rules/pantau.availability.yml"
#: Public holidays (whole local days outside office hours), read by ``pantau dashboards build``.
HOLIDAYS_PATH: Final = "prometheus/holidays.txt"
ALERTMANAGER_PATH: Final = "alertmanager/alertmanager.yml"
#: For deployments with collector replicas (deploy/compose.nats.yaml, docs/scale.md).
ALERTMANAGER_REPLICAS_PATH: Final = "alertmanager/alertmanager-replicas.yml"
#: Service names of the compose stack (deploy/compose).
PROMETHEUS_URL: Final = "http://prometheus:9090"
ALERTMANAGER_TARGET: Final = "alertmanager:9093"
COLLECTOR_TARGET: Final = "collector:9108"


def datasources() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "type": "prometheus",
                "uid": DATASOURCE_UID,
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": SCRAPE_INTERVAL, "httpMethod": "POST"},
            }
        ],
    }


def dashboard_provider() -> dict[str, Any]:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "pantau",
                "orgId": 1,
                "folder": "pantau",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": f"{GRAFANA_MOUNT}/dashboards/pantau"},
            }
        ],
    }


def prometheus_config() -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "30s"},
        "rule_files": ["rules/pantau.rules.yml", "rules/pantau.availability.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ALERTMANAGER_TARGET]}]}]},
        "scrape_configs": [
            {
                "job_name": m.COLLECTOR_JOB,
                "static_configs": [{"targets": [COLLECTOR_TARGET]}],
            },
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        ],
    }


def render(
    alerts: tuple[Alert, ...] | None = None, holidays: Sequence[dt.date] = ()
) -> dict[str, str]:
    """Every generated file: path relative to the output directory -> content."""
    alerts = default_alerts() if alerts is None else alerts
    files: dict[str, str] = {
        f"{GRAFANA}/datasources/pantau.yaml": dump_yaml(datasources()),
        f"{GRAFANA}/dashboards/pantau.yaml": dump_yaml(dashboard_provider()),
    }
    boards = all_dashboards()
    for slug, board in boards.items():
        files[f"{DASHBOARD_DIR}/{slug}.json"] = dump_json(board)
    panel_ids = {(b["uid"], p["title"]): p["id"] for b in boards.values() for p in b["panels"]}
    files[f"{GRAFANA}/alerting/pantau-rules.yaml"] = dump_yaml(
        grafana_alerting.rules_document(alerts, panel_ids)
    )
    files[f"{GRAFANA}/alerting/pantau-contact-points.yaml"] = dump_yaml(
        routing.grafana_contact_points()
    )
    files[f"{GRAFANA}/alerting/pantau-policies.yaml"] = dump_yaml(routing.grafana_policies())
    files[f"{GRAFANA}/alerting/pantau-mute-timings.yaml"] = dump_yaml(
        routing.grafana_mute_timings()
    )
    files["prometheus/prometheus.yml"] = dump_yaml(prometheus_config())
    files[RULES_PATH] = dump_yaml(prometheus_rules.rules_document(alerts))
    files[RULES_TEST_PATH] = dump_yaml(
        prometheus_rules.promtool_tests_document(alerts, Path(RULES_PATH).name)
    )
    files[AVAILABILITY_PATH] = dump_yaml(availability.rules_document(holidays))
    files[ALERTMANAGER_PATH] = dump_yaml(routing.alertmanager_config())
    files[ALERTMANAGER_REPLICAS_PATH] = dump_yaml(routing.alertmanager_config(replicas=True))
    return files


def write(out: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` under ``out``; remove stale dashboards. Returns the paths written."""
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    board_dir = out / DASHBOARD_DIR
    for stale in board_dir.glob("*.json"):
        if f"{DASHBOARD_DIR}/{stale.name}" not in files:
            stale.unlink()
    return written


def differences(out: Path, files: dict[str, str]) -> list[str]:
    """Relative paths that are missing, different, or stale (an extra dashboard) under ``out``."""
    diffs = []
    for rel, text in files.items():
        path = out / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            diffs.append(rel)
    board_dir = out / DASHBOARD_DIR
    diffs += [
        f"{DASHBOARD_DIR}/{p.name}"
        for p in sorted(board_dir.glob("*.json"))
        if f"{DASHBOARD_DIR}/{p.name}" not in files
    ]
    return diffs
