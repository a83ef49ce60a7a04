"""``pantau report``: what stayed broken, for the people who answer for it.

Given a Prometheus URL, a region and a period, it writes a self-contained HTML report, a PDF and
a CSV of the per-kecamatan table, in Bahasa Indonesia (``--lang en`` for English):

- fleet availability in office hours, and its change against the previous period;
- stations broken for more than ``--broken-days`` days, at the top;
- per kecamatan: availability, change, longest outage, whether it can record now and, when it
  cannot, the nearest kecamatan that can (from the inventory's ``neighbours`` column);
- a small timeline per kecamatan (matplotlib);
- outages longer than ``--min-outage`` with their cause: never reported, offline, a device class
  missing, or the login service (with the probe's reason when the collector exports one).

Definitions are those of the availability recording rules (:mod:`pantau.dashboards.availability`):
a station is *ready* when it is up, every expected peripheral is present and every login probe is
up; office hours are Monday-Friday 08:00-16:00 in the station's own zone minus holidays. The
report reads the raw series over the period (one range query per week and kind, with progress on
the terminal) so it works also for periods before the recording rules were loaded. Each sample at
time t stands for the step [t, t + step).

``pantau status-page`` writes the public page of a kabkota: which kecamatan can record today,
nothing else (no station ids, devices or causes), safe to publish.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import html
import io
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pantau.contract.errors import PantauError
from pantau.contract.inventory import InventoryEntry, InventoryError, load_inventory
from pantau.contract.vocabulary import device_names
from pantau.dashboards import availability as av
from pantau.dashboards import metrics as m
from pantau.tools import _args

DAY: Final = 86400.0
#: Points per range query stay far below Prometheus' 11,000 per series.
CHUNK_S: Final = 7 * DAY
WIB_OFFSET: Final = dt.timezone(dt.timedelta(hours=7))


class ReportError(PantauError):
    """A mistake the user can fix (unreachable Prometheus, no data, bad arguments)."""


# --------------------------------------------------------------------------- texts

TEXTS: Final[dict[str, dict[str, str]]] = {
    "id": {
        "title": "Laporan ketersediaan perekaman e-KTP",
        "period": "Periode",
        "region": "Wilayah",
        "generated": "Dibuat",
        "fleet": "Ketersediaan armada pada jam kerja",
        "fleet_all": "Ketersediaan armada (semua jam)",
        "previous": "periode sebelumnya",
        "change": "perubahan",
        "stations": "stasiun",
        "long_broken": "Stasiun rusak lebih dari {days} hari",
        "none_long": "Tidak ada stasiun yang rusak lebih dari {days} hari.",
        "since": "sejak",
        "for_days": "{days} hari",
        "kecamatan_table": "Ketersediaan per kecamatan",
        "kecamatan": "Kecamatan",
        "availability": "Ketersediaan",
        "longest": "Gangguan terlama",
        "now": "Sekarang",
        "can_record": "bisa merekam",
        "cannot_record": "tidak bisa merekam",
        "record_instead": "Rekam di",
        "timeline": "Linimasa kesiapan per kecamatan (hijau: siap, merah: tidak siap)",
        "outages": "Gangguan lebih lama dari {hours} jam",
        "none_outages": "Tidak ada gangguan sepanjang itu.",
        "station": "Stasiun",
        "start": "Mulai",
        "end": "Selesai",
        "duration": "Lama",
        "cause": "Penyebab",
        "ongoing": "masih berlangsung",
        "hours": "{hours} jam",
        "cause.never_reported": "belum pernah melapor",
        "cause.offline": "offline / tidak melapor",
        "cause.device": "{device} hilang",
        "cause.login": "login gagal",
        "cause.unknown": "tidak diketahui",
        "definition": (
            "Siap = stasiun online, semua perangkat yang diharapkan ada, dan login berhasil. "
            "Jam kerja = Senin-Jumat 08.00-16.00 waktu setempat (WIB/WITA/WIT), di luar hari libur."
        ),
        "status_title": "Kecamatan mana yang bisa melayani perekaman hari ini",
        "status_updated": "Diperbarui",
        "status_ok": "Bisa melayani perekaman",
        "status_down": "Belum bisa melayani perekaman",
        "status_go": "Silakan ke Kecamatan",
    },
    "en": {
        "title": "e-KTP recording availability report",
        "period": "Period",
        "region": "Region",
        "generated": "Generated",
        "fleet": "Fleet availability in office hours",
        "fleet_all": "Fleet availability (all hours)",
        "previous": "previous period",
        "change": "change",
        "stations": "stations",
        "long_broken": "Stations broken for more than {days} days",
        "none_long": "No station has been broken for more than {days} days.",
        "since": "since",
        "for_days": "{days} days",
        "kecamatan_table": "Availability per kecamatan",
        "kecamatan": "Kecamatan",
        "availability": "Availability",
        "longest": "Longest outage",
        "now": "Now",
        "can_record": "can record",
        "cannot_record": "cannot record",
        "record_instead": "Record at",
        "timeline": "Readiness timeline per kecamatan (green: ready, red: not ready)",
        "outages": "Outages longer than {hours} hours",
        "none_outages": "No outage that long.",
        "station": "Station",
        "start": "Start",
        "end": "End",
        "duration": "Duration",
        "cause": "Cause",
        "ongoing": "ongoing",
        "hours": "{hours} h",
        "cause.never_reported": "never reported",
        "cause.offline": "offline / not reporting",
        "cause.device": "{device} missing",
        "cause.login": "login failing",
        "cause.unknown": "unknown",
        "definition": (
            "Ready = the station is online, every expected peripheral is present and the login "
            "succeeds. Office hours = Monday-Friday 08:00-16:00 local time (WIB/WITA/WIT), "
            "holidays excluded."
        ),
        "status_title": "Which kecamatan can record e-KTP today",
        "status_updated": "Updated",
        "status_ok": "Can record",
        "status_down": "Cannot record yet",
        "status_go": "Please go to Kecamatan",
    },
}


def _t(lang: str, key: str, **kw: Any) -> str:
    return TEXTS[lang][key].format(**kw)


def cause_text(lang: str, cause: str) -> str:
    kind, _, detail = cause.partition(":")
    if kind == "device":
        names = [device_names(c)[0 if lang == "id" else 1] for c in detail.split(",")]
        return _t(lang, "cause.device", device=", ".join(names))
    if kind == "login" and detail:
        return f"{_t(lang, 'cause.login')} ({detail})"
    return _t(lang, f"cause.{kind}") if f"cause.{kind}" in TEXTS[lang] else cause


# --------------------------------------------------------------------------- Prometheus

Series = dict[str, dict[float, float]]  # station -> {timestamp: value}


class Prometheus:
    """The HTTP API, read only."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(  # noqa: S310 - the user's Prometheus URL
                f"{self.url}{path}?{query}", timeout=self.timeout
            ) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise ReportError(f"Prometheus {self.url} answered HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ReportError(f"Prometheus {self.url} is not reachable: {reason}") from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus {self.url}: {body.get('error', 'query failed')}")
        return body["data"]["result"]

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        result: list[dict[str, Any]] = self._get("/api/v1/query_range", params)
        return result

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        result: list[dict[str, Any]] = self._get("/api/v1/query", params)
        return result


# --------------------------------------------------------------------------- model


@dataclass
class Station:
    station: str
    provinsi: str
    kabkota: str
    kecamatan: str
    ready: dict[float, bool] = field(default_factory=dict)
    causes: dict[float, str] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return av.zone_of(self.provinsi)


@dataclass(frozen=True)
class Outage:
    station: str
    kecamatan: str
    start: float
    end: float  # exclusive
    ongoing: bool
    cause: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Period:
    start: float
    end: float

    @property
    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)


@dataclass
class KecamatanRow:
    kabkota: str
    kecamatan: str
    stations: int
    availability: float | None
    previous: float | None
    longest_s: float
    ready_now: bool
    record_instead: tuple[str, ...]

    @property
    def change(self) -> float | None:
        if self.availability is None or self.previous is None:
            return None
        return self.availability - self.previous


@dataclass
class Report:
    lang: str
    region: str
    period: Period
    step: float
    generated: float
    stations: dict[str, Station]
    fleet: float | None
    fleet_previous: float | None
    rows: list[KecamatanRow]
    outages: list[Outage]
    long_broken: list[Outage]
    min_outage_s: float
    broken_days: int
    all_hours: bool = False


def _ms(ts: float) -> float:
    """Prometheus speaks milliseconds: grid times and answers meet on that grid."""
    return round(ts, 3)


def _ts_grid(period: Period, step: float) -> list[float]:
    n = math.ceil((period.end - period.start) / step)
    return [_ms(period.start + i * step) for i in range(n)]


def _labels(item: dict[str, Any]) -> dict[str, str]:
    metric: dict[str, str] = item["metric"]
    return metric


Flags = dict[str, dict[float, dict[str, str]]]  # station -> time -> {kind: detail}


def _queries(selector: str) -> dict[str, str]:
    by = av.BY
    return {
        "ready": av.ready_expr(selector),
        "offline": f"min by ({by}) ({m.STATION_UP}{{{selector}}}) == 0",
        "never": (
            f"{m.STATION_UP}{{{selector}}} == 0 unless on(station) "
            f"{m.STATION_LAST_REPORT}{{{selector}}}"
        ),
        "device": f"{m.PERIPHERAL_PRESENT}{{{selector}}} == 0",
        "login": f"min by ({by}) ({m.LOGIN_UP}{{{selector}}}) == 0",
        "login_reason": f'{m.LOGIN_PROBE_INFO}{{{selector},reason!=""}}',
    }


def _chunks(period: Period, step: float) -> list[tuple[float, float]]:
    """Query windows of the grid :func:`_ts_grid` (at most :data:`CHUNK_S`, a whole number of
    steps each): ``(first point, last point)``, so that every grid point is asked exactly once."""
    grid = _ts_grid(period, step)
    per = max(1, int(CHUNK_S // step))
    return [(grid[i], grid[min(i + per, len(grid)) - 1]) for i in range(0, len(grid), per)]


def _take(kind: str, item: dict[str, Any], stations: dict[str, Station], flags: Flags) -> None:
    labels = _labels(item)
    name = labels.get("station", "")
    if not name:
        return
    if kind == "ready":
        st = stations.setdefault(
            name,
            Station(
                name,
                labels.get("provinsi", ""),
                labels.get("kabkota", ""),
                labels.get("kecamatan", ""),
            ),
        )
        st.ready.update((_ms(float(ts)), float(v) >= 1) for ts, v in item["values"])
        return
    detail = {"device": labels.get("device_class", ""), "login_reason": labels.get("reason", "")}
    for ts_text, _ in item["values"]:
        slot = flags[name][_ms(float(ts_text))]
        if kind == "device":
            slot["device"] = ",".join(
                sorted({*slot.get("device", "").split(","), detail[kind]} - {""})
            )
        else:
            slot[kind] = detail.get(kind, kind)


def _cause(f: dict[str, str]) -> str:
    """The most basic failure explains the rest: not reporting, then devices, then login."""
    if "never" in f:
        return "never_reported"
    if "offline" in f:
        return "offline"
    if "device" in f:
        return f"device:{f['device']}"
    if "login" in f:
        reason = f.get("login_reason", "")
        return f"login:{reason}" if reason else "login"
    return "unknown"


def fetch(
    prom: Prometheus,
    selector: str,
    period: Period,
    step: float,
    progress: Callable[[str], None],
) -> dict[str, Station]:
    """Readiness and causes of every station in ``selector`` over ``period``."""
    queries = _queries(selector)
    stations: dict[str, Station] = {}
    flags: Flags = defaultdict(lambda: defaultdict(dict))
    chunks = _chunks(period, step)
    total = len(chunks) * len(queries)
    done = 0
    for lo, last in chunks:
        day = dt.datetime.fromtimestamp(lo, WIB_OFFSET).date()
        for kind, expr in queries.items():
            done += 1
            progress(f"[{done}/{total}] {kind} from {day}")
            for item in prom.range(expr, lo, last, step):
                _take(kind, item, stations, flags)
    for name, st in stations.items():
        st.causes = {ts: _cause(flags[name].get(ts, {})) for ts, ok in st.ready.items() if not ok}
    return stations


def outages_of(st: Station, grid: Sequence[float], period_end: float) -> list[Outage]:
    """Unbroken stretches of not-ready samples (a missing sample is not ready: no data)."""
    out: list[Outage] = []
    start: float | None = None
    causes: Counter[str] = Counter()
    for ts in grid:
        ready = st.ready.get(ts, False)
        if not ready:
            if start is None:
                start, causes = ts, Counter()
            causes[st.causes.get(ts, "never_reported" if ts not in st.ready else "unknown")] += 1
        elif start is not None:
            out.append(
                Outage(st.station, st.kecamatan, start, ts, False, causes.most_common(1)[0][0])
            )
            start = None
    if start is not None:
        out.append(
            Outage(st.station, st.kecamatan, start, period_end, True, causes.most_common(1)[0][0])
        )
    return out


def _office_grid(grid: Sequence[float], zone: str, holidays: Sequence[dt.date]) -> list[bool]:
    return [av.office_open(dt.datetime.fromtimestamp(ts, dt.UTC), zone, holidays) for ts in grid]


def _minutes(
    stations: Iterable[Station],
    grid: Sequence[float],
    holidays: Sequence[dt.date],
    *,
    all_hours: bool = False,
) -> tuple[int, int]:
    """(ready office samples, office samples) summed over ``stations``; with ``all_hours``
    every sample counts as office time."""
    ready = office = 0
    cache: dict[str, list[bool]] = {}
    for st in stations:
        opened = cache.get(st.zone)
        if opened is None:
            opened = cache[st.zone] = (
                [True] * len(grid) if all_hours else _office_grid(grid, st.zone, holidays)
            )
        for ts, is_open in zip(grid, opened, strict=True):
            if is_open:
                office += 1
                ready += st.ready.get(ts, False)
    return ready, office


def _ratio(pair: tuple[int, int]) -> float | None:
    ready, office = pair
    return ready / office if office else None


def build_report(
    prom: Prometheus,
    *,
    selector: str,
    region: str,
    period: Period,
    step: float,
    lang: str,
    holidays: Sequence[dt.date],
    inventory: Sequence[InventoryEntry] = (),
    min_outage_s: float = 4 * 3600,
    broken_days: int = 7,
    progress: Callable[[str], None] = lambda _s: None,
    now: float | None = None,
    all_hours: bool = False,
) -> Report:
    period = Period(_ms(period.start), _ms(period.end))
    stations = fetch(prom, selector, period, step, progress)
    if not stations:
        raise ReportError(
            f"Prometheus has no pantau data for {region} between "
            f"{_day(period.start)} and {_day(period.end)} (is the collector scraped? "
            "is the region right?)"
        )
    previous = fetch(prom, selector, period.previous, step, progress)
    grid = _ts_grid(period, step)
    prev_grid = _ts_grid(period.previous, step)
    fleet = _ratio(_minutes(stations.values(), grid, holidays, all_hours=all_hours))
    fleet_prev = (
        _ratio(_minutes(previous.values(), prev_grid, holidays, all_hours=all_hours))
        if previous
        else None
    )

    all_outages: list[Outage] = []
    for st in stations.values():
        all_outages += outages_of(st, grid, period.end)
    # An outage that spans the whole period began before it: look back for when.
    all_outages = [
        Outage(
            o.station,
            o.kecamatan,
            began_before(prom, o.station, period.start, step),
            o.end,
            True,
            o.cause,
        )
        if o.ongoing and o.start == period.start
        else o
        for o in all_outages
    ]

    neighbours: dict[tuple[str, str], tuple[str, ...]] = {}
    for e in inventory:
        neighbours.setdefault((e.kabkota, e.kecamatan), e.neighbours)
    by_kec: dict[tuple[str, str], list[Station]] = defaultdict(list)
    for st in stations.values():
        by_kec[(st.kabkota, st.kecamatan)].append(st)
    prev_by_kec: dict[tuple[str, str], list[Station]] = defaultdict(list)
    for st in previous.values():
        prev_by_kec[(st.kabkota, st.kecamatan)].append(st)
    last = grid[-1]
    ready_now = {k: any(s.ready.get(last, False) for s in v) for k, v in by_kec.items()}
    rows = []
    for key, members in by_kec.items():
        longest = max(
            (o.seconds for o in all_outages if (o.station in {s.station for s in members})),
            default=0.0,
        )
        instead = tuple(n for n in neighbours.get(key, ()) if ready_now.get((key[0], n), False))
        rows.append(
            KecamatanRow(
                kabkota=key[0],
                kecamatan=key[1],
                stations=len(members),
                availability=_ratio(_minutes(members, grid, holidays, all_hours=all_hours)),
                previous=_ratio(
                    _minutes(prev_by_kec[key], prev_grid, holidays, all_hours=all_hours)
                )
                if prev_by_kec.get(key)
                else None,
                longest_s=longest,
                ready_now=ready_now[key],
                record_instead=() if ready_now[key] else instead,
            )
        )
    rows.sort(key=lambda r: (r.availability if r.availability is not None else -1.0, r.kecamatan))
    long_broken = sorted(
        (o for o in all_outages if o.ongoing and o.seconds > broken_days * DAY),
        key=lambda o: o.start,
    )
    outages = sorted(
        (o for o in all_outages if o.seconds >= min_outage_s), key=lambda o: -o.seconds
    )
    return Report(
        lang=lang,
        region=region,
        period=period,
        step=step,
        generated=now if now is not None else dt.datetime.now(dt.UTC).timestamp(),
        stations=stations,
        fleet=fleet,
        fleet_previous=fleet_prev,
        rows=rows,
        outages=outages,
        long_broken=long_broken,
        min_outage_s=min_outage_s,
        broken_days=broken_days,
        all_hours=all_hours,
    )


#: How far back ``began_before`` looks (a station broken for two years must show as such).
LOOKBACK_S: Final = 3 * 365 * DAY


def began_before(prom: Prometheus, station: str, before: float, step: float) -> float:
    """When the outage of ``station`` that is going on at ``before`` began.

    Day by day backwards (a subquery at ``step`` inside each day) for the last day with a ready
    sample, then within that day at ``step``; with no ready sample in :data:`LOOKBACK_S`, the
    first day the station appears at all (it never was ready in that time).
    """
    expr = av.ready_expr(f'station="{_escape(station)}"')
    start = before - LOOKBACK_S
    coarse = max(step, 300.0)  # finding the day needs no finer look than 5 minutes
    result = prom.range(f"max_over_time(({expr})[1d:{coarse:g}s])", start, before, DAY)
    values = [(float(ts), float(v)) for item in result for ts, v in item["values"]]
    if not values:
        return before
    ready_days = [ts for ts, v in values if v >= 1]
    if not ready_days:
        first_day = min(ts for ts, _ in values)
        fine = prom.range(expr, first_day - DAY, first_day, step)
        return min((float(ts) for item in fine for ts, _ in item["values"]), default=first_day)
    day_end = max(ready_days)
    fine = prom.range(expr, day_end - DAY, min(before, day_end + DAY), step)
    last_ready = max(
        (float(ts) for item in fine for ts, v in item["values"] if float(v) >= 1),
        default=day_end,
    )
    return last_ready + step


# --------------------------------------------------------------------------- rendering


def _day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, WIB_OFFSET).strftime("%Y-%m-%d")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, WIB_OFFSET).strftime("%Y-%m-%d %H:%M WIB")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _pp(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} pp"


def _hours(seconds: float) -> float:
    return round(seconds / 3600, 1)


def _span(lang: str, seconds: float) -> str:
    """``36.0 jam`` below two days, ``60 hari`` from then on."""
    if seconds < 2 * DAY:
        return _t(lang, "hours", hours=_hours(seconds))
    return _t(lang, "for_days", days=int(seconds // DAY))


def timeline_png(report: Report) -> bytes:
    """One thin row per kecamatan: green while any of its stations is ready, red otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    grid = _ts_grid(report.period, report.step)
    rows = sorted({(s.kabkota, s.kecamatan) for s in report.stations.values()}, key=lambda k: k[1])
    fig_h = 0.28 * len(rows) + 0.9
    fig, ax = plt.subplots(figsize=(9.0, fig_h), dpi=110)
    days = (report.period.end - report.period.start) / DAY
    for y, key in enumerate(reversed(rows)):
        members = [s for s in report.stations.values() if (s.kabkota, s.kecamatan) == key]
        for ready, colour in ((True, "#2e7d32"), (False, "#c62828")):
            spans: list[tuple[float, float]] = []
            for ts in grid:
                ok = any(s.ready.get(ts, False) for s in members)
                if ok == ready:
                    x = (ts - report.period.start) / DAY
                    if spans and math.isclose(spans[-1][0] + spans[-1][1], x):
                        spans[-1] = (spans[-1][0], spans[-1][1] + report.step / DAY)
                    else:
                        spans.append((x, report.step / DAY))
            ax.broken_barh(spans, (y + 0.15, 0.7), facecolors=colour)
    ax.set_yticks([y + 0.5 for y in range(len(rows))], [k[1] for k in reversed(rows)], fontsize=7)
    ax.set_xlim(0, days)
    ax.set_ylim(0, len(rows))
    ax.set_xlabel("hari / days" if report.lang == "id" else "days")
    ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def table_rows(report: Report) -> list[list[str]]:
    lang = report.lang
    out = []
    for r in report.rows:
        now = _t(lang, "can_record") if r.ready_now else _t(lang, "cannot_record")
        out.append(
            [
                r.kecamatan,
                str(r.stations),
                _pct(r.availability),
                _pp(r.change),
                _span(lang, r.longest_s) if r.longest_s else "-",
                now,
                ", ".join(r.record_instead),
            ]
        )
    return out


def table_header(lang: str) -> list[str]:
    return [
        _t(lang, "kecamatan"),
        _t(lang, "stations").capitalize(),
        _t(lang, "availability"),
        _t(lang, "change"),
        _t(lang, "longest"),
        _t(lang, "now"),
        _t(lang, "record_instead"),
    ]


def write_csv(report: Report, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "kabkota",
                "kecamatan",
                "stations",
                "availability_pct",
                "previous_pct",
                "change_pp",
                "longest_outage_hours",
                "ready_now",
                "record_instead",
            ]
        )
        for r in report.rows:
            w.writerow(
                [
                    r.kabkota,
                    r.kecamatan,
                    r.stations,
                    "" if r.availability is None else f"{r.availability * 100:.2f}",
                    "" if r.previous is None else f"{r.previous * 100:.2f}",
                    "" if r.change is None else f"{r.change * 100:.2f}",
                    f"{_hours(r.longest_s)}",
                    "1" if r.ready_now else "0",
                    ";".join(r.record_instead),
                ]
            )


def _summary_lines(report: Report) -> list[str]:
    lang = report.lang
    return [
        f"{_t(lang, 'fleet_all' if report.all_hours else 'fleet')}: {_pct(report.fleet)} "
        f"({_t(lang, 'previous')}: {_pct(report.fleet_previous)}, {_t(lang, 'change')}: "
        f"{_pp(None if report.fleet is None or report.fleet_previous is None else report.fleet - report.fleet_previous)})",
        f"{len(report.stations)} {_t(lang, 'stations')}, {len(report.rows)} kecamatan",
    ]


def _long_broken_lines(report: Report) -> list[str]:
    lang = report.lang
    return [
        f"{o.kecamatan} ({o.station}): {cause_text(lang, o.cause)}, {_t(lang, 'since')} "
        f"{_day(o.start)} ({_t(lang, 'for_days', days=int(o.seconds // DAY))})"
        for o in report.long_broken
    ]


def _outage_rows(report: Report) -> list[list[str]]:
    lang = report.lang
    return [
        [
            o.kecamatan,
            o.station,
            _when(o.start),
            _t(lang, "ongoing") if o.ongoing else _when(o.end),
            _span(lang, o.seconds),
            cause_text(lang, o.cause),
        ]
        for o in report.outages
    ]


def _outage_header(lang: str) -> list[str]:
    keys = ("kecamatan", "station", "start", "end", "duration", "cause")
    return [_t(lang, k) for k in keys]


_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#222;max-width:60rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .4rem;text-align:left}th{background:#eee}
.bad{color:#b71c1c;font-weight:600}.ok{color:#1b5e20}.big{font-size:1.3rem;font-weight:700}
.alarm{border:2px solid #b71c1c;padding:.6rem;background:#fff5f5}
img{max-width:100%}small{color:#555}
"""


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, png: bytes) -> str:
    lang = report.lang
    e = html.escape
    title = f"{_t(lang, 'title')}: {report.region}"
    period = f"{_day(report.period.start)} - {_day(report.period.end - 1)}"
    summary = "".join(f"<p class='big'>{e(line)}</p>" for line in _summary_lines(report)[:1])
    summary += "".join(f"<p>{e(line)}</p>" for line in _summary_lines(report)[1:])
    broken = _long_broken_lines(report)
    broken_html = (
        "<div class='alarm'><ul>"
        + "".join(f"<li class='bad'>{e(b)}</li>" for b in broken)
        + "</ul></div>"
        if broken
        else f"<p class='ok'>{e(_t(lang, 'none_long', days=report.broken_days))}</p>"
    )
    outages = _outage_rows(report)
    hours = _hours(report.min_outage_s)
    outages_html = (
        _html_table(_outage_header(lang), outages)
        if outages
        else f"<p>{e(_t(lang, 'none_outages'))}</p>"
    )
    img = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<p>{e(_t(lang, "period"))}: {e(period)} &middot; {e(_t(lang, "generated"))}: {e(_when(report.generated))}</p>
{summary}
<h2>{e(_t(lang, "long_broken", days=report.broken_days))}</h2>
{broken_html}
<h2>{e(_t(lang, "kecamatan_table"))}</h2>
{_html_table(table_header(lang), table_rows(report))}
<h2>{e(_t(lang, "timeline"))}</h2>
<img alt="{e(_t(lang, "timeline"))}" src="data:image/png;base64,{img}">
<h2>{e(_t(lang, "outages", hours=hours))}</h2>
{outages_html}
<p><small>{e(_t(lang, "definition"))}</small></p>
</body></html>
"""


def write_pdf(report: Report, png: bytes, path: Path) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        Image,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    lang = report.lang
    styles = getSampleStyleSheet()
    e = html.escape

    def para(text: str, style: str = "BodyText") -> Paragraph:
        return Paragraph(e(text), styles[style])

    def table(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
        cell = styles["BodyText"].clone("cell", fontSize=7, leading=8.5)
        data = [[Paragraph(e(c), cell) for c in row] for row in [header, *rows]]
        t = Table(data, colWidths=[w * cm for w in widths], repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return t

    story: list[Any] = [
        para(f"{_t(lang, 'title')}: {report.region}", "Title"),
        para(
            f"{_t(lang, 'period')}: {_day(report.period.start)} - {_day(report.period.end - 1)}; "
            f"{_t(lang, 'generated')}: {_when(report.generated)}"
        ),
        *[para(line, "Heading3") for line in _summary_lines(report)],
        para(_t(lang, "long_broken", days=report.broken_days), "Heading2"),
    ]
    broken = _long_broken_lines(report)
    story += [para(b) for b in broken] or [para(_t(lang, "none_long", days=report.broken_days))]
    story += [
        para(_t(lang, "kecamatan_table"), "Heading2"),
        table(table_header(lang), table_rows(report), [3.2, 1.4, 2.0, 1.8, 2.2, 2.6, 3.6]),
        Spacer(1, 0.4 * cm),
        para(_t(lang, "timeline"), "Heading2"),
    ]
    img = Image(io.BytesIO(png))
    scale = (17 * cm) / img.imageWidth
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    story.append(img)
    story.append(para(_t(lang, "outages", hours=_hours(report.min_outage_s)), "Heading2"))
    outages = _outage_rows(report)
    story.append(
        table(_outage_header(lang), outages, [2.6, 3.4, 3.0, 3.0, 1.6, 3.4])
        if outages
        else para(_t(lang, "none_outages"))
    )
    story.append(Spacer(1, 0.4 * cm))
    story.append(para(_t(lang, "definition")))
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=1.6 * cm,
        bottomMargin=1.6 * cm,
        title=f"{_t(lang, 'title')}: {report.region}",
        author="pantau",
    )
    doc.build(story)


def write_report(report: Report, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    png = timeline_png(report)
    html_path = out / f"{stem}.html"
    html_path.write_text(render_html(report, png), encoding="utf-8")
    csv_path = out / f"{stem}.csv"
    write_csv(report, csv_path)
    pdf_path = out / f"{stem}.pdf"
    write_pdf(report, png, pdf_path)
    return [html_path, pdf_path, csv_path]


# --------------------------------------------------------------------------- public status page


@dataclass(frozen=True)
class KecamatanStatus:
    kecamatan: str
    ready: bool
    go_to: tuple[str, ...]


def public_status(
    prom: Prometheus,
    kabkota: str,
    inventory: Sequence[InventoryEntry] = (),
    *,
    at: float | None = None,
) -> list[KecamatanStatus]:
    """Which kecamatan of ``kabkota`` can record (any station ready), and where to go instead.

    ``at``: a Unix time (default: now). Only kecamatan with data count: a kecamatan of the
    inventory that Prometheus does not know is shown as not ready.
    """
    result = prom.instant(av.ready_expr(f'kabkota="{_escape(kabkota)}"'), at)
    ready: dict[str, bool] = {}
    for item in result:
        kec = _labels(item).get("kecamatan", "")
        if kec:
            ready[kec] = ready.get(kec, False) or float(item["value"][1]) >= 1
    if not ready:
        raise ReportError(f"Prometheus has no current pantau data for kabkota {kabkota}")
    for e in inventory:
        if e.kabkota == kabkota:
            ready.setdefault(e.kecamatan, False)
    neighbours = {e.kecamatan: e.neighbours for e in inventory if e.kabkota == kabkota}
    return [
        KecamatanStatus(
            kec,
            ok,
            () if ok else tuple(n for n in neighbours.get(kec, ()) if ready.get(n, False)),
        )
        for kec, ok in sorted(ready.items())
    ]


def render_status_page(
    statuses: Sequence[KecamatanStatus], title_region: str, lang: str, generated: float
) -> str:
    e = html.escape
    items = []
    for s in statuses:
        if s.ready:
            items.append(f"<li class='ok'><b>{e(s.kecamatan)}</b>: {e(_t(lang, 'status_ok'))}</li>")
        else:
            go = f" {e(_t(lang, 'status_go'))} {e(', '.join(s.go_to))}." if s.go_to else ""
            items.append(
                f"<li class='bad'><b>{e(s.kecamatan)}</b>: {e(_t(lang, 'status_down'))}.{go}</li>"
            )
    title = f"{_t(lang, 'status_title')}: {title_region}"
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{_CSS}li{{margin:.3rem 0}}</style></head><body>
<h1>{e(title)}</h1>
<p>{e(_t(lang, "status_updated"))}: {e(_when(generated))}</p>
<ul>{"".join(items)}</ul>
</body></html>
"""


# --------------------------------------------------------------------------- command line


def _month(text: str) -> tuple[dt.date, dt.date]:
    try:
        first = dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month (YYYY-MM)") from None
    nxt = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _selector(args: argparse.Namespace) -> tuple[str, str]:
    parts = []
    names = []
    for label in ("provinsi", "kabkota", "kecamatan"):
        value = getattr(args, label)
        if value:
            parts.append(f'{label}="{_escape(value)}"')
            names.append(value)
    return ",".join(parts), " / ".join(names) or (
        "seluruh armada" if args.lang == "id" else "whole fleet"
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pantau report",
        description="Availability report (HTML, PDF, CSV) of a region over a period, from Prometheus.",
    )
    p.add_argument("--prometheus", required=True, help="Prometheus URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--provinsi", default="", help="province code, e.g. 33")
    p.add_argument("--kabkota", default="", help="kabupaten/kota code, e.g. 3310")
    p.add_argument("--kecamatan", default="", help="one kecamatan by name")
    p.add_argument("--name", default="", help="region name for the title, e.g. 'Kabupaten Klaten'")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--month", type=_month, help="calendar month YYYY-MM (default: last month)")
    when.add_argument("--from", dest="from_", type=_date, help="first day YYYY-MM-DD (with --to)")
    p.add_argument("--to", type=_date, help="day after the last day YYYY-MM-DD (with --from)")
    p.add_argument("--lang", choices=["id", "en"], default="id", help="language (default: id)")
    p.add_argument("--out", type=Path, default=Path("."), help="output directory (default: .)")
    p.add_argument("--inventory", type=Path, help="inventory CSV (for the neighbours column)")
    p.add_argument("--holidays", type=Path, help="holidays file (YYYY-MM-DD per line)")
    p.add_argument("--step", type=_args.span, default=300.0, help="resolution (default: 5m)")
    p.add_argument(
        "--min-outage",
        type=_args.span,
        default=4 * 3600.0,
        help="list outages this long (default: 4h)",
    )
    p.add_argument(
        "--all-hours",
        action="store_true",
        help="count every hour, not only office hours (e.g. a demo run at night)",
    )
    p.add_argument(
        "--broken-days",
        type=int,
        default=7,
        help="flag stations broken this many days (default: 7)",
    )
    return p


def _local_midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(0), WIB_OFFSET).timestamp()


def period_of(args: argparse.Namespace, today: dt.date) -> Period:
    if args.from_ is not None:
        if args.to is None or args.to <= args.from_:
            raise ReportError("--from needs --to, a later day")
        return Period(_local_midnight(args.from_), _local_midnight(args.to))
    if args.to is not None:
        raise ReportError("--to needs --from")
    if args.month is not None:
        first, nxt = args.month
    else:
        this = today.replace(day=1)
        first = (this - dt.timedelta(days=1)).replace(day=1)
        nxt = this
    return Period(_local_midnight(first), _local_midnight(nxt))


def _load_inputs(args: argparse.Namespace) -> tuple[list[InventoryEntry], tuple[dt.date, ...]]:
    inventory = load_inventory(args.inventory) if args.inventory else []
    holidays = av.load_holidays(args.holidays) if args.holidays else ()
    return inventory, holidays


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        inventory, holidays = _load_inputs(args)
        period = period_of(args, dt.datetime.now(WIB_OFFSET).date())
        selector, region = _selector(args)
        region = args.name or region
        report = build_report(
            Prometheus(args.prometheus),
            selector=selector,
            region=region,
            period=period,
            step=args.step,
            lang=args.lang,
            holidays=holidays,
            inventory=inventory,
            min_outage_s=args.min_outage,
            broken_days=args.broken_days,
            all_hours=args.all_hours,
            progress=lambda text: print(f"pantau report: {text}", file=sys.stderr, flush=True),
        )
        stem = "pantau-" + "-".join(
            [
                *(v.replace(" ", "_") for v in (args.provinsi, args.kabkota, args.kecamatan) if v),
                _day(period.start),
            ]
        )
        paths = write_report(report, args.out, stem)
    except (ReportError, InventoryError, av.HolidayError) as exc:
        print(f"pantau report: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pantau report: cannot write to {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
