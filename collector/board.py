"""The fleet board (``/``): one server-rendered HTML page, no JavaScript. Pure: snapshot -> str.

Read at a glance by IT staff, on a desk or on a phone: a summary whose counts add up (ready +
with problems + never reported = all stations), then every station with a problem, the one
broken longest first, each problem with since when it has held ("kamera hilang sejak 3 hari")
and what to do, and the station's recent events in its own local time (the clues: "14:02 WIB
nyala ulang, 14:02 kamera dicabut" is a lightning strike); then the whole fleet grouped by
kabupaten/kota and kecamatan, a green or red tile per station. The page reloads itself.

Bahasa Indonesia by default (``?lang=en`` for English); regions by name (the province's from
its code, the kabupaten/kota's from the inventory's ``kabkota_name``); times in each station's
zone (WIB/WITA/WIT, from its province or the inventory's ``timezone``). ``?station=ID`` shows
one station with every detail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from html import escape
from itertools import groupby
from typing import Final
from urllib.parse import urlencode

from pantau.collector.diagnosis import Lang, Problem, critical, diagnose, hint, text
from pantau.collector.fleet import Snapshot, StationView
from pantau.contract.vocabulary import TIME_ZONES, device_names, province_name

_CSS = """
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#f4f5f7;color:#1d2125}
header{background:#1d2125;color:#fff;padding:10px 16px;display:flex;flex-wrap:wrap;
 align-items:baseline;gap:8px 24px}
header h1{font-size:20px;margin:0}
header a{color:#9fc}
.sum{min-width:0;max-width:100%}
.sum span{margin-right:16px;white-space:nowrap;display:inline-block}
.sum b{font-size:18px}
main{padding:8px 16px 24px}
h2{font-size:17px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{padding:5px 8px;border-bottom:1px solid #e2e4e8;vertical-align:top;text-align:left}
th{font-size:13px;color:#5e6c84;font-weight:600}
td.kec{width:170px;font-weight:600}
td.kab{width:110px}
.tiles{display:flex;flex-wrap:wrap;gap:6px}
.t{border-radius:4px;padding:3px 8px;font-size:13px;min-width:150px;overflow-wrap:anywhere}
.t small{display:block;font-size:12px}
.t a{color:inherit}
.ok{background:#dff5e3;border-left:6px solid #1f8a3b}
.bad{background:#fde2e1;border-left:6px solid #c9372c}
.warn{background:#fff4d6;border-left:6px solid #b38600}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px}
.dot.ok{background:#1f8a3b;border:0}.dot.bad{background:#c9372c;border:0}
.dot.warn{background:#b38600;border:0}
.muted{color:#5e6c84;font-size:13px}
.hint{color:#44546f;font-size:12px}
.go{color:#0b5394;font-size:13px;font-weight:600;margin:2px 0 0 2px}
.ev{color:#44546f;font-size:12px}
@media (max-width:640px){
 body{font-size:14px}
 header{padding:8px 10px}
 main{padding:6px 8px 16px}
 table,tbody,tr,td,th{display:block;width:auto}
 tr{border-bottom:1px solid #e2e4e8}
 th{display:none}
 td{border:0;padding:3px 4px}
 td.kec,td.kab{width:auto}
 .t{min-width:0}
}
"""

#: The board's words: key -> (Bahasa Indonesia, English).
WORDS: Final[dict[str, tuple[str, str]]] = {
    "board": ("papan armada", "fleet board"),
    "ready": ("siap", "ready"),
    "with_problems": ("bermasalah", "with problems"),
    "never": ("belum pernah melapor", "never reported"),
    "total": ("stasiun", "stations"),
    "down": ("di antaranya offline/diam", "of them offline/silent"),
    "problems": ("Masalah", "Problems"),
    "all_ready": ("Semua stasiun siap", "Every station is ready"),
    "kabkota": ("Kabupaten/kota", "Kabupaten/kota"),
    "kecamatan": ("Kecamatan", "Kecamatan"),
    "station": ("Stasiun", "Station"),
    "all": ("semua", "all"),
    "healthy": ("semua perangkat ada, login OK", "all present, login ok"),
    "not_inventory": ("(tidak di inventaris)", "(not in inventory)"),
    "recent": ("kejadian terakhir", "recent events"),
    "more": ("... dan {n} lagi", "... and {n} more"),
    "mqtt_down": ("MQTT terputus", "MQTT disconnected"),
    "blind": (
        "collector buta sejak {since} ({what}): status seperti saat itu, tidak ada yang "
        "ditandai mati karena diam",
        "collector blind since {since} ({what}): statuses are as of then, nobody is marked down "
        "for silence meanwhile",
    ),
    "replaying": ("memutar ulang status tersimpan", "replaying retained states"),
    "cannot_see": ("tidak bisa melihat stasiun", "cannot see the stations"),
    "legend": (
        "Hijau: online, semua perangkat ada, login bisa. Merah: yang salah tertulis di kotak, "
        "sejak kapan, dan apa yang harus dilakukan (juga stasiun yang belum pernah melapor). "
        "Kuning: peringatan (sertifikat akan kedaluwarsa). Waktu: zona waktu setempat stasiun.",
        "Green: online, every expected device present, login reachable. Red: what is wrong is "
        "written in the tile, since when, and what to do (also stations that never reported). "
        "Yellow: a warning (a certificate about to expire). Times: the station's local zone.",
    ),
    "other_lang": ("English", "Bahasa Indonesia"),
    "seen": ("laporan", "report"),
    "record_at": (
        "Kecamatan ini belum bisa merekam: warga dapat merekam di Kecamatan {names}",
        "This kecamatan cannot record: residents can record at Kecamatan {names}",
    ),
}

#: Event kinds in words: kind -> (Bahasa Indonesia, English); the subject follows.
EVENT_WORDS: Final[dict[str, tuple[str, str]]] = {
    "reboot": ("PC nyala ulang", "PC rebooted"),
    "peripheral_removed": ("dicabut/hilang", "removed"),
    "peripheral_added": ("terpasang lagi", "plugged in"),
    "probe_down": ("login gagal", "login failed"),
    "probe_up": ("login pulih", "login back"),
    "check_failed": ("pemeriksaan gagal", "check failed"),
    "check_recovered": ("pemeriksaan pulih", "check back"),
    "spool_dropped": ("antrean penuh, kejadian lama dibuang", "spool full, old events dropped"),
    "agent_started": ("agen mulai", "agent started"),
}


def _w(key: str, lang: Lang) -> str:
    pair = WORDS[key]
    return pair[0] if lang == "id" else pair[1]


def local_time(ts: float, tz: str, now: float) -> str:
    """``14:02 WIB`` (today in that zone) or ``28/09 14:02 WIB``."""
    offset = TIME_ZONES.get(tz, 7) * 3600
    moment = time.gmtime(ts + offset)
    today = time.gmtime(now + offset)
    same_day = moment[:3] == today[:3]
    return time.strftime("%H:%M" if same_day else "%d/%m %H:%M", moment) + f" {tz}"


def event_text(kind: str, subject: str, lang: Lang) -> str:
    words = EVENT_WORDS.get(kind, (kind, kind))
    what = words[0] if lang == "id" else words[1]
    if kind in ("peripheral_removed", "peripheral_added"):
        dev_id, dev_en = device_names(subject)
        return f"{dev_id if lang == 'id' else dev_en} {what}"
    if kind in ("probe_down", "probe_up"):
        return f"{what} ({subject})" if subject else what
    if kind in ("check_failed", "check_recovered") and subject:
        return f"{what} ({subject})"
    return what


def region_name(view: StationView) -> str:
    """``Klaten, Jawa Tengah`` (codes where no name is known)."""
    return f"{view.kabkota_name or view.kabkota}, {province_name(view.provinsi)}"


def _recent(view: StationView, lang: Lang, now: float, limit: int = 4) -> str:
    if not view.recent:
        return ""
    items = [
        f"{local_time(at, view.tz, now)} {event_text(kind, subject, lang)}"
        for at, kind, subject, _ in view.recent[-limit:]
    ]
    return f"<small class=ev>{_w('recent', lang)}: {escape(' · '.join(items))}</small>"


def _oldest(found: Sequence[Problem]) -> float:
    starts = [p.since for p in found if p.since > 0]
    return min(starts) if starts else float("inf")


def _link(params: dict[str, str]) -> str:
    return "/?" + urlencode({k: v for k, v in params.items() if v})


def record_instead(
    faulty: Sequence[StationView],
    everyone: Sequence[StationView],
    is_ready: Callable[[StationView], bool],
) -> dict[str, tuple[str, ...]]:
    """Kecamatan of ``faulty`` where no station can record -> its inventory neighbours that can,
    nearest first (absent when none can, or the inventory names no neighbours). Only the
    stations of those kecamatan and of their neighbours are judged."""
    wanted = {v.kecamatan for v in faulty} | {n for v in faulty for n in v.neighbours}
    ready: dict[str, bool] = {}
    for v in everyone:
        if v.kecamatan in wanted and not ready.get(v.kecamatan):
            ready[v.kecamatan] = is_ready(v)
    out: dict[str, tuple[str, ...]] = {}
    for v in faulty:
        if ready.get(v.kecamatan) or v.kecamatan in out:
            continue
        names = tuple(n for n in v.neighbours if ready.get(n))
        if names:
            out[v.kecamatan] = names
    return out


def _tile(
    view: StationView,
    found: list[Problem],
    lang: Lang,
    now: float,
    *,
    detail: bool = False,
    brief: bool = False,
) -> str:
    """A station's tile: its problems with since when; unless ``brief``, what to do and its
    recent events; with ``detail``, all of them."""
    bad = critical(found)
    cls = "bad" if bad else "warn" if found else "ok"
    flag = "" if view.inventory else " " + _w("not_inventory", lang)
    shown = found if detail else (bad or found)
    lines = [escape(text(p, lang, now)) for p in shown]
    body = "; ".join(lines) if lines else escape(_w("healthy", lang))
    if not bad and view.state_rx:
        seen = local_time(max(view.state_rx, view.beat_rx), view.tz, now)
        body += f" · {_w('seen', lang)} {escape(seen)}"
    hints = ""
    if bad and not brief:
        todo = dict.fromkeys(hint(p, lang) for p in (found if detail else bad[:2]))
        hints = "".join(f"<small class=hint>→ {escape(h)}</small>" for h in todo)
    href = escape(_link({"station": view.station, "lang": "en" if lang == "en" else ""}))
    return (
        f'<div class="t {cls}"><span class="dot {cls}"></span>'
        f'<b><a href="{href}">{escape(view.station)}</a></b>{escape(flag)}'
        f"<small>{body}</small>{hints}"
        f"{'' if brief else _recent(view, lang, now, 8 if detail else 5)}</div>"
    )


def render_board(
    snapshot: Snapshot,
    *,
    refresh_s: int = 15,
    title: str = "pantau",
    kabkota: str = "",
    station: str = "",
    lang: str = "id",
    max_tiles: int = 3000,
) -> str:
    """The whole page; ``kabkota`` limits it to one kabupaten/kota, ``station`` to one station
    (with every detail); ``lang`` is ``id`` (default) or ``en``.

    Above ``max_tiles`` stations the fleet section shows one summary row per kabupaten/kota
    (linking to its own board), first, instead of a tile per station, and the problem list is cut
    at ``max_tiles`` entries: a national board stays readable and small.
    """
    language: Lang = "en" if lang == "en" else "id"
    now, stale = snapshot.now, snapshot.stale_after_intervals
    views = snapshot.stations
    if kabkota:
        views = [v for v in views if v.kabkota == kabkota]
    if station:
        views = [v for v in views if v.station == station]
    found = {v.station: diagnose(v, now, stale) for v in views}
    never = sum(1 for v in views if v.report is None)
    ready = sum(1 for v in views if not critical(found[v.station]))
    down = sum(1 for v in views if v.report is not None and snapshot.status(v) != "up")
    total = len(views)
    with_problems = total - ready - never  # ready + with problems + never reported = total
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    mqtt = (
        ""
        if snapshot.mqtt_connected
        else f' · <b style="color:#ff8f73">{_w("mqtt_down", language)}</b>'
    )
    if snapshot.blind:
        since = time.strftime("%H:%M:%S UTC", time.gmtime(snapshot.status_now))
        what = _w("replaying" if snapshot.mqtt_connected else "cannot_see", language)
        mqtt += (
            f' · <b style="color:#ff8f73">'
            f"{escape(_w('blind', language).format(since=since, what=what))}</b>"
        )
    other = "id" if language == "en" else "en"
    switch = escape(
        _link({"kabkota": kabkota, "station": station, "lang": "en" if other == "en" else ""})
    )
    scope = ""
    if kabkota or station:
        where = region_name(views[0]) if views else kabkota
        scope = (
            f" · {escape(station or where)} "
            f'(<a href="{escape(_link({"lang": "en" if language == "en" else ""}))}">'
            f"{_w('all', language)}</a>)"
        )
    out = [
        f"<!doctype html><html lang={language}><head><meta charset=utf-8>",
        f"<title>{escape(title)}: {ready}/{total} {_w('ready', language)}</title>{refresh}",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(title)} · {_w('board', language)}{scope}</h1><div class=sum>",
        f"<span><b>{ready}</b> {_w('ready', language)}</span>",
        f"<span><b>{with_problems}</b> {_w('with_problems', language)}"
        + (f" ({down} {_w('down', language)})" if down else "")
        + "</span>",
        f"<span><b>{never}</b> {_w('never', language)}</span>",
        f"<span>= <b>{total}</b> {_w('total', language)}</span>",
        f'</div><div class=muted>{stamp}{mqtt} · <a href="{switch}">'
        f"{_w('other_lang', language)}</a></div></header><main>",
    ]
    faults = [v for v in views if found[v.station]]
    # Where to send residents: judged on the whole fleet (a neighbour may be outside the filter).
    instead = record_instead(
        faults,
        snapshot.stations,
        lambda v: not critical(found[v.station] if v.station in found else diagnose(v, now, stale)),
    )
    if station:  # one station, every detail, healthy or not
        out.extend(
            f"<h2>{escape(v.station)} <span class=muted>{escape(v.kecamatan)}, "
            f"{escape(region_name(v))}</span></h2>"
            f"{_tile(v, found[v.station], language, now, detail=True)}"
            for v in views
        )
    elif faults:
        # The longest-broken first: a station silent for two years heads the list.
        faults.sort(key=lambda v: (_oldest(found[v.station]), v.kabkota, v.kecamatan, v.station))
        shown = faults[:max_tiles]
        out.append(f"<h2>{_w('problems', language)} ({len(faults)})</h2><table>")
        out.append(
            f"<tr><th>{_w('kabkota', language)}</th><th>{_w('kecamatan', language)}</th>"
            f"<th>{_w('station', language)}</th></tr>"
        )
        out.extend(
            f"<tr><td class=kab>{escape(v.kabkota_name or v.kabkota)}</td>"
            f"<td class=kec>{escape(v.kecamatan)}</td>"
            f"<td>{_tile(v, found[v.station], language, now, detail=bool(station))}"
            f"{_go(instead.get(v.kecamatan), language)}</td></tr>"
            for v in shown
        )
        out.append("</table>")
        if len(faults) > len(shown):
            more = _w("more", language).format(n=len(faults) - len(shown))
            out.append(
                f'<p class=muted>{more}: <a href="/api/stations?problems=1">'
                "/api/stations?problems=1</a></p>"
            )
    else:
        out.append(f'<h2 style="color:#1f8a3b">{_w("all_ready", language)}</h2>')
    if not station:
        out.extend(_fleet(views, found, language, now, max_tiles))
    out.append(
        f"<p class=muted>{_w('legend', language)} "
        'Data: <a href="/api/stations">/api/stations</a> · <a href="/metrics">/metrics</a></p>'
    )
    out.append("</main></body></html>")
    return "".join(out)


def _go(names: tuple[str, ...] | None, lang: Lang) -> str:
    if not names:
        return ""
    text = _w("record_at", lang).format(names=", ".join(names))
    return f"<div class=go>→ {escape(text)}</div>"


def _fleet(
    views: Sequence[StationView],
    found: dict[str, list[Problem]],
    lang: Lang,
    now: float,
    max_tiles: int,
) -> list[str]:
    out: list[str] = []
    stations = sorted(views, key=lambda v: (v.provinsi, v.kabkota, v.kecamatan, v.station))
    groups = groupby(stations, key=lambda v: (v.provinsi, v.kabkota))
    lang_param = "en" if lang == "en" else ""
    if len(views) > max_tiles:
        out.append(f"<h2>{_w('kabkota', lang)}</h2><table>")
        out.append(
            f"<tr><th>Provinsi</th><th>{_w('kabkota', lang)}</th><th>{_w('ready', lang)}</th>"
            f"<th>{_w('with_problems', lang)}</th></tr>"
        )
        for (provinsi, kab), group in groups:
            members = list(group)
            bad = sum(1 for v in members if critical(found[v.station]))
            cls = "bad" if bad else "ok"
            href = escape(_link({"kabkota": kab, "lang": lang_param}))
            out.append(
                f"<tr><td>{escape(province_name(provinsi))}</td><td class=kec>"
                f'<a href="{href}">{escape(members[0].kabkota_name or kab)}</a></td>'
                f'<td><span class="dot {cls}"></span>{len(members) - bad}/{len(members)}</td>'
                f"<td>{bad}</td></tr>"
            )
        out.append("</table>")
        return out
    for (_provinsi, kab), group in groups:
        members = list(group)
        bad = sum(1 for v in members if critical(found[v.station]))
        href = escape(_link({"kabkota": kab, "lang": lang_param}))
        out.append(
            f'<h2><a href="{href}" style="color:inherit">{escape(region_name(members[0]))}</a> '
            f"<span class=muted>({len(members) - bad}/{len(members)} {_w('ready', lang)})"
            "</span></h2><table>"
        )
        for kecamatan, kec_group in groupby(members, key=lambda v: v.kecamatan):
            tiles = "".join(_tile(v, found[v.station], lang, now, brief=True) for v in kec_group)
            out.append(
                f"<tr><td class=kec>{escape(kecamatan or '(?)')}</td>"
                f"<td><div class=tiles>{tiles}</div></td></tr>"
            )
        out.append("</table>")
    return out
