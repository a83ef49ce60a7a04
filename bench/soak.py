"""Soak: a real pantau-collector fed by 1,000 simulated stations with churn, watched for leaks.

One run starts, on loopback:

- a real mosquitto (own config, free port, anonymous, ``max_queued_messages 0``);
- the real collector as its own process (``python -m pantau.collector.cli run``) with the fleet's
  inventory, a persistent MQTT session and an event state file (what is shipped);
- this process as the fleet: :class:`pantau.tools.simulate.FleetModel` (births, a retained state
  per station every ``--interval``, faults with events: unplug, login, lightning) plus **churn**:
  every interval ``--churn`` of the stations restart (the old session's will, then a new session's
  birth and state, as a restarted agent does), ``--silent`` go silent and as many silent ones come
  back; every ``--disconnect-every`` seconds the collector's broker connection is cut (the broker
  is restarted), so reconnects, retained replays and queued sessions are exercised too;
- a scraper reading ``/metrics`` every 15 s (like Prometheus) and the board every minute.

Every ``--sample`` seconds (60) it records the collector's RSS (VmRSS), open file descriptors
(/proc/PID/fd) and threads (/proc/PID/status), printing one line per sample and writing them as
CSV (``--csv``). At the end it prints the least-squares slope of each over the samples after
``--warmup`` (RSS in KiB per hour, fds and threads per hour) and, as the side-by-side figure, the
ratio of the mean RSS of the last third to the mean of the first third after warm-up: a leak shows
as a positive slope and a ratio above 1; a flat process as ~0 and ~1.00. The run stops by itself.

Usage::

    .venv/bin/python bench/soak.py [--stations 1000] [--minutes 30] [--interval 10]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pantau.contract import wire
from pantau.tools.simulate import FleetModel, SimStation, synthetic_fleet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise SystemExit(f"soak: nothing listens on 127.0.0.1:{port}")


def proc_sample(pid: int) -> tuple[int, int, int]:
    """(RSS KiB, open fds, threads) of ``pid``."""
    rss = threads = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def slope_per_hour(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs`` (seconds), per hour."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def metric_sum(text: str, prefix: str) -> int:
    return sum(
        int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if line.startswith(prefix)
    )


def drained_events(url: str, limit_s: float = 120.0) -> int:
    """Sum of ``pantau_station_events_total`` once the collector has caught up (its received
    count unchanged for 4 s; a slow collector may still be working off a backlog)."""
    last, still, deadline = -1, 0, time.monotonic() + limit_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback
            text = r.read().decode()
        received = metric_sum(text, "pantau_collector_reports_received_total")
        still = still + 1 if received == last else 0
        if still >= 2:
            break
        last = received
        time.sleep(2.0)
    return metric_sum(text, "pantau_station_events_total{")


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence true\npersistence_location {workdir}/\nautosave_interval 60\n"
            f"max_queued_messages 0\nmax_inflight_messages 0\n"
            f"log_dest file {workdir / 'mosquitto.log'}\nlog_type error\nlog_type warning\n",
            encoding="ascii",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None


class Fleet:
    """The simulated fleet with churn, publishing through one MQTT connection."""

    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.model = FleetModel(
            synthetic_fleet(args.stations),
            interval_s=args.interval,
            rates={"unplug": 0.01, "login": 0.005, "lightning": 0.0005},
            seed=args.seed,
            now=time.time(),
        )
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"soak-fleet-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(  # broker restarts: paho reconnects and resends unacked QoS 1
            "127.0.0.1", port, keepalive=30
        )
        self.client.loop_start()
        self.sent = 0
        self.events = 0

    def publish(self, items: list[tuple[str, bytes, bool]]) -> None:
        for topic, payload, retain in items:
            self.client.publish(topic, payload, qos=1, retain=retain)
            if topic.endswith("/event"):
                self.events += 1
        self.sent += len(items)

    def _restart(self, s: SimStation, now: float) -> list[tuple[str, bytes, bool]]:
        will = wire.Status(
            station=s.entry.station,
            agent_version="soak",
            session=s.session,
            seq=s.next_seq(),
            ts=now,
            status="offline",
        )
        topic = wire.topic(s.entry.provinsi, s.entry.kabkota, s.entry.station, "status")
        s.session = uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]
        s.seq = 0
        s.silent = False
        return [(topic, wire.encode(will), True), self.model._status(s, now)]

    def tick(self) -> None:
        now = time.time()
        out: list[tuple[str, bytes, bool]] = []
        stations = self.model.stations
        for s in self.rng.sample(stations, int(len(stations) * self.args.churn)):
            out += self._restart(s, now)
        silent = [s for s in stations if s.silent]
        for s in silent[: int(len(stations) * self.args.silent)]:
            s.silent = False  # back after a while (e.g. a cable fixed)
        for s in self.rng.sample(stations, int(len(stations) * self.args.silent)):
            s.silent = True
        out += self.model.tick(now)
        self.publish(out)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stations", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=10.0, help="seconds between states")
    p.add_argument("--churn", type=float, default=0.01, help="share restarting per interval")
    p.add_argument("--silent", type=float, default=0.005, help="share going silent per interval")
    p.add_argument("--disconnect-every", type=float, default=300.0, help="broker restart (s)")
    p.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    p.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the slope")
    p.add_argument("--csv", type=Path, default=None)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if shutil.which("mosquitto") is None:
        print("soak: mosquitto is not installed", file=sys.stderr)
        return 2
    # SIGTERM ends the run like the deadline does: the collector and the broker are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="pantau-soak-"))
    broker = Broker(workdir)
    broker.start()
    inventory = workdir / "inventory.csv"
    with inventory.open("w", encoding="utf-8", newline="") as f:
        f.write("station,provinsi,kabkota,kecamatan,device_classes\n")
        for e in synthetic_fleet(args.stations):
            f.write(f"{e.station},{e.provinsi},{e.kabkota},{e.kecamatan},")
            f.write(";".join(e.device_classes) + "\n")
    http_port = free_port()
    config = workdir / "collector.toml"
    config.write_text(
        f'[mqtt]\nport = {broker.port}\nclient_id = "pantau-collector-soak"\n'
        f"reconnect_min_s = 0.5\nreconnect_max_s = 2.0\n"
        f'[http]\nport = {http_port}\n[fleet]\ninventory = "{inventory}"\n'
        f'state_file = "{workdir / "collector-state.json"}"\n',
        encoding="utf-8",
    )
    log = (workdir / "collector.log").open("wb")
    collector = subprocess.Popen(
        [sys.executable, "-m", "pantau.collector.cli", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_port(http_port)
    metrics_url = f"http://127.0.0.1:{http_port}/metrics"
    board_url = f"http://127.0.0.1:{http_port}/"
    fleet = Fleet(args, broker.port)
    for topic, payload, retain in fleet.model.births(time.time()):
        fleet.client.publish(topic, payload, qos=1, retain=retain)

    stop = threading.Event()
    scrapes = [0, 0]  # ok, failed

    def scraper() -> None:
        n = 0
        while not stop.wait(15.0):
            n += 1
            for url in [metrics_url] + ([board_url] if n % 4 == 0 else []):
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - loopback
                        r.read()
                    scrapes[0] += 1
                except OSError:
                    scrapes[1] += 1

    threading.Thread(target=scraper, daemon=True).start()
    samples: list[tuple[float, int, int, int]] = []
    started = time.monotonic()
    end = started + args.minutes * 60
    next_tick = next_sample = next_cut = started
    next_cut += args.disconnect_every
    print("minute,rss_kib,fds,threads,messages_sent", flush=True)
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if collector.poll() is not None:
                print(f"soak: the collector exited with {collector.returncode}", file=sys.stderr)
                return 1
            if now >= next_tick:
                fleet.tick()
                next_tick += args.interval
            if now >= next_sample:
                rss, fds, threads = proc_sample(collector.pid)
                t = now - started
                samples.append((t, rss, fds, threads))
                print(f"{t / 60:.1f},{rss},{fds},{threads},{fleet.sent}", flush=True)
                next_sample += args.sample
            if args.disconnect_every and now >= next_cut:
                broker.stop()
                broker.start()
                next_cut += args.disconnect_every
            time.sleep(max(0.0, min(next_tick, next_sample, next_cut) - time.monotonic()))
        counted = drained_events(metrics_url)
        t = time.monotonic() - started
        rss, fds, threads = proc_sample(collector.pid)
        samples.append((t, rss, fds, threads))
        print(f"{t / 60:.1f},{rss},{fds},{threads},{fleet.sent}", flush=True)
    finally:
        stop.set()
        fleet.close()
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(10)
        except subprocess.TimeoutExpired:
            collector.kill()
        broker.stop()
    if args.csv is not None:
        with args.csv.open("w", newline="", encoding="ascii") as f:
            w = csv.writer(f)
            w.writerow(["seconds", "rss_kib", "fds", "threads"])
            w.writerows(samples)
    steady = [s for s in samples if s[0] >= args.warmup * 60]
    xs = [s[0] for s in steady]
    third = max(1, len(steady) // 3)
    first = sum(s[1] for s in steady[:third]) / third if steady else 0.0
    last = sum(s[1] for s in steady[-third:]) / third if steady else 0.0
    print(
        f"soak: {args.stations} stations, {args.minutes:g} min, {fleet.sent} messages, "
        f"{scrapes[0]} scrapes ({scrapes[1]} failed), {len(samples)} samples; events published "
        f"{fleet.events}, counted by the collector {counted}"
    )
    print(
        f"slope after {args.warmup:g} min warm-up: RSS {slope_per_hour(xs, [s[1] for s in steady]):+.0f}"
        f" KiB/h, fds {slope_per_hour(xs, [s[2] for s in steady]):+.2f}/h, threads "
        f"{slope_per_hour(xs, [s[3] for s in steady]):+.2f}/h"
    )
    print(
        f"RSS mean last third / first third after warm-up: {last / first if first else 0:.3f} "
        f"({first:.0f} -> {last:.0f} KiB); fds {samples[0][2]} -> {samples[-1][2]}, threads "
        f"{samples[0][3]} -> {samples[-1][3]}"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
