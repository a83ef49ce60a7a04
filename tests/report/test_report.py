"""``pantau report`` and ``pantau status-page`` against a real Prometheus holding 90 days of a
simulated Klaten history (backfilled with promtool), checked against the simulated truth."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import report_history as h
from harness import Prometheus

from pantau.contract import klaten
from pantau.contract.inventory import parse_inventory
from pantau.tools import report as rp
from pantau.tools import status_page

pytestmark = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("prometheus") and shutil.which("pdftoppm")),
    reason="needs promtool + prometheus (apt prometheus) and pdftoppm (apt poppler-utils)",
)

REPO = Path(__file__).resolve().parents[2]
NOVEMBER = rp.Period(dt.datetime(2026, 11, 1, tzinfo=h.WIB).timestamp(), h.END.timestamp())
NEIGHBOURS = {
    "Cawas": "Trucuk;Pedan",
    "Bayat": "Cawas;Wedi",
    "Juwiring": "Wonosari;Pedan",
    "Kemalang": "Manisrenggo;Karangnongko",
}
GENERATED = dt.datetime(2026, 12, 1, 9, tzinfo=h.WIB).timestamp()


def _inventory_text() -> str:
    lines = ["station,provinsi,kabkota,kecamatan,device_classes,neighbours"]
    lines += [
        f"{e.station},{e.provinsi},{e.kabkota},{e.kecamatan},"
        f"{';'.join(e.device_classes)},{NEIGHBOURS.get(e.kecamatan, '')}"
        for e in klaten.inventory()
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    work = tmp_path_factory.mktemp("report-prom")
    source = h.write(work / "history.om")
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=2400h",
            str(source),
            str(work / "data"),
        ],  # one pass: the default 2h blocks re-read the file 1,080 times
        check=True,
        capture_output=True,
    )
    server = Prometheus(work, extra_args=["--storage.tsdb.retention.time=10y"]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def built(prom: Prometheus) -> rp.Report:
    return rp.build_report(
        rp.Prometheus(prom.url),
        selector='kabkota="3310"',
        region="3310",
        period=NOVEMBER,
        step=h.STEP_S,
        lang="id",
        holidays=(h.EXTRA_HOLIDAY,),
        inventory=parse_inventory(_inventory_text()),
        now=GENERATED,
    )


def _truth(kecamatan: str, period: rp.Period) -> float:
    start = dt.datetime.fromtimestamp(period.start, h.WIB)
    end = dt.datetime.fromtimestamp(period.end, h.WIB)
    return h.availability(kecamatan, start, end, {h.EXTRA_HOLIDAY})


def test_availability_per_kecamatan_and_fleet_match_the_simulated_truth(built: rp.Report) -> None:
    rows = {r.kecamatan: r for r in built.rows}
    assert set(rows) == set(klaten.KECAMATAN)
    for kec, row in rows.items():
        assert row.availability == pytest.approx(_truth(kec, NOVEMBER)), kec
        assert row.previous == pytest.approx(_truth(kec, NOVEMBER.previous)), kec
    assert rows["Cawas"].availability == 0
    assert rows["Kemalang"].availability == 0
    assert 0 < rows["Juwiring"].availability < 1
    assert 0 < rows["Bayat"].availability < 1
    fleet = sum(_truth(k, NOVEMBER) for k in klaten.KECAMATAN) / len(klaten.KECAMATAN)
    assert built.fleet == pytest.approx(fleet)  # one station per kecamatan: equal weights
    # Worst first: the two that could not record at all head the table.
    assert {r.kecamatan for r in built.rows[:2]} == {"Cawas", "Kemalang"}


def test_long_broken_stations_come_first_with_their_true_start(built: rp.Report) -> None:
    broken = {o.kecamatan: o for o in built.long_broken}
    assert set(broken) == {"Cawas", "Kemalang"}
    cawas_start = next(f.start for f in h.FAULTS if f.kecamatan == "Cawas")
    assert broken["Cawas"].start == cawas_start.timestamp()  # 60 days, not just this month
    assert broken["Cawas"].cause == "offline"
    assert broken["Kemalang"].start == h.START.timestamp()  # first seen, never ready
    assert broken["Kemalang"].cause == "never_reported"


def test_outages_carry_their_cause_and_true_length(built: rp.Report) -> None:
    by = {o.kecamatan: o for o in built.outages}
    juw = next(f for f in h.FAULTS if f.kecamatan == "Juwiring")
    bay = next(f for f in h.FAULTS if f.kecamatan == "Bayat")
    assert (by["Juwiring"].start, by["Juwiring"].end) == (
        juw.start.timestamp(),
        juw.end.timestamp(),
    )
    assert by["Juwiring"].cause == "device:camera,fingerprint,iris,signature"
    assert (by["Bayat"].start, by["Bayat"].end) == (bay.start.timestamp(), bay.end.timestamp())
    assert by["Bayat"].cause == "login:http_403"
    assert rp.cause_text("id", by["Bayat"].cause) == "login gagal (http_403)"
    assert set(by) == {"Juwiring", "Bayat", "Cawas", "Kemalang"}


def test_record_instead_names_ready_neighbours_only(built: rp.Report) -> None:
    rows = {r.kecamatan: r for r in built.rows}
    assert rows["Cawas"].record_instead == ("Trucuk", "Pedan")
    assert rows["Kemalang"].record_instead == ("Manisrenggo", "Karangnongko")
    assert rows["Juwiring"].record_instead == ()  # ready again at the end: nothing to name
    assert not rows["Cawas"].ready_now


def test_the_command_writes_html_pdf_csv_with_progress(
    prom: Prometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(_inventory_text())
    holidays = tmp_path / "holidays.txt"
    holidays.write_text(f"{h.EXTRA_HOLIDAY} test holiday\n")
    code = rp.main(
        [
            "--prometheus", prom.url, "--kabkota", "3310", "--month", "2026-11",
            "--step", "1h", "--inventory", str(inv), "--holidays", str(holidays),
            "--out", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "pantau report: [1/" in captured.err  # progress while it queries
    paths = [Path(p) for p in captured.out.split()]
    assert [p.suffix for p in paths] == [".html", ".pdf", ".csv"]
    html = paths[0].read_text()
    assert "Laporan ketersediaan perekaman e-KTP" in html
    assert "Cawas" in html
    assert "Trucuk, Pedan" in html
    assert "data:image/png;base64," in html
    assert "<script" not in html
    with paths[2].open() as fh:
        rows = {r["kecamatan"]: r for r in csv.DictReader(fh)}
    assert float(rows["Cawas"]["availability_pct"]) == 0
    expected = round(_truth("Bayat", NOVEMBER) * 100, 2)
    assert float(rows["Bayat"]["availability_pct"]) == pytest.approx(expected, abs=0.005)
    # The PDF renders: its first page becomes a picture, and its text says what matters.
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(paths[1]), str(tmp_path / "p")],
        check=True,
    )
    page = next(tmp_path.glob("p*.png"))
    assert page.stat().st_size > 10_000
    text = subprocess.run(
        ["pdftotext", str(paths[1]), "-"], check=True, capture_output=True, text=True
    ).stdout
    for needle in ("Ketersediaan armada", "Cawas", "Kemalang", "belum pernah melapor", "Trucuk"):
        assert needle in text, needle


def test_english_report(prom: Prometheus, built: rp.Report, tmp_path: Path) -> None:
    en = rp.Report(**{**built.__dict__, "lang": "en"})
    paths = rp.write_report(en, tmp_path, "en")
    html = paths[0].read_text()
    assert "e-KTP recording availability report" in html
    assert "never reported" in html
    assert "camera" in html


def test_readme_page_of_the_report_is_current(built: rp.Report, tmp_path: Path) -> None:
    """docs/img/report-page1.png is page 1 of this report: regenerated here, so it cannot go
    stale (the PDF and the plot are deterministic for a fixed 'generated' time)."""
    pdf = rp.write_report(built, tmp_path, "readme")[1]
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(pdf),
         str(tmp_path / "page")],
        check=True,
    )  # fmt: skip
    image = REPO / "docs" / "img" / "report-page1.png"
    fresh = (tmp_path / "page.png").read_bytes()
    if not image.exists() or image.read_bytes() != fresh:
        image.write_bytes(fresh)
    assert image.read_bytes() == fresh


def test_unreachable_prometheus_and_no_data_are_one_line_errors(
    prom: Prometheus, capsys: pytest.CaptureFixture[str]
) -> None:
    code = rp.main(
        ["--prometheus", "http://127.0.0.1:9", "--kabkota", "3310", "--month", "2026-11"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("pantau report: Prometheus http://127.0.0.1:9 is not reachable")
    code = rp.main(["--prometheus", prom.url, "--kabkota", "9999", "--month", "2026-11"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "no pantau data for 9999" in err[-1]
    with pytest.raises(SystemExit):
        rp.main(["--prometheus", prom.url, "--month", "2026-13"])


def test_public_status_page_says_where_to_record_and_nothing_more(
    prom: Prometheus, tmp_path: Path
) -> None:
    at = h.END.timestamp() - h.STEP_S
    statuses = rp.public_status(
        rp.Prometheus(prom.url), "3310", parse_inventory(_inventory_text()), at=at
    )
    by = {s.kecamatan: s for s in statuses}
    assert not by["Cawas"].ready
    assert by["Cawas"].go_to == ("Trucuk", "Pedan")
    assert by["Juwiring"].ready
    assert by["Bayat"].ready
    page = rp.render_status_page(statuses, "Kabupaten Klaten", "id", GENERATED)
    assert "Kecamatan mana yang bisa melayani perekaman hari ini" in page
    assert "Silakan ke Kecamatan Trucuk, Pedan" in page
    # Nothing beyond ready / not ready: no station ids, devices, causes or versions.
    for secret in ("3310-", "kamera", "camera", "login", "http_403", "offline", "siak"):
        assert secret not in page, secret
    out = tmp_path / "public" / "3310.html"
    code = status_page.main(["--prometheus", prom.url, "--kabkota", "3310", "--out", str(out)])
    # The live "now" is past the simulated history: Prometheus has no current data for it.
    assert code == 2
    assert not out.exists()


def _guides_support() -> ModuleType:
    """tests/docs/guides_support.py (the guides' parser), whichever test directories pytest put
    on ``sys.path``."""
    if "guides_support" in sys.modules:
        return sys.modules["guides_support"]
    spec = importlib.util.spec_from_file_location(
        "guides_support", REPO / "tests" / "docs" / "guides_support.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["guides_support"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("guide", ["panduan-it.md", "it-guide.md"])
def test_the_it_guides_report_command_runs(prom: Prometheus, guide: str, tmp_path: Path) -> None:
    """The monthly-report command of the IT guides, as written (November 2026, the repository's
    inventory and holidays), against this history: only the Prometheus URL and the output
    directory differ."""
    g = _guides_support()
    [cmd] = [
        c for c in g.commands(g.load(guide)) if c.program == "pantau" and c.args[0] == "report"
    ]
    args = list(cmd.args[1:])
    args[args.index("--prometheus") + 1] = prom.url
    args[args.index("--out") + 1] = str(tmp_path / "reports")
    res = subprocess.run(
        [REPO / ".venv" / "bin" / "pantau", "report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    paths = [Path(p) for p in res.stdout.split()]
    assert [p.suffix for p in paths] == [".html", ".pdf", ".csv"]
    assert paths[0].name == "pantau-3310-2026-11-01.html"
    html = paths[0].read_text()
    assert "Kabupaten Klaten" in html
    assert "Cawas" in html
