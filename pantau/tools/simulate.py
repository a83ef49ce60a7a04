"""``pantau simulate``: publish a simulated fleet with fault scenarios, for load tests and benches.

One MQTT connection publishes for N stations exactly what their agents would (wire contract v1:
birth, retained state every interval, events on change), so a single process can stand in for
up to 100,000 stations: messages go out at QoS 1 with at most :data:`WINDOW` unacknowledged
(paho's 16-bit message ids would collide beyond 65,535), built station by station as they are
sent. Faults start at random on a schedule given by per-interval probabilities:

- ``unplug``: one device class disappears for a few intervals, then comes back;
- ``login``: the login-service probe fails for a few intervals;
- ``lightning``: every peripheral disappears and the PC reboots (boot time changes); permanent;
- ``silent``: the station stops reporting (no state, no will): the collector must notice by
  staleness alone.

The fleet model is pure (:class:`FleetModel`, seeded, clock passed in); :func:`main` is the I/O.
For the Klaten story with the real agent code, use ``pantau demo``.
"""

from __future__ import annotations

import argparse
import random
import signal
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pantau import __version__
from pantau.contract import klaten, wire
from pantau.contract.config import ConfigError, read_secret
from pantau.contract.errors import PantauError
from pantau.contract.inventory import InventoryEntry, InventoryError, load_inventory
from pantau.contract.vocabulary import PeripheralReason, ProbeReason
from pantau.tools import _args

FAULT_KINDS: Final = ("unplug", "login", "lightning", "silent")
#: A plausible device per class (vid, pid, manufacturer, product); simulation only.
SIM_DEVICES: Final[dict[str, tuple[int, int, str, str]]] = {
    "fingerprint": (0x079B, 0x0026, "Cross Match", "Guardian"),
    "iris": (0x0BD8, 0x0001, "IriTech", "IriShield"),
    "camera": (0x04A9, 0x3218, "Canon", "EOS 1100D"),
    "signature": (0x06A8, 0x0057, "Topaz Systems", "SignatureGem"),
}
Publish = tuple[str, bytes, bool]  # topic, payload, retain


@dataclass
class SimStation:
    entry: InventoryEntry
    session: str
    boot_ts: float
    seq: int = 0
    missing: dict[str, float] = field(default_factory=dict)  # class -> until (inf: permanent)
    login_down_until: float = 0.0
    silent: bool = False

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class FleetModel:
    """A seeded, clock-driven fleet; :meth:`tick` returns what to publish at ``now``."""

    def __init__(
        self,
        entries: Sequence[InventoryEntry],
        *,
        interval_s: float,
        rates: dict[str, float],
        seed: int,
        now: float,
    ) -> None:
        unknown = set(rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        self.interval_s = interval_s
        self.rates = rates
        self.rng = random.Random(seed)  # noqa: S311 - reproducible simulation, not crypto
        self.stations = [
            SimStation(e, uuid.UUID(int=self.rng.getrandbits(128)).hex[:16], max(0.0, now - 3600))
            for e in entries
        ]

    def births(self, now: float) -> list[Publish]:
        return [self._status(s, now) for s in self.stations]

    def _header(self, s: SimStation, now: float) -> wire.HeaderFields:
        return wire.header(s.entry.station, f"{__version__}-sim", s.session, s.next_seq(), now)

    def _topic(self, s: SimStation, kind: wire.Kind) -> str:
        return wire.topic(s.entry.provinsi, s.entry.kabkota, s.entry.station, kind)

    def _status(self, s: SimStation, now: float) -> Publish:
        msg = wire.Status(**self._header(s, now), status="online")
        return self._topic(s, "status"), wire.encode(msg), True

    def _event(self, s: SimStation, now: float, kind: wire.EventKind, subject: str) -> Publish:
        msg = wire.Event(**self._header(s, now), kind=kind, subject=subject)
        return self._topic(s, "event"), wire.encode(msg), False

    def _maybe_fault(self, s: SimStation, now: float) -> list[Publish]:
        out: list[Publish] = []
        rng = self.rng
        classes = s.entry.device_classes
        if classes and rng.random() < self.rates.get("unplug", 0.0):
            cls = rng.choice(classes)
            if cls not in s.missing:
                s.missing[cls] = now + self.interval_s * rng.randint(1, 5)
                out.append(self._event(s, now, wire.EventKind.PERIPHERAL_REMOVED, cls))
        if rng.random() < self.rates.get("login", 0.0) and s.login_down_until <= now:
            s.login_down_until = now + self.interval_s * rng.randint(1, 5)
            out.append(self._event(s, now, wire.EventKind.PROBE_DOWN, "login"))
        if rng.random() < self.rates.get("lightning", 0.0):
            for cls in classes:
                if s.missing.get(cls) != float("inf"):
                    s.missing[cls] = float("inf")
                    out.append(self._event(s, now, wire.EventKind.PERIPHERAL_REMOVED, cls))
            s.boot_ts = now
            out.append(self._event(s, now, wire.EventKind.REBOOT, ""))
        if rng.random() < self.rates.get("silent", 0.0):
            s.silent = True
        return out

    def _recover(self, s: SimStation, now: float) -> list[Publish]:
        out: list[Publish] = []
        for cls, until in list(s.missing.items()):
            if until <= now:
                del s.missing[cls]
                out.append(self._event(s, now, wire.EventKind.PERIPHERAL_ADDED, cls))
        if s.login_down_until and s.login_down_until <= now:
            s.login_down_until = 0.0
            out.append(self._event(s, now, wire.EventKind.PROBE_UP, "login"))
        return out

    def state(self, s: SimStation, now: float) -> wire.State:
        peripherals = []
        for cls in s.entry.device_classes:
            if cls in s.missing:
                peripherals.append(wire.Peripheral(cls, False, 1, 0, (), PeripheralReason.MISSING))
                continue
            vid, pid, manufacturer, product = SIM_DEVICES.get(cls, (0xFFFF, 0x0001, "", cls))
            device = wire.Device(vid, pid, 1, "1-2", manufacturer, product)
            peripherals.append(wire.Peripheral(cls, True, 1, 1, (device,)))
        login_up = s.login_down_until <= now
        probe = wire.Probe(
            "login",
            "https",
            login_up,
            0.03 if login_up else 5.0,
            ProbeReason.OK if login_up else ProbeReason.TIMEOUT,
        )
        host = wire.Host(
            cpu_ratio=round(self.rng.uniform(0.02, 0.4), 3),
            mem_available_bytes=self.rng.randint(1, 6) * 2**30,
            mem_total_bytes=8 * 2**30,
            boot_ts=s.boot_ts,
            agent_start_ts=s.boot_ts + 60,
            disks=(wire.Disk("/", 50 * 2**30, 256 * 2**30),),
        )
        return wire.State(
            **self._header(s, now),
            os="simulated",
            kecamatan=s.entry.kecamatan,
            interval_s=self.interval_s,
            peripherals=tuple(peripherals),
            probes=(probe,),
            host=host,
            checks=(wire.CheckRun("usb", True, 0.0004), wire.CheckRun("host", True, 0.0001)),
        )

    def tick(self, now: float) -> list[Publish]:
        """One interval: maybe start or end faults, then every non-silent station's state."""
        return list(self.ticking(now))

    def ticking(self, now: float) -> Iterator[Publish]:
        """:meth:`tick` as it is built, station by station (a large fleet is never held whole)."""
        for s in self.stations:
            if s.silent:
                continue
            yield from self._recover(s, now)
            yield from self._maybe_fault(s, now)
            if s.silent:
                continue
            yield self._topic(s, "state"), wire.encode(self.state(s, now)), True


def synthetic_fleet(count: int, provinsi: str = klaten.PROVINSI) -> list[InventoryEntry]:
    """``count`` stations spread over kabupaten of 25 kecamatan x 2 stations each."""
    entries = []
    for i in range(count):
        kab = f"{provinsi}{(i // 50) + 1:02d}"
        kec = (i // 2) % 25 + 1
        entries.append(
            InventoryEntry(
                f"{kab}-kec{kec:02d}-{i % 2 + 1:02d}-{i:05d}",
                provinsi,
                kab,
                f"Kecamatan {kab}.{kec:02d}",
                klaten.DEVICE_CLASSES,
            )
        )
    return entries


def parse_rates(text: str) -> dict[str, float]:
    """``unplug=0.01,login=0.005`` -> ``{'unplug': 0.01, 'login': 0.005}``."""
    rates: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name not in FAULT_KINDS:
            raise ValueError(f"--faults: expected KIND=PROBABILITY with KIND in {FAULT_KINDS}")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"--faults: {value!r} is not a number") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"--faults: {name}={value} is not a probability in [0, 1]")
        rates[name] = rate
    return rates


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pantau simulate", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="broker host (default 127.0.0.1)")
    p.add_argument("--port", type=_args.port, default=1883, help="broker port (default 1883)")
    p.add_argument("--username", default=None, help="broker user (needs read/write on pantau/#)")
    p.add_argument("--password-file", type=Path, default=None, help="file with the password")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-file", type=Path, default=None, help="CA bundle for --tls")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--stations", type=_args.stations, default=0, help="synthetic fleet of N stations"
    )
    group.add_argument("--inventory", type=Path, default=None, help="fleet from an inventory CSV")
    p.add_argument(
        "--interval", type=_args.interval, default=30.0, help="seconds between states (30)"
    )
    p.add_argument(
        "--duration",
        type=_args.duration,
        default=0.0,
        help="stop after S seconds (0: never)",
    )
    p.add_argument("--once", action="store_true", help="publish births and one state each, exit")
    p.add_argument(
        "--faults",
        default="unplug=0.01,login=0.005,lightning=0.0005,silent=0.0002",
        help=f"per-interval fault probabilities, KIND=P,... (kinds: {', '.join(FAULT_KINDS)})",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    return p


@dataclass(frozen=True, slots=True)
class _Inputs:
    rates: dict[str, float]
    entries: list[InventoryEntry]
    password: str | None


def _inputs(args: argparse.Namespace) -> _Inputs:
    """Everything the run needs from files and arguments; raises on a usage mistake."""
    rates = parse_rates(args.faults)
    if args.inventory is not None:
        entries = load_inventory(args.inventory)
    elif args.stations:
        entries = synthetic_fleet(args.stations)
    else:
        entries = klaten.inventory()
    password = (
        read_secret(args.password_file, "--password-file", "password")
        if args.password_file
        else None
    )
    if args.tls:
        # Load the CA now: a missing or non-PEM file is a usage error, not a traceback later.
        ssl.create_default_context(cafile=str(args.ca_file) if args.ca_file else None)
    return _Inputs(rates, list(entries), password)


#: Publishes not yet acknowledged (PUBACK) at most: paho numbers QoS 1 messages with 16-bit ids,
#: so more than 65,535 outstanding collide (``ERR_QUEUE_SIZE``); a window well below that also
#: bounds the memory of messages waiting in paho's queue.
WINDOW: Final = 10_000
#: Seconds to wait for the broker to acknowledge before giving up (a stuck or vanished broker).
ACK_TIMEOUT_S: Final = 60.0


class SimulateError(PantauError):
    """The broker stopped acknowledging (one line for the user, no traceback)."""


class _Window:
    """Counts unacknowledged publishes; :meth:`acquire` blocks while :data:`WINDOW` are out."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.out = 0
        self._cond = threading.Condition()

    def acquire(self, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.out < self.size, timeout):
                raise SimulateError(
                    f"the broker acknowledged nothing for {timeout:.0f} s ({self.out} outstanding)"
                )
            self.out += 1

    def release(self, *_: object) -> None:
        """paho's ``on_publish`` (called on the PUBACK of a QoS 1 message)."""
        with self._cond:
            self.out -= 1
            self._cond.notify_all()

    def drain(self, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.out == 0, timeout):
                raise SimulateError(
                    f"{self.out} messages not acknowledged by the broker after {timeout:.0f} s"
                )


def _client(args: argparse.Namespace, password: str | None, window: _Window) -> Any:
    """A paho client with the run's identity and TLS (not connected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"pantau-simulate-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
    )
    client.max_queued_messages_set(0)  # bounded by the window instead
    client.max_inflight_messages_set(1000)
    client.on_publish = window.release
    if args.username:
        client.username_pw_set(args.username, password)
    if args.tls:
        client.tls_set(ca_certs=str(args.ca_file) if args.ca_file else None)
    return client


def _publish_all(client: Any, window: _Window, messages: Iterable[Publish]) -> int:
    """Publish at QoS 1 with at most ``window.size`` unacknowledged, then wait for the rest."""
    sent = 0
    for topic, payload, retain in messages:
        sent += 1
        window.acquire(ACK_TIMEOUT_S)
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc:  # not queued (paho calls no on_publish for it)
            window.release()
            raise SimulateError(f"publish failed: {info.rc}")
    window.drain(ACK_TIMEOUT_S)
    return sent


def _publish_loop(
    args: argparse.Namespace, client: Any, window: _Window, model: FleetModel, stations: int
) -> None:
    """Births, then one tick per interval until stopped (SIGTERM), ``--once`` or ``--duration``."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sent = _publish_all(client, window, model.births(time.time()))
    started = time.monotonic()
    while not stop.is_set():
        tick_start = time.monotonic()
        sent += _publish_all(client, window, model.ticking(time.time()))
        print(f"pantau simulate: {stations} stations, {sent} messages sent", flush=True)
        elapsed = time.monotonic() - started
        if args.once or (args.duration and elapsed >= args.duration):
            break
        stop.wait(max(0.0, args.interval - (time.monotonic() - tick_start)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        inputs = _inputs(args)
    except (ValueError, InventoryError, ConfigError) as exc:
        print(f"pantau simulate: {exc}", file=sys.stderr)
        return 2
    except (OSError, ssl.SSLError) as exc:
        print(f"pantau simulate: --ca-file {args.ca_file}: {exc}", file=sys.stderr)
        return 2
    window = _Window(WINDOW)
    client = _client(args, inputs.password, window)
    try:
        client.connect(args.host, args.port, keepalive=30)
    except OSError as exc:
        print(f"pantau simulate: cannot connect to {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    client.loop_start()
    model = FleetModel(
        inputs.entries,
        interval_s=args.interval,
        rates=inputs.rates,
        seed=args.seed,
        now=time.time(),
    )
    try:
        _publish_loop(args, client, window, model, len(inputs.entries))
    except KeyboardInterrupt:
        pass
    except SimulateError as exc:
        print(f"pantau simulate: {exc}", file=sys.stderr)
        return 1
    finally:
        client.disconnect()
        client.loop_stop()
    return 0
