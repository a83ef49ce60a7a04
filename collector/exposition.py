"""The /metrics page: the families of :mod:`pantau.contract.metrics` as Prometheus text 0.0.4.

:class:`Renderer` builds the text directly from a :class:`~pantau.collector.fleet.Snapshot` (immutable
views, so the fleet lock is not held while rendering) and keeps it, compressed, per chunk of
stations and family: a scrape re-renders only the blocks whose stations changed and otherwise
copies (see "cached blocks" below). The whole uncompressed page is never held in memory. The
prometheus-client rendering of the tests renders the same families; a test asserts both parse
to identical families.

HELP, TYPE and label names come from the family table; :data:`RENDER` holds the one sample
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

import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final, NamedTuple

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from pantau.collector.diagnosis import NOT_CONFIGURED, problem_series
from pantau.collector.fleet import (
    REJECT_REASONS,
    Report,
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


def _up_in(snapshot: Snapshot) -> FamilyText:
    """``pantau_station_up`` by the snapshot's status (staleness suspended while blind)."""
    status = snapshot.status

    def up(views: Views, labels: Labels, _now: float, _stale: float) -> str:
        return "".join(
            [
                f"pantau_station_up{{{ls}}} {1 if status(v) == 'up' else 0}\n"
                for v, ls in zip(views, labels, strict=True)
            ]
        )

    return up


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
            if p.reason != NOT_CONFIGURED  # nobody looks for it: presence unknown
        ]
    )


def _configured(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_peripheral_configured{{{ls},device_class="{p.device_class}"}}'
            f" {0 if p.reason == NOT_CONFIGURED else 1}\n"
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
            if p.reason != NOT_CONFIGURED
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
            for t, ok, *_ in r.probes
        ]
    )


def _login_duration(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_duration_seconds{{{ls},target="{escape_label(t)}"}}'
            f" {d if d.__class__ is float else sample_value(d)}\n"
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for t, _, d, *_ in r.probes
        ]
    )


def _login_info(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f'pantau_login_probe_info{{{ls},target="{escape_label(p.target)}",reason="{p.reason}",'
            f'cause="{p.cause}",status="{"" if p.status_code is None else p.status_code}"}} 1\n'
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for p in r.probes
        ]
    )


def _cert_expiry(views: Views, labels: Labels, _now: float, _stale: float) -> str:
    return "".join(
        [
            f"pantau_login_cert_expiry_timestamp_seconds"
            f'{{{ls},target="{escape_label(p.target)}"}} {p.cert_expiry_ts!r}\n'
            for v, ls in zip(views, labels, strict=True)
            if (r := v.report) is not None
            for p in r.probes
            if p.cert_expiry_ts is not None
        ]
    )


def _problem_since(views: Views, labels: Labels, now: float, stale: float) -> str:
    return "".join(
        [
            f'pantau_station_problem_since_timestamp_seconds{{{ls},problem="{code}",'
            f'subject="{escape_label(subject)}"}} {since!r}\n'
            for v, ls in zip(views, labels, strict=True)
            for code, subject, since in problem_series(v, now, stale)
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


# What a family's text depends on (besides the station's label set, whose change re-renders
# every family of the station). :func:`_changed_parts` finds the parts that differ between two
# views of a station; a cached block is re-rendered only if one of its family's parts changed.
STATUS: Final = 1 << 0  # station_status() at the scrape's clock
RECEIVED: Final = 1 << 1  # state_rx
INFO: Final = 1 << 2  # agent_version, os, inventory
PRESENCE: Final = 1 << 3
PROBES: Final = 1 << 4
CPU: Final = 1 << 5
MEM_AVAILABLE: Final = 1 << 6
MEM_TOTAL: Final = 1 << 7
BOOT: Final = 1 << 8
DISKS: Final = 1 << 9
AGENT_CLOCK: Final = 1 << 10  # report.ts
EVENTS: Final = 1 << 11
REGION: Final = 1 << 12  # station, provinsi, kabkota, kecamatan: the label set
HEARD: Final = 1 << 13  # last_report(): the last state or heartbeat
SINCE: Final = 1 << 14  # first-seen times of problems (since, known/offline_since, last_seen)
EVERYTHING: Final = (1 << 15) - 1


class FamilyRender(NamedTuple):
    """How a per-station family is rendered: its text for a batch, and what that depends on."""

    text: FamilyText
    depends: int


#: How each per-station family of the table (pantau.contract.metrics) is rendered, in page order.
RENDER: Final[dict[Family, FamilyRender]] = {
    metrics.STATION_UP: FamilyRender(_up, STATUS),
    metrics.STATION_LAST_REPORT: FamilyRender(_last_report, HEARD),
    metrics.STATION_INFO: FamilyRender(_info, INFO),
    metrics.PERIPHERAL_PRESENT: FamilyRender(_present, PRESENCE),
    metrics.PERIPHERAL_CONFIGURED: FamilyRender(_configured, PRESENCE),
    metrics.PERIPHERAL_LAST_CHANGE: FamilyRender(_change, PRESENCE),
    metrics.PERIPHERAL_PROBLEM: FamilyRender(_problem, PRESENCE),
    metrics.LOGIN_UP: FamilyRender(_login_up, PROBES),
    metrics.LOGIN_DURATION: FamilyRender(_login_duration, PROBES),
    metrics.LOGIN_PROBE_INFO: FamilyRender(_login_info, PROBES),
    metrics.LOGIN_CERT_EXPIRY: FamilyRender(_cert_expiry, PROBES),
    metrics.HOST_CPU: FamilyRender(_host(0, metrics.HOST_CPU), CPU),
    metrics.HOST_MEM_AVAILABLE: FamilyRender(_host(1, metrics.HOST_MEM_AVAILABLE), MEM_AVAILABLE),
    metrics.HOST_MEM_TOTAL: FamilyRender(_host(2, metrics.HOST_MEM_TOTAL), MEM_TOTAL),
    metrics.HOST_DISK_FREE: FamilyRender(_disk(1, metrics.HOST_DISK_FREE), DISKS),
    metrics.HOST_DISK_SIZE: FamilyRender(_disk(2, metrics.HOST_DISK_SIZE), DISKS),
    metrics.HOST_BOOT: FamilyRender(_host(3, metrics.HOST_BOOT), BOOT),
    metrics.HOST_CLOCK_SKEW: FamilyRender(_skew, RECEIVED | AGENT_CLOCK),
    metrics.STATION_PROBLEM_SINCE: FamilyRender(_problem_since, STATUS | PRESENCE | PROBES | SINCE),
    metrics.STATION_EVENTS: FamilyRender(_events, EVENTS),
}
_HOST_PARTS: Final = (CPU, MEM_AVAILABLE, MEM_TOTAL, BOOT)


def _changed_parts(a: StationView, b: StationView) -> int:
    """The parts (bit mask) in which two views of a station differ. Cheap: called per change.

    Views of one station share their strings and unchanged tuples (the fleet replaces only what
    a message changed), so identity is tested before equality.
    """
    if (
        (a.station is not b.station and a.station != b.station)
        or (a.kecamatan is not b.kecamatan and a.kecamatan != b.kecamatan)
        or (a.kabkota is not b.kabkota and a.kabkota != b.kabkota)
        or (a.provinsi is not b.provinsi and a.provinsi != b.provinsi)
    ):
        return EVERYTHING
    parts = 0
    if a.events is not b.events and a.events != b.events:
        parts = EVENTS
    if a.inventory is not b.inventory:
        parts |= INFO
    if a.beat_rx != b.beat_rx or a.state_rx != b.state_rx:
        parts |= HEARD
    if (
        (a.since is not b.since and a.since != b.since)
        or a.known_since != b.known_since
        or a.offline_since != b.offline_since
        or a.last_seen != b.last_seen  # a stale station's "since" counts from its last message
    ):
        parts |= SINCE
    ra, rb = a.report, b.report
    if ra is rb:
        return parts
    if ra is None or rb is None:
        return EVERYTHING  # with a report come the series of every family
    if a.state_rx != b.state_rx:
        parts |= RECEIVED
    if a.presence is not b.presence and a.presence != b.presence:
        parts |= PRESENCE
    return parts | _report_parts(ra, rb)


def _report_parts(ra: Report, rb: Report) -> int:
    parts = AGENT_CLOCK if ra.ts != rb.ts else 0
    if (ra.agent_version is not rb.agent_version and ra.agent_version != rb.agent_version) or (
        ra.os is not rb.os and ra.os != rb.os
    ):
        parts |= INFO
    if ra.probes is not rb.probes and ra.probes != rb.probes:
        parts |= PROBES
    if ra.disks is not rb.disks and ra.disks != rb.disks:
        parts |= DISKS
    ha, hb = ra.host, rb.host
    if ha != hb:
        if ha is None or hb is None:
            return parts | CPU | MEM_AVAILABLE | MEM_TOTAL | BOOT
        for i, part in enumerate(_HOST_PARTS):
            if ha[i] != hb[i]:
                parts |= part
    return parts


def _collector_text(snapshot: Snapshot, counts: Mapping[str, int]) -> str:
    """The collector's own families; ``counts``: stations per status."""
    series: dict[Family, list[tuple[str, int]]] = {
        metrics.COLLECTOR_REPORTS: [("", snapshot.received_total)],
        metrics.COLLECTOR_REJECTED: [
            (f'reason="{reason}"', snapshot.rejected.get(reason, 0)) for reason in REJECT_REASONS
        ],
        metrics.COLLECTOR_MQTT: [("", 1 if snapshot.mqtt_connected else 0)],
        metrics.COLLECTOR_BLIND: [("", 1 if snapshot.blind else 0)],
        metrics.COLLECTOR_STATIONS: [(f'state="{s}"', counts[s]) for s in STATION_STATUSES],
        metrics.COLLECTOR_SEQUENCE_GAPS: [("", snapshot.seq_gaps_total)],
    }
    assert list(series) == list(metrics.COLLECTOR_FAMILIES)  # noqa: S101 - the table's order
    parts = []
    for family, rows in series.items():
        parts.append(_header(family))
        parts.extend(
            f"{family.name}{{{ls}}} {value}\n" if ls else f"{family.name} {value}\n"
            for ls, value in rows
        )
    return "".join(parts)


# --------------------------------------------------------------------------- cached blocks
#
# A scrape's cost follows what changed, not the fleet's size. The stations are cut into chunks of
# CHUNK (by their position in the snapshot); per chunk and family the renderer keeps the text as
# a compressed *block*: raw deflate data ending in a full flush (byte aligned, no reference to
# anything before it), with the CRC-32 and length of its text. Any sequence of such blocks is a
# valid deflate stream, so a gzip page is a 10-byte header, the blocks in page order, an empty
# final block and a trailer whose CRC is combined from the blocks' CRCs: one gzip member, which
# every client decodes (Prometheus, curl --compressed, browsers, Python). A plain-text scrape
# inflates the same blocks. A block is re-rendered only when a station of its chunk changed in a
# part its family depends on (RENDER[...].depends), or its up/down status did.

#: Stations per cached block: a change re-renders the blocks of its chunk (in the families it
#: touches), so small chunks keep that proportional to change; each block is compressed alone,
#: so tiny ones compress worse and cost a flush each (32, 64 and 128 measured at 100,000
#: stations: 64 was fastest with heartbeats and 1-10% changing; docs/performance.md).
CHUNK: Final = 64
#: Blocks per CRC run: the CRC-32 of a run of blocks is kept until one of them changes, so the
#: page's CRC combines ~blocks/RUN values instead of one per block.
RUN: Final = 16
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, OS unknown
_FINAL_BLOCK: Final = b"\x03\x00"  # an empty final deflate block (fixed Huffman)
_CRC_POLY: Final = 0xEDB88320
_X0: Final = 0x80000000  # the polynomial 1 in zlib's reflected bit order


def _multmodp(a: int, b: int) -> int:
    """a x b modulo the CRC-32 polynomial (reflected; zlib's multmodp)."""
    m = _X0
    p = 0
    while True:
        if a & m:
            p ^= b
            if (a & (m - 1)) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


def _x8n(n: int) -> int:
    """x^(8n) modulo the CRC-32 polynomial."""
    # crc32(0^n, c) ^ crc32(0^n, 0) is c x x^(8n) for any c (the pre- and post-inversions of the
    # CRC cancel), so c = 1 gives x^(8n); zlib computes it at C speed.
    zeros = bytes(n)
    return zlib.crc32(zeros, _X0) ^ zlib.crc32(zeros, 0)


def crc32_combine_py(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc32(A), crc32(B) and len(B): pure Python (slow, ~10 us)."""
    return _multmodp(_x8n(len2), crc1) ^ crc2


def _libz_crc32_combine() -> Callable[[int, int, int], int]:
    """zlib's own ``crc32_combine64`` (C, O(log n)) if the zlib library can be loaded."""
    import ctypes  # only the renderer needs it
    import ctypes.util

    # find_library runs ldconfig: asked only when the usual names do not load.
    for name in ("libz.so.1", "libz.dylib", "zlib1.dll", None):
        name = name or ctypes.util.find_library("z")  # noqa: PLW2901
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).crc32_combine64
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_ulong
        fn.argtypes = (ctypes.c_ulong, ctypes.c_ulong, ctypes.c_int64)
        a, b = b"pantau", b"/metrics" * 5000
        if fn(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b):
            return fn
    return crc32_combine_py


#: ``crc32_combine(crc(A), crc(B), len(B)) == crc(A + B)``.
crc32_combine: Final = _libz_crc32_combine()


class Block(NamedTuple):
    """A piece of the page: self-contained raw deflate data, and the CRC and size of its text."""

    data: bytes
    crc: int
    size: int


def _block(comp: zlib._Compress, text: bytes) -> Block:
    data = comp.compress(text) + comp.flush(zlib.Z_FULL_FLUSH)
    return Block(data, zlib.crc32(text), len(text))


def _combine(blocks: Sequence[Block | None]) -> Block:
    """CRC and size of consecutive blocks (their data is not joined: a run's ``data`` is empty)."""
    crc, size = 0, 0
    combine = crc32_combine
    for b in blocks:
        if b is not None and b.size:
            crc = combine(crc, b.crc, b.size)
            size += b.size
    return Block(b"", crc, size)


_EMPTY_RUN: Final = Block(b"", 0, 0)


class Renderer:
    """Renders snapshots to the /metrics page, re-rendering only what changed since the last.

    Thread-safe (scrapes take turns on the cache). Memory: the compressed page (~0.3 KB per
    station), a label set per station and references to the views of the last scrape.
    """

    def __init__(self, *, process_metrics: bool = True, level: int = 1) -> None:
        self._process: CollectorRegistry | None = None
        if process_metrics:
            self._process = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=self._process)
        self._lock = threading.Lock()
        self._level = 0
        self._set_level(level)
        #: Station blocks re-rendered by the last scrape, and all of them (bench, tests).
        self.last_rendered = (0, 0)

    def _set_level(self, level: int) -> None:
        """Compress at ``level`` from now on (the cache starts over)."""
        if level != self._level:
            self._level = level
            comp = zlib.compressobj(level, zlib.DEFLATED, -15)
            self._headers = [_block(comp, _header(f).encode()) for f in RENDER]
            #: The views, label sets and up/down values of the last scrape, per station.
            self._views: list[StationView] = []
            self._labels: list[str] = []
            self._ups: list[bool] = []
            #: ``[family][chunk]``: the chunk's text of the family (None: no series).
            self._blocks: list[list[Block | None]] = [[] for _ in RENDER]
            #: ``[family][run]``: combined CRC of a run of blocks (None: to recombine).
            self._runs: list[list[Block | None]] = [[] for _ in RENDER]

    def _dirty_chunks(self, views: list[StationView], ups: list[bool]) -> dict[int, int]:
        """``{chunk: parts}`` of the chunks that changed since the last scrape; the label sets
        follow the views (kept: rebuilding them is a third of re-rendering a block)."""
        old, labels = self._views, self._labels
        n, n_old = len(views), len(old)
        dirty: dict[int, int] = {}
        common = min(n, n_old)
        for i in [i for i, a, b in zip(range(common), old, views, strict=False) if a is not b]:
            parts = _changed_parts(old[i], views[i])
            if parts & REGION:
                labels[i] = label_set(views[i])
            if parts:
                dirty[i // CHUNK] = dirty.get(i // CHUNK, 0) | parts
        for i in [i for i, a, b in zip(range(common), self._ups, ups, strict=False) if a is not b]:
            dirty[i // CHUNK] = dirty.get(i // CHUNK, 0) | STATUS
        if n != n_old:
            del labels[n:]
            labels.extend([label_set(v) for v in views[n_old:]])
            for ci in range(common // CHUNK, (n + CHUNK - 1) // CHUNK):
                dirty[ci] = EVERYTHING
        return dirty

    def blocks(self, snapshot: Snapshot, level: int | None = None) -> tuple[list[Block], Block]:
        """The page as blocks in order (the cache updated from ``snapshot``), and its CRC."""
        views = snapshot.stations
        now, stale = snapshot.now, snapshot.stale_after_intervals
        statuses = [snapshot.status(v) for v in views]  # staleness suspended while blind
        counts: dict[str, int] = dict.fromkeys(STATION_STATUSES, 0)
        for status in STATION_STATUSES:
            counts[status] = statuses.count(status)
        ups = [status == "up" for status in statuses]
        del statuses
        with self._lock:
            if level is not None:
                self._set_level(level)
            comp = zlib.compressobj(self._level, zlib.DEFLATED, -15)
            dirty = self._dirty_chunks(views, ups)
            self._views, self._ups = views, ups
            n_chunks = (len(views) + CHUNK - 1) // CHUNK
            n_runs = (n_chunks + RUN - 1) // RUN
            renders = list(RENDER.values())
            up_render, up_text = RENDER[metrics.STATION_UP], _up_in(snapshot)
            for blocks, runs in zip(self._blocks, self._runs, strict=True):
                del blocks[n_chunks:]
                blocks.extend([None] * (n_chunks - len(blocks)))
                del runs[n_runs:]
                runs.extend([None] * (n_runs - len(runs)))
            rendered = 0
            for ci, parts in dirty.items():
                chunk = views[ci * CHUNK : (ci + 1) * CHUNK]
                labels = self._labels[ci * CHUNK : (ci + 1) * CHUNK]
                for fi, render in enumerate(renders):
                    if parts & render.depends:
                        fn = up_text if render is up_render else render.text
                        text = fn(chunk, labels, now, stale).encode()
                        self._blocks[fi][ci] = _block(comp, text) if text else None
                        self._runs[fi][ci // RUN] = None
                        rendered += 1
            out: list[Block] = []
            page: list[Block | None] = []
            for fi, (blocks, runs) in enumerate(zip(self._blocks, self._runs, strict=True)):
                present = [b for b in blocks if b is not None]
                if present or fi == 0:  # the up family is always there
                    out.append(self._headers[fi])
                    out.extend(present)
                    page.append(self._headers[fi])
                    for ri, run in enumerate(runs):
                        if run is None:
                            runs[ri] = _combine(blocks[ri * RUN : (ri + 1) * RUN])
                        page.append(runs[ri] or _EMPTY_RUN)
            self.last_rendered = (rendered, n_chunks * len(RENDER))
        tail = _collector_text(snapshot, counts).encode()
        if self._process is not None:
            tail += generate_latest(self._process)
        out.append(_block(comp, tail))
        page.append(out[-1])
        return out, _combine(page)

    def chunks(self, snapshot: Snapshot) -> Iterator[bytes]:
        """The page as text, in pieces (stream them, or join them)."""
        for block in self.blocks(snapshot)[0]:
            yield zlib.decompressobj(-15).decompress(block.data)

    def render(self, snapshot: Snapshot) -> bytes:
        return b"".join(self.chunks(snapshot))

    def gzip_pieces(
        self, snapshot: Snapshot, level: int | None = None
    ) -> tuple[int, Iterator[bytes]]:
        """The page as one gzip member: its length, and its bytes in pieces of ~256 KB.

        ``level``: of blocks rendered from now on. The cache is updated before this returns;
        the pieces are joined as they are sent, so the compressed page is never copied whole.
        """
        blocks, crc = self.blocks(snapshot, level)
        tail = _FINAL_BLOCK + struct.pack("<II", crc.crc, crc.size & 0xFFFFFFFF)
        total = len(_GZIP_HEADER) + sum(len(b.data) for b in blocks) + len(tail)

        def pieces() -> Iterator[bytes]:
            batch, size = [_GZIP_HEADER], 0
            for block in blocks:
                batch.append(block.data)
                size += len(block.data)
                if size >= 1 << 18:
                    yield b"".join(batch)
                    batch, size = [], 0
            batch.append(tail)
            yield b"".join(batch)

        return total, pieces()

    def render_gzip(self, snapshot: Snapshot, level: int | None = None) -> bytes:
        """The page as one gzip member (``level``: of blocks rendered from now on)."""
        return b"".join(self.gzip_pieces(snapshot, level)[1])
