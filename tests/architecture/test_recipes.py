"""The recipes of docs/architecture.md ("Adding a check", ...), followed to the letter: a toy check
added through the documented seam runs in a real agent, with its own interval, and the service
names no check."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pantau.agent import checks, report
from pantau.agent.checks import Findings, Sources, probes, register
from pantau.agent.checks.login import LoginCheck, probe_result, reason_for
from pantau.agent.config import AgentConfig, ConfigError, ProbeSettings, convert_config
from pantau.agent.service import build_agent
from pantau.agent.simulated import SimulatedHost, SimulatedProber, SimulatedUsb
from pantau.contract import wire
from pantau.contract.vocabulary import ProbeReason

REPO = Path(__file__).resolve().parents[2]


class PrinterCheck:
    """The recipe's example: is the card printer's paper tray loaded?"""

    name = "printer"
    background = False

    def __init__(self, loaded: threading.Event, interval_s: float) -> None:
        self.loaded = loaded
        self.interval_s = interval_s
        self.timeout_s = 1.0
        self.runs = 0

    def run(self) -> Findings:
        self.runs += 1
        present = self.loaded.is_set()
        return Findings(
            peripherals=(
                wire.Peripheral(
                    device_class="printer",
                    present=present,
                    reason="" if present else "missing",
                ),
            )
        )

    def failed(self, exc: Exception | None) -> Findings:  # noqa: ARG002 - protocol signature
        return Findings()


def _config(tmp_path: Path) -> AgentConfig:
    return convert_config(
        {
            "station": {"id": "3310-juwiring-01", "provinsi": "33", "kabkota": "3310"},
            "spool": {"path": str(tmp_path / "spool.sqlite")},
            "intervals": {"poll_s": 3600.0, "state_s": 3600.0},
        },
        "test",
    )


@pytest.fixture
def registry() -> Iterator[None]:
    """The registry as it was after the test (the toy check leaves again)."""
    saved = dict(checks.REGISTRY)
    yield
    checks.REGISTRY.clear()
    checks.REGISTRY.update(saved)


@pytest.mark.usefixtures("registry")
def test_a_check_added_through_the_registry_runs_in_the_agent(tmp_path: Path) -> None:
    loaded = threading.Event()
    made: list[PrinterCheck] = []

    def build(cfg: AgentConfig, sources: Sources) -> PrinterCheck:
        made.append(PrinterCheck(loaded, interval_s=0.05))
        return made[-1]

    register("printer", order=40)(build)

    agent = build_agent(
        _config(tmp_path),
        usb_reader=SimulatedUsb([]),
        host_reader=SimulatedHost(),
        prober=SimulatedProber(),
        hotplug=None,
        connect=False,
    )
    assert list(agent.checks) == ["usb", "host", "printer"]
    stop = threading.Event()
    loop = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while made[-1].runs < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Its own interval (0.05 s) drives it; the built-in checks wait an hour.
        assert made[-1].runs >= 3
        assert agent.round(["printer"]).peripherals[-1] == wire.Peripheral(
            device_class="printer", present=False, reason="missing"
        )
        loaded.set()
        state = agent.round(["printer"])
        assert [c.name for c in state.checks] == ["usb", "host", "printer"]
        assert state.peripherals[-1].present
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()


def test_the_service_names_no_check() -> None:
    source = (REPO / "agent" / "service.py").read_text(encoding="utf-8")
    named = re.findall(r"""["'](login|host)["']|name == ["']""", source)
    assert named == []
    assert "BACKGROUND_CHECKS" not in source


def test_a_name_registers_once() -> None:
    assert "usb" in checks.REGISTRY  # registered when its module was imported
    with pytest.raises(ValueError, match="registered twice"):
        register("usb")(lambda _cfg, _sources: None)


# --------------------------------------------------------------------------- a probe kind


def _probe_unix(settings: ProbeSettings) -> wire.Probe:
    """The recipe's example kind: connect to a Unix socket (``target`` is its path)."""
    started = time.perf_counter()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(settings.timeout_s)
            sock.connect(settings.target)
    except OSError as exc:
        return probe_result(settings, started, reason_for(exc))
    return probe_result(settings, started, ProbeReason.OK)


def _validate_unix(settings: ProbeSettings) -> list[probes.Mistake]:
    if not settings.target.startswith("/"):
        return [("target", f"expected an absolute socket path, got {settings.target!r}")]
    return []


UNIX_HINTS = {
    "file_missing": (
        "Soket layanan tidak ada: jalankan layanannya.",
        "No socket: start the service.",
    ),
    "refused": ("Layanan lokal mati: nyalakan ulang.", "The local service is down: restart it."),
}


@pytest.fixture
def unix_kind() -> Iterator[None]:
    probes.kinds()
    saved = dict(probes.KINDS)
    probes.register(probes.ProbeKind("unix", _probe_unix, _validate_unix, hints=UNIX_HINTS))
    yield
    probes.KINDS.clear()
    probes.KINDS.update(saved)


def _station(tmp_path: Path, target: str) -> dict[str, object]:
    return {
        "station": {"id": "3310-juwiring-01", "provinsi": "33", "kabkota": "3310"},
        "spool": {"path": str(tmp_path / "spool.sqlite")},
        "probes": [{"name": "local", "kind": "unix", "target": target}],
    }


@pytest.mark.usefixtures("unix_kind")
def test_a_probe_kind_is_one_registered_module(tmp_path: Path) -> None:
    path = str(tmp_path / "login.sock")
    cfg = convert_config(_station(tmp_path, path), "agent.toml")
    with pytest.raises(ConfigError, match=r"probes\[0\]\.target: expected an absolute socket path"):
        convert_config(_station(tmp_path, "login.sock"), "agent.toml")
    check = LoginCheck(cfg.probes)  # the real prober: the registry's kind
    down = check.run().probes[0]
    assert (down.kind, down.up) == ("unix", False)  # no socket yet
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    try:
        up = check.run().probes[0]
        assert (up.target, up.kind, up.up, up.reason) == ("local", "unix", True, "ok")
    finally:
        server.close()
    # A refused connection: pantau-agent check shows the kind's own hint, not the common one.
    refused = check.run().probes[0]
    assert refused.reason == "refused"
    state = wire.State(
        station="3310-juwiring-01", agent_version="t", session="s", seq=1, ts=0.0, probes=(refused,)
    )
    (problem,) = report.problems(state, cfg)
    assert (problem.hint_id, problem.hint_en) == UNIX_HINTS["refused"]


def test_without_the_module_the_kind_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"probes\[0\]\.kind: invalid enum value 'unix'"):
        convert_config(_station(tmp_path, "/run/login.sock"), "agent.toml")
