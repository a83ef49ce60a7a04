"""The /metrics page: the metrics contract of DESIGN.md rendered as Prometheus text format 0.0.4.

:class:`Renderer` builds the text directly from a :class:`~pantau.collector.fleet.Snapshot` (immutable
views, so no lock is held while rendering), one family at a time: the HTTP server streams the
pieces or feeds them to a gzip compressor, so the whole uncompressed page (~70 MB at 20,000
stations) is never held in memory. :mod:`pantau.collector.reference` renders the same families with
prometheus-client; a test asserts both parse to identical families.

Label values come from validated topic segments, the inventory, or bounded report fields; they
are escaped (backslash, double quote, newline). Series counts are bounded: device classes by the
config and inventory, probe targets and disk mounts to :data:`MAX_PER_STATION` per station,
rejection reasons and station states by fixed enumerations.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from pantau.collector.fleet import (
    REJECT_REASONS,
    Snapshot,
    StationView,
    escape_label,
    station_status,
)
from pantau.contract.vocabulary import STATION_STATUSES

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

# (name, type, help) in exposition order. Counters are named with their ``_total`` suffix.
STATION_FAMILIES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "pantau_station_up",
        "gauge",
        "1 if the station is online and reporting, 0 if offline (will received), overdue or never reported.",
    ),
    (
        "pantau_station_last_report_timestamp_seconds",
        "gauge",
        "Collector receive time of the station's last state report.",
    ),
    (
        "pantau_station_info",
        "gauge",
        "Station metadata (always 1); inventory is yes if the station is in the inventory.",
    ),
    (
        "pantau_peripheral_present",
        "gauge",
        "1 if every expected device of the class is enumerated.",
    ),
    (
        "pantau_peripheral_last_change_timestamp_seconds",
        "gauge",
        "Collector time when the presence of the device class last changed.",
    ),
    ("pantau_login_up", "gauge", "1 if the login service probe succeeded."),
    ("pantau_login_probe_duration_seconds", "gauge", "Duration of the last login service probe."),
    (
        "pantau_login_probe_info",
        "gauge",
        "Reason of the last login service probe (ok or why it failed); always 1.",
    ),
    ("pantau_host_cpu_usage_ratio", "gauge", "CPU usage of the station PC (0-1)."),
    ("pantau_host_memory_available_bytes", "gauge", "Available memory of the station PC."),
    ("pantau_host_memory_total_bytes", "gauge", "Total memory of the station PC."),
    ("pantau_host_disk_free_bytes", "gauge", "Free space on a configured mount of the station PC."),
    ("pantau_host_disk_size_bytes", "gauge", "Size of a configured mount of the station PC."),
    (
        "pantau_host_boot_timestamp_seconds",
        "gauge",
        "Boot time of the station PC (agent clock); reboots show as changes.",
    ),
    (
        "pantau_host_clock_skew_seconds",
        "gauge",
        "Agent clock minus collector clock at the last state report.",
    ),
    ("pantau_station_events_total", "counter", "Events received from the station, by kind."),
)
COLLECTOR_FAMILIES: Final[tuple[tuple[str, str, str], ...]] = (
    (
        "pantau_collector_reports_received_total",
        "counter",
        "MQTT messages received by the collector.",
    ),
    (
        "pantau_collector_reports_rejected_total",
        "counter",
        "MQTT messages rejected by the collector, by reason.",
    ),
    (
        "pantau_collector_mqtt_connected",
        "gauge",
        "1 if the collector is connected to the MQTT broker.",
    ),
    ("pantau_collector_stations", "gauge", "Stations known to the collector, by state."),
    (
        "pantau_collector_sequence_gaps_total",
        "counter",
        "Sequence numbers missing between consecutive live messages of a station.",
    ),
)
_N: Final = len(STATION_FAMILIES)


def _header(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


# One function per station family (same order as STATION_FAMILIES): a batch of views -> text.
Views = Sequence[StationView]


def _up(views: Views, now: float, stale: float) -> str:
    return "".join(
        [
            f"pantau_station_up{{{v.labels}}} {1 if station_status(v, now, stale) == 'up' else 0}\n"
            for v in views
        ]
    )


def _last_report(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_station_last_report_timestamp_seconds{{{v.labels}}} {v.state_rx!r}\n"
            for v in views
            if v.report is not None
        ]
    )


def _info(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_station_info{{{v.labels},agent_version="{escape_label(r.agent_version)}",'
            f'os="{escape_label(r.os)}",inventory="{"yes" if v.inventory else "no"}"}} 1\n'
            if (r := v.report) is not None
            else f'pantau_station_info{{{v.labels},agent_version="",os="",'
            f'inventory="{"yes" if v.inventory else "no"}"}} 1\n'
            for v in views
        ]
    )


def _present(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_peripheral_present{{{v.labels},device_class="{p.device_class}"}}'
            f" {1 if p.present else 0}\n"
            for v in views
            if v.report is not None
            for p in v.presence
        ]
    )


def _change(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_peripheral_last_change_timestamp_seconds"
            f'{{{v.labels},device_class="{p.device_class}"}} {p.since!r}\n'
            for v in views
            if v.report is not None
            for p in v.presence
        ]
    )


def _login_up(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_up{{{v.labels},target="{escape_label(t)}"}} {1 if ok else 0}\n'
            for v in views
            if (r := v.report) is not None
            for t, ok, _, _ in r.probes
        ]
    )


def _login_duration(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_duration_seconds{{{v.labels},target="{escape_label(t)}"}} {d!r}\n'
            for v in views
            if (r := v.report) is not None
            for t, _, d, _ in r.probes
        ]
    )


def _login_info(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_info{{{v.labels},target="{escape_label(t)}",reason="{why}"}} 1\n'
            for v in views
            if (r := v.report) is not None
            for t, _, _, why in r.probes
        ]
    )


def _host(index: int, name: str) -> Callable[[Views, float, float], str]:
    def family(views: Views, _now: float, _stale: float) -> str:
        return "".join(
            [
                f"{name}{{{v.labels}}} {h[index]!r}\n"
                for v in views
                if (r := v.report) is not None and (h := r.host) is not None
            ]
        )

    return family


def _disk(index: int, name: str) -> Callable[[Views, float, float], str]:
    def family(views: Views, _now: float, _stale: float) -> str:
        return "".join(
            [
                f'{name}{{{v.labels},mount="{escape_label(d[0])}"}} {d[index]}\n'
                for v in views
                if (r := v.report) is not None
                for d in r.disks
            ]
        )

    return family


def _skew(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_host_clock_skew_seconds{{{v.labels}}} {r.ts - v.state_rx!r}\n"
            for v in views
            if (r := v.report) is not None
        ]
    )


def _events(views: Views, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_station_events_total{{{v.labels},kind="{k}"}} {n}\n'
            for v in views
            for k, n in v.events
        ]
    )


_FAMILY_TEXT: Final[tuple[Callable[[Views, float, float], str], ...]] = (
    _up,
    _last_report,
    _info,
    _present,
    _change,
    _login_up,
    _login_duration,
    _login_info,
    _host(0, "pantau_host_cpu_usage_ratio"),
    _host(1, "pantau_host_memory_available_bytes"),
    _host(2, "pantau_host_memory_total_bytes"),
    _disk(1, "pantau_host_disk_free_bytes"),
    _disk(2, "pantau_host_disk_size_bytes"),
    _host(3, "pantau_host_boot_timestamp_seconds"),
    _skew,
    _events,
)
#: Stations rendered per piece: bounds the memory of one piece to ~1-2 MB.
BATCH: Final = 1000


def collector_text(snapshot: Snapshot) -> str:
    """The collector's own health families."""
    counts = dict.fromkeys(STATION_STATUSES, 0)
    now, stale = snapshot.now, snapshot.stale_after_intervals
    for view in snapshot.stations:
        counts[station_status(view, now, stale)] += 1
    (rx, rej, conn, stations, gaps) = COLLECTOR_FAMILIES
    parts = [_header(*rx), f"{rx[0]} {snapshot.received_total}\n", _header(*rej)]
    parts.extend(
        f'{rej[0]}{{reason="{reason}"}} {snapshot.rejected.get(reason, 0)}\n'
        for reason in REJECT_REASONS
    )
    parts.append(_header(*conn))
    parts.append(f"{conn[0]} {1 if snapshot.mqtt_connected else 0}\n")
    parts.append(_header(*stations))
    parts.extend(f'{stations[0]}{{state="{s}"}} {counts[s]}\n' for s in STATION_STATUSES)
    parts.append(_header(*gaps))
    parts.append(f"{gaps[0]} {snapshot.seq_gaps_total}\n")
    return "".join(parts)


class Renderer:
    """Renders snapshots to text, family by family, without holding the whole page."""

    def __init__(self, *, process_metrics: bool = True) -> None:
        self._process: CollectorRegistry | None = None
        if process_metrics:
            self._process = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=self._process)

    def chunks(self, snapshot: Snapshot) -> Iterator[bytes]:
        """The page in pieces of at most one family each (stream them, or join them)."""
        views = snapshot.stations
        now, stale = snapshot.now, snapshot.stale_after_intervals
        for (name, kind, text), family in zip(STATION_FAMILIES, _FAMILY_TEXT, strict=True):
            header = _header(name, kind, text).encode()
            if family is _up:
                yield header
                header = b""
            for start in range(0, len(views), BATCH):
                body = family(views[start : start + BATCH], now, stale)
                if body:
                    if header:
                        yield header
                        header = b""
                    yield body.encode()
        yield collector_text(snapshot).encode()
        if self._process is not None:
            yield generate_latest(self._process)

    def render(self, snapshot: Snapshot) -> bytes:
        return b"".join(self.chunks(snapshot))

    def render_gzip(self, snapshot: Snapshot, level: int) -> bytes:
        """The page gzip-compressed, never holding more than one family uncompressed."""
        comp = zlib.compressobj(level, zlib.DEFLATED, 31)
        out = [comp.compress(chunk) for chunk in self.chunks(snapshot)]
        out.append(comp.flush())
        return b"".join(out)
