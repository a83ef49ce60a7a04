"""Every number on the wire is bounded by its meaning; anything else is ``out_of_range``.

The golden rejected payloads in tests/fixtures/wire/rejected/ are named
``{kind}.{reason}.{what}.json``; each must be rejected with exactly that reason (the collector's
tests feed the same files through ingest and count them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pantau.contract import wire
from pantau.contract.wire import Reason, WireError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
REJECTED = sorted((FIXTURES / "rejected").glob("*.json"))
TOPIC = "pantau/v1/33/3310/3310-juwiring-01"

#: (path into a full state, lowest allowed, highest allowed)
BOUNDS: list[tuple[str, float, float]] = [
    ("seq", 0, wire.EXACT_INT_MAX),
    ("ts", 0, wire.TIMESTAMP_MAX),
    ("interval_s", 1e-9, wire.DURATION_MAX),
    ("heartbeat_s", 0, wire.DURATION_MAX),
    ("host.cpu_ratio", 0, 1),
    ("host.mem_available_bytes", 0, wire.EXACT_INT_MAX),
    ("host.mem_total_bytes", 0, wire.EXACT_INT_MAX),
    ("host.boot_ts", 0, wire.TIMESTAMP_MAX),
    ("host.agent_start_ts", 0, wire.TIMESTAMP_MAX),
    ("host.disks.0.free_bytes", 0, wire.EXACT_INT_MAX),
    ("host.disks.0.size_bytes", 0, wire.EXACT_INT_MAX),
    ("probes.0.duration_s", 0, wire.DURATION_MAX),
    ("probes.2.cert_expiry_ts", 0, wire.TIMESTAMP_MAX),
    ("probes.3.status_code", 0, 999),
    ("checks.0.duration_s", 0, wire.DURATION_MAX),
    ("peripherals.0.expected", 0, wire.DEVICE_COUNT_MAX),
    ("peripherals.0.found", 0, wire.DEVICE_COUNT_MAX),
    ("peripherals.0.devices.0.vid", 0, 0xFFFF),
    ("peripherals.0.devices.0.pid", 0, 0xFFFF),
    ("peripherals.0.devices.0.bus", 0, 0xFFFF),
    ("spool.queued", 0, wire.EXACT_INT_MAX),
    ("spool.dropped_total", 0, wire.EXACT_INT_MAX),
]
HUGE_INT = "1" + "0" * 309  # valid JSON, parsed by Python, rejected by Prometheus' parser


def _state_with(path: str, raw: str) -> bytes:
    """The full golden state with the number at ``path`` replaced by the JSON text ``raw``."""
    body: Any = json.loads((FIXTURES / "state_full.json").read_text())
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = "@@"
    return json.dumps(body).replace('"@@"', raw).encode()


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@pytest.mark.parametrize(("path", "low", "high"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_each_number_is_bounded_by_its_meaning(path: str, low: float, high: float) -> None:
    for ok in (low, high):
        wire.decode(f"{TOPIC}/state", _state_with(path, _num(ok)))
    integral = float(high).is_integer() and float(low).is_integer() and path != "interval_s"
    hostile = [_num(high * 2 + 1), "-1", "1e400", "-1e400", HUGE_INT, "-" + HUGE_INT]
    if integral:
        hostile.append(str(int(high) + 1))
    for raw in hostile:
        with pytest.raises(WireError) as info:
            wire.decode(f"{TOPIC}/state", _state_with(path, raw))
        assert info.value.reason is Reason.OUT_OF_RANGE, (path, raw[:20], info.value)


def test_header_numbers_of_every_kind_are_bounded() -> None:
    status = json.loads((FIXTURES / "status_online.json").read_text())
    event = json.loads((FIXTURES / "event_reboot.json").read_text())
    for kind, body in (("status", status), ("event", event)):
        for field, raw in (("ts", "-5"), ("ts", "1e13"), ("seq", HUGE_INT), ("seq", "-1")):
            text = json.dumps(dict(body, **{field: "@@"})).replace('"@@"', raw)
            with pytest.raises(WireError) as info:
                wire.decode(f"{TOPIC}/{kind}", text.encode())
            assert info.value.reason is Reason.OUT_OF_RANGE, (kind, field, raw)
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/beat", f'[1,"s",{HUGE_INT}]'.encode())
    assert info.value.reason is Reason.OUT_OF_RANGE


def test_type_mistakes_stay_invalid_field() -> None:
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/state", _state_with("host.mem_total_bytes", "1.5"))
    assert info.value.reason is Reason.INVALID_FIELD


@pytest.mark.parametrize("path", REJECTED, ids=[p.name for p in REJECTED])
def test_golden_rejected_payloads(path: Path) -> None:
    kind, reason, _ = path.name.split(".", 2)
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/{kind}", path.read_bytes())
    assert info.value.reason.value == reason


def test_every_reason_is_in_the_contract_docs() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "contract.md").read_text()
    for reason in Reason:
        assert f"| `{reason.value}` |" in docs, reason
