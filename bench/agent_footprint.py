"""Agent footprint: RSS and CPU per check round, side by side with a bare interpreter.

Each measurement runs in a fresh child process and reports its own numbers (VmRSS and PSS from
/proc, CPU from ``time.process_time``, which counts every thread):

- ``bare``: ``python -c pass`` plus the measuring code: the interpreter's floor.
- ``libraries``: only what the agent cannot do without, used once: paho (which imports ssl,
  urllib.request, http.client and email whether TLS is used or not), msgspec, sqlite3 in WAL
  mode, pyusb enumerating on libusb. The agent's own cost is the difference to ``agent``.
- ``agent``: the real agent objects as ``pantau-agent run`` builds them (paho client, pyusb on
  libusb, psutil, spool), then ``--rounds`` rounds of the USB and host checks (no network).
- ``agent+tcp``: the same rounds plus one login probe (TCP connect to a local listener).
- ``idle``: ``pantau-agent run``'s service loop connected to a real mosquitto for ``--idle``
  seconds with nothing changing: CPU per second of doing nothing.
- ``pantau-agent run``: the real command (``pantau.agent.cli.main(["run", "--config", F])``) on a TOML
  file as a station is deployed: TLS verified against one CA file (as ``pantau provision``
  writes it), udev hotplug (pyudev), the login TCP probe, the spool on disk, logging to stderr;
  measured idle like ``idle``, then stopped with SIGTERM. It runs with the ``Environment=`` of
  deploy/systemd/pantau-agent.service (e.g. ``MALLOC_ARENA_MAX``), as the service does; the
  other rows do not.

Bytecode: the children find compiled bytecode for every module, as an agent installed with pip
has (pip compiles at install): they share a ``PYTHONPYCACHEPREFIX`` in a temporary directory and
each measured child is run once before to fill it. ``--no-bytecode`` measures the other case
(``PYTHONDONTWRITEBYTECODE=1`` with an editable install: the agent's own modules are compiled
from source at every start, ~0.2 MB more RSS).

USB devices come from a umockdev testbed with ``--devices`` fake devices (real libusb
enumerating them) when umockdev is installed, else (or with ``--no-umockdev``) from whatever the
machine has. umockdev's preload library intercepts every file access of the child, so it adds to
both RSS and CPU: the machine run is the better estimate of a real station's cost, the umockdev
run shows the cost of enumerating devices.

    .venv/bin/python bench/agent_footprint.py [--rounds 300] [--devices 10] [--idle 5]
    .venv/bin/python bench/agent_footprint.py --no-umockdev [--no-bytecode] [--optimize]
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
from statistics import median
from typing import Any

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy/systemd/pantau-agent.service"
sys.path.insert(0, str(REPO / "tests"))  # the test harness: umockdev bus, mosquitto
sys.path.insert(0, str(REPO))  # pantau.agent.config renders the run row's TOML file

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

LIBRARIES = MEASURE + textwrap.dedent(
    """
    import sys
    import msgspec, sqlite3, usb.core, usb.backend.libusb1
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('CREATE TABLE IF NOT EXISTS t (x BLOB)')
    db.execute('INSERT INTO t VALUES (?)', (msgspec.json.encode({'a': [1, 2]}),))
    backend = usb.backend.libusb1.get_backend()
    devices = len(list(usb.core.find(find_all=True, backend=backend))) if backend else -1
    print(json.dumps({**mem(), 'cpu_ms_per_round': 0.0, 'devices': devices}))
    """
)

AGENT = MEASURE + textwrap.dedent(
    """
    import sys, threading
    from pantau.agent.config import convert_config
    from pantau.agent.service import build_agent
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
    from pantau.agent.config import convert_config
    from pantau.agent.service import build_agent
    cfg = convert_config(json.loads(sys.argv[1]), 'bench')
    seconds = float(sys.argv[2])
    agent = build_agent(cfg, hotplug=sys.argv[4] == 'udev', spool_path=sys.argv[3])
    stop = threading.Event()
    t = threading.Thread(target=agent.run, args=(stop,))
    t.start()
    agent.publisher.wait_connected(10)
    time.sleep(1.0)  # first rounds and publishes done
    start = time.process_time()
    time.sleep(seconds)
    cpu = (time.process_time() - start) / seconds * 1000
    m = mem()
    hotplug = agent.hotplug is not None  # None: udev was unavailable, polling only
    stop.set(); agent.wake(); t.join(10)
    print(json.dumps({**m, 'cpu_ms_per_s_idle': cpu, 'connected': agent.publisher.connects,
                      'hotplug': hotplug}))
    """
)


#: Interpreter flags of every child (``--optimize``: ``-OO``).
PYTHON_FLAGS: list[str] = []

RUN = MEASURE + textwrap.dedent(
    """
    import logging, os, signal, sys, threading
    from pantau.agent.cli import main
    seconds = float(sys.argv[2])
    lines = []
    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())
    logging.getLogger('pantau.agent').addHandler(Keep())
    out = {}
    def measure():
        time.sleep(2.0)  # connect, first rounds and publishes
        start = time.process_time()
        time.sleep(seconds)
        out.update(mem(), cpu_ms_per_s_idle=(time.process_time() - start) / seconds * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=measure, daemon=True).start()
    rc = main(['run', '--config', sys.argv[1]])
    print(json.dumps({**out, 'rc': rc,
                      'connected': any(m.startswith('mqtt: connected') for m in lines),
                      'hotplug': not any(m.startswith('hotplug unavailable') for m in lines)}))
    """
)


def child(code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    if "PYTHONPYCACHEPREFIX" in env:  # a first run fills the bytecode cache; measure the second
        _child(code, [a.replace(".sqlite", "-warm.sqlite") for a in args], env)
    return _child(code, args, env)


def _child(code: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, *PYTHON_FLAGS, "-c", code, *args],
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


def unit_environment(unit: Path = UNIT) -> dict[str, str]:
    """The ``Environment=`` assignments of the systemd unit (what the deployed service gets)."""
    import shlex

    env: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.removeprefix("Environment=")):
                key, _, value = item.partition("=")
                env[key] = value
    return env


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


def agent_rows_first(rows: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return next((r for n, r in rows if n.startswith("agent")), {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1, help="measure every row this many times")
    parser.add_argument(
        "--no-umockdev", action="store_true", help="enumerate the machine's own USB devices"
    )
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="children compile from source (as with PYTHONDONTWRITEBYTECODE=1), no warm-up run",
    )
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="children run with python -OO (no docstrings, no asserts): what that would save",
    )
    args = parser.parse_args()
    if args.optimize:
        PYTHON_FLAGS.append("-OO")

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
    unit_env = unit_environment()
    bytecode = "compiled from source" if args.no_bytecode else "cached"
    bytecode += ", python -OO" if args.optimize else ""
    print(
        f"python {sys.version.split()[0]}, {args.rounds} rounds, USB: {usb_source}, "
        f"bytecode: {bytecode}, {args.runs} run(s); each row printed as soon as it is measured",
        flush=True,
    )
    print(
        f"{'run':>3} {'process':30} {'RSS MB':>8} {'PSS MB':>8} {'CPU ms/round':>13}"
        f" {'RSS vs bare':>12}",
        flush=True,
    )
    rss: dict[str, list[float]] = {}
    rows: list[tuple[str, dict[str, Any]]] = []
    idle_rows: list[tuple[str, dict[str, Any]]] = []
    bare_rss = 0.0

    def row(run: int, name: str, r: dict[str, Any]) -> None:
        nonlocal bare_rss
        bare_rss = bare_rss or r["rss_mb"]
        rss.setdefault(name, []).append(r["rss_mb"])
        if "cpu_ms_per_round" in r:
            rows.append((name, r))
            print(
                f"{run:>3} {name:30} {r['rss_mb']:8.1f} {r.get('pss_mb', 0):8.1f} "
                f"{r['cpu_ms_per_round']:13.3f} {r['rss_mb'] / bare_rss:11.2f}x",
                flush=True,
            )
            return
        idle_rows.append((name, r))
        note = "" if r["connected"] else " (NOT connected)"
        if name.startswith("pantau-agent") and not r["hotplug"]:
            note += " (udev unavailable: polling)"
        print(
            f"{run:>3} {name:30} {r['rss_mb']:8.1f} {r.get('pss_mb', 0):8.1f} "
            f"{r['cpu_ms_per_s_idle']:8.3f} ms/s {r['rss_mb'] / bare_rss:11.2f}x  "
            f"(CPU per second idle, connected){note}",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        if args.no_bytecode:
            env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env = {**env, "PYTHONPYCACHEPREFIX": f"{tmp}/pycache"}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        broker = None
        try:
            if args.idle > 0:
                from harness import Mosquitto, make_tls_certs

                certs = make_tls_certs(Path(tmp) / "tls")
                broker = Mosquitto(Path(tmp) / "mosquitto", tls=True, certs=certs).start()
            for run in range(1, args.runs + 1):
                t = f"{tmp}/r{run}"
                row(run, "bare python", child(BARE, [], env))
                row(run, "libraries only", child(LIBRARIES, [f"{t}l.sqlite"], env))
                a = [json.dumps(base), str(args.rounds), f"{t}a.sqlite"]
                row(run, "agent (usb+host)", child(AGENT, a, env))
                b = [json.dumps(with_tcp), str(args.rounds), f"{t}b.sqlite"]
                row(run, "agent (usb+login tcp+host)", child(AGENT, b, env))
                if broker is not None:
                    from pantau.agent.config import convert_config, render_toml

                    plain = {
                        **base,
                        "mqtt": {"host": broker.host, "port": broker.port, "tls": False},
                    }
                    deployed = {
                        **with_tcp,
                        "spool": {"path": f"{t}d.sqlite"},
                        "mqtt": {
                            "host": broker.host,
                            "port": broker.tls_port,
                            "tls": True,
                            "ca_file": str(certs.ca_cert),
                        },
                    }
                    c = [json.dumps(plain), str(args.idle), f"{t}c.sqlite", "none"]
                    row(run, "agent run, idle", child(IDLE, c, env))
                    toml = Path(f"{t}agent.toml")
                    toml.write_text(render_toml(convert_config(deployed, "bench")))
                    r = child(RUN, [str(toml), str(args.idle)], {**env, **unit_env})
                    row(run, "pantau-agent run, idle", r)
        finally:
            if broker is not None:
                broker.stop()
    listener.close()

    print(f"devices matched per round: {agent_rows_first(rows).get('devices_matched')}")
    if args.runs > 1:
        print("RSS MB min/median/max over the runs:")
        for name, values in rss.items():
            spread = "/".join(f"{v:.1f}" for v in (min(values), median(values), max(values)))
            print(f"    {name:30} {spread}")
    unit_vars = " ".join(f"{k}={v}" for k, v in sorted(unit_env.items()))
    print(f"pantau-agent run: environment of {UNIT.relative_to(REPO)}: {unit_vars}")
    goal_rss, goal_cpu = 30.0, 5.0
    agent_rows = [(n, r) for n, r in rows if n.startswith("agent")]
    over = [n for n, r in agent_rows + idle_rows if r["rss_mb"] >= goal_rss]
    over += [n for n, r in agent_rows if r["cpu_ms_per_round"] >= goal_cpu]
    over = list(dict.fromkeys(over))
    verdict = "met by every agent row" if not over else "missed by: " + ", ".join(over)
    print(f"goal <{goal_rss:.0f} MB RSS, <{goal_cpu:.0f} ms CPU per round: {verdict}")


if __name__ == "__main__":
    main()
