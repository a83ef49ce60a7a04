"""Reference rendering with prometheus-client: a custom Collector yielding metric families.

The straightforward way to export the fleet, used by the tests (the fast renderer in
:mod:`pantau.collector.exposition` must parse to the same families) and by ``bench/collector_render.py``
(the baseline). It reads the same snapshot but builds every family with prometheus-client's
``*MetricFamily`` classes; no code is shared with the fast path except the family table and the
pure status helpers of :mod:`pantau.collector.fleet`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pantau.collector import diagnosis
from pantau.collector.fleet import (
    REJECT_REASONS,
    Snapshot,
    StationView,
    clock_skew,
    last_report,
    problem_reason,
)
from pantau.contract import metrics
from pantau.contract.metrics import Family
from pantau.contract.vocabulary import STATION_STATUSES, PeripheralReason


def _family(family: Family, value: float | None = None) -> GaugeMetricFamily | CounterMetricFamily:
    """A prometheus-client family with the table's name, help and labels (or a single value)."""
    labels = list(family.labels) if value is None else None
    if family.kind == "counter":
        return CounterMetricFamily(family.base_name, family.help, value=value, labels=labels)
    return GaugeMetricFamily(family.name, family.help, value=value, labels=labels)


def _problem_since(
    fam: dict[str, GaugeMetricFamily | CounterMetricFamily],
    view: StationView,
    base: list[str],
    snap: Snapshot,
) -> None:
    for code, subject, since in diagnosis.problem_series(
        view, snap.now, snap.stale_after_intervals
    ):
        fam["pantau_station_problem_since_timestamp_seconds"].add_metric(
            [*base, code, subject], since
        )


def _presence(
    fam: dict[str, GaugeMetricFamily | CounterMetricFamily], view: StationView, base: list[str]
) -> None:
    for p in view.presence:
        cls = p.device_class
        configured = p.reason != PeripheralReason.NOT_CONFIGURED
        fam["pantau_peripheral_configured"].add_metric([*base, cls], int(configured))
        if configured:
            fam["pantau_peripheral_present"].add_metric([*base, cls], 1 if p.present else 0)
            fam["pantau_peripheral_last_change_timestamp_seconds"].add_metric([*base, cls], p.since)
        if not p.present:
            fam["pantau_peripheral_problem_info"].add_metric(
                [*base, cls, problem_reason(p.reason)], 1
            )


class FleetCollector(Collector):
    """Yields the metrics contract for the snapshot returned by ``snapshot_fn``."""

    def __init__(self, snapshot_fn: Callable[[], Snapshot]) -> None:
        self._snapshot_fn = snapshot_fn

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot_fn()
        fam = {f.name: _family(f) for f in metrics.STATION_FAMILIES}
        for view in snap.stations:
            base = [view.station, view.provinsi, view.kabkota, view.kecamatan]
            status = snap.status(view)
            fam["pantau_station_up"].add_metric(base, 1 if status == "up" else 0)
            report = view.report
            inv = "yes" if view.inventory else "no"
            _problem_since(fam, view, base, snap)
            for kind, count in view.events:  # counted whether or not a state came
                fam["pantau_station_events_total"].add_metric([*base, kind], count)
            if report is None:
                fam["pantau_station_info"].add_metric([*base, "", "", inv], 1)
                continue
            fam["pantau_station_last_report_timestamp_seconds"].add_metric(base, last_report(view))
            fam["pantau_station_info"].add_metric([*base, report.agent_version, report.os, inv], 1)
            _presence(fam, view, base)
            for probe in report.probes:
                target = probe.target
                fam["pantau_login_up"].add_metric([*base, target], 1 if probe.up else 0)
                fam["pantau_login_probe_duration_seconds"].add_metric(
                    [*base, target], probe.duration_s
                )
                http = "" if probe.status_code is None else str(probe.status_code)
                fam["pantau_login_probe_info"].add_metric(
                    [*base, target, probe.reason, probe.cause, http], 1
                )
                if probe.cert_expiry_ts is not None:
                    fam["pantau_login_cert_expiry_timestamp_seconds"].add_metric(
                        [*base, target], probe.cert_expiry_ts
                    )
            if report.host is not None:
                cpu, available, total, boot = report.host
                fam["pantau_host_cpu_usage_ratio"].add_metric(base, cpu)
                fam["pantau_host_memory_available_bytes"].add_metric(base, available)
                fam["pantau_host_memory_total_bytes"].add_metric(base, total)
                for mount, free, size in report.disks:
                    fam["pantau_host_disk_free_bytes"].add_metric([*base, mount], free)
                    fam["pantau_host_disk_size_bytes"].add_metric([*base, mount], size)
                fam["pantau_host_boot_timestamp_seconds"].add_metric(base, boot)
            skew = clock_skew(view)
            if skew is not None:
                fam["pantau_host_clock_skew_seconds"].add_metric(base, skew)
        for f in metrics.STATION_FAMILIES:
            if fam[f.name].samples or f is metrics.STATION_UP:
                yield fam[f.name]
        yield from _collector_families(snap)


def _collector_families(snap: Snapshot) -> Iterator[Metric]:
    yield _family(metrics.COLLECTOR_REPORTS, value=snap.received_total)
    rejected = _family(metrics.COLLECTOR_REJECTED)
    for reason in REJECT_REASONS:
        rejected.add_metric([reason], snap.rejected.get(reason, 0))
    yield rejected
    yield _family(metrics.COLLECTOR_MQTT, value=1 if snap.mqtt_connected else 0)
    yield _family(metrics.COLLECTOR_BLIND, value=1 if snap.blind else 0)
    counts = dict.fromkeys(STATION_STATUSES, 0)
    for view in snap.stations:
        counts[snap.status(view)] += 1
    by_state = _family(metrics.COLLECTOR_STATIONS)
    for state in STATION_STATUSES:
        by_state.add_metric([state], counts[state])
    yield by_state
    yield _family(metrics.COLLECTOR_SEQUENCE_GAPS, value=snap.seq_gaps_total)


def reference_render(snapshot: Snapshot) -> bytes:
    """``generate_latest`` over a registry holding only :class:`FleetCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(lambda: snapshot))
    return generate_latest(registry)
