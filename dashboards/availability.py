"""Availability as data: recording rules, their promtool tests and the "Availability" dashboard.

Alerts answer "what is wrong now"; these rules keep "how often could residents record" for the
people who read a monthly report. Definitions (one place, also used by ``pantau report``):

- **ready**: the station is up, every expected peripheral is present and every login probe is
  up: the minimum over those series (a never-reported station has only ``up 0``: not ready).
- **office hours**: Monday to Friday, 08:00-16:00 in the station's own time zone (WIB, WITA or
  WIT, from its ``provinsi`` code as in :mod:`pantau.dashboards.routing`), minus the configured
  holidays (whole local days).
- **availability** over a window: ready office minutes / office minutes.
- **outage**: an unbroken stretch of not-ready time; its age is time since it began.

Rules (``prometheus/rules/pantau.availability.yml``):

=========================================== ===== =============================================
``pantau:station_ready``                     1m    1 ready / 0 not, per station with region labels
``pantau:station_office_hours``              1m    1 while the station's office is open, else 0
``pantau:station_office_ready``              1m    ready x office hours
``pantau:station_unready_since``             1m    while not ready: when the outage began
``pantau:station_outage_seconds``            1m    while not ready: age of the current outage
``pantau:station_office_minutes:1h``         1h    office minutes in the last hour
``pantau:station_office_ready_minutes:1h``   1h    ready office minutes in the last hour
=========================================== ===== =============================================

A 7/30/90-day availability is then cheap for any region, e.g. per kecamatan over 30 days::

    sum by (kabkota, kecamatan) (sum_over_time(pantau:station_office_ready_minutes:1h[30d]))
      / sum by (kabkota, kecamatan) (sum_over_time(pantau:station_office_minutes:1h[30d]))

and the longest outage in a window is ``max_over_time(pantau:station_outage_seconds[30d])``.
``pantau:station_unready_since`` carries its own previous value forward, so it survives
Prometheus restarts shorter than the lookback (5 minutes); after a longer gap an outage that is
still going on is counted from the restart (documented in docs/dashboards.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from pantau.dashboards import DashboardsError, routing
from pantau.dashboards import metrics as m

RULE_INTERVAL: Final = "1m"
HOURLY_INTERVAL: Final = "1h"
READY: Final = "pantau:station_ready"
OFFICE: Final = "pantau:station_office_hours"
OFFICE_READY: Final = "pantau:station_office_ready"
UNREADY_SINCE: Final = "pantau:station_unready_since"
OUTAGE: Final = "pantau:station_outage_seconds"
OFFICE_MINUTES_1H: Final = "pantau:station_office_minutes:1h"
OFFICE_READY_MINUTES_1H: Final = "pantau:station_office_ready_minutes:1h"

#: UTC offsets of Indonesia's zones (no daylight saving time).
ZONE_OFFSETS_H: Final = {"wib": 7, "wita": 8, "wit": 9}
OFFICE_START_H: Final = int(routing.OFFICE_START.split(":")[0])
OFFICE_END_H: Final = int(routing.OFFICE_END.split(":")[0])
#: Monday..Friday as Python's ``date.weekday()`` numbers.
OFFICE_WEEKDAYS: Final = frozenset(range(5))

BY: Final = ", ".join(m.STATION_LABELS)


class HolidayError(DashboardsError, ValueError):
    """A holidays file has a line that is not a date."""


def parse_holidays(text: str, source: str = "holidays") -> tuple[dt.date, ...]:
    """One ``YYYY-MM-DD`` per line, optionally followed by a name; ``#`` starts a comment."""
    days = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        word = line.replace(",", " ").split(None, 1)[0]
        try:
            days.append(dt.date.fromisoformat(word))
        except ValueError:
            raise HolidayError(f"{source}:{number}: {word!r} is not a date (YYYY-MM-DD)") from None
    return tuple(sorted(set(days)))


def load_holidays(path: Path) -> tuple[dt.date, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HolidayError(f"{path}: cannot read: {exc}") from None
    return parse_holidays(text, str(path))


def zone_of(provinsi: str) -> str:
    """``wib``/``wita``/``wit`` for a Kemendagri province code (unknown: the default zone)."""
    for zone in routing.ZONES:
        if provinsi in zone.provinsi:
            return zone.name
    return routing.DEFAULT_ZONE


def office_open(moment: dt.datetime, zone: str, holidays: Iterable[dt.date] = ()) -> bool:
    """Whether ``moment`` (aware) falls in office hours in ``zone``: the rules' definition."""
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=ZONE_OFFSETS_H[zone])))
    return (
        local.weekday() in OFFICE_WEEKDAYS
        and OFFICE_START_H <= local.hour < OFFICE_END_H
        and local.date() not in set(holidays)
    )


def ready_expr(selector: str = "") -> str:
    """Per station 1 if ready else 0, keeping the region labels."""
    names = "|".join((m.STATION_UP, m.PERIPHERAL_PRESENT, m.LOGIN_UP))
    extra = f",{selector}" if selector else ""
    # per collector replica (instance), then the best replica: one that is behind or dead
    # does not make a station unready (docs/scale.md)
    return f'max by ({BY}) (min by ({BY}, instance) ({{__name__=~"{names}"{extra}}}))'


def _local(offset_s: int) -> str:
    return f"vector(time() + {offset_s})"


def _open_expr(zone: str, holidays: Sequence[dt.date]) -> str:
    """A label-free 1/0 vector: 1 while offices in ``zone`` are open."""
    offset = ZONE_OFFSETS_H[zone] * 3600
    local = _local(offset)
    expr = (
        f"(vector(1) and on() (hour({local}) >= {OFFICE_START_H} < {OFFICE_END_H})"
        f" and on() (day_of_week({local}) >= 1 <= 5)"
    )
    epoch = dt.date(1970, 1, 1)
    for day in holidays:
        expr += f" unless on() (floor({local} / 86400) == {(day - epoch).days})"
    return expr + ") or on() vector(0)"


def _office_expr(holidays: Sequence[dt.date]) -> str:
    parts = []
    listed: list[str] = []
    for zone in routing.ZONES:
        codes = "|".join(zone.provinsi)
        listed += zone.provinsi
        parts.append(
            f'({READY}{{provinsi=~"{codes}"}} * 0 + on() group_left() ({_open_expr(zone.name, holidays)}))'
        )
    parts.append(
        f'({READY}{{provinsi!~"{"|".join(listed)}"}} * 0 + on() group_left() '
        f"({_open_expr(routing.DEFAULT_ZONE, holidays)}))"
    )
    return "\n  or ".join(parts)


#: The 60 minutely samples before this evaluation: ``offset 30s`` makes the window independent of
#: whether the minutely group has already written the sample of this very minute, and of whether
#: Prometheus' range ends are closed (2.x) or left-open (3.x).
_LAST_HOUR: Final = "[1h] offset 30s"


def recording_rules(holidays: Sequence[dt.date] = ()) -> list[dict[str, Any]]:
    """The two rule groups (every minute, every hour)."""
    minutely = [
        {"record": READY, "expr": ready_expr()},
        {"record": OFFICE, "expr": _office_expr(holidays)},
        {"record": OFFICE_READY, "expr": f"{READY} * {OFFICE}"},
        {
            "record": UNREADY_SINCE,
            "expr": (
                f"({UNREADY_SINCE} and on(station) ({READY} == 0))"
                f" or on(station) (({READY} == 0) * 0 + time())"
            ),
        },
        {"record": OUTAGE, "expr": f"time() - {UNREADY_SINCE}"},
    ]
    hourly = [
        {"record": OFFICE_MINUTES_1H, "expr": f"sum_over_time({OFFICE}{_LAST_HOUR})"},
        {"record": OFFICE_READY_MINUTES_1H, "expr": f"sum_over_time({OFFICE_READY}{_LAST_HOUR})"},
    ]
    return [
        {"name": "pantau-availability", "interval": RULE_INTERVAL, "rules": minutely},
        {"name": "pantau-availability-hourly", "interval": HOURLY_INTERVAL, "rules": hourly},
    ]


def rules_document(holidays: Sequence[dt.date] = ()) -> dict[str, Any]:
    return {"groups": recording_rules(holidays)}


def availability_query(window: str, by: str = "kabkota, kecamatan", selector: str = "") -> str:
    """Office-hours availability per ``by`` over ``window`` (a PromQL duration)."""
    sel = f"{{{selector}}}" if selector else ""
    return (
        f"sum by ({by}) (sum_over_time({OFFICE_READY_MINUTES_1H}{sel}[{window}]))"
        f" / sum by ({by}) (sum_over_time({OFFICE_MINUTES_1H}{sel}[{window}]))"
    )


# --------------------------------------------------------------------------- promtool unit tests
# Two stations, one WIB (Klaten, 33) and one WIT (Jayapura, 91), evaluated from the Unix epoch:
# 1970-01-01 was a Thursday; 00:00 UTC is 07:00 WIB and 09:00 WIT.
_KLATEN = {"station": "3310-bayat-01", "provinsi": "33", "kabkota": "3310", "kecamatan": "Bayat"}
_PAPUA = {"station": "9171-abepura-01", "provinsi": "91", "kabkota": "9171", "kecamatan": "Abepura"}
#: A holiday on the second day (Friday 1970-01-02) proves the holiday exclusion.
TEST_HOLIDAYS: Final = (dt.date(1970, 1, 2),)


def _labels(base: dict[str, str], **extra: str) -> str:
    items = {**base, **extra}
    return "{" + ",".join(f'{k}="{v}"' for k, v in items.items()) + "}"


def promtool_tests_document(rules_file: str) -> dict[str, Any]:
    """promtool unit tests: ready, office hours per zone, holidays, outage age, hourly minutes."""
    k, p = _KLATEN, _PAPUA
    # Klaten: up all along; its camera is missing from minute 60 to 119 (08:00-08:59 WIB).
    # Papua: up all along, everything present.
    series = [
        {"series": f"{m.STATION_UP}{_labels(k)}", "values": "1x300"},
        {
            "series": f"{m.PERIPHERAL_PRESENT}{_labels(k, device_class='camera')}",
            "values": "1x59 0x60 1x180",
        },
        {"series": f"{m.LOGIN_UP}{_labels(k, target='siak')}", "values": "1x300"},
        {"series": f"{m.STATION_UP}{_labels(p)}", "values": "1x300"},
        {"series": f"{m.PERIPHERAL_PRESENT}{_labels(p, device_class='camera')}", "values": "1x300"},
    ]

    def at(minute: int, name: str, values: dict[str, float]) -> dict[str, Any]:
        samples = [
            {"labels": f"{name}{_labels(st)}", "value": v}
            for st, v in ((k, values.get("k")), (p, values.get("p")))
            if v is not None
        ]
        return {"eval_time": f"{minute}m", "expr": name, "exp_samples": samples}

    checks = [
        # 07:30 WIB: Klaten closed; 09:30 WIT: Papua open.
        at(30, OFFICE, {"k": 0, "p": 1}),
        # 08:30 WIB: Klaten open and its camera missing -> not ready, outage began at minute 60.
        at(90, OFFICE, {"k": 1, "p": 1}),
        at(90, READY, {"k": 0, "p": 1}),
        at(90, OFFICE_READY, {"k": 0, "p": 1}),
        at(90, OUTAGE, {"k": 30 * 60}),
        at(90, UNREADY_SINCE, {"k": 60 * 60}),
        # 09:30 WIB: the camera is back, no outage series; Klaten open and ready.
        at(150, OUTAGE, {}),
        at(150, OFFICE_READY, {"k": 1, "p": 1}),
        # Hourly minutes at 02:00 UTC: Klaten was open 60 minutes (08:00-09:00 WIB) of which
        # ready 0 (camera missing 08:00-08:59); Papua open and ready the whole hour.
        at(120, OFFICE_MINUTES_1H, {"k": 60, "p": 60}),
        at(120, OFFICE_READY_MINUTES_1H, {"k": 0, "p": 60}),
    ]
    holiday_series = [
        {"series": f"{m.STATION_UP}{_labels(k)}", "values": "1x1600"},
        {"series": f"{m.STATION_UP}{_labels(p)}", "values": "1x1600"},
    ]
    holiday_checks = [
        # Thursday 08:30 WIB (minute 90) open; Friday 08:30 WIB (minute 1530) is a holiday.
        at(90, OFFICE, {"k": 1, "p": 1}),
        at(1530, OFFICE, {"k": 0, "p": 0}),
    ]
    return {
        "rule_files": [rules_file],
        "evaluation_interval": RULE_INTERVAL,
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [],
                "promql_expr_test": checks,
            },
            {
                "interval": "1m",
                "input_series": holiday_series,
                "alert_rule_test": [],
                "promql_expr_test": holiday_checks,
            },
        ],
    }


# --------------------------------------------------------------------------- dashboard

AVAILABILITY_UID: Final = "pantau-availability"
AVAILABILITY_SLUG: Final = "pantau-availability"


def dashboard() -> dict[str, Any]:
    """ "Availability": worst kecamatan first, outage ages; over the dashboard's time range."""
    import grafanalib.core as g

    from pantau.dashboards._panels import (
        DATASOURCE,
        GREEN,
        READY_MAP,
        RED,
        REGION,
        datasource_variable,
        hide_columns,
        layout,
        region_variables,
        target,
    )
    from pantau.dashboards._panels import (
        dashboard as make_dashboard,
    )

    ratio_thresholds = [
        {"color": RED, "value": None},
        {"color": "orange", "value": 0.9},
        {"color": GREEN, "value": 0.98},
    ]
    fleet = g.Stat(
        title="Ketersediaan jam kerja / Office-hours availability",
        description=(
            "Menit siap pada jam kerja / menit jam kerja, seluruh stasiun terpilih. "
            "Ready office minutes / office minutes, all selected stations."
        ),
        dataSource=DATASOURCE,
        targets=[
            target(
                availability_query("$__range", by="", selector=REGION),
                "A",
                instant=True,
            )
        ],
        format="percentunit",
        decimals=1,
        reduceCalc="lastNotNull",
        graphMode="none",
        colorMode="background",
        thresholds=ratio_thresholds,
    )
    broken = g.Stat(
        title="Stasiun tidak siap sekarang / Stations not ready now",
        dataSource=DATASOURCE,
        targets=[target(f"count({READY}{{{REGION}}} == 0) or vector(0)", "A", instant=True)],
        reduceCalc="lastNotNull",
        graphMode="none",
        colorMode="background",
        thresholds=[{"color": GREEN, "value": None}, {"color": RED, "value": 1}],
    )
    worst = g.Table(
        title="Kecamatan, terburuk dulu / Kecamatan, worst first",
        description="Ketersediaan jam kerja dalam rentang waktu / office-hours availability in the range",
        dataSource=DATASOURCE,
        targets=[
            target(f"sort({availability_query('$__range', selector=REGION)})", "A", instant=True)
        ],
        transformations=[hide_columns("Time")],
        unit="percentunit",
        extraJson={
            "fieldConfig": {
                "defaults": {
                    "decimals": 1,
                    "custom": {"cellOptions": {"type": "color-text"}},
                    "thresholds": {"mode": "absolute", "steps": ratio_thresholds},
                }
            }
        },
    )
    ages = g.Table(
        title="Gangguan berjalan, terlama dulu / Ongoing outages, oldest first",
        description="Sejak kapan stasiun tidak siap / how long each station has not been ready",
        dataSource=DATASOURCE,
        targets=[target(f"sort_desc({OUTAGE}{{{REGION}}})", "A", instant=True)],
        transformations=[hide_columns("Time", "__name__", "job", "instance")],
        unit="s",
    )
    longest = g.Table(
        title="Gangguan terpanjang dalam rentang / Longest outage in the range",
        dataSource=DATASOURCE,
        targets=[
            target(
                f"sort_desc(max by ({BY}) (max_over_time({OUTAGE}{{{REGION}}}[$__range])))",
                "A",
                instant=True,
            )
        ],
        transformations=[hide_columns("Time")],
        unit="s",
    )
    timeline = g.StateTimeline(
        title="Kecamatan bisa merekam / Kecamatan can record",
        description="Hijau: paling sedikit satu stasiun siap / green: at least one station ready",
        dataSource=DATASOURCE,
        targets=[target(f"max by (kecamatan) ({READY}{{{REGION}}})", "A", "{{kecamatan}}")],
        mappings=READY_MAP,
        showValue="never",
    )
    panels = layout(
        [
            [(fleet, 12, 5), (broken, 12, 5)],
            [(worst, 12, 12), (ages, 12, 12)],
            [(longest, 24, 8)],
            [(timeline, 24, 12)],
        ]
    )
    return make_dashboard(
        uid=AVAILABILITY_UID,
        title="pantau: Ketersediaan / Availability",
        description=(
            "Ketersediaan perekaman pada jam kerja dan umur gangguan / recording availability "
            "in office hours and outage ages (recording rules pantau:*)"
        ),
        variables=[datasource_variable(), *region_variables()],
        panels=panels,
        links=[],
    )
