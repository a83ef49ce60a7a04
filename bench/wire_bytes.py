"""Bytes on the wire per station-day: report by exception vs the old periodic full state.

Two real agents (the agent's own code, ``build_agent``, on simulated hardware: the shipped
``agent/agent.example.toml`` with its four devices and three login probes, everything healthy)
run side by side in one process against one real mosquitto with TLS (``tls_version tlsv1.2`` as
in deploy/mosquitto/mosquitto.conf, which mosquitto 2 takes as the minimum: TLS 1.3 is
negotiated; the version and cipher are printed), password and the deployment's ACL:

- ``periodic``: the old policy, still reachable by config: ``state_s = 30``, ``heartbeat_s = 0``
  (the full state every 30 s; keepalive pings between).
- ``by exception``: the defaults: full state on change, on (re)connect and every
  ``state_s = 21600`` (6 h); a compact heartbeat every ``heartbeat_s = 55``; ``keepalive_s = 60``.

Each agent connects through its own counting TCP proxy (tests/harness/netproxy.py), so what is
counted is everything the agent's TCP connection carries in both directions: TLS handshake and
records, MQTT framing, PUBACKs, pings. Not counted: IP and TCP headers (the kernel adds ~52 bytes
per segment, plus bare ACKs; a proxy cannot see them).

Time acceleration (stated, not hidden): every interval of both agents (state, heartbeat,
keepalive, poll, login) is divided by ``--speed`` (default 10), the steady state is measured
for ``--steady`` seconds of real time, and its bytes are scaled to a day with the measured rate:
``bytes x 86400 / (seconds x speed)``. The payloads are the same size at any speed. Measured
separately in the same run, each as the bytes of that step alone:

- ``connect``: TLS handshake, CONNECT, birth, first state and the ``agent_started`` event;
- ``reconnect``: the proxy drops the connection, the agent reconnects (no event);
- ``change``: a device unplugged or plugged back (hotplug): the event and the state;
- ``refresh``: one full state forced (the by-exception policy publishes one every ``state_s``;
  within the accelerated steady window none falls due, so they are added as refreshes/day x
  this cost; the periodic policy's states are all in its steady window).

A realistic day adds to the steady state a change model (``--changes 6``: e.g. a camera unplugged
and plugged back twice and one login-service outage, down and up) and ``--reconnects 2`` a day.
Broker messages per second for 20,000 stations follow from the messages counted by a subscriber.

    .venv/bin/python bench/wire_bytes.py [--speed 10] [--steady 120] [--changes 6] [--reconnects 2]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the test harness: mosquitto, certificates, proxy
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from harness import PANTAU_ACL, LinkProxy, Mosquitto, make_tls_certs  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from pantau.agent.checks.usb import UsbDevice  # noqa: E402
from pantau.agent.config import AgentConfig, load_config  # noqa: E402
from pantau.agent.service import Agent, build_agent  # noqa: E402
from pantau.agent.simulated import SimulatedHost, SimulatedProber, SimulatedUsb  # noqa: E402
from pantau.contract import wire  # noqa: E402

DAY = 86400.0
STATIONS = 20_000
GOAL_MB = 0.18
GOAL_RATIO = 20.0
USERS = {
    "collector": "collector-secret",
    "3310-juwiring-01": "juwiring-01-secret",
    "3310-klaten-02": "klaten-02-secret",
}


class Subscriber:
    """Counts what the broker delivers, per station and kind (the collector's view)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        self.client.username_pw_set("collector", USERS["collector"])
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(wire.subscription(), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        t = wire.parse_topic(msg.topic)
        with self.lock:
            self.counts[(t.station, t.kind)] += 1

    def of(self, station: str) -> Counter[str]:
        with self.lock:
            return Counter({k: n for (s, k), n in self.counts.items() if s == station})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Station:
    name: str
    station: str
    agent: Agent
    usb: SimulatedUsb
    proxy: LinkProxy
    sub: Subscriber
    stop: threading.Event = field(default_factory=threading.Event)
    results: dict[str, tuple[int, Counter[str]]] = field(default_factory=dict)

    def total(self) -> int:
        up, down = self.proxy.bytes()
        return up + down

    def mark(self) -> tuple[int, Counter[str]]:
        return self.total(), self.sub.of(self.station)

    def since(self, mark: tuple[int, Counter[str]]) -> tuple[int, Counter[str]]:
        n, c = self.mark()
        return n - mark[0], c - mark[1]


def station_config(
    base: AgentConfig, station: str, proxy: LinkProxy, ca: Path, spool: Path, **intervals: float
) -> AgentConfig:
    s = msgspec.structs
    return s.replace(
        base,
        station=s.replace(base.station, id=station, provinsi="33", kabkota="3310"),
        mqtt=s.replace(
            base.mqtt,
            host=proxy.host,
            port=proxy.port,
            tls=True,
            ca_file=str(ca),
            keepalive_s=max(1, round(intervals.pop("keepalive_s"))),
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
        ),
        spool=s.replace(base.spool, path=str(spool)),
        intervals=s.replace(base.intervals, **intervals),
    )


def devices(cfg: AgentConfig) -> list[UsbDevice]:
    return [
        UsbDevice(
            vid=rule.vid,
            pid=rule.pids[0] if rule.pids else 0x0001,
            bus=1,
            port=f"1-{i + 2}",
            device_class=rule.usb_class or 0,
            interface_classes=(rule.interface_class,) if rule.interface_class else (),
            manufacturer=rule.name.split(" ")[0],
            product=rule.name,
        )
        for i, rule in enumerate(cfg.devices)
    ]


def wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def quiet(stations: list[Station], seconds: float) -> None:
    """Wait until the spools are empty and nothing is in flight, then ``seconds`` more."""
    for st in stations:
        wait(lambda st=st: st.agent.spool.queued == 0, 30, f"{st.name}: spool drained")
    time.sleep(seconds)


def measure_step(
    stations: list[Station], step: Callable[[Station], None], settle: float, rates: dict[str, float]
) -> dict[str, tuple[float, Counter[str]]]:
    """Bytes of one step per station, minus the station's steady background over the step."""
    out = {}
    marks = {st.name: (st.mark(), time.monotonic()) for st in stations}
    for st in stations:
        step(st)
    quiet(stations, settle)
    for st in stations:
        mark, t0 = marks[st.name]
        n, c = st.since(mark)
        out[st.name] = (n - rates[st.name] * (time.monotonic() - t0), c)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=10.0, help="time acceleration factor")
    ap.add_argument("--steady", type=float, default=120.0, help="steady window, real seconds")
    ap.add_argument("--changes", type=float, default=6.0, help="changes per station-day")
    ap.add_argument("--reconnects", type=float, default=2.0, help="reconnects per station-day")
    ap.add_argument("--samples", type=int, default=6, help="changes measured")
    args = ap.parse_args()
    logging.getLogger("agent").setLevel(logging.ERROR)  # the reconnect step drops lines on purpose
    f = args.speed
    base = load_config(REPO / "agent/agent.example.toml", check_files=False)
    policies = {
        "periodic": {"state_s": 30.0, "heartbeat_s": 0.0},
        "by exception": {
            "state_s": base.intervals.state_s,
            "heartbeat_s": base.intervals.heartbeat_s,
        },
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        certs = make_tls_certs(tmp / "tls")
        broker = Mosquitto(
            tmp / "mosquitto",
            auth=True,
            tls=True,
            certs=certs,
            users=USERS,
            acl=PANTAU_ACL,
            extra_config="tls_version tlsv1.2",
        ).start()
        assert broker.tls_port is not None
        sub = Subscriber(broker)
        stations: list[Station] = []
        try:
            for (name, policy), sid in zip(
                policies.items(), ("3310-klaten-02", "3310-juwiring-01"), strict=True
            ):
                proxy = LinkProxy(broker.host, broker.tls_port)
                pw = tmp / f"{sid}.pw"
                pw.write_text(USERS[sid])
                pw.chmod(0o600)
                cfg = station_config(
                    msgspec.structs.replace(
                        base, mqtt=msgspec.structs.replace(base.mqtt, password_file=str(pw))
                    ),
                    sid,
                    proxy,
                    certs.ca_cert,
                    tmp / f"{sid}.sqlite",
                    keepalive_s=base.mqtt.keepalive_s / f,
                    state_s=policy["state_s"] / f,
                    heartbeat_s=policy["heartbeat_s"] / f,
                    poll_s=base.intervals.poll_s / f,
                    login_s=base.intervals.login_s / f,
                )
                usb = SimulatedUsb(devices(cfg))
                agent = build_agent(
                    cfg,
                    usb_reader=usb,
                    hotplug=usb,
                    host_reader=SimulatedHost(),
                    prober=SimulatedProber(),
                )
                stations.append(Station(name, sid, agent, usb, proxy, sub))
            for st in stations:
                threading.Thread(target=st.agent.run, args=(st.stop,), daemon=True).start()
            for st in stations:
                wait(lambda st=st: st.sub.of(st.station)["state"] >= 1, 30, f"{st.name}: state")
            quiet(stations, 2.0)
            connect = {st.name: st.total() for st in stations}

            # steady state: nothing changes
            marks = {st.name: st.mark() for st in stations}
            t0 = time.monotonic()
            time.sleep(args.steady)
            elapsed = time.monotonic() - t0
            steady = {st.name: st.since(marks[st.name]) for st in stations}
            rates = {n: b / elapsed for n, (b, _) in steady.items()}

            # a full state forced (the by-exception policy refreshes every state_s)
            def refresh(st: Station) -> None:
                state = st.agent.state
                assert state is not None
                with st.agent._round_lock:  # the bench forces one refresh
                    st.agent._maybe_publish(state, force=True)

            refreshed = measure_step(stations, refresh, 1.0, rates)

            # changes: the camera unplugged and plugged back, alternately
            camera = {st.name: [d for d in st.usb.devices() if d.vid == 0x04A9] for st in stations}
            changed = []
            for i in range(args.samples):

                def change(st: Station, i: int = i) -> None:
                    if i % 2 == 0:
                        st.usb.unplug(0x04A9)
                    else:
                        for d in camera[st.name]:
                            st.usb.plug(d)

                changed.append(measure_step(stations, change, 1.0, rates))

            # reconnect: the line drops, the agent comes back (TLS handshake again)
            def reconnect(st: Station) -> None:
                before = st.agent.publisher.connects if st.agent.publisher else 0
                st.proxy.cut()
                wait(
                    lambda: st.agent.publisher is not None and st.agent.publisher.connects > before,
                    30,
                    f"{st.name}: reconnect",
                )

            reconnected = measure_step(stations, reconnect, 2.0, rates)
            pub = stations[0].agent.publisher
            sock = pub._client._sock if pub is not None else None  # for the report only
            tls = f"{sock.version()} {sock.cipher()[0]}" if hasattr(sock, "cipher") else "?"
        finally:
            for st in stations:
                st.stop.set()
                st.agent.wake()
            time.sleep(1.5)
            for st in stations:
                st.proxy.close()
            sub.close()
            broker.stop()

    scale = DAY / (elapsed * f)
    print(
        f"agent/agent.example.toml (4 devices, 3 probes), {tls} to mosquitto, speed x{f:g}, "
        f"steady {elapsed:.0f} s real = {elapsed * f / 60:.0f} min simulated"
    )
    print(
        f"{'policy':14} {'connect B':>9} {'reconn B':>8} {'change B':>8} {'state B':>8} "
        f"{'steady MB/day':>13} {'realistic MB/day':>16} {'msgs/day':>8} {'msg/s @20k':>10}"
    )
    summary = {}
    for st in stations:
        name = st.name
        hb = policies[name]["heartbeat_s"]
        steady_b, steady_c = steady[name]
        per_change = sum(c[name][0] for c in changed) / len(changed)
        change_msgs = sum(sum(c[name][1].values()) for c in changed) / len(changed)
        refresh_b = refreshed[name][0]
        refreshes = DAY / policies[name]["state_s"] if hb else 0.0  # periodic: in steady
        steady_day = steady_b * scale + refreshes * refresh_b
        msgs_steady = sum(steady_c.values()) * scale + refreshes
        recon_b, recon_c = reconnected[name]
        realistic = steady_day + args.changes * per_change + args.reconnects * recon_b
        msgs = msgs_steady + args.changes * change_msgs + args.reconnects * sum(recon_c.values())
        summary[name] = (steady_day, realistic, msgs)
        print(
            f"{name:14} {connect[name]:9d} {recon_b:8.0f} {per_change:8.0f} {refresh_b:8.0f} "
            f"{steady_day / 1e6:13.3f} {realistic / 1e6:16.3f} {msgs:8.0f} "
            f"{msgs * STATIONS / DAY:10.1f}"
        )
        kinds = ", ".join(f"{k} {n * scale:.0f}" for k, n in sorted(steady_c.items()))
        print(f"{'':14} steady messages/day: {kinds}")
    old, new = summary["periodic"], summary["by exception"]
    print(
        f"ratio periodic / by exception: steady {old[0] / new[0]:.1f}x, "
        f"realistic {old[1] / new[1]:.1f}x; broker in-rate at {STATIONS} stations: "
        f"{old[2] * STATIONS / DAY:.0f} -> {new[2] * STATIONS / DAY:.0f} msg/s"
    )
    print(
        f"fleet per day at {STATIONS} stations: {old[1] * STATIONS / 1e9:.1f} GB -> "
        f"{new[1] * STATIONS / 1e9:.2f} GB"
    )
    ok = new[0] <= GOAL_MB * 1e6 and old[0] / new[0] >= GOAL_RATIO
    print(
        f"goal: steady <= {GOAL_MB} MB/day and >= {GOAL_RATIO:.0f}x fewer: "
        + ("met" if ok else "NOT met")
    )


if __name__ == "__main__":
    main()
