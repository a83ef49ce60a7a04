"""The fleet board (``/``): one server-rendered HTML page, no JavaScript. Pure: snapshot -> str.

Read at a glance by IT staff: a summary line, then every station with a problem (red, with what
is wrong), then the whole fleet grouped by kabupaten/kota and kecamatan, each station a green or
red tile. The page reloads itself with a meta refresh.
"""

from __future__ import annotations

import time
from html import escape
from itertools import groupby

from pantau.collector.fleet import Snapshot, StationView, problems, summarize
from pantau.contract.vocabulary import StationStatus

_CSS = """
body{font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#f4f5f7;color:#1d2125}
header{background:#1d2125;color:#fff;padding:10px 20px;display:flex;align-items:baseline;gap:24px}
header h1{font-size:20px;margin:0}
.sum span{margin-right:18px;white-space:nowrap}
.sum b{font-size:18px}
main{padding:8px 20px 24px}
h2{font-size:17px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{padding:5px 8px;border-bottom:1px solid #e2e4e8;vertical-align:top;text-align:left}
th{font-size:13px;color:#5e6c84;font-weight:600}
td.kec{width:170px;font-weight:600}
td.kab{width:110px}
.tiles{display:flex;flex-wrap:wrap;gap:6px}
.t{border-radius:4px;padding:3px 8px;font-size:13px;min-width:150px}
.t small{display:block;font-size:12px}
.ok{background:#dff5e3;border-left:6px solid #1f8a3b}
.bad{background:#fde2e1;border-left:6px solid #c9372c}
.never{background:#eceef1;border-left:6px solid #c9372c;color:#44546f}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px}
.dot.ok{background:#1f8a3b;border:0}.dot.bad{background:#c9372c;border:0}
.dot.never{background:#8590a2;border:0}
.muted{color:#5e6c84;font-size:13px}
"""


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _tile_class(probs: list[str], status: StationStatus) -> str:
    if status == "never_reported":
        return "never"
    return "bad" if probs else "ok"


def _tile(view: StationView, now: float, stale: float, status: StationStatus) -> str:
    probs = problems(view, now, stale, status)
    cls = _tile_class(probs, status)
    detail = "; ".join(probs) if probs else "all present, login ok"
    fresh = status == "up"
    seen = f" · {_ago(now - view.last_seen)}" if fresh else ""
    flag = "" if view.inventory else " (not in inventory)"
    return (
        f'<div class="t {cls}"><span class="dot {cls}"></span><b>{escape(view.station)}</b>'
        f"{escape(flag)}<small>{escape(detail)}{seen}</small></div>"
    )


def render_board(
    snapshot: Snapshot,
    *,
    refresh_s: int = 15,
    title: str = "pantau",
    kabkota: str = "",
    max_tiles: int = 3000,
) -> str:
    """The whole page; ``kabkota`` limits it to one kabupaten/kota.

    Above ``max_tiles`` stations the fleet section shows one summary row per kabupaten/kota
    (linking to its own board), first, instead of a tile per station, and the problem list is cut
    at ``max_tiles`` entries: a national board stays readable and small.
    """
    now, stale = snapshot.now, snapshot.stale_after_intervals
    views = [v for v in snapshot.stations if v.kabkota == kabkota] if kabkota else snapshot.stations
    s = summarize(snapshot._replace(stations=views))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    faults = [v for v in views if problems(v, now, stale, snapshot.status(v))]
    fault_ids = {v.station for v in faults}
    mqtt = "" if snapshot.mqtt_connected else ' · <b style="color:#ff8f73">MQTT disconnected</b>'
    if snapshot.blind:
        since = time.strftime("%H:%M:%S UTC", time.gmtime(snapshot.status_now))
        what = "replaying retained states" if snapshot.mqtt_connected else "cannot see the stations"
        mqtt += (
            f' · <b style="color:#ff8f73">collector blind since {since} ({what}): '
            "statuses are as of then, nobody is marked down for silence meanwhile</b>"
        )
    scope = (
        f" · kabupaten/kota {escape(kabkota)} (<a href=/ style=color:#9fc>all</a>)"
        if kabkota
        else ""
    )
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(title)}: {s.ready}/{s.total} ready</title>{refresh}",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(title)} · fleet board{scope}</h1><div class=sum>",
        f"<span><b>{s.ready}</b> / {s.total} ready</span>",
        f"<span><b>{s.total - s.ready}</b> with problems</span>",
        f"<span><b>{s.offline + s.stale}</b> down</span>",
        f"<span><b>{s.never_reported}</b> never reported</span>",
        f"</div><div class=muted>{stamp}{mqtt}</div></header><main>",
    ]
    stations = sorted(views, key=lambda v: (v.provinsi, v.kabkota, v.kecamatan, v.station))
    groups = groupby(stations, key=lambda v: (v.provinsi, v.kabkota))
    if len(views) > max_tiles:
        out.append("<h2>Kabupaten/kota</h2><table>")
        out.append(
            "<tr><th>Provinsi</th><th>Kabupaten/kota</th><th>Ready</th><th>Problems</th></tr>"
        )
        for (provinsi, kab), group in groups:
            members = list(group)
            bad = sum(1 for v in members if v.station in fault_ids)
            cls = "bad" if bad else "ok"
            out.append(
                f"<tr><td>{escape(provinsi)}</td><td class=kec>"
                f'<a href="/?kabkota={escape(kab)}">{escape(kab)}</a></td>'
                f'<td><span class="dot {cls}"></span>{len(members) - bad}/{len(members)}</td>'
                f"<td>{bad}</td></tr>"
            )
        out.append("</table>")
    if faults:
        out.append(f"<h2>Problems ({len(faults)})</h2><table>")
        out.append("<tr><th>Kabupaten/kota</th><th>Kecamatan</th><th>Station</th></tr>")
        shown = sorted(faults, key=lambda v: (v.kabkota, v.kecamatan, v.station))[:max_tiles]
        out.extend(
            f"<tr><td class=kab>{escape(v.kabkota)}</td><td class=kec>{escape(v.kecamatan)}</td>"
            f"<td>{_tile(v, now, stale, snapshot.status(v))}</td></tr>"
            for v in shown
        )
        out.append("</table>")
        if len(faults) > len(shown):
            out.append(
                f"<p class=muted>... and {len(faults) - len(shown)} more: "
                '<a href="/api/stations?problems=1">/api/stations?problems=1</a></p>'
            )
    else:
        out.append('<h2 style="color:#1f8a3b">Every station is ready</h2>')
    for (provinsi, kab), group in groups if len(views) <= max_tiles else ():
        members = list(group)
        bad = sum(1 for v in members if v.station in fault_ids)
        out.append(
            f'<h2><a href="/?kabkota={escape(kab)}" style="color:inherit">Kabupaten/kota '
            f"{escape(kab)}</a> <span class=muted>(provinsi "
            f"{escape(provinsi)}; {len(members) - bad}/{len(members)} ready)</span></h2><table>"
        )
        for kecamatan, kec_group in groupby(members, key=lambda v: v.kecamatan):
            tiles = "".join(_tile(v, now, stale, snapshot.status(v)) for v in kec_group)
            out.append(
                f"<tr><td class=kec>{escape(kecamatan or '(unknown)')}</td>"
                f"<td><div class=tiles>{tiles}</div></td></tr>"
            )
        out.append("</table>")
    out.append(
        "<p class=muted>Green: online, every expected device present, login reachable. "
        "Red: what is wrong is written in the tile. Grey: in the inventory but never reported. "
        'Data: <a href="/api/stations">/api/stations</a> · <a href="/metrics">/metrics</a></p>'
    )
    out.append("</main></body></html>")
    return "".join(out)
