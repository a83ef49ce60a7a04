"""The fleet board people act on: language, regions by name, local times, clues, counts that add
up, since when, a phone-width layout (headless Chromium), and the README screenshot.

The fleet is the Klaten one of September 2016 fed through the real wire format into the real
fleet state: Juwiring struck by lightning (a reboot, then all four devices gone), Bayat refused by
the login service (HTTP 403), Cawas never reporting, Gantiwarno and Ceper with broken devices;
plus one station each in Bali (WITA) and Papua (WIT) for the time zones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pantau.collector.board import local_time, render_board
from pantau.collector.fleet import Fleet, Snapshot
from pantau.contract import klaten, wire
from pantau.contract.inventory import InventoryEntry

REPO = Path(__file__).resolve().parents[2]
#: 2026-09-28 07:02:00 UTC = 14:02 WIB.
T0 = 1_790_578_920.0
DAY = 86400.0
CLASSES = klaten.DEVICE_CLASSES
BALI = InventoryEntry("5171-denpasar-01", "51", "5171", "Denpasar Selatan", CLASSES)
PAPUA = InventoryEntry("9171-jayapura-01", "91", "9171", "Jayapura Utara", CLASSES)


def _state(entry: InventoryEntry, seq: int, missing: tuple[str, ...] = (), denied: bool = False):  # type: ignore[no-untyped-def]
    return wire.State(
        station=entry.station,
        agent_version="0.1.0",
        session="s1",
        seq=seq,
        ts=T0,
        kecamatan=entry.kecamatan,
        interval_s=86400.0,  # reports by exception: a healthy station may be quiet for a day
        peripherals=tuple(
            wire.Peripheral(device_class=c, present=c not in missing, found=int(c not in missing))
            for c in CLASSES
        ),
        probes=(
            wire.Probe(
                target="enrollment",
                kind="http",
                up=not denied,
                duration_s=0.05,
                reason="http_status" if denied else "ok",
                status_code=403 if denied else 200,
                cause="denied" if denied else "ok",
            ),
        ),
    )


def _event(entry: InventoryEntry, seq: int, kind: wire.EventKind, subject: str = "") -> wire.Event:
    return wire.Event(
        station=entry.station,
        agent_version="0.1.0",
        session="s1",
        seq=seq,
        ts=T0,
        kind=kind,
        subject=subject,
    )


def klaten_fleet() -> Snapshot:
    inventory = [*klaten.inventory(), BALI, PAPUA]
    by_kec = {e.kecamatan: e for e in inventory}
    fleet = Fleet(inventory=inventory, device_classes=CLASSES, known_since=T0 - 730 * DAY)

    def send(entry: InventoryEntry, message: wire.Message, at: float) -> None:
        topic = wire.Topic(entry.provinsi, entry.kabkota, entry.station, wire.kind_of(message))
        assert fleet.apply(topic, message, at) == ""

    for entry in inventory:
        if entry.kecamatan == "Cawas":
            continue  # broken for two years: never reports
        missing = {"Gantiwarno": ("camera", "signature"), "Ceper": ("iris",)}
        send(entry, _state(entry, 2, missing.get(entry.kecamatan, ())), T0 - 2 * DAY)
    juwiring, bayat = by_kec["Juwiring"], by_kec["Bayat"]
    # 14:02 WIB: lightning. The PC reboots, every device vanishes.
    send(juwiring, _event(juwiring, 3, wire.EventKind.REBOOT), T0)
    for seq, cls in enumerate(CLASSES, start=4):
        send(juwiring, _event(juwiring, seq, wire.EventKind.PERIPHERAL_REMOVED, cls), T0)
    send(juwiring, _state(juwiring, 8, CLASSES), T0)
    # Bayat's reinstall: the login service refuses the station.
    send(bayat, _event(bayat, 3, wire.EventKind.PROBE_DOWN, "enrollment"), T0 - 3600)
    send(bayat, _state(bayat, 4, denied=True), T0 - 3600)
    for entry in (BALI, PAPUA):
        send(entry, _event(entry, 3, wire.EventKind.REBOOT), T0)
        send(entry, _state(entry, 4), T0)
    fleet.set_connected(True)
    return fleet.snapshot(T0 + 60)


def _problem_rows(page: str) -> str:
    return page[page.index("<h2>") : page.index('<h2><a href="/?kabkota=')]


def test_local_times_follow_each_station_zone() -> None:
    assert local_time(T0, "WIB", T0) == "14:02 WIB"
    assert local_time(T0, "WITA", T0) == "15:02 WITA"
    assert local_time(T0, "WIT", T0) == "16:02 WIT"
    assert local_time(T0 - 2 * DAY, "WIB", T0) == "26/09 14:02 WIB"


def test_the_board_speaks_bahasa_indonesia_and_shows_the_clues() -> None:
    snap = klaten_fleet()
    page = render_board(snap)
    rows = _problem_rows(page)
    # Cawas, never reported for two years, heads the list: impossible to overlook.
    assert rows.index("3310-cawas-01") < rows.index("3310-juwiring-01")
    assert "belum pernah melapor sejak 730 hari" in rows
    # Juwiring: the lightning pattern, at local time.
    juwiring = rows[rows.index("3310-juwiring-01") :]
    juwiring = juwiring[: juwiring.index("</tr>")]
    assert "kamera hilang sejak 1 menit" in juwiring
    assert "14:02 WIB PC nyala ulang" in juwiring
    assert "14:02 WIB kamera dicabut/hilang" in juwiring
    # Bayat: refused by the login service, with what to do about the account.
    bayat = rows[rows.index("3310-bayat-01") :]
    bayat = bayat[: bayat.index("</tr>")]
    assert "layanan login menolak stasiun ini (HTTP 403) sejak 1 jam" in bayat
    assert "setelah instal ulang PC" in bayat
    assert "13:02 WIB login gagal (enrollment)" in bayat
    assert "jaringan" not in bayat.split("Bukan masalah jaringan")[0].split("→")[0]
    # Never reported is as severe (red) as a missing camera.
    cawas = rows[rows.index("3310-cawas-01") - 200 :]
    assert '<div class="t bad">' in cawas[: cawas.index("3310-cawas-01") + 50]
    # Regions by name; times in each station's zone.
    assert "Klaten, Jawa Tengah" in page
    assert "5171, Bali" in page
    assert "9171, Papua" in page
    assert "15:02 WITA PC nyala ulang" in render_board(snap, station=BALI.station)
    assert "16:02 WIT PC nyala ulang" in render_board(snap, station=PAPUA.station)


def test_the_board_says_where_residents_can_record_instead() -> None:
    """A kecamatan that cannot record names its inventory neighbours that can, nearest first:
    Cawas' residents go to Trucuk or Pedan (as in 2016); Bayat's only to Wedi (Cawas, its
    nearest, cannot record either)."""
    snap = klaten_fleet()
    rows = _problem_rows(render_board(snap))

    def row(station: str) -> str:
        part = rows[rows.rindex("<tr>", 0, rows.index(station)) :]
        return part[: part.index("</tr>")]

    go = "warga dapat merekam di Kecamatan"
    assert f"{go} Trucuk, Pedan" in row("3310-cawas-01")
    assert f"{go} Wedi<" in row("3310-bayat-01")
    assert f"{go} Wonosari, Pedan" in row("3310-juwiring-01")
    english = _problem_rows(render_board(snap, lang="en"))
    assert "residents can record at Kecamatan Trucuk, Pedan" in english
    # Filtered to one kabkota, the verdict is the same; healthy kecamatan name nobody.
    assert f"{go} Trucuk, Pedan" in render_board(snap, kabkota="3310")
    assert rows.count(go) == 5  # the five kecamatan that cannot record


def test_counts_add_up() -> None:
    snap = klaten_fleet()
    for lang in ("id", "en"):
        page = render_board(snap, lang=lang).replace("<b>", "").replace("</b>", "")
        sums = re.search(
            r"(\d+) (?:siap|ready)</span><span>(\d+) (?:bermasalah|with problems).*?"
            r"<span>(\d+) (?:belum pernah melapor|never reported)</span><span>= (\d+)",
            page,
        )
        assert sums is not None, page[:2000]
        ready, problems, never, total = map(int, sums.groups())
        assert (ready, problems, never, total) == (23, 4, 1, 28)
        assert ready + problems + never == total == len(snap.stations)


def test_english_on_request_and_the_station_detail() -> None:
    snap = klaten_fleet()
    page = render_board(snap, lang="en")
    assert "<html lang=en>" in page
    assert "never reported for 730 days" in page
    assert "the login service refuses this station (HTTP 403)" in page
    assert "14:02 WIB PC rebooted" in page
    detail = render_board(snap, station="3310-juwiring-01")
    assert "3310-bayat-01" not in detail
    for cls in ("pemindai sidik jari", "pemindai iris", "kamera", "alat tanda tangan"):
        assert f"{cls}" in detail
    assert detail.count("dicabut/hilang") == 4  # every clue of the station, not the last few


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chrome(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI")
        pytest.skip("chromium not installed (apt-get install chromium)")
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    for attempt in range(2):  # a loaded machine can stall Chromium's first start
        try:
            return subprocess.run(argv, capture_output=True, timeout=90, check=False)
        except subprocess.TimeoutExpired:
            if attempt:
                raise
    raise AssertionError("unreachable")


def test_phone_width_layout_has_no_sideways_scroll(tmp_path: Path) -> None:
    """At 390 px (a phone) the page is as wide as the screen: Chromium lays it out and a probe
    script (added to a copy for the test only: the served board has no JavaScript) reports
    the document's width."""
    page = render_board(klaten_fleet(), refresh_s=0)
    probe = (
        "<script>document.addEventListener('DOMContentLoaded',()=>{"
        "document.title='W='+document.documentElement.scrollWidth+' V='+window.innerWidth;"
        "});</script>"
    )
    path = tmp_path / "phone.html"
    path.write_text(page.replace("</head>", probe + "</head>"), encoding="utf-8")
    res = _chrome(tmp_path, "--window-size=390,844", "--dump-dom", path.as_uri())
    dom = res.stdout.decode(errors="replace")
    width = re.search(r"<title>W=(\d+) V=(\d+)</title>", dom)
    assert width is not None, dom[:500] + res.stderr.decode(errors="replace")[-1000:]
    page_width, viewport = map(int, width.groups())
    # Headless Chromium keeps a minimum window width a little above a phone's; what matters is
    # that nothing is wider than the screen (no sideways scrolling) at that narrow width.
    assert viewport <= 520
    assert page_width <= viewport
    shot = tmp_path / "phone.png"
    res = _chrome(tmp_path, "--window-size=390,844", f"--screenshot={shot}", path.as_uri())
    assert shot.exists(), res.stderr.decode(errors="replace")[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_screenshot_is_regenerated_from_the_current_board(tmp_path: Path) -> None:
    """docs/img/fleet-board.png is this board (the Klaten fleet above) as Chromium draws it now,
    written by this test, so the README's picture cannot go stale."""
    page = render_board(klaten_fleet(), refresh_s=0)
    path = tmp_path / "board.html"
    path.write_text(page, encoding="utf-8")
    shot = tmp_path / "fleet-board.png"
    res = _chrome(tmp_path, "--window-size=1280,1000", f"--screenshot={shot}", path.as_uri())
    assert shot.exists(), res.stderr.decode(errors="replace")[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank or error page compresses to a few KB
    target = REPO / "docs" / "img" / "fleet-board.png"
    if target.read_bytes() != data:
        target.write_bytes(data)
    assert target.read_bytes() == data
