"""Ingest throughput through a real mosquitto: pantau-collector vs mqtt-exporter 1.12.1.

One run, same broker, same message stream (realistic ~1 KB states of ``--stations`` stations,
``--rounds`` rounds, sequence numbers increasing so every state is new), each subscriber in its
own process (its own core and GIL):

1. **steady stream**: the publisher (this process, paho, QoS 1) sends every message; the
   subscriber's CPU time (utime + stime from /proc) is read before and after it goes idle. The
   figure is reports per CPU-second (one core), plus wall time, loss and peak RSS.
2. **restart burst**: every station's state is published *retained*, then a fresh collector
   starts and subscribes: the time until all states are applied, and how many were lost.

mqtt-exporter runs from its own venv (``--peer-venv``, default /tmp/mqtt-exporter-venv); create it
with::

    python3 -m venv /tmp/mqtt-exporter-venv
    /tmp/mqtt-exporter-venv/bin/pip install mqtt-exporter==1.12.1

(``--install-peer`` does exactly that when the venv is missing). It is configured by environment
variables (MQTT_ADDRESS, MQTT_PORT, MQTT_TOPIC, PROMETHEUS_ADDRESS, PROMETHEUS_PORT) and subscribes
with QoS 0; the collector runs with ``--collector-qos`` (default 1, its shipped default, the more
expensive path). The broker is configured with ``max_queued_messages 0`` (no limit) so a
subscriber that falls behind is queued, not dropped (mosquitto's default of 1000 would drop most
of a restart burst at QoS 1).

Usage::

    .venv/bin/python bench/ingest_throughput.py [--stations 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from pantau.collector.synthetic import make_inventory, make_state, state_topic
from pantau.contract import wire

TICK = os.sysconf("SC_CLK_TCK")


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
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def publish_all(port: int, messages: list[tuple[str, bytes]], *, retain: bool = False) -> float:
    done = threading.Event()
    pending = {"n": len(messages)}
    lock = threading.Lock()

    def on_publish(*_a: object) -> None:
        with lock:
            pending["n"] -= 1
            if pending["n"] == 0:
                done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.monotonic()
    for t, payload in messages:
        client.publish(t, payload, qos=1, retain=retain)
    if not done.wait(600):
        raise RuntimeError("publisher did not finish")
    elapsed = time.monotonic() - t0
    client.disconnect()
    client.loop_stop()
    return elapsed


def stream(stations: int, rounds: int) -> list[tuple[str, bytes]]:
    inventory = make_inventory(stations)
    return [
        (state_topic(e), wire.encode(make_state(e, seq=10 + r, ts=1_790_000_000.0 + r)))
        for r in range(rounds)
        for e in inventory
    ]


# --------------------------------------------------------------------------- the collector child


def collector_child(port: int, stations: int, qos: int, protocol: str) -> int:
    from pantau.collector.config import from_dict
    from pantau.collector.service import Collector

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
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()
    c.start()
    c.wait_until(lambda c: c.mqtt_connected, 20)
    print(json.dumps({"ready": True, "http_port": c.http_address[1]}), flush=True)
    applied_at = None
    while not stop.wait(0.01):
        if applied_at is None and c.fleet.received_total >= stations:
            reported = sum(1 for v in c.snapshot().stations if v.report is not None)
            if reported >= stations:
                applied_at = time.monotonic() - t0
    snap = c.snapshot()
    print(
        json.dumps(
            {
                "received": snap.received_total,
                "rejected": sum(snap.rejected.values()),
                "reported": sum(1 for v in snap.stations if v.report is not None),
                "all_applied_after_start_s": applied_at,
            }
        ),
        flush=True,
    )
    c.stop()
    return 0


def start_collector(
    port: int, stations: int, qos: int, protocol: str = "5"
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child-collector", str(port), "--stations", str(stations),
         "--collector-qos", str(qos), "--collector-protocol", protocol],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        raise RuntimeError("collector child did not start")
    return proc, int(json.loads(line)["http_port"])


def stop_collector(proc: subprocess.Popen[str]) -> dict[str, object]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return dict(json.loads(out.strip().splitlines()[-1]))


def start_peer(venv: Path, port: int) -> tuple[subprocess.Popen[bytes], int]:
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
    proc = subprocess.Popen(
        [str(venv / "bin" / "mqtt-exporter")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(http_port)
    time.sleep(1.0)  # connect + subscribe
    return proc, http_port


def peer_received(http_port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=120) as resp:
        text = resp.read().decode()
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
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
            page = gzip.decompress(resp.read())
        durations.append(time.monotonic() - t0)
        key = b"\npantau_collector_reports_received_total "
        at = page.index(key) + len(key)
        if int(page[at : page.index(b"\n", at)]) >= total:
            return
        time.sleep(max(0.0, 1.0 - durations[-1]))


def run_steady(
    name: str, port: int, messages: list[tuple[str, bytes]], start: object, scrape: bool = False
) -> dict[str, float]:
    proc, extra = start()  # type: ignore[operator]
    c0 = cpu_seconds(proc.pid)
    t0 = time.monotonic()
    durations: list[float] = []
    thread = threading.Thread(target=scraper, args=(extra, len(messages), durations))
    if scrape:
        thread.start()
    pub_s = publish_all(port, messages)
    if scrape:
        thread.join()
    idle_at = wait_idle(proc.pid)
    cpu = cpu_seconds(proc.pid) - c0
    wall = idle_at - t0
    rss = peak_rss_mb(proc.pid)
    if name == "collector":
        received = int(stop_collector(proc)["received"])  # type: ignore[call-overload]
    else:
        received = peer_received(extra)
        proc.terminate()
        proc.wait(30)
    return {
        "cpu": cpu,
        "wall": wall,
        "received": received,
        "rss": rss,
        "pub": pub_s,
        "scrapes": len(durations),
        "longest_scrape": max(durations, default=0.0),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stations", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--collector-qos", type=int, default=1, choices=(0, 1))
    p.add_argument("--collector-protocol", default="5", choices=("5", "3.1.1"))
    p.add_argument("--peer-venv", type=Path, default=Path("/tmp/mqtt-exporter-venv"))
    p.add_argument("--install-peer", action="store_true")
    p.add_argument("--skip-peer", action="store_true")
    p.add_argument("--child-collector", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_collector:
        return collector_child(
            args.child_collector, args.stations, args.collector_qos, args.collector_protocol
        )
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
        f" {len(messages)} states of {size:.0f} B; publisher QoS 1; collector MQTT"
        f" {args.collector_protocol} QoS {args.collector_qos}, mqtt-exporter MQTT 3.1.1 QoS 0"
    )
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp))
        try:
            results["collector"] = run_steady(
                "collector",
                broker.port,
                messages,
                lambda: start_collector(
                    broker.port, args.stations, args.collector_qos, args.collector_protocol
                ),
            )
            results["collector+scrapes"] = run_steady(
                "collector",
                broker.port,
                messages,
                lambda: start_collector(
                    broker.port, args.stations, args.collector_qos, args.collector_protocol
                ),
                scrape=True,
            )
            if peer:
                results["mqtt-exporter"] = run_steady(
                    "mqtt-exporter",
                    broker.port,
                    messages,
                    lambda: start_peer(args.peer_venv, broker.port),
                )
        finally:
            broker.stop()
        print(
            f"{'subscriber':<14} {'received':>9} {'lost':>6} {'CPU s':>7} {'reports/CPU-s':>14}"
            f" {'wall s':>7} {'peak RSS MB':>12}"
        )
        for name, r in results.items():
            print(
                f"{name:<14} {int(r['received']):>9} {len(messages) - int(r['received']):>6}"
                f" {r['cpu']:>7.2f} {len(messages) / r['cpu']:>14.0f} {r['wall']:>7.2f}"
                f" {r['rss']:>12.0f}"
            )
        sc = results["collector+scrapes"]
        print(
            f"collector+scrapes: a gzip scrape of the full fleet every second during the stream"
            f" ({int(sc['scrapes'])} scrapes, longest {sc['longest_scrape']:.2f} s): received"
            f" {int(sc['received'])}/{len(messages)}, wall {sc['wall']:.2f} s vs"
            f" {results['collector']['wall']:.2f} s without scrapes"
        )
        if "mqtt-exporter" in results:
            ratio = results["mqtt-exporter"]["cpu"] / results["collector"]["cpu"]
            print(f"collector vs mqtt-exporter, reports per CPU-second: {ratio:.1f}x (goal >= 5x)")

        # Restart burst: every station's state retained, then a fresh collector subscribes.
        broker = Broker(Path(tmp))
        try:
            burst = messages[: args.stations]
            publish_all(broker.port, burst, retain=True)
            proc, _ = start_collector(
                broker.port, args.stations, args.collector_qos, args.collector_protocol
            )
            time.sleep(0.5)
            wait_idle(proc.pid)
            r = stop_collector(proc)
        finally:
            broker.stop()
        lost = args.stations - int(r["reported"])  # type: ignore[call-overload]
        applied = r["all_applied_after_start_s"]
        print(
            f"restart burst: {args.stations} retained states -> {r['reported']} stations applied,"
            f" {lost} lost; all applied {applied if applied is None else f'{applied:.2f}'} s after"
            " the collector started (connect + subscribe + delivery)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
