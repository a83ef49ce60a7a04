"""What the people's guides (docs/panduan-*.md, docs/*-guide.md) are checked against.

Everything here is read from the code or from the generated files at test time, never copied:
when a check text, a board text, an alert or an option changes, the guides' tests fail and say
what to update.

- Markdown: headings, fenced code blocks, and *kept-true tables*: a table right after an HTML
  comment ``<!-- kept-true: KIND -->`` whose first column quotes (in backticks) what the program
  shows; KIND is ``check`` (``pantau-agent check`` output), ``board`` (the fleet board),
  ``alerts`` (alert names), ``dashboards`` (Grafana dashboard titles).
- Corpora: every text ``pantau-agent check`` can print (every peripheral reason x device class,
  every probe reason with and without an HTTP status, failed checks, unusable files, healthy),
  the fleet board of a fleet with every kind of problem, the alert rules, the dashboards.
- Commands: the lines of ``sh`` / ``powershell`` code blocks, split into program and arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import inspect
import io
import json
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

from pantau.agent import report
from pantau.agent.config import AgentConfig, DeviceRule, StationSettings
from pantau.contract import wire
from pantau.contract.errors import ConfigError
from pantau.contract.vocabulary import DEVICE_CLASSES, PeripheralReason, ProbeReason

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
#: (Bahasa Indonesia, English) file names of each guide; Indonesian is the original.
GUIDES: dict[str, tuple[str, str]] = {
    "operator": ("panduan-operator.md", "operator-guide.md"),
    "it": ("panduan-it.md", "it-guide.md"),
}
RULES = REPO / "deploy" / "prometheus" / "rules"
DASHBOARDS = REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "pantau"

# --------------------------------------------------------------------------- markdown

FENCE_RE = re.compile(r"^\s*```(\w*)\s*$")
MARKER_RE = re.compile(r"^<!-- kept-true: (\w+) -->\s*$")
TICK_RE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Doc:
    name: str
    text: str

    def lines_outside_code(self) -> Iterator[str]:
        fence = False
        for line in self.text.splitlines():
            if FENCE_RE.match(line):
                fence = not fence
                continue
            if not fence:
                yield line

    def headings(self) -> list[tuple[int, str]]:
        return [
            (len(m.group(1)), m.group(2).strip())
            for line in self.lines_outside_code()
            if (m := re.match(r"^(#{1,6})\s+(.*)$", line))
        ]

    def code_blocks(self) -> list[tuple[str, str]]:
        """``(language, body)`` of each fenced block, in order."""
        out: list[tuple[str, str]] = []
        lang, body = None, list[str]()
        for line in self.text.splitlines():
            m = FENCE_RE.match(line)
            if m and lang is None:
                lang, body = m.group(1), []
            elif m:
                out.append((lang, "\n".join(body)))
                lang = None
            elif lang is not None:
                body.append(line.strip() if lang != "text" else line)
        assert lang is None, f"{self.name}: unclosed code block"
        return out

    def tables(self, kind: str) -> list[list[list[str]]]:
        """The kept-true tables of ``kind``: rows (header and separator dropped) of cells."""
        out: list[list[list[str]]] = []
        lines = self.text.splitlines()
        for i, line in enumerate(lines):
            m = MARKER_RE.match(line)
            if not m or m.group(1) != kind:
                continue
            rows = []
            for row in lines[i + 1 :]:
                if not row.strip() and not rows:
                    continue
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            assert len(rows) > 2, f"{self.name}: kept-true {kind} table is empty"
            out.append(rows[2:])
        return out

    def quoted(self, kind: str) -> list[str]:
        """Backticked texts of the first column of every kept-true table of ``kind``."""
        return [q for t in self.tables(kind) for row in t for q in TICK_RE.findall(row[0])]


def load(name: str) -> Doc:
    return Doc(name, (DOCS / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Command:
    doc: str
    line: str
    program: str  # basename, lower case, without .exe
    args: tuple[str, ...]


_PS_TOKEN_RE = re.compile(r"\"[^\"]*\"|'[^']*'|\S+")
_WRAPPERS = {"sudo", "&"}


def _tokens(segment: str, lang: str) -> list[str]:
    if lang == "sh":
        return shlex.split(segment, comments=True)
    out = []
    for tok in _PS_TOKEN_RE.findall(segment):
        if tok.startswith("#"):
            break
        out.append(tok[1:-1] if tok[:1] in "\"'" and tok[-1:] == tok[:1] else tok)
    return out


def _program(token: str) -> str:
    base = re.split(r"[\\/]", token)[-1].lower()
    return base.removesuffix(".exe")


def commands(doc: Doc) -> list[Command]:
    """Every command of the ``sh`` and ``powershell`` blocks, continuation lines joined, ``&&``
    and ``|`` chains split; ``sudo``, ``VAR=value`` and PowerShell's ``&`` dropped;
    ``powershell ... -File SCRIPT ARGS`` is the script with its arguments."""
    out: list[Command] = []
    for lang, body in doc.code_blocks():
        if lang not in ("sh", "powershell"):
            continue
        cont = "\\" if lang == "sh" else "`"
        joined = re.sub(re.escape(cont) + r"\n\s*", " ", body)
        for line in joined.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            for segment in re.split(r"\s(?:&&|\|\||\|)\s", line):
                toks = _tokens(segment, lang)
                while toks and (toks[0] in _WRAPPERS or re.match(r"^\w+=", toks[0])):
                    toks.pop(0)
                if not toks:
                    continue
                if _program(toks[0]) == "powershell" and "-File" in toks:
                    toks = toks[toks.index("-File") + 1 :]
                out.append(Command(doc.name, line.strip(), _program(toks[0]), tuple(toks[1:])))
    return out


class _Parsed(Exception):
    pass


def argparse_accepts(main: Callable[[list[str]], int], argv: Sequence[str]) -> str:
    """Run a command's real ``main`` until its argparse parser has parsed ``argv``, then stop
    (nothing is executed). ``""`` when the parser accepted everything, else its message."""
    real = argparse.ArgumentParser.parse_args

    def parse_then_stop(
        self: argparse.ArgumentParser, args: Sequence[str] | None = None, namespace: object = None
    ) -> argparse.Namespace:
        real(self, args, namespace)  # type: ignore[arg-type]
        raise _Parsed

    err = io.StringIO()
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            code = main(list(argv))
        except _Parsed:
            return ""
        except SystemExit as exc:
            return f"exit {exc.code}: {err.getvalue().strip()}"
    return f"returned {code} before parsing its options: {err.getvalue().strip()}"


def shell_script_options(path: Path) -> set[str]:
    """The ``--options`` a ``case`` in a shell script accepts."""
    return set(re.findall(r"^\s+(--[\w-]+)(?:\|[^)]*)?\)", path.read_text(), re.M))


def powershell_params(path: Path) -> set[str]:
    """``-Name`` of each parameter of a PowerShell script's ``param(...)`` block (lower case)."""
    block = re.search(r"^param\((.*?)\)\s*$", path.read_text(), re.S | re.M)
    assert block, f"{path}: no param block"
    return {"-" + n.lower() for n in re.findall(r"\$(\w+)", block.group(1))}


# --------------------------------------------------------------------------- check output

STATION = StationSettings(
    id="3310-juwiring-01", provinsi="33", kabkota="3310", kecamatan="Juwiring"
)
T0 = 1_790_000_000.0


def check_config() -> AgentConfig:
    return AgentConfig(
        station=STATION,
        devices=tuple(
            DeviceRule(device_class=c, vid=0x1234 + i, name=f"{c} model")
            for i, c in enumerate(DEVICE_CLASSES)
        ),
    )


def _state(**kw: object) -> wire.State:
    return wire.State(
        station=STATION.id,
        agent_version="0.1.0",
        session="s",
        seq=1,
        ts=T0,
        **kw,  # type: ignore[arg-type]
    )


def _host() -> wire.Host:
    return wire.Host(
        cpu_ratio=0.12,
        mem_available_bytes=5 * 2**30,
        mem_total_bytes=8 * 2**30,
        boot_ts=T0 - 3 * 3600,
        agent_start_ts=T0 - 3 * 3600 + 60,
        disks=(wire.Disk(mount="C:", free_bytes=80 * 2**30, size_bytes=237 * 2**30),),
    )


def check_states() -> Iterator[tuple[wire.State, list[ConfigError]]]:
    """One state per kind of line ``check`` can print (and the healthy one)."""
    usb = wire.Device(vid=0x1234, pid=0x0001, port="1-2", manufacturer="Vendor", product="Model")
    yield _state(host=_host()), []
    for cls in (*DEVICE_CLASSES, "smartcard"):
        for reason in PeripheralReason:
            devices = (usb,) if reason == PeripheralReason.DRIVER_FAILED else ()
            p = wire.Peripheral(device_class=cls, present=False, reason=reason, devices=devices)
            yield _state(peripherals=(p,)), []
    probes = [
        wire.Probe(
            target=f"login-{reason}-{status}",
            kind="https",
            up=False,
            duration_s=1.0,
            reason=reason,
            status_code=status,
        )
        for reason in ProbeReason
        if reason != ProbeReason.OK
        for status in (None, 401, 403, 404, 500, 503)
    ]
    yield _state(probes=tuple(probes)), []
    yield (
        _state(
            probes=(
                wire.Probe(target="login", kind="https", up=True, duration_s=0.05, status_code=200),
                wire.Probe(
                    target="login-expiring",
                    kind="https",
                    up=True,
                    duration_s=0.05,
                    status_code=200,
                    reason=ProbeReason.CERT_EXPIRING,
                    cert_expiry_ts=T0 + 9 * 86400,
                ),
            )
        ),
        [],
    )
    yield (
        _state(
            checks=(
                wire.CheckRun(name="usb", ok=False, duration_s=0.0, reason="libusb not found"),
                wire.CheckRun(name="host", ok=False, duration_s=0.0, reason="psutil failed"),
            )
        ),
        [],
    )
    files = [
        ConfigError("agent.toml", key, "cannot read")
        for key in ("mqtt.password_file", "mqtt.ca_file", "probes[0].ca_file")
    ]
    yield _state(host=None), files


def check_corpus() -> str:
    """Every text ``pantau-agent check`` prints for the states above."""
    cfg = check_config()
    return "\n".join(report.render_text(s, cfg, files) for s, files in check_states())


def check_tags(corpus: str) -> set[str]:
    """The bracketed tags a line of the output starts with: ``[OK]``, ``[HILANG]``, ..."""
    return set(re.findall(r"^\s+(\[[A-Z][A-Z /]*\])", corpus, re.M))


def check_headings(corpus: str) -> set[str]:
    """The section headings of the output (upper-case lines)."""
    return {
        line.split(" (")[0]
        for line in corpus.splitlines()
        if re.match(r"^[A-Z][A-Z /]+[A-Z]( \(.*\))?$", line)
    }


def example_config() -> AgentConfig:
    return AgentConfig(
        station=STATION,
        devices=(
            DeviceRule(device_class="fingerprint", vid=0x08FF, name="Cross Match"),
            DeviceRule(device_class="camera", vid=0x04A9, name="Canon EOS"),
        ),
    )


def example_state() -> wire.State:
    """The example both operator guides print: a camera switched off, the login server silent."""
    return _state(
        peripherals=(
            wire.Peripheral(
                device_class="fingerprint",
                present=True,
                found=1,
                devices=(
                    wire.Device(
                        vid=0x08FF,
                        pid=0x0009,
                        port="1-2",
                        manufacturer="Cross Match",
                        product="Verifier 300 LC",
                    ),
                ),
            ),
            wire.Peripheral(device_class="camera", present=False, reason=PeripheralReason.MISSING),
        ),
        probes=(
            wire.Probe(
                target="enrollment",
                kind="tcp",
                up=False,
                duration_s=5.0,
                reason=ProbeReason.TIMEOUT,
            ),
        ),
        host=_host(),
    )


def example_output() -> str:
    return report.render_text(example_state(), example_config())


# --------------------------------------------------------------------------- board


def board_text(lang: str = "en") -> str:
    """The fleet board (tags stripped) of a fleet with every kind of problem, in ``lang`` when
    the board speaks more than one language."""
    from pantau.collector.board import render_board
    from pantau.collector.fleet import Fleet
    from pantau.contract.inventory import parse_inventory

    names = ("juwiring", "bayat", "cawas", "pedan", "ceper", "wedi", "trucuk", "kemalang", "klaten")
    ids = {k: f"3310-{k}-01" for k in names}
    # Cawas cannot record; residents can go to Klaten (ready) next door
    near = {"cawas": "Klaten"}
    inv = parse_inventory(
        "station,provinsi,kabkota,kecamatan,device_classes,neighbours\n"
        + "".join(
            f"{sid},33,3310,{k.title()},{';'.join(DEVICE_CLASSES)},{near.get(k, '')}\n"
            for k, sid in ids.items()
        )
    )
    fleet = Fleet(inventory=inv, device_classes=DEVICE_CLASSES)
    usb = wire.Device(vid=0x06A8, pid=0x0057)

    def state(sid: str, ts: float, peripherals: dict[str, str], **kw: object) -> bytes:
        periph = tuple(
            wire.Peripheral(
                device_class=c,
                present=c not in peripherals,
                found=int(c not in peripherals),
                reason=peripherals.get(c, ""),
                devices=(usb,) if peripherals.get(c) == PeripheralReason.DRIVER_FAILED else (),
            )
            for c in DEVICE_CLASSES
        )
        return wire.encode(
            wire.State(
                station=sid,
                agent_version="0.1.0",
                session="s1",
                seq=1,
                ts=ts,
                interval_s=30.0,
                os="Linux",
                peripherals=periph,
                **kw,  # type: ignore[arg-type]
            )
        )

    def topic(sid: str, kind: wire.Kind = "state") -> str:
        return wire.topic("33", "3310", sid, kind)

    now = T0 + 3600
    down = wire.Probe(target="enrollment", kind="tcp", up=False, duration_s=5.0, reason="timeout")

    def https(target: str, reason: str, status: int | None = None) -> wire.Probe:
        return wire.Probe(
            target=target, kind="https", up=False, duration_s=0.2, reason=reason, status_code=status
        )

    failed = wire.CheckRun(name="host", ok=False, duration_s=0.0, reason="psutil failed")
    msgs = [
        (ids["juwiring"], state(ids["juwiring"], now, {"camera": PeripheralReason.MISSING}), now),
        (
            ids["bayat"],
            state(
                ids["bayat"],
                now,
                {"signature": PeripheralReason.DRIVER_FAILED},
                probes=(down,),
                checks=(failed,),
            ),
            now,
        ),
        (
            ids["wedi"],
            state(
                ids["wedi"],
                now,
                {"iris": PeripheralReason.NOT_CONFIGURED},
                probes=(https("siak", "http_status", 403),),
            ),
            now,
        ),
        (
            ids["trucuk"],
            state(
                ids["trucuk"],
                now,
                {},
                probes=(https("siak", "http_status", 500), https("pusat", "cert_untrusted")),
            ),
            now,
        ),
        (ids["pedan"], state(ids["pedan"], T0, {}), T0),  # silent since: stale
        (ids["kemalang"], state(ids["kemalang"], now - 60, {}), now - 60),
        (ids["klaten"], state(ids["klaten"], now, {}), now),  # ready
        (ids["ceper"], state(ids["ceper"], now - 60, {}), now - 60),
    ]
    for sid, payload, at in msgs:
        assert fleet.ingest(topic(sid), payload, at) == "", sid
    will = wire.encode(
        wire.Status(
            station=ids["ceper"],
            agent_version="0.1.0",
            session="s1",
            seq=2,
            ts=now,
            status="offline",
            reason="will",
        )
    )
    assert fleet.ingest(topic(ids["ceper"], "status"), will, now) == ""
    stop = wire.encode(
        wire.Status(
            station=ids["kemalang"],
            agent_version="0.1.0",
            session="s1",
            seq=2,
            ts=now,
            status="offline",
            reason="shutdown",
        )
    )
    assert fleet.ingest(topic(ids["kemalang"], "status"), stop, now) == ""
    options: dict[str, Any] = {"refresh_s": 0}
    if "lang" in inspect.signature(render_board).parameters:
        options["lang"] = lang
    page = render_board(fleet.snapshot(now), **options)
    fleet.set_connected(False, now)  # the broker is lost: the collector is blind
    page += render_board(fleet.snapshot(now + 60), **options)
    page = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    text = re.sub(r"<[^>]+>", "\n", page)
    return "\n".join(html.unescape(x).strip() for x in text.splitlines() if x.strip())


# --------------------------------------------------------------------------- rules, dashboards


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    hours: str
    summary: str
    summary_en: str


def alert_rules() -> list[Rule]:
    """Every alert of the generated Prometheus rule files (the promtool test file excluded)."""
    out = []
    for path in sorted(RULES.glob("*.yml")):
        if path.name.endswith(".test.yml"):
            continue
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    labels, notes = rule.get("labels", {}), rule.get("annotations", {})
                    out.append(
                        Rule(
                            rule["alert"],
                            labels.get("severity", ""),
                            labels.get("hours", ""),
                            notes.get("summary", ""),
                            notes.get("summary_en", ""),
                        )
                    )
    return out


def dashboard_titles() -> list[str]:
    return sorted(json.loads(p.read_text())["title"] for p in DASHBOARDS.glob("*.json"))
