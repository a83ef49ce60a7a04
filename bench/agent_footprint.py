"""Agent footprint: RSS and CPU per check round, side by side with a bare interpreter.

Each measurement runs in a fresh child process and reports its own numbers (VmRSS and PSS from
/proc, CPU from ``time.process_time``, which counts every thread):

- ``bare``: ``python -c pass`` plus the measuring code: the interpreter's floor.
- ``agent``: the real agent objects as ``pantau-agent run`` builds them (paho client, pyusb on
  libusb, psutil, spool), then ``--rounds`` rounds of the USB and host checks (no network).
- ``agent+tcp``: the same rounds plus one login probe (TCP connect to a local listener).
- ``idle``: ``pantau-agent run``'s service loop connected to a real mosquitto for ``--idle``
  seconds with nothing changing: CPU per second of doing nothing.

USB devices come from a umockdev testbed with ``--devices`` fake devices (real libusb
enumerating them) when umockdev is installed, else (or with ``--no-umockdev``) from whatever the
machine has. umockdev's preload library intercepts every file access of the child, so it adds to
both RSS and CPU: the machine run is the better estimate of a real station's cost, the umockdev
run shows the cost of enumerating devices.

    .venv/bin/python bench/agent_footprint.py [--rounds 300] [--devices 10] [--idle 5]
    .venv/bin/python bench/agent_footprint.py --no-umockdev
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test harness: umockdev bus, mosquitto

MEASURE = textwrap.dedent(
    """
    import json, time
    def mem():
        out = {}
        for line in open('/proc/self/status'):
            if line.startswith('VmRSS:'):
                out['rss_mb'] = int(line.split()[1]) / 1024
        try:
            for line in open('/proc/self/smaps_rollup'):
                if line.startswith('Pss:'):
                    out['pss_mb'] = int(line.split()[1]) / 1024
        except OSError:
            pass
        return out
    """
)

BARE = MEASURE + "print(json.dumps({**mem(), 'cpu_ms_per_round': 0.0}))\n"

AGENT = MEASURE + textwrap.dedent(
    """
    import sys, threading
    from agent.config import convert_config
    from agent.service import build_agent
    data = json.loads(sys.argv[1])
    rounds = int(sys.argv[2])
    cfg = convert_config(data, 'bench')
    agent = build_agent(cfg, hotplug=False, spool_path=sys.argv[3], connect=True)
    names = [n for n in agent.checks]
    agent.round(names)  # warm up: libusb init, first psutil sample
    start = time.process_time()
    for _ in range(rounds):
        agent.round(names)
    cpu = (time.process_time() - start) / rounds * 1000
    state = agent.state
    devices = sum(len(p.devices) for p in state.peripherals)
    print(json.dumps({**mem(), 'cpu_ms_per_round': cpu, 'devices_matched': devices,
                      'checks': names}))
    """
)

IDLE = MEASURE + textwrap.dedent(
    """
    import sys, threading
    from agent.config import convert_config
    from agent.service import build_agent
    cfg = convert_config(json.loads(sys.argv[1]), 'bench')
    seconds = float(sys.argv[2])
    agent = build_agent(cfg, hotplug=False, spool_path=sys.argv[3])
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,))
    t.start()
    agent.publisher.wait_connected(10)
    time.sleep(1.0)  # first rounds and publishes done
    start = time.process_time()
    time.sleep(seconds)
    cpu = (time.process_time() - start) / seconds * 1000
    m = mem()
    stop.set(); agent.wake(); t.join(10)
    print(json.dumps({**m, 'cpu_ms_per_s_idle': cpu, 'connected': agent.publisher.connects}))
    """
)


def child(code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def usb_env(devices: int) -> tuple[dict[str, str], str, Any]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        from harness import usb as umockdev
    except ImportError as exc:
        return env, f"machine USB (harness unavailable: {exc})", None
    why = umockdev.umockdev_missing()
    if why is not None:
        return env, f"machine USB (umockdev unavailable: {why})", None
    testbed = umockdev.new_testbed()
    bus = umockdev.UsbBus(testbed)
    for i in range(devices):
        bus.plug(
            0x04A9 if i == 0 else 0x1000 + i, 0x3218 + i, 0, 6 if i == 0 else 0xFF, "V", f"D{i}"
        )
    return {**bus.env, "PYTHONPATH": str(REPO)}, f"umockdev, {devices} devices", testbed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument(
        "--no-umockdev", action="store_true", help="enumerate the machine's own USB devices"
    )
    args = parser.parse_args()

    if args.no_umockdev:
        env, usb_source = {**os.environ, "PYTHONPATH": str(REPO)}, "machine USB"
    else:
        env, usb_source, _testbed = usb_env(args.devices)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    base: dict[str, Any] = {
        "station": {"id": "3310-juwiring-01", "provinsi": "33", "kabkota": "3310"},
        "mqtt": {"host": "127.0.0.1", "port": 1, "tls": False},
        "devices": [
            {"device_class": "camera", "vid": 0x04A9, "interface_class": 6},
            {"device_class": "fingerprint", "vid": 0x1001},
            {"device_class": "iris", "vid": 0x1002},
            {"device_class": "signature", "vid": 0x1003},
        ],
    }
    with_tcp = {
        **base,
        "probes": [{"name": "login", "kind": "tcp", "target": f"127.0.0.1:{port}"}],
    }
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("bare python", child(BARE, [], env)))
        rows.append(
            (
                "agent (usb+host)",
                child(AGENT, [json.dumps(base), str(args.rounds), f"{tmp}/a.sqlite"], env),
            )
        )
        rows.append(
            (
                "agent (usb+login tcp+host)",
                child(AGENT, [json.dumps(with_tcp), str(args.rounds), f"{tmp}/b.sqlite"], env),
            )
        )
        idle = None
        if args.idle > 0:
            from harness import Mosquitto

            broker = Mosquitto(Path(tmp) / "mosquitto").start()
            try:
                cfg = {**base, "mqtt": {"host": broker.host, "port": broker.port, "tls": False}}
                idle = child(IDLE, [json.dumps(cfg), str(args.idle), f"{tmp}/c.sqlite"], env)
            finally:
                broker.stop()
    listener.close()

    print(f"python {sys.version.split()[0]}, {args.rounds} rounds, USB: {usb_source}")
    print(f"{'process':30} {'RSS MB':>8} {'PSS MB':>8} {'CPU ms/round':>13} {'RSS vs bare':>12}")
    bare_rss = rows[0][1]["rss_mb"]
    for name, r in rows:
        print(
            f"{name:30} {r['rss_mb']:8.1f} {r.get('pss_mb', 0):8.1f} "
            f"{r['cpu_ms_per_round']:13.3f} {r['rss_mb'] / bare_rss:11.2f}x"
        )
    if rows[1][1].get("devices_matched") is not None:
        print(f"devices matched per round: {rows[1][1]['devices_matched']}")
    if idle is not None:
        print(
            f"{'agent run, idle, connected':30} {idle['rss_mb']:8.1f} {idle.get('pss_mb', 0):8.1f}"
            f"   CPU {idle['cpu_ms_per_s_idle']:.3f} ms per second idle"
        )
    goal_rss, goal_cpu = 30.0, 5.0
    agent = rows[1][1]
    verdict = (
        "meets" if agent["rss_mb"] < goal_rss and agent["cpu_ms_per_round"] < goal_cpu else "misses"
    )
    print(f"goal <{goal_rss:.0f} MB RSS, <{goal_cpu:.0f} ms CPU per round: {verdict}")


if __name__ == "__main__":
    main()
