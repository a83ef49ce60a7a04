"""The /metrics page: the families of :mod:`pantau.contract.metrics` as Prometheus text 0.0.4.

:class:`Renderer` builds the text directly from a :class:`~pantau.collector.fleet.Snapshot` (immutable
views, so no lock is held while rendering), one family at a time: the HTTP server streams the
pieces or feeds them to a gzip compressor, so the whole uncompressed page is never held in
memory. The prometheus-client rendering of the tests renders the same families; a test asserts
both parse to identical families.

HELP, TYPE and label names come from the family table; :data:`FAMILY_TEXT` holds the one sample
function per station family. Label values come from validated topic segments, the inventory, or
bounded report fields; escaping them (backslash, double quote, newline) is done here, not in the
fleet model. Series counts are bounded: device classes by the config and inventory, probe targets
and disk mounts to ``MAX_PER_STATION`` per station, rejection reasons and station states by fixed
enumerations.

Sample values that come from reports go through :func:`sample_value`, so that no report can make
the page unparsable for Prometheus (which would lose the whole fleet's scrape, not one series):
the wire contract already bounds every number, and this is the second line of defence for values
that reach the fleet some other way.
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
    last_report,
    problem_reason,
    station_status,
)
from pantau.contract import metrics
from pantau.contract.metrics import Family
from pantau.contract.vocabulary import STATION_STATUSES

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
#: Integers up to this magnitude are printed as they are (exact as doubles).
_EXACT_INT: Final = 2**53


def sample_value(value: object) -> str:
    """``value`` as a sample value that Prometheus' own parser accepts, whatever it is.

    Prometheus reads values with Go's ``strconv.ParseFloat``, which takes every form Python prints
    for a float (``1e+308``, ``inf``, ``nan``, ``-0.0``) but rejects, with a range error, a number
    beyond the largest double: an integer of 310 digits is valid JSON and valid for Python's
    parsers, yet one such sample makes Prometheus reject the whole page. Such integers become the
    nearest double, or ``+Inf``/``-Inf`` beyond that range; a value that is no number is ``NaN``.
    """
    kind = type(value)
    if kind is float:
        return repr(value)
    if kind is int:
        if -_EXACT_INT <= value <= _EXACT_INT:  # type: ignore[operator]
            return str(value)
        try:
            return repr(float(value))  # type: ignore[arg-type]
        except OverflowError:
            return "+Inf" if value > 0 else "-Inf"  # type: ignore[operator]
    if kind is bool:
        return "1" if value else "0"
    if isinstance(value, int | float):  # subclasses (numpy scalars, IntEnum): as a plain number
        try:
            return sample_value(float(value))
        except OverflowError:
            return "+Inf" if value > 0 else "-Inf"
    return "NaN"


def _difference(a: float, b: float) -> str:
    """``a - b`` as a sample value (never raises, whatever ``a`` and ``b`` are)."""
    try:
        return sample_value(a - b)
    except (OverflowError, TypeError):
        return "NaN"


def escape_label(value: str) -> str:
    """Escape a label value for the Prometheus text format (backslash, quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def label_set(view: StationView) -> str:
    """The ``station,provinsi,kabkota,kecamatan`` labels of a station's series, escaped.

    Station ids, provinsi and kabkota are validated topic segments (never need escaping).
    """
    return (
        f'station="{view.station}",provinsi="{view.provinsi}",'
        f'kabkota="{view.kabkota}",kecamatan="{escape_label(view.kecamatan)}"'
    )


def _header(family: Family) -> str:
    return f"# HELP {family.name} {family.help}\n# TYPE {family.name} {family.kind}\n"


# One function per station family: a batch of views and their label sets -> the family's text.
Views = Sequence[StationView]
Labels = Sequence[str]
FamilyText = Callable[[Views, Labels, float, float], str]


def _up(views: Views, labels: Labels, now: float, stale: float) -> str:
    return "".join(
        [
            f"pantau_station_up{{{ls}}} {1 if station_status(v, now, stale) == 'up' else 0}\n"
            for v, ls in zip(views, labels, strict=True)
        ]
    )


def _last_report(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_station_last_report_timestamp_seconds{{{ls}}} {last_report(v)!r}\n"
            for v, ls in zip(views, labels, strict=True)
            if v.report is not None
        ]
    )


def _info(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_station_info{{{ls},agent_version="{escape_label(r.agent_version)}",'
            f'os="{escape_label(r.os)}",inventory="{"yes" if v.inventory else "no"}"}} 1\n'
            if (r := v.report) is not None
            else f'pantau_station_info{{{ls},agent_version="",os="",'
            f'inventory="{"yes" if v.inventory else "no"}"}} 1\n'
            for v, ls in zip(views, labels, strict=True)
        ]
    )


def _present(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_peripheral_present{{{ls},device_class="{p.device_class}"}}'
            f" {1 if p.present else 0}\n"
            for v, ls in zip(views, labels, strict=True)
            if v.report is not None
            for p in v.presence
        ]
    )


def _change(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_peripheral_last_change_timestamp_seconds"
            f'{{{ls},device_class="{p.device_class}"}} {p.since!r}\n'
            for v, ls in zip(views, labels, strict=True)
            if v.report is not None
            for p in v.presence
        ]
    )


def _problem(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_peripheral_problem_info{{{ls},device_class="{p.device_class}",'
            f'reason="{problem_reason(p.reason)}"}} 1\n'
            for v, ls in zip(views, labels, strict=True)
            if v.report is not None
            for p in v.presence
            if not p.present
        ]
    )


def _login_up(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_up{{{ls},target="{escape_label(t)}"}} {1 if ok else 0}\n'
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for t, ok, _, _ in r.probes
        ]
    )


def _login_duration(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_duration_seconds{{{ls},target="{escape_label(t)}"}}'
            f" {d if d.__class__ is float else sample_value(d)}\n"
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for t, _, d, _ in r.probes
        ]
    )


def _login_info(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_info{{{ls},target="{escape_label(t)}",reason="{why}"}} 1\n'
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for t, _, _, why in r.probes
        ]
    )


def _host(index: int, family: Family) -> FamilyText:
    name = family.name

    def text(views: Views, labels: Labels, _now: float, _stale: float) -> str:
        return "".join(
            [
                # the common cases inline (no call): a float, or an int of at most 2**53
                f"{name}{{{ls}}} {x if x.__class__ is float or (x.__class__ is int and -_EXACT_INT <= x <= _EXACT_INT) else sample_value(x)}\n"
                for v, ls in zip(views, labels, strict=True)
                if (r := v.report) is not None and (h := r.host) is not None
                for x in (h[index],)
            ]
        )

    return text


def _disk(index: int, family: Family) -> FamilyText:
    name = family.name

    def text(views: Views, labels: Labels, _now: float, _stale: float) -> str:
        return "".join(
            [
                f'{name}{{{ls},mount="{escape_label(d[0])}"}} '
                f"{x if x.__class__ is int and -_EXACT_INT <= x <= _EXACT_INT else sample_value(x)}\n"
                for v, ls in zip(views, labels, strict=True)
                if (r := v.report) is not None
                for d in r.disks
                for x in (d[index],)
            ]
        )

    return text


def _skew(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_host_clock_skew_seconds{{{ls}}} {_difference(r.ts, v.state_rx)}\n"
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
        ]
    )


def _events(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_station_events_total{{{ls},kind="{k}"}} {n}\n'
            for v, ls in zip(views, labels, strict=True)
            for k, n in v.events
        ]
    )


#: How each per-station family of the table (pantau.contract.metrics) is rendered.
FAMILY_TEXT: Final[dict[Family, FamilyText]] = {
    metrics.STATION_UP: _up,
    metrics.STATION_LAST_REPORT: _last_report,
    metrics.STATION_INFO: _info,
    metrics.PERIPHERAL_PRESENT: _present,
    metrics.PERIPHERAL_LAST_CHANGE: _change,
    metrics.PERIPHERAL_PROBLEM: _problem,
    metrics.LOGIN_UP: _login_up,
    metrics.LOGIN_DURATION: _login_duration,
    metrics.LOGIN_PROBE_INFO: _login_info,
    metrics.HOST_CPU: _host(0, metrics.HOST_CPU),
    metrics.HOST_MEM_AVAILABLE: _host(1, metrics.HOST_MEM_AVAILABLE),
    metrics.HOST_MEM_TOTAL: _host(2, metrics.HOST_MEM_TOTAL),
    metrics.HOST_DISK_FREE: _disk(1, metrics.HOST_DISK_FREE),
    metrics.HOST_DISK_SIZE: _disk(2, metrics.HOST_DISK_SIZE),
    metrics.HOST_BOOT: _host(3, metrics.HOST_BOOT),
    metrics.HOST_CLOCK_SKEW: _skew,
    metrics.STATION_EVENTS: _events,
}
#: Stations rendered per piece: bounds the memory of one piece to ~1-2 MB.
BATCH: Final = 1000


def _collector_series(snapshot: Snapshot) -> dict[Family, list[tuple[str, int]]]:
    """The collector's own families: ``(label set, value)`` per series."""
    counts = dict.fromkeys(STATION_STATUSES, 0)
    now, stale = snapshot.now, snapshot.stale_after_intervals
    for view in snapshot.stations:
        counts[station_status(view, now, stale)] += 1
    return {
        metrics.COLLECTOR_REPORTS: [("", snapshot.received_total)],
        metrics.COLLECTOR_REJECTED: [
            (f'reason="{reason}"', snapshot.rejected.get(reason, 0)) for reason in REJECT_REASONS
        ],
        metrics.COLLECTOR_MQTT: [("", 1 if snapshot.mqtt_connected else 0)],
        metrics.COLLECTOR_STATIONS: [(f'state="{s}"', counts[s]) for s in STATION_STATUSES],
        metrics.COLLECTOR_SEQUENCE_GAPS: [("", snapshot.seq_gaps_total)],
    }


def collector_text(snapshot: Snapshot) -> str:
    """The collector's own health families."""
    parts = []
    for family, series in _collector_series(snapshot).items():
        parts.append(_header(family))
        parts.extend(
            f"{family.name}{{{ls}}} {value}\n" if ls else f"{family.name} {value}\n"
            for ls, value in series
        )
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
        batches = [
            (views[start : start + BATCH], [label_set(v) for v in views[start : start + BATCH]])
            for start in range(0, len(views), BATCH)
        ]
        for family in metrics.STATION_FAMILIES:
            text = FAMILY_TEXT[family]
            header = _header(family).encode()
            if family is metrics.STATION_UP:
                yield header
                header = b""
            for batch, labels in batches:
                body = text(batch, labels, now, stale)
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
