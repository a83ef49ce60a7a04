"""Metric and label names the dashboards and alerts are built from.

They derive from the one metric-family table, :mod:`pantau.contract.metrics` (names, labels,
help and types are declared there only); a contract change is one edit there, and the tests that
run every query against a real Prometheus catch the rest.
"""

from __future__ import annotations

from typing import Final

from pantau.contract import metrics as _fam
from pantau.contract import vocabulary

# --------------------------------------------------------------------------- per-station series
STATION_UP: Final = _fam.STATION_UP.name
STATION_LAST_REPORT: Final = _fam.STATION_LAST_REPORT.name
STATION_INFO: Final = _fam.STATION_INFO.name
PERIPHERAL_PRESENT: Final = _fam.PERIPHERAL_PRESENT.name
PERIPHERAL_LAST_CHANGE: Final = _fam.PERIPHERAL_LAST_CHANGE.name
PERIPHERAL_PROBLEM: Final = _fam.PERIPHERAL_PROBLEM.name
PERIPHERAL_CONFIGURED: Final = _fam.PERIPHERAL_CONFIGURED.name
LOGIN_UP: Final = _fam.LOGIN_UP.name
LOGIN_DURATION: Final = _fam.LOGIN_DURATION.name
LOGIN_PROBE_INFO: Final = _fam.LOGIN_PROBE_INFO.name
LOGIN_CERT_EXPIRY: Final = _fam.LOGIN_CERT_EXPIRY.name
HOST_CPU: Final = _fam.HOST_CPU.name
HOST_MEM_AVAILABLE: Final = _fam.HOST_MEM_AVAILABLE.name
HOST_MEM_TOTAL: Final = _fam.HOST_MEM_TOTAL.name
HOST_DISK_FREE: Final = _fam.HOST_DISK_FREE.name
HOST_DISK_SIZE: Final = _fam.HOST_DISK_SIZE.name
HOST_BOOT: Final = _fam.HOST_BOOT.name
HOST_CLOCK_SKEW: Final = _fam.HOST_CLOCK_SKEW.name
STATION_PROBLEM_SINCE: Final = _fam.STATION_PROBLEM_SINCE.name
STATION_EVENTS: Final = _fam.STATION_EVENTS.name

# --------------------------------------------------------------------------- collector health
COLLECTOR_REPORTS: Final = _fam.COLLECTOR_REPORTS.name
COLLECTOR_REJECTED: Final = _fam.COLLECTOR_REJECTED.name
COLLECTOR_MQTT: Final = _fam.COLLECTOR_MQTT.name
COLLECTOR_BLIND: Final = _fam.COLLECTOR_BLIND.name
COLLECTOR_STATIONS: Final = _fam.COLLECTOR_STATIONS.name
COLLECTOR_SEQUENCE_GAPS: Final = _fam.COLLECTOR_SEQUENCE_GAPS.name

#: Prometheus job name the collector is scraped under (deploy/prometheus/prometheus.yml).
COLLECTOR_JOB: Final = "pantau-collector"

# --------------------------------------------------------------------------- labels
#: Labels every per-station series carries.
REGION_LABELS: Final = _fam.REGION_LABELS
STATION_LABELS: Final = _fam.STATION_LABELS

#: Known device classes with their names in Bahasa Indonesia and English (the one table in
#: :mod:`pantau.contract.vocabulary`). The collector may export other (configured) classes;
#: texts then fall back to the raw class name.
DEVICE_NAMES: Final = vocabulary.DEVICE_NAMES
DEVICE_CLASSES: Final = vocabulary.DEVICE_CLASSES


def selector(metric: str, **matchers: str) -> str:
    """``metric{a="x",b=~"y"}``: a value starting with ``~`` is a regex match."""
    parts = []
    for label, value in matchers.items():
        op, val = ("=~", value[1:]) if value.startswith("~") else ("=", value)
        parts.append(f'{label}{op}"{val}"')
    return f"{metric}{{{','.join(parts)}}}" if parts else metric
