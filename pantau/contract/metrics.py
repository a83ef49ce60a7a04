"""The metric families pantau exports: one table, each family declared once.

Every family of the collector's ``/metrics`` page is one :func:`_family` call below, in the order
of the page. Everything else derives from this table:

- the fast renderer (``pantau.collector.exposition``) takes HELP, TYPE and the label names from
  it and has exactly one sample function per family (a test fails if one is missing);
- the prometheus-client rendering that the tests compare against (``pantau.collector.testing.reference``)
  builds its families from it;
- the dashboards and alert rules (``pantau.dashboards.metrics``) take the metric and label names
  from it;
- the metrics table in docs/collector.md is :func:`markdown_table` (a test keeps it equal).

Adding a metric: one ``_family(...)`` entry here, its sample function in
``pantau.collector.exposition``, the same series in the reference rendering, and a test.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

#: Labels of every per-station series, outermost region last (the station first).
REGION_LABELS: Final = ("provinsi", "kabkota", "kecamatan")
STATION_LABELS: Final = ("station", *REGION_LABELS)

Kind = Literal["gauge", "counter"]


class Family(NamedTuple):
    """One metric family of the exposition."""

    #: As exposed; counters end in ``_total`` (their family name in the text format has no suffix).
    name: str
    kind: Kind
    help: str
    #: Every label of the family's series, in exposition order.
    labels: tuple[str, ...]
    #: True: one series (or more) per station, labelled with :data:`STATION_LABELS` first.
    per_station: bool
    #: What one series stands for (the docs table): ``station``, ``device class``, ...
    per: str

    @property
    def base_name(self) -> str:
        """The family name of the text format (a counter's name without ``_total``)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def extra_labels(self) -> tuple[str, ...]:
        """The labels after the station labels (all labels of a collector family)."""
        return self.labels[len(STATION_LABELS) :] if self.per_station else self.labels


_TABLE: list[Family] = []


def _family(
    name: str, kind: Kind, help: str, *labels: str, per_station: bool = True, per: str = ""
) -> Family:
    """Declare a family (appended to the table in page order)."""
    if per_station:
        labels = (*STATION_LABELS, *labels)
    family = Family(name, kind, help, labels, per_station, per or "station")
    _TABLE.append(family)
    return family


# --------------------------------------------------------------------------- per station
STATION_UP: Final = _family(
    "pantau_station_up",
    "gauge",
    "1 if the station is online and reporting, 0 if offline (will received), overdue or never reported.",
)
STATION_LAST_REPORT: Final = _family(
    "pantau_station_last_report_timestamp_seconds",
    "gauge",
    "Collector receive time of the station's last report (full state or heartbeat).",
)
STATION_INFO: Final = _family(
    "pantau_station_info",
    "gauge",
    "Station metadata (always 1); inventory is yes if the station is in the inventory.",
    "agent_version",
    "os",
    "inventory",
)
PERIPHERAL_PRESENT: Final = _family(
    "pantau_peripheral_present",
    "gauge",
    "1 if every expected device of the class is enumerated.",
    "device_class",
    per="device class",
)
PERIPHERAL_CONFIGURED: Final = _family(
    "pantau_peripheral_configured",
    "gauge",
    "1 if the station's agent config has a rule for the device class; 0 if the inventory expects "
    "the class and nobody looks for it (a configuration problem: no presence is exported then).",
    "device_class",
    per="device class",
)
PERIPHERAL_LAST_CHANGE: Final = _family(
    "pantau_peripheral_last_change_timestamp_seconds",
    "gauge",
    "Collector time when the presence of the device class last changed.",
    "device_class",
    per="device class",
)
PERIPHERAL_PROBLEM: Final = _family(
    "pantau_peripheral_problem_info",
    "gauge",
    "Why an expected device class is not present (missing, driver_failed, libusb_unavailable, "
    "check_failed, not_configured, other); only absent classes have it; always 1.",
    "device_class",
    "reason",
    per="absent device class",
)
LOGIN_UP: Final = _family(
    "pantau_login_up", "gauge", "1 if the login service probe succeeded.", "target", per="target"
)
LOGIN_DURATION: Final = _family(
    "pantau_login_probe_duration_seconds",
    "gauge",
    "Duration of the last login service probe.",
    "target",
    per="target",
)
LOGIN_PROBE_INFO: Final = _family(
    "pantau_login_probe_info",
    "gauge",
    "Reason and cause of the last login service probe (cause: ok, network, tls, denied, "
    "service_error, unexpected; status: the HTTP status or empty); always 1.",
    "target",
    "reason",
    "cause",
    "status",
    per="target",
)
LOGIN_CERT_EXPIRY: Final = _family(
    "pantau_login_cert_expiry_timestamp_seconds",
    "gauge",
    "notAfter of the login server's TLS certificate, as seen by the station's probe.",
    "target",
    per="target",
)
HOST_CPU: Final = _family(
    "pantau_host_cpu_usage_ratio", "gauge", "CPU usage of the station PC (0-1)."
)
HOST_MEM_AVAILABLE: Final = _family(
    "pantau_host_memory_available_bytes", "gauge", "Available memory of the station PC."
)
HOST_MEM_TOTAL: Final = _family(
    "pantau_host_memory_total_bytes", "gauge", "Total memory of the station PC."
)
HOST_DISK_FREE: Final = _family(
    "pantau_host_disk_free_bytes",
    "gauge",
    "Free space on a configured mount of the station PC.",
    "mount",
    per="mount",
)
HOST_DISK_SIZE: Final = _family(
    "pantau_host_disk_size_bytes",
    "gauge",
    "Size of a configured mount of the station PC.",
    "mount",
    per="mount",
)
HOST_BOOT: Final = _family(
    "pantau_host_boot_timestamp_seconds",
    "gauge",
    "Boot time of the station PC (agent clock); reboots show as changes.",
)
HOST_CLOCK_SKEW: Final = _family(
    "pantau_host_clock_skew_seconds",
    "gauge",
    "Agent clock minus collector clock at the last state report.",
)
STATION_PROBLEM_SINCE: Final = _family(
    "pantau_station_problem_since_timestamp_seconds",
    "gauge",
    "Collector time a current problem of the station was first seen (kept across collector "
    "restarts); one series per problem while it lasts.",
    "problem",
    "subject",
    per="problem",
)
STATION_EVENTS: Final = _family(
    "pantau_station_events_total",
    "counter",
    "Events received from the station, by kind.",
    "kind",
    per="event kind",
)

# --------------------------------------------------------------------------- collector health
COLLECTOR_REPORTS: Final = _family(
    "pantau_collector_reports_received_total",
    "counter",
    "MQTT messages received by the collector.",
    per_station=False,
    per="collector",
)
COLLECTOR_REJECTED: Final = _family(
    "pantau_collector_reports_rejected_total",
    "counter",
    "MQTT messages rejected by the collector, by reason.",
    "reason",
    per_station=False,
    per="rejection reason",
)
COLLECTOR_MQTT: Final = _family(
    "pantau_collector_mqtt_connected",
    "gauge",
    "1 if the collector is connected to the MQTT broker.",
    per_station=False,
    per="collector",
)
COLLECTOR_BLIND: Final = _family(
    "pantau_collector_blind",
    "gauge",
    "1 while the collector cannot see the stations (disconnected from the broker, or replaying "
    "retained state after connecting); station staleness is suspended meanwhile.",
    per_station=False,
    per="collector",
)
COLLECTOR_STATIONS: Final = _family(
    "pantau_collector_stations",
    "gauge",
    "Stations known to the collector, by state.",
    "state",
    per_station=False,
    per="station state",
)
COLLECTOR_SEQUENCE_GAPS: Final = _family(
    "pantau_collector_sequence_gaps_total",
    "counter",
    "Sequence numbers missing between consecutive live messages of a station.",
    per_station=False,
    per="collector",
)

#: Every family in page order.
FAMILIES: Final[tuple[Family, ...]] = tuple(_TABLE)
STATION_FAMILIES: Final = tuple(f for f in FAMILIES if f.per_station)
COLLECTOR_FAMILIES: Final = tuple(f for f in FAMILIES if not f.per_station)
BY_NAME: Final = {f.name: f for f in FAMILIES}


def markdown_table() -> str:
    """The metrics table of docs/collector.md (a test keeps the docs equal to it)."""
    rows = [
        "| metric | type | labels (after station, provinsi, kabkota, kecamatan) | one series per | help |",
        "|---|---|---|---|---|",
    ]
    for f in FAMILIES:
        extra = ", ".join(f"`{label}`" for label in f.extra_labels) or "-"
        if not f.per_station:
            extra = f"{extra} (no station labels)"
        rows.append(f"| `{f.name}` | {f.kind} | {extra} | {f.per} | {f.help} |")
    return "\n".join(rows) + "\n"
