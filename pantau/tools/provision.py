"""``pantau provision``: broker credentials, ACL and agent configs from the station inventory.

::

    pantau provision deploy/inventory/klaten.csv --out provisioned \\
        --broker-host mqtt.example.go.id --ca-cert deploy/certs/ca.crt

writes (directories 0700, files 0600)::

    provisioned/
      broker/passwd                 mosquitto password_file (PBKDF2-SHA512 hashes, no plaintext)
      broker/acl                    mosquitto acl_file
      {collector}/password          each collector identity's broker password (default user and
                                    directory ``collector``; ``--collector-user`` repeated: one
                                    each, e.g. ``collector-west/``, ``collector-east/``)
      stations/{station}/agent.toml ready agent config (points at the files next to it)
      stations/{station}/agent-systemd.toml   the same for deploy/systemd/pantau-agent.service
                                    (password from the unit's credential)
      stations/{station}/password   the station's broker password
      stations/{station}/ca.crt     the broker CA (when --ca-cert is given)

Each station's directory is what gets copied onto that station's PC. The password files are the
source of truth for secrets: re-running keeps every existing password (and its hash line, so the
password file does not churn), adds the stations that are new in the inventory, and revokes the
ones no longer in it (dropped from ``passwd`` and ``acl``). ``--rotate STATION`` (repeatable, also
accepts a collector user) and ``--rotate-all`` issue new passwords. Secrets are never printed.

The ACL lets a station write only under ``pantau/v1/{provinsi}/{kabkota}/{station}/#`` (its own
region and id, pinned per user rather than by ``%u`` pattern so a station cannot publish under its
id in another region), and each collector identity read ``pantau/v1/#``.

Identities and client ids: the shipped broker configs bind the MQTT client id to the user name
(mosquitto ``use_username_as_clientid``, EMQX ``mqtt.use_username_as_clientid``), so one set of
credentials can never take over another client's session. Every process that connects therefore
needs its own user: one per station (its station id) and one per collector replica (``collector``,
or ``collector-west``, ``collector-east``, ... with ``--collector-user`` repeated); a collector's
``mqtt.client_id`` is set equal to its user name.

Password hashes use mosquitto's own format, ``$7$iterations$base64(salt)$base64(hash)`` with
PBKDF2-HMAC-SHA512 and a 12-byte salt, computed with :mod:`hashlib`, so ``mosquitto_passwd`` is not
needed. The default of 101 iterations is mosquitto's own default; the passwords are 192-bit random
tokens, not human passwords, so key stretching adds nothing but CPU on a reconnect storm.
"""

from __future__ import annotations

import argparse
import copy
import os
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from pantau.contract import credentials, files
from pantau.contract.config import ConfigError, read_toml
from pantau.contract.errors import PantauError
from pantau.contract.inventory import InventoryEntry, InventoryError, load_inventory
from pantau.contract.wire import TOPIC_PREFIX, valid_segment
from pantau.tools import _args

DEFAULT_ITERATIONS: Final = credentials.MOSQUITTO_ITERATIONS
SALT_BYTES: Final = credentials.MOSQUITTO_SALT_BYTES
DEFAULT_COLLECTOR_USER: Final = "collector"
#: Output directories a collector user name cannot take (its password goes to ``{out}/{user}/``).
RESERVED_NAMES: Final = frozenset({"broker", "stations"})
DEFAULT_BROKER_PORT: Final = 8883

AGENT_CONFIG: Final = "agent.toml"
#: The same config for the hardened systemd unit (deploy/systemd/pantau-agent.service), which runs
#: the agent as a dynamic user and hands it the root-only password file as a credential
#: (``LoadCredential=mqtt-password:/etc/pantau/password``). Install it as /etc/pantau/agent.toml.
SYSTEMD_AGENT_CONFIG: Final = "agent-systemd.toml"
SYSTEMD_PASSWORD_FILE: Final = "${CREDENTIALS_DIRECTORY}/mqtt-password"  # noqa: S105 (a path)
PASSWORD_FILE: Final = "password"  # noqa: S105 (a file name, not a secret)
CA_FILE: Final = "ca.crt"


class ProvisionError(PantauError):
    """Bad arguments or an unusable output directory (one line, exit 2)."""


# --------------------------------------------------------------------------- pure: hashing


#: The broker's password hashes: mosquitto's ``$7$`` format (:mod:`pantau.contract.credentials`).
hash_password: Final = credentials.mosquitto_hash
verify_password: Final = credentials.mosquitto_verify


def parse_passwd(text: str) -> dict[str, str]:
    """``user:hash`` lines of a mosquitto password file -> {user: hash} (comments skipped)."""
    users: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        user, hashed = line.split(":", 1)
        users[user] = hashed
    return users


def render_passwd(hashes: Mapping[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in hashes.items())


# --------------------------------------------------------------------------- pure: ACL


def station_topic_root(entry: InventoryEntry) -> str:
    return f"{TOPIC_PREFIX}/{entry.provinsi}/{entry.kabkota}/{entry.station}"


def render_acl(entries: Iterable[InventoryEntry], collector_users: str | Sequence[str]) -> str:
    """Mosquitto ACL: the collectors read everything, each station writes only its own subtree."""
    if isinstance(collector_users, str):
        collector_users = (collector_users,)
    lines = [
        "# pantau broker ACL, generated by `pantau provision`: edit the inventory, not this file.",
        "# Anything not granted here is denied (mosquitto denies by default once an ACL is set).",
        "",
        "# collectors: each identity reads the whole fleet (a shard may be given a narrower",
        "# filter by hand)",
    ]
    for user in collector_users:
        lines += [f"user {user}", f"topic read {TOPIC_PREFIX}/#"]
    lines += [
        "",
        "# stations: each writes only under its own pantau/v1/{provinsi}/{kabkota}/{station}/",
    ]
    for entry in entries:
        lines += [f"user {entry.station}", f"topic write {station_topic_root(entry)}/#"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- agent config


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Command-line settings every generated agent config shares (None: keep the template's)."""

    broker_host: str | None = None
    broker_port: int | None = None
    tls: bool | None = None
    with_ca: bool = False


#: Keys of ``[mqtt]`` that are per station: provisioning sets them, a template must not.
PER_STATION_MQTT_KEYS: Final = ("username", "password_file", "client_id")


def load_template(path: Path | None) -> dict[str, Any]:
    """Read an agent config template (an agent config without ``[station]``), validated.

    Raises :class:`pantau.contract.config.ConfigError` naming the template file and the dotted key.
    """
    if path is None:
        return {}
    source = os.fspath(path)
    data = read_toml(path)
    if "station" in data:
        raise ConfigError(source, "station", "set per station from the inventory; remove it")
    mqtt = data.get("mqtt", {})
    for key in PER_STATION_MQTT_KEYS:
        if isinstance(mqtt, dict) and key in mqtt:
            raise ConfigError(source, f"mqtt.{key}", "set per station by provisioning; remove it")
    from pantau.agent.config import convert_config

    probe = dict(data, station={"id": "template", "provinsi": "0", "kabkota": "0"})
    convert_config(probe, source)
    return data


def agent_config_data(
    entry: InventoryEntry,
    template: Mapping[str, Any],
    settings: AgentSettings,
    catalog_rules: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[dict[str, Any], list[str]]:
    """The agent config of one station as TOML data, and its device classes without a USB rule.

    USB rules: the template's ``[[devices]]`` of the station's classes; for a class the template
    does not cover, the catalog's suggestion. Rules of classes the station lacks are left out.
    """
    data: dict[str, Any] = copy.deepcopy(dict(template))
    data["station"] = {
        "id": entry.station,
        "provinsi": entry.provinsi,
        "kabkota": entry.kabkota,
        "kecamatan": entry.kecamatan,
        # Classes without a rule are then reported as "not configured", not silently ignored.
        "expects": list(entry.device_classes),
    }
    mqtt: dict[str, Any] = data.setdefault("mqtt", {})
    if settings.broker_host is not None:
        mqtt["host"] = settings.broker_host
    if settings.broker_port is not None:
        mqtt["port"] = settings.broker_port
    if settings.tls is not None:
        mqtt["tls"] = settings.tls
    mqtt["username"] = entry.station
    mqtt["password_file"] = PASSWORD_FILE
    if settings.with_ca:
        mqtt["ca_file"] = CA_FILE
    wanted = set(entry.device_classes)
    rules = [r for r in data.get("devices", []) if r.get("device_class") in wanted]
    covered = {r["device_class"] for r in rules}
    missing: list[str] = []
    for device_class in entry.device_classes:
        if device_class in covered:
            continue
        suggested = catalog_rules.get(device_class, ())
        if suggested:
            rules += [dict(r) for r in suggested]
        else:
            missing.append(device_class)
    order = {c: i for i, c in enumerate(entry.device_classes)}
    data["devices"] = sorted(rules, key=lambda r: order[r["device_class"]])
    return data, missing


def catalog_rules(device_classes: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The agent catalog's suggested rule per device class, as TOML data."""
    from pantau.agent.catalog import suggest_rules

    out: dict[str, list[dict[str, Any]]] = {}
    for rule in suggest_rules(sorted(set(device_classes))):
        out.setdefault(rule.device_class, []).append(msgspec.to_builtins(rule))
    return out


def render_agent_config(data: dict[str, Any], source: str, header: str) -> str:
    """Validate with the agent's own loader rules and render as TOML."""
    from pantau.agent.config import convert_config, render_toml

    return render_toml(convert_config(data, source), comment=header)


# --------------------------------------------------------------------------- plan (pure)


@dataclass
class Plan:
    """What a run will do, decided from the inventory and the existing secrets."""

    keep: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    rotate: list[str] = field(default_factory=list)
    revoke: list[str] = field(default_factory=list)
    #: device class -> stations whose config has no USB rule for it (neither template nor catalog).
    unmatched: dict[str, list[str]] = field(default_factory=dict)


def plan(
    users: Sequence[str],
    existing_passwords: Mapping[str, str],
    previous_users: Iterable[str],
    rotate: Iterable[str],
) -> Plan:
    """Classify each broker user (stations + collector): keep, new or rotate; and who is revoked."""
    rotate_set = set(rotate)
    result = Plan()
    for user in users:
        if user not in existing_passwords:
            result.new.append(user)
        elif user in rotate_set:
            result.rotate.append(user)
        else:
            result.keep.append(user)
    wanted = set(users)
    result.revoke = sorted(u for u in previous_users if u not in wanted)
    return result


# --------------------------------------------------------------------------- I/O


def _write_private(path: Path, data: str | bytes) -> None:
    """Atomically write ``path`` with mode 0600 (the temp file is 0600 from its creation)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _read_password(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return text or None


@dataclass(frozen=True, slots=True)
class Options:
    inventory: Path
    out: Path
    settings: AgentSettings
    #: One broker identity per collector replica (client id == user name).
    collector_users: tuple[str, ...] = (DEFAULT_COLLECTOR_USER,)
    rotate: tuple[str, ...] = ()
    rotate_all: bool = False
    ca_cert: Path | None = None
    template: Path | None = None
    iterations: int = DEFAULT_ITERATIONS


def _check_users(options: Options, stations: list[str]) -> tuple[list[str], list[str]]:
    """(collector users, every user) after checking names and ``--rotate``."""
    collectors = list(dict.fromkeys(options.collector_users))
    if not collectors:
        raise ProvisionError("at least one collector user is needed")
    for user in collectors:
        if not valid_segment(user):
            raise ProvisionError(f"collector user {user!r} is not a valid name")
        if user in RESERVED_NAMES:
            raise ProvisionError(f"collector user {user!r} is reserved (an output directory)")
        if user in stations:
            raise ProvisionError(
                f"collector user {user!r} is also a station id in {options.inventory}"
            )
    users = [*collectors, *stations]
    unknown = sorted(set(options.rotate) - set(users))
    if unknown:
        raise ProvisionError(
            f"--rotate {unknown[0]!r}: not a station in {options.inventory} nor a collector user"
        )
    return collectors, users


def _read_ca(path: Path | None) -> bytes | None:
    """The ``--ca-cert`` file's bytes (None: not given)."""
    if path is None:
        return None
    try:
        ca_bytes = path.read_bytes()
    except files.READ_ERRORS as exc:
        raise ProvisionError(f"--ca-cert {path}: {files.problem(exc)}") from None
    if b"-----BEGIN CERTIFICATE-----" not in ca_bytes:
        raise ProvisionError(f"--ca-cert {path}: not a PEM certificate")
    return ca_bytes


@dataclass(frozen=True, slots=True)
class _Configs:
    """Per station: its agent config, the same for the systemd unit; classes without a rule."""

    plain: dict[str, str]
    systemd: dict[str, str]
    unmatched: dict[str, list[str]]


def _agent_configs(entries: Sequence[InventoryEntry], options: Options, has_ca: bool) -> _Configs:
    """Every station's agent config, built and validated before anything is written."""
    template = load_template(options.template)
    if options.settings.broker_host is None and not template.get("mqtt", {}).get("host"):
        raise ProvisionError("no broker host: give --broker-host or set mqtt.host in --template")
    settings = options.settings
    if has_ca:
        settings = AgentSettings(settings.broker_host, settings.broker_port, settings.tls, True)
    suggestions = catalog_rules(c for e in entries for c in e.device_classes)
    source = os.fspath(options.template or options.inventory)
    out = _Configs({}, {}, {})
    for entry in entries:
        data, missing = agent_config_data(entry, template, settings, suggestions)
        for device_class in missing:
            out.unmatched.setdefault(device_class, []).append(entry.station)
        title = (
            f"pantau agent config for {entry.station} ({entry.kecamatan}), generated by "
            "`pantau provision`.\nRelative paths are relative to this file.\n"
        )
        header = title + f"The broker password is in the file {PASSWORD_FILE!r} next to it."
        out.plain[entry.station] = render_agent_config(data, source, header)
        data["mqtt"]["password_file"] = SYSTEMD_PASSWORD_FILE
        header = title + (
            "For deploy/systemd/pantau-agent.service: install as /etc/pantau/agent.toml; the unit\n"
            "passes /etc/pantau/password (root, 0600) to the agent as the credential mqtt-password."
        )
        out.systemd[entry.station] = render_agent_config(data, source, header)
    return out


def _hashes(
    users: Sequence[str],
    decided: Plan,
    passwords: Mapping[str, str],
    old_hashes: Mapping[str, str],
    iterations: int,
) -> dict[str, str]:
    """The broker's hash per user: the old line where the password is kept, else a new one."""
    hashes: dict[str, str] = {}
    for user in users:
        old = old_hashes.get(user)
        if user in decided.keep and old is not None and verify_password(old, passwords[user]):
            hashes[user] = old
        else:
            salt = secrets.token_bytes(SALT_BYTES)
            hashes[user] = hash_password(passwords[user], salt=salt, iterations=iterations)
    return hashes


def provision(options: Options) -> Plan:
    """Do the whole run; raises InventoryError / ProvisionError / OSError."""
    entries = load_inventory(options.inventory)
    stations = [e.station for e in entries]
    collectors, users = _check_users(options, stations)
    ca_bytes = _read_ca(options.ca_cert)
    out = options.out
    if out.exists() and not out.is_dir():
        raise ProvisionError(f"--out {out}: exists and is not a directory")
    configs = _agent_configs(entries, options, ca_bytes is not None)

    password_paths = {user: out / user / PASSWORD_FILE for user in collectors}
    password_paths |= {s: out / "stations" / s / PASSWORD_FILE for s in stations}
    existing = {u: pw for u, p in password_paths.items() if (pw := _read_password(p)) is not None}
    passwd_path = out / "broker" / "passwd"
    try:
        old_hashes = parse_passwd(passwd_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        old_hashes = {}
    rotate = users if options.rotate_all else options.rotate
    decided = plan(users, existing, old_hashes, rotate)
    decided.unmatched = configs.unmatched
    passwords = dict(existing)
    for user in decided.new + decided.rotate:
        passwords[user] = credentials.new_password()
    hashes = _hashes(users, decided, passwords, old_hashes, options.iterations)

    for sub in (out, out / "broker", out / "stations", *(out / user for user in collectors)):
        _private_dir(sub)
    # Secrets first, then the broker files that accept them: a crash in between leaves stations
    # with passwords the broker does not know yet (re-run fixes it), never the reverse.
    for user in collectors:
        _write_private(password_paths[user], passwords[user] + "\n")
    for entry in entries:
        station_dir = out / "stations" / entry.station
        _private_dir(station_dir)
        _write_private(password_paths[entry.station], passwords[entry.station] + "\n")
        _write_private(station_dir / AGENT_CONFIG, configs.plain[entry.station])
        _write_private(station_dir / SYSTEMD_AGENT_CONFIG, configs.systemd[entry.station])
        if ca_bytes is not None:
            _write_private(station_dir / CA_FILE, ca_bytes)
    _write_private(passwd_path, render_passwd(hashes))
    _write_private(out / "broker" / "acl", render_acl(entries, collectors))
    return decided


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantau provision",
        description=(
            "From an inventory CSV, write per-station broker credentials, the mosquitto password "
            "file and ACL, and one agent config per station. Re-running keeps existing secrets."
        ),
    )
    parser.add_argument("inventory", type=Path, help="inventory CSV (see docs/deploy.md)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created 0700)")
    parser.add_argument(
        "--broker-host",
        help="broker host name the agents connect to (the name in its TLS certificate)",
    )
    parser.add_argument(
        "--broker-port", type=int, help="broker port (default: the template's, else 8883)"
    )
    parser.add_argument(
        "--template",
        type=Path,
        help="agent config without [station] whose settings, [[devices]] rules and [[probes]] "
        "every station gets (devices filtered to the station's inventory classes)",
    )
    parser.add_argument(
        "--no-tls",
        action="store_true",
        help="plain MQTT (only for a lab broker; never in the field)",
    )
    parser.add_argument(
        "--ca-cert", type=Path, help="broker CA certificate (PEM) to ship with every agent config"
    )
    parser.add_argument(
        "--collector-user",
        action="append",
        default=[],
        metavar="NAME",
        help=f"a collector identity (default {DEFAULT_COLLECTOR_USER!r}); repeat for several "
        "collector replicas or shards: each gets its own password in OUT/NAME/password (the broker "
        "binds client ids to user names, so replicas cannot share one)",
    )
    parser.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="USER",
        help="issue a new password for this station (or a collector user); repeatable",
    )
    parser.add_argument("--rotate-all", action="store_true", help="new passwords for everyone")
    parser.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"PBKDF2 iterations for new hashes (default {DEFAULT_ITERATIONS}, as mosquitto)",
    )
    return parser


def _tls_without_ca(args: argparse.Namespace) -> bool:
    """TLS is on (the default) and nothing names the CA that signs the broker's certificate."""
    if args.no_tls or args.ca_cert is not None:
        return False
    mqtt = load_template(args.template).get("mqtt", {}) if args.template else {}
    return bool(mqtt.get("tls", True)) and not mqtt.get("ca_file")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.broker_port is not None and not 1 <= args.broker_port <= 65535:
        print(f"pantau provision: --broker-port {args.broker_port}: not a port", file=sys.stderr)
        return 2
    if args.broker_host is not None and not _args.valid_host(args.broker_host):
        print(
            f"pantau provision: --broker-host {args.broker_host!r}: not a host name or IP address",
            file=sys.stderr,
        )
        return 2
    if not 1 <= args.iterations <= 10_000_000:
        print("pantau provision: --iterations must be between 1 and 10000000", file=sys.stderr)
        return 2
    options = Options(
        inventory=args.inventory,
        out=args.out,
        settings=AgentSettings(args.broker_host, args.broker_port, False if args.no_tls else None),
        collector_users=tuple(args.collector_user or [DEFAULT_COLLECTOR_USER]),
        rotate=tuple(args.rotate),
        rotate_all=args.rotate_all,
        ca_cert=args.ca_cert,
        template=args.template,
        iterations=args.iterations,
    )
    try:
        result = provision(options)
    except (InventoryError, ProvisionError, ConfigError) as exc:
        print(f"pantau provision: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"pantau provision: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    if _tls_without_ca(args):
        print(
            "warning: TLS without --ca-cert: the agents will trust only the system's CAs and "
            "refuse a broker whose certificate comes from your own CA (deploy/scripts/"
            "make-certs.sh). Re-run with --ca-cert deploy/certs/ca.crt: it is copied into every "
            "station's folder and named in its agent.toml.",
            file=sys.stderr,
        )
    out = args.out
    print(
        f"provisioned {len(result.keep) + len(result.new) + len(result.rotate)} broker users in "
        f"{out}: {len(result.new)} new, {len(result.rotate)} rotated, {len(result.keep)} unchanged"
    )
    if result.rotate:
        print("rotated (install the new password files): " + ", ".join(result.rotate))
    if result.revoke:
        print(
            f"revoked (no longer in the inventory, removed from passwd and acl; delete their "
            f"directories under {out / 'stations'}): " + ", ".join(result.revoke)
        )
    for device_class, stations in sorted(result.unmatched.items()):
        print(
            f"warning: no USB rule for device class {device_class!r} (the agent catalog has none) "
            f"in {len(stations)} station configs: those stations report it as 'not configured' "
            "until a [[devices]] rule for it is added to a --template file (find the ids with "
            "`pantau-agent usb` on a station) and provisioning re-run, or to the station's "
            "agent.toml",
            file=sys.stderr,
        )
    print(f"broker: {out / 'broker' / 'passwd'} and {out / 'broker' / 'acl'}")
    print("        reload the broker (restart the compose service) to apply")
    print(f"agents: copy {out / 'stations' / '<station>'}/ to each station (see docs/deploy.md)")
    return 0


__all__ = [
    "AgentSettings",
    "Options",
    "Plan",
    "ProvisionError",
    "hash_password",
    "main",
    "parse_passwd",
    "plan",
    "provision",
    "render_acl",
    "render_agent_config",
    "verify_password",
]
