"""Wire contract v1: MQTT topics and JSON payloads shared by agent and collector.

This module is the single source of truth for what travels between a station and the
collector. It depends only on the standard library and msgspec, so the collector never pulls in
pyusb or psutil and the agent never pulls in prometheus-client.

Topics::

    pantau/v1/{provinsi}/{kabkota}/{station}/state    retained, QoS 1: full health snapshot
    pantau/v1/{provinsi}/{kabkota}/{station}/status   retained, QoS 1: birth/will (online/offline)
    pantau/v1/{provinsi}/{kabkota}/{station}/event    QoS 1: changes, spooled while offline
    pantau/v1/{provinsi}/{kabkota}/{station}/beat     QoS 1, not retained: compact heartbeat

Every payload carries the common header: schema version ``v``, ``station``, ``agent_version``,
``session`` (one per agent (re)start, so a stale will cannot overwrite a newer birth), ``seq``
(the agent's monotonic sequence number, shared by all payload kinds of a session) and ``ts``
(agent clock, Unix seconds; never trusted for staleness, only for skew).

The heartbeat (:class:`Beat`) is the one compact payload: a JSON array ``[v, session, seq]``
(about 25 bytes, sent every ``heartbeat_s`` when nothing else is), because on a thin or metered
line it is most of what a healthy station ever sends. Its station is the topic's (the broker ACL
binds a station to its own topics); trailing array elements a decoder does not know are ignored,
so fields can be appended.

Unknown fields are ignored (adding a field is a minor change). A new major version gets a new
topic prefix. Decoding is strict otherwise: :func:`decode` returns a typed message or raises
:class:`WireError` with an enumerated :class:`Reason`.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Final, Literal, NamedTuple, TypedDict

import msgspec

from pantau.contract.errors import PantauError

SCHEMA_VERSION: Final = 1
TOPIC_ROOT: Final = "pantau"
TOPIC_PREFIX: Final = f"{TOPIC_ROOT}/v{SCHEMA_VERSION}"
#: Largest payload accepted. A real state of a station with a dozen devices is ~1-2 KB.
MAX_PAYLOAD_BYTES: Final = 64 * 1024
#: Topic segments (region codes, station ids): safe for topics, labels, file names and ACLs.
_SEG: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
#: ``\Z``, not ``$``: ``$`` also matches before a final newline ("abc\n" is no id).
SEGMENT_PATTERN: Final = rf"^{_SEG}\Z"
_SEGMENT_RE: Final = re.compile(SEGMENT_PATTERN)
_TOPIC_RE: Final = re.compile(
    rf"^{TOPIC_PREFIX}/({_SEG})/({_SEG})/({_SEG})/(state|status|event|beat)\Z"
)

Segment = Annotated[str, msgspec.Meta(pattern=SEGMENT_PATTERN)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
# Every number on the wire is bounded by what it can mean, so that no report carries a value that
# breaks a consumer (a 310-digit integer is valid JSON, but Prometheus rejects a scrape page that
# holds it, for the whole fleet). Violations are rejected as ``out_of_range``.
#: 2**53: the largest integer every JSON implementation and Prometheus (IEEE doubles) hold exactly.
EXACT_INT_MAX: Final = 2**53
#: 9999-12-31T23:59:59Z: RFC 5280's "no well-defined expiration" certificate date, and the last
#: second most datetime libraries can show. Timestamps are Unix seconds in [0, TIMESTAMP_MAX].
TIMESTAMP_MAX: Final = 253_402_300_799.0
#: One day: longer than any probe, check or reporting interval may take.
DURATION_MAX: Final = 86_400.0
#: Devices of one class, or expected rules of one class, on one PC (USB allows 127 per bus).
DEVICE_COUNT_MAX: Final = 1024
#: Bytes (memory, disk): up to 8 PiB, exact as a double.
Bytes = Annotated[int, msgspec.Meta(ge=0, le=EXACT_INT_MAX)]
#: Event and message counts.
Count = Annotated[int, msgspec.Meta(ge=0, le=EXACT_INT_MAX)]
DeviceCount = Annotated[int, msgspec.Meta(ge=0, le=DEVICE_COUNT_MAX)]
Timestamp = Annotated[float, msgspec.Meta(ge=0, le=TIMESTAMP_MAX)]
Duration = Annotated[float, msgspec.Meta(ge=0, le=DURATION_MAX)]
#: Sequence numbers: exact in every JSON implementation (IEEE double), so a hostile huge value
#: cannot freeze a collector's ordering for that session.
Seq = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
NonNegFloat = Annotated[float, msgspec.Meta(ge=0)]
Ratio = Annotated[float, msgspec.Meta(ge=0, le=1)]
UsbId = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]

Kind = Literal["state", "status", "event", "beat"]
KINDS: Final[tuple[Kind, ...]] = ("state", "status", "event", "beat")


class Reason(enum.StrEnum):
    """Why a message was rejected (the ``reason`` label of the collector's rejection counter)."""

    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    WRONG_VERSION = "wrong_version"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    STATION_MISMATCH = "station_mismatch"
    #: A number outside what its field can mean (see the bounds above).
    OUT_OF_RANGE = "out_of_range"


class WireError(PantauError, ValueError):
    """The only exception :func:`decode` and :func:`parse_topic` raise."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


# --------------------------------------------------------------------------- payload parts


class Device(msgspec.Struct, frozen=True, omit_defaults=True):
    """One enumerated USB device that matched an expected rule."""

    vid: UsbId
    pid: UsbId
    bus: Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)] = 0
    port: Annotated[str, msgspec.Meta(max_length=32)] = ""
    manufacturer: ShortText = ""
    product: ShortText = ""


class Peripheral(msgspec.Struct, frozen=True, omit_defaults=True):
    """Presence of one device class (fingerprint, iris, camera, signature, ...)."""

    device_class: Name
    present: bool
    #: How many distinct expected rules the class has, and how many of them matched.
    expected: DeviceCount = 1
    found: DeviceCount = 0
    devices: tuple[Device, ...] = ()
    #: Empty when present; otherwise e.g. ``missing``, ``libusb_unavailable``, ``check_failed``.
    reason: Annotated[str, msgspec.Meta(max_length=64)] = ""


class Probe(msgspec.Struct, frozen=True, omit_defaults=True):
    """Result of one login-service probe (blackbox style)."""

    target: Name
    kind: Annotated[str, msgspec.Meta(max_length=16)]
    up: bool
    duration_s: Duration
    #: ``ok`` or an enumerated failure (dns, refused, timeout, tls, http_status, ...).
    reason: Annotated[str, msgspec.Meta(max_length=64)] = "ok"
    status_code: Annotated[int, msgspec.Meta(ge=0, le=999)] | None = None
    cert_expiry_ts: Timestamp | None = None
    #: Why it failed in terms a person acts on (:class:`~pantau.contract.vocabulary.LoginCause`:
    #: ``network``, ``tls``, ``denied``, ``service_error``, ``unexpected``; ``ok`` when up).
    #: Added in v1 (optional): empty from older agents, whose cause the collector derives from
    #: ``reason`` and ``status_code`` with the same function.
    cause: Annotated[str, msgspec.Meta(max_length=32)] = ""


class Disk(msgspec.Struct, frozen=True):
    mount: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    free_bytes: Bytes
    size_bytes: Bytes


class Host(msgspec.Struct, frozen=True, omit_defaults=True):
    cpu_ratio: Ratio
    mem_available_bytes: Bytes
    mem_total_bytes: Bytes
    #: Boot time on the agent's clock, as first read in the current boot: a clock step within the
    #: boot does not move it; a new boot (boot id) does (docs/agent.md).
    boot_ts: Timestamp
    agent_start_ts: Timestamp
    disks: tuple[Disk, ...] = ()


class CheckRun(msgspec.Struct, frozen=True, omit_defaults=True):
    """Self-report of one check in the round (node_exporter's scrape_collector_* idea)."""

    name: Name
    ok: bool
    duration_s: Duration
    reason: Annotated[str, msgspec.Meta(max_length=256)] = ""


class SpoolStats(msgspec.Struct, frozen=True, omit_defaults=True):
    queued: Count = 0
    dropped_total: Count = 0


# --------------------------------------------------------------------------- messages


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """The header every payload starts with (the base of :class:`State`, :class:`Status` and
    :class:`Event`; declared once)."""

    v: int = SCHEMA_VERSION
    station: Segment
    agent_version: ShortText
    session: Segment
    seq: Seq
    #: Agent clock; 0 up to :data:`TIMESTAMP_MAX` (a PC whose clock battery died reports 1970).
    ts: Timestamp


class HeaderFields(TypedDict):
    """The header as keyword arguments (``v`` is fixed): ``wire.Status(status=..., **fields)``
    type-checks. Its keys are :class:`Header`'s fields (a test keeps them equal)."""

    station: str
    agent_version: str
    session: str
    seq: int
    ts: float


def header(station: str, agent_version: str, session: str, seq: int, ts: float) -> HeaderFields:
    """The header of the next payload of a session."""
    return {
        "station": station,
        "agent_version": agent_version,
        "session": session,
        "seq": seq,
        "ts": ts,
    }


class State(Header, frozen=True, kw_only=True, tag="state", tag_field="type"):
    """The full health snapshot (retained on the ``state`` topic)."""

    os: ShortText = ""
    kecamatan: ShortText = ""
    #: The full state is published on change, on (re)connect and at least this often.
    interval_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 30.0
    #: Seconds between heartbeats (:class:`Beat`); 0: the agent sends none (before heartbeats
    #: existed, or switched off), so its liveness is the state's ``interval_s``.
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 0.0
    peripherals: tuple[Peripheral, ...] = ()
    probes: tuple[Probe, ...] = ()
    host: Host | None = None
    checks: tuple[CheckRun, ...] = ()
    spool: SpoolStats = SpoolStats()


StatusValue = Literal["online", "offline"]


class Status(Header, frozen=True, kw_only=True, tag="status", tag_field="type"):
    """Birth (``online``) or Last Will / orderly shutdown (``offline``)."""

    status: StatusValue
    #: For offline: ``will`` (set as Last Will, connection lost) or ``shutdown`` (orderly stop).
    reason: Annotated[str, msgspec.Meta(max_length=64)] = ""


class EventKind(enum.StrEnum):
    PERIPHERAL_REMOVED = "peripheral_removed"
    PERIPHERAL_ADDED = "peripheral_added"
    PROBE_DOWN = "probe_down"
    PROBE_UP = "probe_up"
    REBOOT = "reboot"
    CHECK_FAILED = "check_failed"
    CHECK_RECOVERED = "check_recovered"
    SPOOL_DROPPED = "spool_dropped"
    AGENT_STARTED = "agent_started"


class Event(Header, frozen=True, kw_only=True, tag="event", tag_field="type"):
    """A change, delivered in order and exactly once per ``(session, seq)``."""

    kind: EventKind
    #: What changed: a device class, a probe target, a check name; empty for reboot.
    subject: Annotated[str, msgspec.Meta(max_length=64)] = ""
    detail: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class Beat(msgspec.Struct, frozen=True, array_like=True):
    """Heartbeat: "this session's agent loop is alive"; encoded ``[v, session, seq]``.

    Sent when the agent has published nothing else for ``heartbeat_s`` (the state says which),
    never spooled (a missed beat is not news). The station is the topic's.
    """

    v: int
    session: Segment
    seq: Seq


Message = State | Status | Event | Beat
MessageType = type[State] | type[Status] | type[Event] | type[Beat]
_KIND_OF: Final[dict[type[msgspec.Struct], Kind]] = {
    State: "state",
    Status: "status",
    Event: "event",
    Beat: "beat",
}
_TYPE_OF: Final[dict[str, MessageType]] = {
    "state": State,
    "status": Status,
    "event": Event,
    "beat": Beat,
}
_DECODERS: Final[dict[str, msgspec.json.Decoder[Message]]] = {
    "state": msgspec.json.Decoder(State),
    "status": msgspec.json.Decoder(Status),
    "event": msgspec.json.Decoder(Event),
    "beat": msgspec.json.Decoder(Beat),
}
_ENCODER: Final = msgspec.json.Encoder()


class _Version(msgspec.Struct):
    v: int


_VERSION_DECODER: Final = msgspec.json.Decoder(_Version)
#: msgspec's messages for a number outside a field's bounds (or outside a double's range).
_RANGE_RE: Final = re.compile(r"Expected `(?:int|float)` [<>]=? |Number out of range")


# --------------------------------------------------------------------------- topics


class Topic(NamedTuple):
    """A parsed pantau topic (a NamedTuple: built for every message, so cheap to make)."""

    provinsi: str
    kabkota: str
    station: str
    kind: Kind

    def __str__(self) -> str:
        return topic(self.provinsi, self.kabkota, self.station, self.kind)


def valid_segment(value: str) -> bool:
    """True if ``value`` can be a topic segment (region code or station id)."""
    return bool(_SEGMENT_RE.match(value))


def topic(provinsi: str, kabkota: str, station: str, kind: Kind) -> str:
    """Build a v1 topic; raises ``ValueError`` for a segment that is not topic-safe."""
    for name, value in (("provinsi", provinsi), ("kabkota", kabkota), ("station", station)):
        if not valid_segment(value):
            raise ValueError(f"{name} {value!r} is not a valid topic segment ({SEGMENT_PATTERN})")
    if kind not in KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{TOPIC_PREFIX}/{provinsi}/{kabkota}/{station}/{kind}"


def subscription(provinsi: str = "+", kabkota: str = "+") -> str:
    """Topic filter for a collector shard, e.g. ``subscription("33")`` -> ``pantau/v1/33/+/+/+``."""
    return f"{TOPIC_PREFIX}/{provinsi}/{kabkota}/+/+"


def parse_topic(name: str) -> Topic:
    """Parse a v1 topic or raise ``WireError(BAD_TOPIC)``."""
    match = _TOPIC_RE.match(name)  # one regex: this runs for every message the collector gets
    if match is None:
        raise WireError(
            Reason.BAD_TOPIC,
            "not a pantau/v1/{provinsi}/{kabkota}/{station}/{state|status|event|beat} topic "
            "with valid ids",
        )
    provinsi, kabkota, station, kind = match.groups()
    return Topic(provinsi, kabkota, station, kind)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- encode / decode


def kind_of(message: Message) -> Kind:
    return _KIND_OF[type(message)]


def encode(message: Message) -> bytes:
    """Serialise a message to compact JSON (with its ``type`` tag)."""
    return _ENCODER.encode(message)


def _classify(exc: msgspec.DecodeError, payload: bytes) -> WireError:
    if not isinstance(exc, msgspec.ValidationError):
        return WireError(Reason.BAD_JSON, str(exc))
    try:
        header = _VERSION_DECODER.decode(payload)
    except msgspec.DecodeError:
        header = None
    if header is not None and header.v != SCHEMA_VERSION:
        return WireError(
            Reason.WRONG_VERSION, f"schema version {header.v}, expected {SCHEMA_VERSION}"
        )
    text = str(exc)
    if text.startswith(("Object missing required field", "Expected `array` of at least length")):
        return WireError(Reason.MISSING_FIELD, text)
    if _RANGE_RE.match(text):
        return WireError(Reason.OUT_OF_RANGE, text)
    return WireError(Reason.INVALID_FIELD, text)


def decode_payload(kind: Kind, payload: bytes) -> Message:
    """Decode a payload of a known kind (no topic checks). Raises only :class:`WireError`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(Reason.OVERSIZED, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        message: Message = _DECODERS[kind].decode(payload)
    except msgspec.DecodeError as exc:
        raise _classify(exc, payload) from None
    except RecursionError:
        # msgspec skips unknown fields recursively: hostile nesting ('{"a":' x 5000) exhausts
        # the stack before any size limit applies.
        raise WireError(Reason.BAD_JSON, "JSON nested too deeply") from None
    if message.v != SCHEMA_VERSION:
        raise WireError(
            Reason.WRONG_VERSION, f"schema version {message.v}, expected {SCHEMA_VERSION}"
        )
    return message


def decode(topic_name: str, payload: bytes) -> tuple[Topic, Message]:
    """Decode a message received on ``topic_name``.

    Returns the parsed topic and the typed message, or raises :class:`WireError` (never anything
    else, whatever the bytes). The payload's ``station`` must equal the topic's: together with the
    broker ACL this stops one station from speaking for another (a :class:`Beat` has no station
    of its own: only the topic and the ACL say whose it is).
    """
    parsed = parse_topic(topic_name)
    message = decode_payload(parsed.kind, payload)
    if not isinstance(message, Beat) and message.station != parsed.station:
        raise WireError(Reason.STATION_MISMATCH, "payload station differs from topic station")
    return parsed, message


def message_type(kind: Kind) -> MessageType:
    return _TYPE_OF[kind]
