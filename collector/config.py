"""The collector's TOML configuration (strict: unknown keys and bad values are errors).

Every setting has a default, so an empty file is a valid config (subscribe to everything on a
broker at 127.0.0.1:1883, serve HTTP on 127.0.0.1:9108, no inventory). Relative file paths are
resolved against the config file's directory. See ``collector/collector.example.toml`` and
``docs/collector.md``.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from pantau.collector.errors import SettingsError
from pantau.contract import config as pconfig
from pantau.contract import credentials
from pantau.contract.config import ConfigError, LogSettings
from pantau.contract.vocabulary import DEVICE_CLASS_PATTERN, DEVICE_CLASSES, MAX_DEVICE_CLASSES

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
DeviceClass = Annotated[str, msgspec.Meta(pattern=DEVICE_CLASS_PATTERN)]

DEFAULT_TOPIC = "pantau/v1/+/+/+/+"
DEFAULT_DEVICE_CLASSES = DEVICE_CLASSES
DEFAULT_HTTP_PORT = 9108
PASSWORD_HASH_SCHEME: Final = credentials.BASIC_AUTH_SCHEME


DEFAULT_MQTT_HOST: Final = "127.0.0.1"
DEFAULT_MQTT_PORT: Final = 1883
MAX_ENDPOINTS: Final = 16


class MqttConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_MQTT_HOST
    port: Port = DEFAULT_MQTT_PORT
    #: Several brokers (the nodes of one cluster), ``host:port`` each, instead of host/port:
    #: after a failed attempt or a lost connection the next one is tried (same TLS and login).
    endpoints: Annotated[
        tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=260)], ...],
        msgspec.Meta(max_length=MAX_ENDPOINTS),
    ] = ()
    #: ``"5"`` (needed for ``$share/...`` filters) or ``"3.1.1"``.
    protocol: Literal["5", "3.1.1"] = "5"
    #: Empty: ``pantau-collector-{hostname}``. The broker keeps the session under this id, so it
    #: must be stable across restarts and unique per collector replica (two collectors with one
    #: id take the session from each other).
    client_id: Annotated[str, msgspec.Meta(max_length=128)] = ""
    username: str = ""
    #: File holding the password (one line). Never put the password in the config itself.
    password_file: str = ""
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 30

    def broker_endpoints(self) -> tuple[tuple[str, int], ...]:
        """``(host, port)`` of every broker in order (assumes a checked config)."""
        if not self.endpoints:
            return ((self.host, self.port),)
        return tuple(_split_endpoint(e) for e in self.endpoints)

    topics: Annotated[tuple[str, ...], msgspec.Meta(min_length=1, max_length=16)] = (DEFAULT_TOPIC,)
    #: QoS of the subscriptions. Either way the broker's ``max_queued_messages`` must hold a
    #: restart burst (one retained state and status per station): see docs/collector.md.
    qos: Annotated[int, msgspec.Meta(ge=0, le=1)] = 1
    tls: bool = False
    #: CA bundle for the broker certificate (empty: the system's CAs).
    ca_file: str = ""
    #: Client certificate and key (both or neither).
    cert_file: str = ""
    key_file: str = ""
    #: How long the broker keeps the collector's session (subscriptions and QoS 1 messages
    #: queued for it) while it is away: an upgrade, a crash, a host reboot. 0: no persistent
    #: session (clean start; everything sent while away is lost). MQTT 3.1.1 has no expiry on the
    #: wire: any value > 0 means a persistent session kept as long as the broker's
    #: ``persistent_client_expiration``.
    session_expiry_s: Annotated[int, msgspec.Meta(ge=0, le=4_294_967_294)] = 86400
    #: Reconnect backoff: the wait doubles from min to max. Kept below the agents' (whose waits
    #: are at least half their doubling ceiling from 1 s): the collector is back before the
    #: stations flush their spools after a broker restart.
    reconnect_min_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 0.5
    reconnect_max_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 2.0


class HttpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    #: 0 picks a free port (tests, demo).
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = DEFAULT_HTTP_PORT
    tls_cert_file: str = ""
    tls_key_file: str = ""
    #: gzip level for /metrics when the client accepts it; 0 disables compression.
    gzip_level: Annotated[int, msgspec.Meta(ge=0, le=6)] = 1
    #: Seconds between automatic reloads of the fleet board (``/``).
    board_refresh_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 15
    basic_auth_user: str = ""
    #: ``pbkdf2_sha256$iterations$salt_hex$hash_hex`` (``pantau-collector hash-password``).
    basic_auth_password_hash: str = ""
    #: Or a file holding the password (one line, readable only by the collector's user).
    basic_auth_password_file: str = ""
    #: Connections open at once. At the cap, the oldest connection that has not sent a complete
    #: request yet is closed to admit a new one, so idle sockets cannot lock scrapes out.
    max_connections: Annotated[int, msgspec.Meta(ge=8, le=100_000)] = 256
    #: Seconds a client has from connecting (TLS handshake included) to a complete request head.
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 10.0
    #: Seconds one write of a response may block (a client that stops reading is dropped).
    write_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    #: Failed basic-auth attempts per client address: a burst of this many, then one per
    #: ``auth_failure_interval_s``; beyond that the password is not even checked (HTTP 429).
    auth_failure_burst: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    auth_failure_interval_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 6.0


class FleetConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: Inventory CSV (``station,provinsi,kabkota,kecamatan,device_classes``); empty: none.
    inventory: str = ""
    #: Device classes exported as ``device_class`` labels (inventory classes are added).
    device_classes: Annotated[
        tuple[DeviceClass, ...], msgspec.Meta(max_length=MAX_DEVICE_CLASSES)
    ] = DEFAULT_DEVICE_CLASSES
    #: A station is down when no state arrived for this many of its reporting intervals.
    stale_after_intervals: Annotated[float, msgspec.Meta(ge=1, le=1000)] = 3.0
    #: Stations not in the inventory accepted at most (further ones rejected as ``over_cap``).
    max_unknown_stations: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 1000
    #: Stations not in the inventory are forgotten after this long without any message.
    forget_unknown_after_s: Annotated[float, msgspec.Meta(gt=0)] = 7 * 86400.0
    #: A skipped sequence number still missing after this long counts as a lost message
    #: (``pantau_collector_sequence_gaps_total``); until then a late arrival (reordering, a
    #: spooled event resent after a reconnect) fills it.
    reorder_window_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 300.0
    #: File keeping the event counts and the last event seq per station session across restarts
    #: (QoS 1 acknowledgements wait until it is written); empty: counts in memory
    #: only. First-seen times ("broken since") are kept next to it in ``<name>.since.json``.
    state_file: str = ""


class CollectorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    fleet: FleetConfig = FleetConfig()
    log: LogSettings = LogSettings()
    #: The old name of ``log.level`` (still read; empty: not set). Set one, not both.
    log_level: Literal["", "debug", "info", "warning", "error"] = ""


# --------------------------------------------------------------------------- passwords


#: ``http.basic_auth_password_hash`` values (:mod:`pantau.contract.credentials`).
hash_password: Final = credentials.basic_auth_hash
verify_password: Final = credentials.basic_auth_verify


# --------------------------------------------------------------------------- validation


def _valid_filter(topic: str) -> str | None:
    """Why ``topic`` is not a usable pantau topic filter, or None."""
    rest = topic
    if topic.startswith("$share/"):
        parts = topic.split("/", 2)
        if len(parts) < 3 or not parts[1] or any(c in parts[1] for c in "+#"):
            return "shared subscription must look like $share/{group}/pantau/v1/..."
        rest = parts[2]
    levels = rest.split("/")
    if levels[:2] != ["pantau", "v1"] or len(levels) < 3:
        return "must start with pantau/v1/ (or $share/{group}/pantau/v1/)"
    for i, level in enumerate(levels):
        if level == "#" and i != len(levels) - 1:
            return "'#' is allowed only as the last level"
        if level not in ("+", "#") and ("+" in level or "#" in level):
            return "wildcards must occupy a whole level"
    if len(levels) > 6:
        return "pantau topics have 6 levels"
    return None


def _split_endpoint(text: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> (host, port); raises ``ValueError``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or any(c.isspace() or c in "/@" for c in text):
        raise ValueError("expected host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError("port must be 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _check_endpoints(mqtt: MqttConfig, source: str) -> None:
    if not mqtt.endpoints:
        return
    if mqtt.host != DEFAULT_MQTT_HOST or mqtt.port != DEFAULT_MQTT_PORT:
        raise SettingsError(
            source, "mqtt.endpoints", "set mqtt.endpoints or mqtt.host/mqtt.port, not both"
        )
    seen: set[tuple[str, int]] = set()
    for i, text in enumerate(mqtt.endpoints):
        try:
            endpoint = _split_endpoint(text)
        except ValueError as exc:
            raise SettingsError(source, f"mqtt.endpoints[{i}]", f"{exc}, got {text!r}") from None
        if endpoint in seen:
            raise SettingsError(source, f"mqtt.endpoints[{i}]", f"duplicate endpoint {text!r}")
        seen.add(endpoint)


def _missing_file(source: str, key: str, value: str) -> SettingsError | None:
    if value and not Path(value).is_file():
        return SettingsError(source, key, f"file {value} not found")
    return None


def _ssl_detail(exc: OSError | ValueError) -> str:
    """`` (reason)`` from an ssl error (OpenSSL's reason code in words), or ``""``."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return f" ({reason.lower().replace('_', ' ')})"
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    text = re.sub(r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$", "", text).strip()
    return "" if text in ("", "PEM lib") else f" ({text})"  # "PEM lib" says nothing


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on the terminal


def _try_load(source: str, key: str, what: str, load: Callable[[], object]) -> None:
    """Run ``load``; an OS or ssl error becomes a :class:`SettingsError` at ``key``: ``what``."""
    try:
        load()
    except (OSError, ValueError) as exc:
        raise SettingsError(source, key, f"{what}{_ssl_detail(exc)}") from None


def _check_tls_files(
    source: str, ca: tuple[str, str], cert: tuple[str, str], key: tuple[str, str], server: bool
) -> None:
    """Load CA, certificate and key the way the TLS code will; raise naming the bad key.

    ``ca``, ``cert``, ``key`` are ``(dotted key, path)`` (empty path: not set).
    """
    protocol = ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT
    (ca_key, ca_path), (cert_key, cert_path), (key_key, key_path) = ca, cert, key
    if ca_path:
        context = ssl.SSLContext(protocol)
        what = f"{ca_path}: not a PEM CA bundle"
        _try_load(source, ca_key, what, lambda: context.load_verify_locations(cafile=ca_path))
    if not cert_path:
        return
    # Any PEM certificate loads as a trust anchor: this tells a bad certificate file from a bad
    # key below.
    anchors = ssl.SSLContext(protocol)
    what = f"{cert_path}: not a PEM certificate"
    _try_load(source, cert_key, what, lambda: anchors.load_verify_locations(cafile=cert_path))
    chain = ssl.SSLContext(protocol)
    what = f"{key_path}: not an unencrypted PEM private key for {cert_key}"
    _try_load(
        source,
        key_key,
        what,
        lambda: chain.load_cert_chain(cert_path, key_path or None, password=_no_password),
    )


def check(cfg: CollectorConfig, source: str) -> None:
    """Step ``check`` of the config pipeline: cross-field rules; raises :class:`SettingsError`."""
    if cfg.log_level and cfg.log != LogSettings():
        raise SettingsError(source, "log_level", "set log.level only (log_level is its old name)")
    _check_mqtt(cfg.mqtt, source)
    _check_http(cfg.http, source)
    fleet = cfg.fleet
    if len(set(fleet.device_classes)) != len(fleet.device_classes):
        raise SettingsError(source, "fleet.device_classes", "a device class is listed twice")


def _check_mqtt(mqtt: MqttConfig, source: str) -> None:
    for i, topic in enumerate(mqtt.topics):
        why = _valid_filter(topic)
        if why:
            raise SettingsError(source, f"mqtt.topics[{i}]", f"{topic!r}: {why}")
        if topic.startswith("$share/") and mqtt.protocol != "5":
            raise SettingsError(
                source, f"mqtt.topics[{i}]", 'shared subscriptions need mqtt.protocol = "5"'
            )
    if mqtt.password_file and not mqtt.username:
        raise SettingsError(source, "mqtt.password_file", "set mqtt.username too")
    if bool(mqtt.cert_file) != bool(mqtt.key_file):
        raise SettingsError(source, "mqtt.cert_file", "set both mqtt.cert_file and mqtt.key_file")
    if (mqtt.ca_file or mqtt.cert_file) and not mqtt.tls:
        raise SettingsError(source, "mqtt.tls", "certificate files are set but mqtt.tls is false")
    if mqtt.reconnect_min_s > mqtt.reconnect_max_s:
        raise SettingsError(source, "mqtt.reconnect_min_s", "must not exceed mqtt.reconnect_max_s")
    _check_endpoints(mqtt, source)


def _check_http(http: HttpConfig, source: str) -> None:
    if bool(http.tls_cert_file) != bool(http.tls_key_file):
        raise SettingsError(
            source, "http.tls_cert_file", "set both http.tls_cert_file and http.tls_key_file"
        )
    has_hash, has_file = bool(http.basic_auth_password_hash), bool(http.basic_auth_password_file)
    if http.basic_auth_user and has_hash == has_file:
        raise SettingsError(
            source,
            "http.basic_auth_user",
            "set exactly one of http.basic_auth_password_hash and http.basic_auth_password_file",
        )
    if (has_hash or has_file) and not http.basic_auth_user:
        raise SettingsError(source, "http.basic_auth_user", "required with a basic-auth password")
    if has_hash and credentials.parse_basic_auth_hash(http.basic_auth_password_hash) is None:
        raise SettingsError(
            source,
            "http.basic_auth_password_hash",
            f"not a {PASSWORD_HASH_SCHEME}$iterations$salt$hash value "
            "(make one with `pantau-collector hash-password`)",
        )


def resolve_paths(cfg: CollectorConfig, base_dir: Path) -> CollectorConfig:
    """Step ``resolve_paths``: every file setting through :func:`~pantau.contract.config.expand_path`."""
    rep, path = msgspec.structs.replace, pconfig.expand_path
    mqtt, http = cfg.mqtt, cfg.http
    return rep(
        cfg,
        mqtt=rep(
            mqtt,
            password_file=path(mqtt.password_file, base_dir),
            ca_file=path(mqtt.ca_file, base_dir),
            cert_file=path(mqtt.cert_file, base_dir),
            key_file=path(mqtt.key_file, base_dir),
        ),
        http=rep(
            http,
            tls_cert_file=path(http.tls_cert_file, base_dir),
            tls_key_file=path(http.tls_key_file, base_dir),
            basic_auth_password_file=path(http.basic_auth_password_file, base_dir),
        ),
        fleet=rep(
            cfg.fleet,
            inventory=path(cfg.fleet.inventory, base_dir),
            state_file=path(cfg.fleet.state_file, base_dir),
        ),
    )


def file_errors(cfg: CollectorConfig, source: str) -> list[ConfigError]:
    """Step ``file_errors``: missing files, then certificates and keys that do not load."""
    mqtt, http, fleet = cfg.mqtt, cfg.http, cfg.fleet
    missing = [
        err
        for key, value in (
            ("mqtt.password_file", mqtt.password_file),
            ("mqtt.ca_file", mqtt.ca_file),
            ("mqtt.cert_file", mqtt.cert_file),
            ("mqtt.key_file", mqtt.key_file),
            ("http.tls_cert_file", http.tls_cert_file),
            ("http.tls_key_file", http.tls_key_file),
            ("http.basic_auth_password_file", http.basic_auth_password_file),
            ("fleet.inventory", fleet.inventory),
        )
        if (err := _missing_file(source, key, value))
    ]
    if missing:  # the certificate checks below would only repeat these
        return list(missing)
    try:
        if mqtt.tls:
            _check_tls_files(
                source,
                ("mqtt.ca_file", mqtt.ca_file),
                ("mqtt.cert_file", mqtt.cert_file),
                ("mqtt.key_file", mqtt.key_file),
                server=False,
            )
        _check_tls_files(
            source,
            ("", ""),
            ("http.tls_cert_file", http.tls_cert_file),
            ("http.tls_key_file", http.tls_key_file),
            server=True,
        )
    except SettingsError as exc:
        return [exc]
    return []


#: read -> convert -> check -> resolve_paths -> file_errors (:class:`pantau.contract.config.Pipeline`).
PIPELINE: Final = pconfig.Pipeline(CollectorConfig, check, resolve_paths, file_errors)


def validate(cfg: CollectorConfig, source: str, base: Path | None = None) -> CollectorConfig:
    """Steps check, resolve_paths and file_errors on a converted config (paths relative to
    ``base``, default the working directory); raises :class:`SettingsError` naming the key."""
    return PIPELINE.finish(cfg, source, base if base is not None else Path.cwd())


def load(path: str | os.PathLike[str]) -> CollectorConfig:
    """Read, validate and resolve a collector config file (raises ``ConfigError``)."""
    return PIPELINE.load(path)


def from_dict(data: dict[str, object], source: str = "<config>") -> CollectorConfig:
    """Build a config from parsed TOML data (tests, the demo); paths relative to the cwd."""
    return PIPELINE.from_data(data, source, Path.cwd())
