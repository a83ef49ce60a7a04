"""Wire contract v1: golden payloads, topics, strict decoding and property tests.

The golden files in tests/fixtures/wire/ are the contract's examples: the agent's encoder tests and
the collector's ingest tests use the same files (see ``golden()``).
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pantau.contract import wire
from pantau.contract.wire import Reason, WireError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
STATION = "3310-juwiring-01"
TOPIC = f"pantau/v1/33/3310/{STATION}"


def golden(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --------------------------------------------------------------------------- golden files


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("state_full.json", "state"),
        ("state_driver_failed.json", "state"),
        ("status_online.json", "status"),
        ("status_offline_will.json", "status"),
        ("event_peripheral_removed.json", "event"),
        ("event_reboot.json", "event"),
    ],
)
def test_golden_decodes_and_reencodes_to_the_same_json(name: str, kind: wire.Kind) -> None:
    raw = golden(name)
    parsed, message = wire.decode(f"{TOPIC}/{kind}", raw)
    assert parsed.kind == kind
    assert wire.kind_of(message) == kind
    assert message.station == STATION
    encoded = wire.encode(message)
    assert wire.decode(f"{TOPIC}/{kind}", encoded)[1] == message
    original = json.loads(raw)
    original.pop("future_field", None)  # unknown fields are ignored, not carried
    # Re-encoding only leaves out fields at their documented default; nothing else changes.
    assert _within(json.loads(encoded), original)


def _within(small: object, big: object) -> bool:
    if isinstance(small, dict) and isinstance(big, dict):
        return all(k in big and _within(v, big[k]) for k, v in small.items())
    if isinstance(small, list) and isinstance(big, list):
        return len(small) == len(big) and all(map(_within, small, big))
    return small == big


def test_golden_state_has_typed_values() -> None:
    _, state = wire.decode(f"{TOPIC}/state", golden("state_full.json"))
    assert isinstance(state, wire.State)
    camera = next(p for p in state.peripherals if p.device_class == "camera")
    assert (camera.present, camera.reason) == (False, "missing")
    fingerprint = state.peripherals[0]
    assert fingerprint.devices[0].vid == 0x079B
    login = state.probes[0]
    assert (login.up, login.reason, login.cause) == (False, "timeout", "network")
    enrollment = state.probes[-1]
    assert (enrollment.status_code, enrollment.cause) == (403, "denied")
    portal = state.probes[2]  # expiring within the agent's min_cert_days: a warning, still up
    assert (portal.up, portal.reason, portal.cause) == (True, "cert_expiring", "ok")
    assert state.host is not None
    assert state.host.disks[0].mount == "C:\\"
    assert state.spool.queued == 3


def test_minimal_state_gets_documented_defaults() -> None:
    raw = golden("state_minimal.json")
    _, state = wire.decode("pantau/v1/33/3310/3310-cawas-01/state", raw)
    assert isinstance(state, wire.State)
    assert state.interval_s == 30.0
    assert state.peripherals == ()
    assert state.probes == ()
    assert state.host is None


def test_unknown_event_fields_are_ignored() -> None:
    _, event = wire.decode(f"{TOPIC}/event", golden("event_reboot.json"))
    assert isinstance(event, wire.Event)
    assert event.kind is wire.EventKind.REBOOT


def test_golden_beat_is_the_compact_array_and_round_trips() -> None:
    raw = golden("beat.json")
    parsed, beat = wire.decode(f"{TOPIC}/beat", raw)
    assert parsed.kind == "beat"
    assert beat == wire.Beat(1, "f3a9c2d1e8b74a5c", 44)
    assert wire.kind_of(beat) == "beat"
    assert wire.encode(beat) == raw.strip()
    assert len(raw.strip()) <= 32  # the point of the compact encoding


def test_beat_ignores_appended_elements() -> None:
    _, beat = wire.decode(f"{TOPIC}/beat", golden("beat_future.json"))
    assert beat == wire.Beat(1, "f3a9c2d1e8b74a5c", 45)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'[2,"s",1]', Reason.WRONG_VERSION),
        (b'[1,"s"]', Reason.MISSING_FIELD),
        (b'[1,"bad session!",1]', Reason.INVALID_FIELD),
        (b'[1,"s",-1]', Reason.OUT_OF_RANGE),
        (b'{"v":1,"session":"s","seq":1}', Reason.INVALID_FIELD),
        (b"[1,", Reason.BAD_JSON),
    ],
)
def test_bad_beats_are_rejected_with_a_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/beat", payload)
    assert info.value.reason is reason


def test_state_heartbeat_defaults_to_none_sent() -> None:
    _, old = wire.decode("pantau/v1/33/3310/3310-cawas-01/state", golden("state_minimal.json"))
    _, new = wire.decode(f"{TOPIC}/state", golden("state_full.json"))
    assert isinstance(old, wire.State)
    assert isinstance(new, wire.State)
    assert old.heartbeat_s == 0.0
    assert (new.interval_s, new.heartbeat_s) == (3600.0, 60.0)


def test_encoded_payload_carries_the_common_header() -> None:
    status = wire.Status(
        station=STATION, agent_version="0.1.0", session="s", seq=0, ts=1.0, status="online"
    )
    body = json.loads(wire.encode(status))
    for key in ("v", "station", "agent_version", "session", "seq", "ts"):
        assert key in body
    assert body["v"] == wire.SCHEMA_VERSION


# --------------------------------------------------------------------------- topics


def test_topic_builder_and_parser_agree() -> None:
    name = wire.topic("33", "3310", STATION, "state")
    assert name == f"{TOPIC}/state"
    assert wire.parse_topic(name) == wire.Topic("33", "3310", STATION, "state")
    assert str(wire.parse_topic(name)) == name


@pytest.mark.parametrize(
    "name",
    [
        "pantau/v2/33/3310/x/state",
        "pantau/v1/33/3310/x/telemetry",
        "pantau/v1/33/3310/state",
        "pantau/v1/33/3310/x/state/extra",
        "other/v1/33/3310/x/state",
        "pantau/v1/33/3310/-x/state",
        "pantau/v1/33/3310//state",
        "",
    ],
)
def test_bad_topics_are_rejected_with_reason(name: str) -> None:
    with pytest.raises(WireError) as info:
        wire.parse_topic(name)
    assert info.value.reason is Reason.BAD_TOPIC


@pytest.mark.parametrize("segment", ["", "a/b", "+", "#", "a b", "x" * 65, "-lead"])
def test_topic_builder_refuses_unsafe_segments(segment: str) -> None:
    with pytest.raises(ValueError, match="not a valid topic segment"):
        wire.topic("33", "3310", segment, "state")


def test_subscription_filter() -> None:
    assert wire.subscription() == "pantau/v1/+/+/+/+"
    assert wire.subscription("33") == "pantau/v1/33/+/+/+"


# --------------------------------------------------------------------------- strict decoding


def _state(**over: object) -> bytes:
    body: dict[str, object] = json.loads(golden("state_minimal.json"))
    body["station"] = STATION
    body.update(over)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.BAD_JSON),
        (b"{", Reason.BAD_JSON),
        (b"\xff\xfe", Reason.BAD_JSON),
        (b"[]", Reason.INVALID_FIELD),
        (b"null", Reason.INVALID_FIELD),
        (_state(v=2), Reason.WRONG_VERSION),
        (b'{"v": 2}', Reason.WRONG_VERSION),
        (b'{"v": 1}', Reason.MISSING_FIELD),
        (_state(seq="1"), Reason.INVALID_FIELD),
        (_state(seq=-1), Reason.OUT_OF_RANGE),
        (_state(seq=2**53 + 1), Reason.OUT_OF_RANGE),
        (b'{"a":' * 5000, Reason.BAD_JSON),
        (b'{"v":1,"x":' + b"[" * 20000 + b"]" * 20000 + b"}", Reason.BAD_JSON),
        (b"[" * 30000, Reason.INVALID_FIELD),  # not an object: rejected at the first byte
        (_state(station="a/b"), Reason.INVALID_FIELD),
        (_state(host={"cpu_ratio": 0.5}), Reason.MISSING_FIELD),
        (_state(host={"cpu_ratio": 2.0}), Reason.OUT_OF_RANGE),
        (_state(peripherals=[{"device_class": "camera", "present": "yes"}]), Reason.INVALID_FIELD),
        (_state(type="event"), Reason.INVALID_FIELD),
        (_state(station="3310-bayat-01"), Reason.STATION_MISMATCH),
        (_state(os="x" * (wire.MAX_PAYLOAD_BYTES + 1)), Reason.OVERSIZED),
    ],
)
def test_bad_payloads_raise_one_error_type_with_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/state", payload)
    assert info.value.reason is reason


def test_status_value_is_enumerated() -> None:
    body = json.loads(golden("status_online.json"))
    body["status"] = "sleeping"
    with pytest.raises(WireError) as info:
        wire.decode(f"{TOPIC}/status", json.dumps(body).encode())
    assert info.value.reason is Reason.INVALID_FIELD


# --------------------------------------------------------------------------- properties

segment = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
text = st.text(max_size=40)
finite = st.floats(min_value=0, max_value=wire.TIMESTAMP_MAX, allow_nan=False)
durations = st.floats(min_value=0, max_value=wire.DURATION_MAX, allow_nan=False)
usb_id = st.integers(min_value=0, max_value=0xFFFF)
name = st.text(min_size=1, max_size=20)

devices = st.builds(
    wire.Device,
    vid=usb_id,
    pid=usb_id,
    bus=st.integers(0, 255),
    port=st.text(max_size=10),
    manufacturer=text,
    product=text,
)
peripherals = st.builds(
    wire.Peripheral,
    device_class=name,
    present=st.booleans(),
    expected=st.integers(0, 8),
    found=st.integers(0, 8),
    devices=st.lists(devices, max_size=3).map(tuple),
    reason=st.text(max_size=20),
)
probes = st.builds(
    wire.Probe,
    target=name,
    kind=st.sampled_from(["tcp", "http", "https", "tls"]),
    up=st.booleans(),
    duration_s=durations,
    reason=st.sampled_from(["ok", "dns", "refused", "timeout", "tls", "http_status"]),
    status_code=st.none() | st.integers(100, 599),
    cert_expiry_ts=st.none() | finite,
)
hosts = st.builds(
    wire.Host,
    cpu_ratio=st.floats(0, 1),
    mem_available_bytes=st.integers(0, 2**40),
    mem_total_bytes=st.integers(0, 2**40),
    boot_ts=finite,
    agent_start_ts=finite,
    disks=st.lists(
        st.builds(
            wire.Disk,
            mount=name,
            free_bytes=st.integers(0, 2**50),
            size_bytes=st.integers(0, 2**50),
        ),
        max_size=3,
    ).map(tuple),
)
header = {
    "station": segment,
    "agent_version": text,
    "session": segment,
    "seq": st.integers(0, 2**53),
    "ts": finite,
}
states = st.builds(
    wire.State,
    **header,
    os=text,
    kecamatan=text,
    interval_s=st.floats(0.5, 3600),
    peripherals=st.lists(peripherals, max_size=5).map(tuple),
    probes=st.lists(probes, max_size=3).map(tuple),
    host=st.none() | hosts,
    checks=st.lists(
        st.builds(wire.CheckRun, name=name, ok=st.booleans(), duration_s=durations, reason=text),
        max_size=3,
    ).map(tuple),
    spool=st.builds(
        wire.SpoolStats, queued=st.integers(0, 10**6), dropped_total=st.integers(0, 10**6)
    ),
)
statuses = st.builds(
    wire.Status,
    **header,
    status=st.sampled_from(["online", "offline"]),
    reason=st.text(max_size=20),
)
events = st.builds(
    wire.Event,
    **header,
    kind=st.sampled_from(list(wire.EventKind)),
    subject=st.text(max_size=30),
    detail=st.text(max_size=100),
)


beats = st.builds(wire.Beat, v=st.just(1), session=header["session"], seq=header["seq"])


@settings(max_examples=200)
@given(message=states | statuses | events)
def test_encode_then_decode_is_identity(message: wire.State | wire.Status | wire.Event) -> None:
    kind = wire.kind_of(message)
    name = wire.topic("33", "3310", message.station, kind)
    parsed, decoded = wire.decode(name, wire.encode(message))
    assert decoded == message
    assert parsed.station == message.station


@settings(max_examples=100)
@given(beat=beats)
def test_beat_encode_then_decode_is_identity(beat: wire.Beat) -> None:
    assert wire.decode(f"{TOPIC}/beat", wire.encode(beat))[1] == beat


@settings(max_examples=300)
@given(payload=st.binary(max_size=512), kind=st.sampled_from(wire.KINDS))
def test_arbitrary_bytes_raise_only_wire_errors(payload: bytes, kind: wire.Kind) -> None:
    try:
        wire.decode(f"{TOPIC}/{kind}", payload)
    except WireError as exc:
        assert isinstance(exc.reason, Reason)  # noqa: PT017 (some inputs are valid)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "v": st.sampled_from([1, 2, "1", None]),
            "station": st.sampled_from([STATION, "other", 5]),
            "agent_version": json_values,
            "session": json_values,
            "seq": json_values,
            "ts": json_values,
            "status": st.sampled_from(["online", "offline", 1]),
            "kind": st.sampled_from(["reboot", "nope"]),
            "peripherals": json_values,
            "host": json_values,
        },
    ),
    kind=st.sampled_from(wire.KINDS),
)
def test_arbitrary_json_objects_raise_only_wire_errors(
    body: dict[str, object], kind: wire.Kind
) -> None:
    try:
        wire.decode(f"{TOPIC}/{kind}", msgspec.json.encode(body))
    except WireError as exc:
        assert isinstance(exc.reason, Reason)  # noqa: PT017 (some inputs are valid)


@pytest.mark.parametrize("value", ["abc\n", "abc\r", "a\nb", ""])
def test_ids_with_newlines_are_not_segments(value: str) -> None:
    assert not wire.valid_segment(value)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(value, wire.Segment)


def test_the_header_is_declared_once() -> None:
    """Every message starts with the one Header; its keyword form has the same keys."""
    header_fields = [f.name for f in msgspec.structs.fields(wire.Header)]
    for cls in (wire.State, wire.Status, wire.Event):
        assert issubclass(cls, wire.Header)
        assert [f.name for f in msgspec.structs.fields(cls)][: len(header_fields)] == header_fields
    assert set(wire.HeaderFields.__annotations__) == set(header_fields) - {"v"}
    fields = wire.header("s-1", "1.0", "abc", 7, 1.5)
    assert wire.Status(status="online", **fields).seq == 7
