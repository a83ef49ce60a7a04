"""Agent configuration: strict TOML (see ``agent/agent.example.toml`` and docs/agent.md).

:func:`load_config` reads the file with :func:`pantau.contract.config.load` (unknown keys and wrong types
are errors naming the dotted key), then checks what types cannot say (unique probe names, a
``host:port`` target, at most :data:`MAX_DEVICE_CLASSES` device classes, ...) and resolves
relative paths against the config file's directory, so a provisioned station directory can be
copied anywhere, and loads the CA bundles and reads the password file it names
(:func:`file_errors`), so a missing or broken file is one line, not a traceback at connect time. :func:`warnings` lists what is allowed but unwise (a password file others can
read, a password sent without TLS). :func:`render_toml` writes a config back as TOML (used by
``pantau provision``); ``load_config(render_toml(c))`` gives ``c`` back.

Secrets are never part of the config object: ``mqtt.password_file`` names a file that
:func:`read_password` reads when the publisher connects.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec

from pantau.agent import windows
from pantau.contract import config as base
from pantau.contract.config import ConfigError, LogSettings
from pantau.contract.vocabulary import DEVICE_CLASS_PATTERN, MAX_DEVICE_CLASSES
from pantau.contract.wire import SEGMENT_PATTERN

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "MAX_DEVICE_CLASSES",
    "MAX_ENDPOINTS",
    "AgentConfig",
    "ConfigError",
    "DeviceRule",
    "HostSettings",
    "Intervals",
    "LogSettings",
    "MqttSettings",
    "ProbeSettings",
    "SpoolSettings",
    "StationSettings",
    "convert_config",
    "default_spool_path",
    "file_errors",
    "load_config",
    "parse_endpoint",
    "read_password",
    "render_toml",
    "system_disks",
    "uses_systemd_credential",
    "warnings",
]

CLASS_PATTERN: Final = DEVICE_CLASS_PATTERN
_CLASS_RE: Final = re.compile(CLASS_PATTERN)

#: ``/etc/pantau/agent.toml``, or ``%PROGRAMDATA%\\pantau\\agent.toml`` on Windows.
DEFAULT_CONFIG_PATH: Final = (
    windows.default_config_path(os.environ) if sys.platform == "win32" else "/etc/pantau/agent.toml"
)

Segment = Annotated[str, msgspec.Meta(pattern=SEGMENT_PATTERN)]
UsbId = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]
UsbClass = Annotated[int, msgspec.Meta(ge=0, le=0xFF)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Text = Annotated[str, msgspec.Meta(max_length=256)]
PathText = Annotated[str, msgspec.Meta(max_length=4096)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    pass


class StationSettings(_Section, frozen=True):
    """``[station]``: who this agent speaks for (topic segments and labels)."""

    id: Segment
    provinsi: Segment
    kabkota: Segment
    kecamatan: Text = ""
    #: Device classes the inventory expects here (``pantau provision`` writes them). A class
    #: without a ``[[devices]]`` rule is reported as ``not_configured`` (a configuration problem,
    #: not a missing device); add its rule to turn it green.
    expects: Annotated[
        tuple[Annotated[str, msgspec.Meta(pattern=CLASS_PATTERN)], ...],
        msgspec.Meta(max_length=MAX_DEVICE_CLASSES),
    ] = ()


#: Broker endpoints one agent may list (the nodes of a cluster).
MAX_ENDPOINTS: Final = 16
DEFAULT_HOST: Final = "localhost"


class MqttSettings(_Section, frozen=True):
    """``[mqtt]``: the broker connection."""

    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)] = DEFAULT_HOST
    #: 0 means the protocol default: 8883 with TLS, 1883 without.
    port: Port = 0
    #: Several brokers (nodes of one cluster) as ``host:port`` or ``host`` (then ``port``, or
    #: the protocol default); replaces ``host``. All share the TLS, CA and login settings below.
    endpoints: Annotated[
        tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=260)], ...],
        msgspec.Meta(max_length=MAX_ENDPOINTS),
    ] = ()
    #: ``ordered``: every (re)connect tries the endpoints in the listed order (the first that
    #: answers wins, so the agent is back on the first once it returns); ``shuffled``: the same
    #: over an order drawn once per agent start (spreads a fleet over the nodes).
    endpoint_order: Literal["ordered", "shuffled"] = "ordered"
    protocol: Literal["5", "3.1.1"] = "5"
    tls: bool = True
    #: CA bundle that signs the broker's certificate; empty: the system's trusted CAs.
    ca_file: PathText = ""
    #: Empty: the station id (what ``pantau provision`` creates).
    username: Text = ""
    #: File holding only the password (mode 0600). Empty: connect without a password.
    password_file: PathText = ""
    #: Empty: ``pantau-{station id}``.
    client_id: Text = ""
    keepalive_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 60
    connect_timeout_s: Seconds = 10.0
    #: Reconnect backoff: doubles from min to max, each wait randomised (jitter).
    reconnect_min_s: Seconds = 1.0
    reconnect_max_s: Seconds = 120.0

    def effective_port(self) -> int:
        return self.port or (8883 if self.tls else 1883)

    def broker_endpoints(self) -> tuple[tuple[str, int], ...]:
        """``(host, port)`` of every broker, in the configured order (``endpoints`` or
        ``host``/``port``); assumes a config that passed :func:`check`."""
        if not self.endpoints:
            return ((self.host, self.effective_port()),)
        return tuple(parse_endpoint(e, self.effective_port()) for e in self.endpoints)


class SpoolSettings(_Section, frozen=True):
    """``[spool]``: the on-disk event queue used while the broker is unreachable."""

    #: Empty: ``$STATE_DIRECTORY/spool.sqlite`` (systemd), ``%PROGRAMDATA%\\pantau\\spool.sqlite``
    #: (Windows) or ``/var/lib/pantau-agent/spool.sqlite``.
    path: PathText = ""
    max_events: Annotated[int, msgspec.Meta(ge=10, le=10_000_000)] = 10_000
    max_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024, le=10 * 1024**3)] = 16 * 1024 * 1024


class Intervals(_Section, frozen=True):
    """``[intervals]``: how often things happen (seconds)."""

    #: Report by exception: the full state is published at once on any change, on every
    #: (re)connect, and at least this often (a refresh of the host numbers, every 6 h; a disk filling up is news at once, see
    #: ``DISK_STEP`` in the service).
    #: 30 with ``heartbeat_s = 0`` is the old periodic full-state behaviour.
    state_s: Seconds = 21600.0
    #: A compact heartbeat (``beat``, ~60 bytes on the wire with TLS) when nothing else was
    #: published for this long; the collector calls a station stale after 3 of them missed.
    #: A little under ``mqtt.keepalive_s``, so its PUBACK does the keepalive's job and no
    #: PINGREQ/PINGRESP is sent. 0: no heartbeats (liveness is then ``state_s``).
    heartbeat_s: Annotated[float, msgspec.Meta(ge=0, le=86400)] = 55.0
    #: USB and host checks; on Linux udev hotplug events also trigger the USB check at once.
    poll_s: Seconds = 10.0
    #: Login-service probes (they cost the network, so less often).
    login_s: Seconds = 30.0
    #: A USB or host check running longer than this is reported failed (``timeout``).
    check_timeout_s: Seconds = 10.0


class DeviceRule(_Section, frozen=True):
    """``[[devices]]``: one expected USB device, matched by ids and optional classes."""

    device_class: Annotated[str, msgspec.Meta(pattern=CLASS_PATTERN)]
    vid: UsbId
    #: Empty: any product of the vendor.
    pids: tuple[UsbId, ...] = ()
    #: bDeviceClass to require (e.g. 6 = still image); unset: any.
    usb_class: UsbClass | None = None
    #: An interface's bInterfaceClass to require; unset: any.
    interface_class: UsbClass | None = None
    #: A label for people ("Canon EOS 1300D"); shown when the device is missing.
    name: Text = ""
    #: Linux: the device counts only with a kernel driver bound to one of its interfaces
    #: (usbhid for a signature pad, uvcvideo for a webcam); leave false for devices the
    #: enrollment software drives through libusb (no kernel driver). Windows always reports a
    #: device whose driver failed (a Device Manager problem code), whatever this says.
    needs_driver: bool = False


#: A probe kind's name (the kinds are registered in :mod:`pantau.agent.checks.probes`).
ProbeKind = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,15}\Z")]


class ProbeSettings(_Section, frozen=True):
    """``[[probes]]``: one login-service target (blackbox style)."""

    name: Annotated[str, msgspec.Meta(pattern=SEGMENT_PATTERN)]
    kind: ProbeKind
    #: ``host:port`` for tcp and tls, a URL for http and https.
    target: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    #: http(s): accepted status codes; empty: any 2xx or 3xx.
    expect_status: tuple[Annotated[int, msgspec.Meta(ge=100, le=599)], ...] = ()
    #: tls/https: CA bundle to verify against; empty: the system's trusted CAs.
    ca_file: PathText = ""
    #: tls: name to verify (SNI); empty: the target's host.
    server_name: Text = ""
    #: tls/https: report ``cert_expiring`` when the certificate expires within this many days.
    min_cert_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 0


class HostSettings(_Section, frozen=True):
    """``[host]``: host health."""

    #: Mount points (``/``, ``D:\\``) to report; empty: the system disk.
    disks: tuple[Annotated[str, msgspec.Meta(min_length=1, max_length=128)], ...] = ()


class AgentConfig(_Section, frozen=True):
    """The whole agent config file."""

    station: StationSettings
    mqtt: MqttSettings = MqttSettings()
    spool: SpoolSettings = SpoolSettings()
    intervals: Intervals = Intervals()
    devices: tuple[DeviceRule, ...] = ()
    probes: tuple[ProbeSettings, ...] = ()
    host: HostSettings = HostSettings()
    log: LogSettings = LogSettings()

    @property
    def device_classes(self) -> tuple[str, ...]:
        """Expected device classes in config order (each once)."""
        return tuple(dict.fromkeys(rule.device_class for rule in self.devices))

    @property
    def username(self) -> str:
        return self.mqtt.username or self.station.id

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"pantau-{self.station.id}"


# --------------------------------------------------------------------------- validation


def split_host_port(target: str) -> tuple[str, int]:
    """``"host:443"`` / ``"[::1]:443"`` -> (host, port); raises ``ValueError``."""
    host, sep, port_text = target.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError("expected host:port")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def parse_endpoint(text: str, default_port: int) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"``, ``"host"`` or ``"[v6]"`` -> (host, port); raises
    ``ValueError``."""
    if text != text.strip() or any(c.isspace() or c in "/@?#" for c in text):
        raise ValueError("expected host:port")
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1], default_port
    if ":" not in text:
        return text, default_port
    return split_host_port(text)


def _check_endpoints(m: MqttSettings, source: str) -> None:
    if not m.endpoints:
        return
    if m.host != DEFAULT_HOST:
        raise ConfigError(source, "mqtt.endpoints", "set mqtt.endpoints or mqtt.host, not both")
    seen: set[tuple[str, int]] = set()
    for i, text in enumerate(m.endpoints):
        try:
            endpoint = parse_endpoint(text, m.effective_port())
        except ValueError as exc:
            raise ConfigError(source, f"mqtt.endpoints[{i}]", f"{exc}, got {text!r}") from None
        if endpoint in seen:
            raise ConfigError(source, f"mqtt.endpoints[{i}]", f"duplicate endpoint {text!r}")
        seen.add(endpoint)


def check(cfg: AgentConfig, source: str) -> None:
    """Step ``check`` of the config pipeline: what types cannot say."""
    classes = cfg.device_classes
    if len(classes) > MAX_DEVICE_CLASSES:
        raise ConfigError(
            source,
            "devices",
            f"{len(classes)} device classes, at most {MAX_DEVICE_CLASSES} are allowed",
        )
    for i, rule in enumerate(cfg.devices):
        if len(set(rule.pids)) != len(rule.pids):
            raise ConfigError(source, f"devices[{i}].pids", "duplicate product id")
    from pantau.agent.checks.probes import mistakes  # the kinds import this module

    seen: set[str] = set()
    for i, probe in enumerate(cfg.probes):
        key = f"probes[{i}]"
        if probe.name in seen:
            raise ConfigError(source, f"{key}.name", f"duplicate probe name {probe.name!r}")
        seen.add(probe.name)
        if found := mistakes(probe):
            setting, message = found[0]
            raise ConfigError(source, f"{key}.{setting}", message)
    if cfg.mqtt.reconnect_min_s > cfg.mqtt.reconnect_max_s:
        raise ConfigError(source, "mqtt.reconnect_min_s", "must not exceed mqtt.reconnect_max_s")
    beat = cfg.intervals.heartbeat_s
    if 0 < beat < 1:
        raise ConfigError(source, "intervals.heartbeat_s", f"must be 0 (off) or >= 1, got {beat:g}")
    _check_endpoints(cfg.mqtt, source)


def resolve_paths(cfg: AgentConfig, base_dir: Path) -> AgentConfig:
    """Step ``resolve_paths``: every file setting through :func:`~pantau.contract.config.expand_path`."""
    rep = msgspec.structs.replace
    _resolve = base.expand_path
    return rep(
        cfg,
        mqtt=rep(
            cfg.mqtt,
            ca_file=_resolve(cfg.mqtt.ca_file, base_dir),
            password_file=_resolve(cfg.mqtt.password_file, base_dir),
        ),
        spool=rep(cfg.spool, path=_resolve(cfg.spool.path, base_dir)),
        probes=tuple(rep(p, ca_file=_resolve(p.ca_file, base_dir)) for p in cfg.probes),
    )


def convert_config(
    data: dict[str, Any],
    source: str,
    base_dir: Path | None = None,
    *,
    check_files: bool = False,
) -> AgentConfig:
    """Validate parsed TOML (a dict); relative paths resolve against ``base_dir`` if given.

    ``check_files=True``: also load the files the config names (:func:`file_errors`); off by
    default because a config built as data is often meant for another machine (provisioning).
    """
    return PIPELINE.from_data(data, source, base_dir, check_files=check_files)


def load_config(path: str | os.PathLike[str], *, check_files: bool = True) -> AgentConfig:
    """Read and validate an agent config file, or raise :class:`ConfigError` (one line).

    The CA bundles it names are loaded and the password file read (:func:`file_errors`), so a
    missing or broken file is a config error here, not a traceback when the service connects.
    ``check_files=False`` skips that (a config for another machine; ``pantau-agent check``,
    which reports such files as problems instead).
    """
    return PIPELINE.load(path, check_files=check_files)


def _ca_error(path: str, source: str, key: str) -> ConfigError | None:
    import ssl  # here, not at import: a config without TLS needs no ssl

    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError:
        return ConfigError(source, key, f"{path} is not a PEM CA certificate bundle")
    except OSError as exc:
        return ConfigError(source, key, f"cannot read {path}: {exc.strerror or exc}")
    except ValueError:  # a NUL byte in the path
        return ConfigError(source, key, f"{path!r} is not a valid file name")
    return None


def uses_systemd_credential(path: str) -> bool:
    """True if ``path`` still names ``$CREDENTIALS_DIRECTORY``: only systemd's unit sets it."""
    return "$CREDENTIALS_DIRECTORY" in path or "${CREDENTIALS_DIRECTORY}" in path


def file_errors(cfg: AgentConfig, source: str) -> list[ConfigError]:
    """Step ``file_errors``: every file the config names that cannot be used, one error each.

    CA bundles (``mqtt.ca_file`` with TLS on, ``probes[i].ca_file`` of tls/https probes) are
    loaded as the connection will load them; the password file is read (not kept).
    """
    out: list[ConfigError] = []
    m = cfg.mqtt
    if m.tls and m.ca_file and (err := _ca_error(m.ca_file, source, "mqtt.ca_file")):
        out.append(err)
    if m.password_file and uses_systemd_credential(m.password_file):
        out.append(
            ConfigError(
                source,
                "mqtt.password_file",
                "$CREDENTIALS_DIRECTORY is not set: this config is for the systemd unit, "
                "which sets it (LoadCredential=mqtt-password:...)",
            )
        )
    else:
        try:
            read_password(cfg, source)
        except ConfigError as exc:
            out.append(exc)
    out += _probe_file_errors(cfg, source)
    return out


def _probe_file_errors(cfg: AgentConfig, source: str) -> list[ConfigError]:
    """The files each probe's kind loads (CA bundles)."""
    if not cfg.probes:
        return []
    from pantau.agent.checks.probes import kinds  # the kinds import this module

    out: list[ConfigError] = []
    registry = kinds()
    for i, probe in enumerate(cfg.probes):
        kind = registry.get(probe.kind)
        for setting in kind.files if kind is not None else ():
            path = getattr(probe, setting)
            if path and (err := _ca_error(path, source, f"probes[{i}].{setting}")):
                out.append(err)
    return out


#: read -> convert -> check -> resolve_paths -> file_errors (:class:`pantau.contract.config.Pipeline`).
PIPELINE: Final = base.Pipeline(AgentConfig, check, resolve_paths, file_errors)


def warnings(cfg: AgentConfig) -> list[str]:
    """Allowed but unwise settings, one sentence each (never containing a secret)."""
    out: list[str] = []
    pw = cfg.mqtt.password_file
    if pw and base.readable_by_others(pw):
        out.append(f"mqtt.password_file {pw} is readable by other users: run chmod 600 {pw}")
    if pw and sys.platform == "win32" and os.path.exists(pw):
        if acl := windows.password_acl_warning(pw, windows.Win32Api()):
            out.append(acl)
    if pw and not cfg.mqtt.tls:
        out.append("mqtt.tls is false: the broker password travels unencrypted")
    if not cfg.devices:
        out.append("no [[devices]] configured: the USB check expects nothing")
    iv = cfg.intervals
    if iv.heartbeat_s > cfg.mqtt.keepalive_s:
        out.append(
            f"intervals.heartbeat_s {iv.heartbeat_s:g} > mqtt.keepalive_s {cfg.mqtt.keepalive_s}:"
            " keepalive pings are sent between heartbeats (more bytes on the line)"
        )
    if iv.heartbeat_s == 0 and iv.state_s > 300:
        out.append(
            f"intervals.heartbeat_s is 0 and state_s is {iv.state_s:g}: the collector calls a"
            f" healthy station stale only after {3 * iv.state_s:g} s of silence"
        )
    return out


def read_password(cfg: AgentConfig, source: str = "config") -> str | None:
    """The broker password from ``mqtt.password_file`` (None if none is configured)."""
    if not cfg.mqtt.password_file:
        return None
    return base.read_secret(cfg.mqtt.password_file, source, "mqtt.password_file")


def default_spool_path(cfg: AgentConfig, environ: dict[str, str] | None = None) -> str:
    """Where the spool lives when ``spool.path`` is empty (see :class:`SpoolSettings`)."""
    if cfg.spool.path:
        return cfg.spool.path
    env = os.environ if environ is None else environ
    if state_dir := env.get("STATE_DIRECTORY"):
        return os.path.join(state_dir.split(":")[0], "spool.sqlite")
    if sys.platform == "win32":
        return windows.default_spool_path(env)
    return "/var/lib/pantau-agent/spool.sqlite"


def system_disks(cfg: AgentConfig) -> tuple[str, ...]:
    """Configured disks, or the system disk (``/`` or ``%SystemDrive%\\``)."""
    if cfg.host.disks:
        return cfg.host.disks
    if sys.platform == "win32":
        return windows.system_disks(os.environ)
    return ("/",)


# --------------------------------------------------------------------------- rendering


def _toml_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"0x{value:04x}" if key in ("vid", "pids") else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if c >= " " else f"\\u{ord(c):04x}" for c in escaped)
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(key, v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")


def _table(header: str, data: dict[str, Any]) -> list[str]:
    return [header, *(f"{k} = {_toml_value(k, v)}" for k, v in data.items()), ""]


def render_toml(cfg: AgentConfig, comment: str = "") -> str:
    """The config as TOML, leaving out settings that equal their default."""
    data: dict[str, Any] = msgspec.to_builtins(cfg)
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    if lines:
        lines.append("")
    for section in ("station", "mqtt", "spool", "intervals", "host", "log"):
        if data.get(section):
            lines += _table(f"[{section}]", data[section])
    for section in ("devices", "probes"):
        for item in data.get(section, ()):
            lines += _table(f"[[{section}]]", item)
    return "\n".join(lines)
