"""Names from the metrics contract (docs/collector.md) that dashboards and alerts are built from.

One place for every metric and label name the generated artifacts use, so that a contract change
is one edit here (and the tests that run every query against a real Prometheus catch the rest).
"""

from __future__ import annotations

from typing import Final

from pantau.contract import vocabulary

# --------------------------------------------------------------------------- per-station series
STATION_UP: Final = "pantau_station_up"
STATION_LAST_REPORT: Final = "pantau_station_last_report_timestamp_seconds"
STATION_INFO: Final = "pantau_station_info"
PERIPHERAL_PRESENT: Final = "pantau_peripheral_present"
PERIPHERAL_LAST_CHANGE: Final = "pantau_peripheral_last_change_timestamp_seconds"
LOGIN_UP: Final = "pantau_login_up"
LOGIN_DURATION: Final = "pantau_login_probe_duration_seconds"
#: ``{target, reason}``, always 1: why the last probe failed (or ``ok``).
LOGIN_PROBE_INFO: Final = "pantau_login_probe_info"
HOST_CPU: Final = "pantau_host_cpu_usage_ratio"
HOST_MEM_AVAILABLE: Final = "pantau_host_memory_available_bytes"
HOST_MEM_TOTAL: Final = "pantau_host_memory_total_bytes"
HOST_DISK_FREE: Final = "pantau_host_disk_free_bytes"
HOST_DISK_SIZE: Final = "pantau_host_disk_size_bytes"
HOST_BOOT: Final = "pantau_host_boot_timestamp_seconds"
HOST_CLOCK_SKEW: Final = "pantau_host_clock_skew_seconds"
STATION_EVENTS: Final = "pantau_station_events_total"

# --------------------------------------------------------------------------- collector health
COLLECTOR_REPORTS: Final = "pantau_collector_reports_received_total"
COLLECTOR_REJECTED: Final = "pantau_collector_reports_rejected_total"
COLLECTOR_MQTT: Final = "pantau_collector_mqtt_connected"
COLLECTOR_STATIONS: Final = "pantau_collector_stations"

#: Prometheus job name the collector is scraped under (deploy/prometheus/prometheus.yml).
COLLECTOR_JOB: Final = "pantau-collector"

# --------------------------------------------------------------------------- labels
#: Labels every per-station series carries, outermost region first.
REGION_LABELS: Final = ("provinsi", "kabkota", "kecamatan")
STATION_LABELS: Final = ("station", *REGION_LABELS)

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
