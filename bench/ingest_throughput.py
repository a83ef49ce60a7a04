"""Ingest throughput through a real mosquitto: pantau-collector vs a count-only paho subscriber
(and mqtt-exporter 1.12.1).

Same broker, same message stream (realistic ~1.4 KB states of ``--stations`` stations,
``--rounds`` rounds, sequence numbers increasing so every state is new), each subscriber in its
own process (its own core and GIL), ``--runs`` times:

1. **steady stream**: the publisher (this process, paho, QoS 1, at most 10,000 unacknowledged)
   sends every message; the subscriber's CPU time (utime + stime from /proc) is read before and
   after it goes idle. The figure is reports per CPU-second (one core), plus wall time, loss and
   peak RSS. Subscribers:

   - ``collector``: pantau-collector (its defaults: MQTT 5, QoS 1; ``--collector-protocol``,
     ``--collector-qos``);
   - ``paho count``: a paho client with the collector's protocol and QoS whose ``on_message``
     only counts: the floor any paho-based subscriber pays. ``collector`` / ``paho count`` is the
     share of paho's own rate the collector reaches;
   - ``collector+scrapes``: the collector while its full ``/metrics`` is scraped (gzip) every
     second;
   - ``mqtt-exporter`` (unless ``--skip-peer``): MQTT 3.1.1, QoS 0 (its defaults).
2. **restart burst**: every station's state is published *retained*, then a fresh collector
   starts and subscribes: the time until all states are applied, and how many were lost.

Every row is printed as soon as it is measured (a crash loses only the current one), then
min/median/max over the runs. Every child (broker, subscribers) runs in its own process group
and is killed on any exit of the bench: normal, exception, Ctrl-C or SIGTERM. ``--profile``
runs the collector child under cProfile (every thread) and prints its top functions.

mqtt-exporter runs from its own venv (``--peer-venv``, default /tmp/mqtt-exporter-venv); create it
with::

    python3 -m venv /tmp/mqtt-exporter-venv
    /tmp/mqtt-exporter-venv/bin/pip install mqtt-exporter==1.12.1

(``--install-peer`` does exactly that when the venv is missing). The broker is configured with
``max_queued_messages 0`` (no limit) so a subscriber that falls behind is queued, not dropped.

Usage::

    .venv/bin/python bench/ingest_throughput.py [--stations 20000] [--rounds 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pantau.collector.testing.synthetic import make_inventory, make_state, state_topic
from pantau.contract import wire

TICK = os.sysconf("SC_CLK_TCK")
WINDOW = 10_000  # unacknowledged QoS 1 publishes at most (paho's message ids are 16-bit)

# --------------------------------------------------------------------------- children


class Children:
    """Every process the bench starts, each in its own process group; all killed on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []
        atexit.register(self.kill_all)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through every finally, then atexit

    def spawn(self, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        proc: subprocess.Popen[Any] = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def kill_all(self) -> None:
        for proc in list(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


CHILDREN: Children | None = None


def children() -> Children:
    global CHILDREN  # noqa: PLW0603 - one registry per bench process, created in main()
    if CHILDREN is None:
        CHILDREN = Children()
    return CHILDREN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_idle(pid: int, window: float = 1.0, timeout: float = 600.0) -> float:
    """Wait until the process used < 2% CPU over ``window`` s; return when that window began."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - c0 < 0.02 * window:
            return t0
    raise RuntimeError("subscriber never went idle")


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "user root\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )
        self.proc = children().spawn(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        children().stop(self.proc)


def publish_all(port: int, messages: list[tuple[str, bytes]], *, retain: bool = False) -> float:
    """Publish at QoS 1 from this thread (no network thread, so no loop_stop() to race with):
    at most WINDOW unacknowledged, the client's loop driven here; returns the seconds taken."""
    acked = [0]

    def on_publish(*_a: object) -> None:
        acked[0] += 1

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    t0 = time.monotonic()
    deadline = t0 + 600
    sent = 0
    try:
        while acked[0] < len(messages):
            while sent < len(messages) and sent - acked[0] < WINDOW:
                topic, payload = messages[sent]
                info = client.publish(topic, payload, qos=1, retain=retain)
                if info.rc:
                    raise RuntimeError(f"publish failed: {info.rc}")
                sent += 1
            rc = client.loop(timeout=0.01)
            if rc:
                raise RuntimeError(f"publisher lost the broker: {rc}")
            if time.monotonic() > deadline:
                raise RuntimeError("publisher did not finish in 600 s")
        return time.monotonic() - t0
    finally:
        client.disconnect()
        client.loop(timeout=0.1)


def stream(stations: int, rounds: int) -> list[tuple[str, bytes]]:
    inventory = make_inventory(stations)
    return [
        (state_topic(e), wire.encode(make_state(e, seq=10 + r, ts=1_790_000_000.0 + r)))
        for r in range(rounds)
        for e in inventory
    ]


# --------------------------------------------------------------------------- the children's code


def _profile_all_threads() -> Callable[[], None]:
    """cProfile in every thread started from now on (paho's network thread); returns a dump."""
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []

    def start(*_a: object) -> None:
        sys.setprofile(None)
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()

    threading.setprofile(start)

    def dump() -> None:
        for prof in profiles:
            prof.disable()
        stats = pstats.Stats(*profiles, stream=sys.stderr) if profiles else None
        if stats is not None:
            stats.sort_stats("tottime").print_stats(25)

    return dump


def collector_child(
    port: int, stations: int, qos: int, protocol: str, *, profile: bool, noop: bool
) -> int:
    from pantau.collector.config import from_dict
    from pantau.collector.service import Collector

    dump = _profile_all_threads() if profile else None
    cfg = from_dict(
        {
            "mqtt": {
                "port": port,
                "qos": qos,
                "protocol": protocol,
                "client_id": f"bench-collector-{os.getpid()}",
            },
            "http": {"port": 0},
            "log_level": "warning",
        }
    )
    c = Collector(cfg, inventory=make_inventory(stations))
    if noop:  # the collector's MQTT adapter and process, but nothing applied (where time goes)
        counted = [0]

        def ingest(*_a: object, **_k: object) -> str:
            counted[0] += 1
            c.fleet.received_total = counted[0]
            return ""

        c.fleet.ingest = ingest  # type: ignore[method-assign]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()
    c.start()
    c.wait_until(lambda c: c.mqtt_connected, 20)
    print(json.dumps({"ready": True, "http_port": c.http_address[1]}), flush=True)
    applied_at = 0.0 if noop else None  # (nothing is applied: no burst timing)
    while not stop.wait(0.01):
        if applied_at is None and c.fleet.received_total >= stations:
            reported = sum(1 for v in c.snapshot().stations if v.report is not None)
            if reported >= stations:
                applied_at = time.monotonic() - t0
    snap = c.snapshot()
    print(
        json.dumps(
            {
                "received": c.fleet.received_total,
                "rejected": sum(snap.rejected.values()),
                "reported": sum(1 for v in snap.stations if v.report is not None),
                "all_applied_after_start_s": applied_at,
            }
        ),
        flush=True,
    )
    c.stop()
    if dump is not None:
        dump()
    return 0


def paho_count_child(port: int, qos: int, protocol: str) -> int:
    """A paho subscriber that only counts: the floor of any paho-based subscriber."""
    count = [0]
    proto = paho.MQTTv5 if protocol == "5" else paho.MQTTv311
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-count-{os.getpid()}", protocol=proto
    )
    connected = threading.Event()

    def on_connect(*_a: object) -> None:
        client.subscribe("pantau/v1/+/+/+/+", qos=qos)
        connected.set()

    def on_message(*_a: object) -> None:
        count[0] += 1

    client.on_connect = on_connect
    client.on_message = on_message
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(20)
    time.sleep(0.3)  # SUBACK
    print(json.dumps({"ready": True}), flush=True)
    stop.wait()
    print(json.dumps({"received": count[0]}), flush=True)
    client.disconnect()
    return 0


# --------------------------------------------------------------------------- subscribers


class Subscriber:
    """A subscriber process: started, measured, stopped (killed if it does not stop)."""

    def __init__(self, proc: subprocess.Popen[Any], http_port: int = 0) -> None:
        self.proc = proc
        self.http_port = http_port

    def received(self) -> int:
        raise NotImplementedError


class JsonChild(Subscriber):
    """The collector or paho-count child: prints ``{"ready"...}``, then its result on SIGTERM."""

    @classmethod
    def start(cls, args: list[str]) -> JsonChild:
        proc = children().spawn(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            children().stop(proc)
            raise RuntimeError(f"child {args[0]} did not start")
        return cls(proc, int(json.loads(line).get("http_port", 0)))

    def result(self) -> dict[str, Any]:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        finally:
            children().stop(self.proc, grace=1)
        return dict(json.loads(out.strip().splitlines()[-1]))

    def received(self) -> int:
        return int(self.result()["received"])


class Peer(Subscriber):
    """mqtt-exporter: counts in its own /metrics; stopped with SIGTERM, killed after 3 s."""

    @classmethod
    def start(cls, venv: Path, port: int) -> Peer:
        http_port = free_port()
        env = dict(
            os.environ,
            MQTT_ADDRESS="127.0.0.1",
            MQTT_PORT=str(port),
            MQTT_TOPIC="pantau/#",
            PROMETHEUS_ADDRESS="127.0.0.1",
            PROMETHEUS_PORT=str(http_port),
            LOG_LEVEL="WARNING",
        )
        proc = children().spawn(
            [str(venv / "bin" / "mqtt-exporter")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(http_port)
        time.sleep(1.0)  # connect + subscribe
        return cls(proc, http_port)

    def received(self) -> int:
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=120) as resp:
                text = resp.read().decode()
        finally:
            children().stop(self.proc, grace=3)  # it may take 30 s to exit on SIGTERM
        return int(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("mqtt_message_total{")
            )
        )


def scraper(http_port: int, total: int, durations: list[float]) -> None:
    """Scrape /metrics (gzip, as Prometheus does) at most once a second until the page says
    every report was received."""
    while True:
        t0 = time.monotonic()
        req = urllib.request.Request(
            f"http://127.0.0.1:{http_port}/metrics", headers={"Accept-Encoding": "gzip"}
        )
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
            page = gzip.decompress(resp.read())
        durations.append(time.monotonic() - t0)
        key = b"\npantau_collector_reports_received_total "
        at = page.index(key) + len(key)
        if int(page[at : page.index(b"\n", at)]) >= total:
            return
        time.sleep(max(0.0, 1.0 - durations[-1]))


def run_steady(
    port: int, messages: list[tuple[str, bytes]], start: Callable[[], Subscriber], scrape: bool
) -> dict[str, float]:
    sub = start()
    try:
        c0 = cpu_seconds(sub.proc.pid)
        t0 = time.monotonic()
        durations: list[float] = []
        thread = threading.Thread(
            target=scraper, args=(sub.http_port, len(messages), durations), daemon=True
        )
        if scrape:
            thread.start()
        pub_s = publish_all(port, messages)
        if scrape:
            thread.join(600)
        idle_at = wait_idle(sub.proc.pid)
        cpu = cpu_seconds(sub.proc.pid) - c0
        rss = peak_rss_mb(sub.proc.pid)
        received = sub.received()
    finally:
        children().stop(sub.proc)
    return {
        "cpu": cpu,
        "wall": idle_at - t0,
        "received": received,
        "rss": rss,
        "pub": pub_s,
        "scrapes": len(durations),
        "longest_scrape": max(durations, default=0.0),
    }


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stations", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--collector-qos", type=int, default=1, choices=(0, 1))
    p.add_argument("--collector-protocol", default="5", choices=("5", "3.1.1"))
    p.add_argument("--peer-venv", type=Path, default=Path("/tmp/mqtt-exporter-venv"))
    p.add_argument("--install-peer", action="store_true")
    p.add_argument("--skip-peer", action="store_true", help="no mqtt-exporter rows")
    p.add_argument("--skip-scrapes", action="store_true", help="no collector+scrapes rows")
    p.add_argument("--skip-burst", action="store_true", help="no restart burst")
    p.add_argument("--profile", action="store_true", help="cProfile the collector child")
    p.add_argument(
        "--noop-ingest",
        action="store_true",
        help="add a 'collector, no-op ingest' row: the collector whose fleet only counts",
    )
    p.add_argument("--child-collector", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child-count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    qos, proto = args.collector_qos, args.collector_protocol
    if args.child_collector:
        return collector_child(
            args.child_collector,
            args.stations,
            qos,
            proto,
            profile=args.profile,
            noop=args.noop_ingest,
        )
    if args.child_count:
        return paho_count_child(args.child_count, qos, proto)
    children()
    peer = not args.skip_peer
    if peer and not (args.peer_venv / "bin" / "mqtt-exporter").exists():
        if not args.install_peer:
            print(f"no mqtt-exporter in {args.peer_venv}: pass --install-peer or --skip-peer")
            return 2
        subprocess.run([sys.executable, "-m", "venv", str(args.peer_venv)], check=True)
        subprocess.run(
            [str(args.peer_venv / "bin" / "pip"), "install", "-q", "mqtt-exporter==1.12.1"],
            check=True,
        )
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed")
        return 2

    messages = stream(args.stations, args.rounds)
    size = sum(len(m[1]) for m in messages) / len(messages)
    print(
        f"python {sys.version.split()[0]}; {args.stations} stations x {args.rounds} rounds ="
        f" {len(messages)} states of {size:.0f} B; publisher QoS 1; collector and paho count"
        f" MQTT {proto} QoS {qos}, mqtt-exporter MQTT 3.1.1 QoS 0; {args.runs} runs",
        flush=True,
    )
    base = ["--stations", str(args.stations), "--collector-qos", str(qos)]
    base += ["--collector-protocol", proto]
    collector_args = [*base, "--profile"] if args.profile else base
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        port = broker.port
        rows: list[tuple[str, Callable[[], Subscriber], bool]] = [
            (
                "collector",
                lambda: JsonChild.start(["--child-collector", str(port), *collector_args]),
                False,
            ),
            ("paho count", lambda: JsonChild.start(["--child-count", str(port), *base]), False),
        ]
        if args.noop_ingest:
            noop = ["--child-collector", str(port), *base, "--noop-ingest"]
            rows.append(("collector, no-op ingest", lambda: JsonChild.start(noop), False))
        if not args.skip_scrapes:
            start = lambda: JsonChild.start(["--child-collector", str(port), *base])  # noqa: E731
            rows.append(("collector+scrapes", start, True))
        if peer:
            rows.append(("mqtt-exporter", lambda: Peer.start(args.peer_venv, port), False))
        print(
            f"{'run':>3} {'subscriber':<24} {'received':>9} {'lost':>6} {'CPU s':>7}"
            f" {'reports/CPU-s':>14} {'wall s':>7} {'peak RSS MB':>12}",
            flush=True,
        )
        try:
            for run in range(1, args.runs + 1):
                for name, start_fn, scrape in rows:
                    r = run_steady(port, messages, start_fn, scrape)
                    results.setdefault(name, []).append(r)
                    extra = ""
                    if scrape:
                        extra = (
                            f"  ({int(r['scrapes'])} scrapes, longest {r['longest_scrape']:.2f} s)"
                        )
                    print(
                        f"{run:>3} {name:<24} {int(r['received']):>9}"
                        f" {len(messages) - int(r['received']):>6} {r['cpu']:>7.2f}"
                        f" {len(messages) / r['cpu']:>14.0f} {r['wall']:>7.2f} {r['rss']:>12.0f}"
                        + extra,
                        flush=True,
                    )
        finally:
            broker.stop()
        print("reports per CPU-second, min/median/max over the runs:", flush=True)
        rate = {n: [len(messages) / r["cpu"] for r in rs] for n, rs in results.items()}
        for name, values in rate.items():
            print(f"    {name:<24} {spread(values)}", flush=True)
        runs = min(len(v) for v in rate.values())
        ratio = [rate["collector"][i] / rate["paho count"][i] for i in range(runs)]
        print(f"collector / paho count, per run: {spread(ratio, '{:.2f}')}", flush=True)
        if "mqtt-exporter" in rate:
            vs = [rate["collector"][i] / rate["mqtt-exporter"][i] for i in range(runs)]
            print(f"collector vs mqtt-exporter, per run: {spread(vs, '{:.1f}x')}", flush=True)
        if not args.skip_burst:
            burst_runs(Path(tmp), messages[: args.stations], base, args.runs)
    return 0


def burst_runs(tmp: Path, burst: list[tuple[str, bytes]], base: list[str], runs: int) -> None:
    """Restart burst: every station's state retained, then a fresh collector subscribes."""
    broker = Broker(tmp)
    try:
        publish_all(broker.port, burst, retain=True)
        times = []
        for run in range(1, runs + 1):
            child = JsonChild.start(["--child-collector", str(broker.port), *base])
            time.sleep(0.5)
            wait_idle(child.proc.pid)
            r = child.result()
            applied = r["all_applied_after_start_s"]
            lost = len(burst) - int(r["reported"])
            print(
                f"{run:>3} restart burst: {len(burst)} retained states -> {r['reported']} stations"
                f" applied, {lost} lost; all applied"
                f" {applied if applied is None else f'{applied:.2f}'} s after the collector"
                " started (connect + subscribe + delivery)",
                flush=True,
            )
            if applied is not None:
                times.append(float(applied))
        if times:
            print(f"restart burst, seconds min/median/max: {spread(times, '{:.2f}')}", flush=True)
    finally:
        broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
