"""A simulated 90-day history of the Klaten fleet, written as OpenMetrics for promtool backfill.

The simulated truth is a list of fault intervals; both the OpenMetrics samples and the
reference figures the report is checked against are computed from it, by separate code (the
reference does not use pantau's office-hours or availability code).

Faults (all times WIB):

- Cawas: silent (offline, last report frozen) for the last 60 days of the history;
- Juwiring: lightning on 2026-11-10 at 14:00, every peripheral gone until 2026-11-20 10:00;
- Bayat: locked out of the login service (probe reason ``http_403``) from 2026-11-16 08:00 for
  a week;
- Kemalang: in the inventory, its agent never reported at all.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pantau.contract import klaten

WIB = zoneinfo.ZoneInfo("Asia/Jakarta")
STEP_S = 3600
END = dt.datetime(2026, 12, 1, tzinfo=WIB)
START = END - dt.timedelta(days=90)
JOB = 'job="pantau-collector",instance="collector:9108"'
EXTRA_HOLIDAY = dt.date(2026, 11, 25)  # proves the holidays file is honoured


@dataclass(frozen=True)
class Fault:
    kecamatan: str
    kind: str  # offline | devices | login | never
    start: dt.datetime
    end: dt.datetime


FAULTS = (
    Fault("Cawas", "offline", END - dt.timedelta(days=60), END),
    Fault(
        "Juwiring",
        "devices",
        dt.datetime(2026, 11, 10, 14, tzinfo=WIB),
        dt.datetime(2026, 11, 20, 10, tzinfo=WIB),
    ),
    Fault(
        "Bayat",
        "login",
        dt.datetime(2026, 11, 16, 8, tzinfo=WIB),
        dt.datetime(2026, 11, 23, 8, tzinfo=WIB),
    ),
    Fault("Kemalang", "never", START, END),
)


def faults_at(kecamatan: str, t: dt.datetime) -> set[str]:
    return {f.kind for f in FAULTS if f.kecamatan == kecamatan and f.start <= t < f.end}


def hours(start: dt.datetime = START, end: dt.datetime = END) -> Iterator[dt.datetime]:
    t = start
    while t < end:
        yield t
        t += dt.timedelta(seconds=STEP_S)


def labels(kecamatan: str, **extra: str) -> str:
    base = {
        "station": klaten.station_id(kecamatan),
        "provinsi": klaten.PROVINSI,
        "kabkota": klaten.KABKOTA,
        "kecamatan": kecamatan,
        **extra,
    }
    return "{" + JOB + "," + ",".join(f'{k}="{v}"' for k, v in base.items()) + "}"


def openmetrics() -> str:
    """Every family, series by series, timestamps ascending (what promtool's backfill needs)."""
    families: dict[str, list[str]] = {
        "pantau_station_up": [],
        "pantau_station_last_report_timestamp_seconds": [],
        "pantau_peripheral_present": [],
        "pantau_login_up": [],
        "pantau_login_probe_info": [],
    }
    grid = list(hours())
    for kec in klaten.KECAMATAN:
        never = any(f.kind == "never" for f in FAULTS if f.kecamatan == kec)
        up_lines, last_lines, login_lines, info_lines = [], [], [], []
        device_lines: dict[str, list[str]] = {c: [] for c in klaten.DEVICE_CLASSES}
        last_report = 0.0
        for t in grid:
            ts = t.timestamp()
            now = faults_at(kec, t)
            up = 0 if ("offline" in now or never) else 1
            up_lines.append(f"pantau_station_up{labels(kec)} {up} {ts:.0f}")
            if never:
                continue
            if up:
                last_report = ts
            last_lines.append(
                f"pantau_station_last_report_timestamp_seconds{labels(kec)} {last_report:.0f} {ts:.0f}"
            )
            for cls in klaten.DEVICE_CLASSES:
                present = 0 if "devices" in now else 1
                device_lines[cls].append(
                    f"pantau_peripheral_present{labels(kec, device_class=cls)} {present} {ts:.0f}"
                )
            login = 0 if "login" in now else 1
            login_lines.append(f"pantau_login_up{labels(kec, target='siak')} {login} {ts:.0f}")
            if not login:
                info_lines.append(
                    f"pantau_login_probe_info{labels(kec, target='siak', reason='http_403')} 1 {ts:.0f}"
                )
        families["pantau_station_up"] += up_lines
        families["pantau_station_last_report_timestamp_seconds"] += last_lines
        for lines in device_lines.values():
            families["pantau_peripheral_present"] += lines
        families["pantau_login_up"] += login_lines
        families["pantau_login_probe_info"] += info_lines
    out = []
    for name, lines in families.items():
        out.append(f"# TYPE {name} gauge")
        out += lines
    out.append("# EOF")
    return "\n".join(out) + "\n"


def write(path: Path) -> Path:
    path.write_text(openmetrics(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the truth


def office(t: dt.datetime, holidays: set[dt.date]) -> bool:
    local = t.astimezone(WIB)
    return local.weekday() < 5 and 8 <= local.hour < 16 and local.date() not in holidays


def ready(kecamatan: str, t: dt.datetime) -> bool:
    return not faults_at(kecamatan, t)


def availability(
    kecamatan: str, start: dt.datetime, end: dt.datetime, holidays: set[dt.date]
) -> float:
    slots = [t for t in hours(start, end) if office(t, holidays)]
    return sum(ready(kecamatan, t) for t in slots) / len(slots)
