"""The agent against a hostile broker: it announces a small maximum packet size, subscribes to
nothing, and refuses an oversized packet before reading it.

The broker here is a real TCP server speaking just enough MQTT 5: it records each CONNECT,
answers CONNACK, then sends a PUBLISH announcing 20 MiB and streams it. Memory is measured with
tracemalloc (Python allocations of every thread, the socket buffers paho allocates included). The
control is plain paho, which allocates the whole announced packet.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from harness import procs
from paho.mqtt.enums import CallbackAPIVersion

from pantau.agent.publisher import MAX_INCOMING_PACKET, Connection, Publisher, Topics
from pantau.agent.spool import Spool

ANNOUNCED = 20 * 1024 * 1024


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


def _read_packet(sock: socket.socket) -> bytes:
    head = sock.recv(1)
    if not head:
        return b""
    length, mult = 0, 1
    while True:
        byte = sock.recv(1)[0]
        length += (byte & 127) * mult
        mult *= 128
        if not byte & 128:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return head + body


class HostileBroker:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connects: list[bytes] = []
        #: Connections whose whole 20 MiB went out (the client read nearly all of it).
        self.streamed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(5)
                self.connects.append(_read_packet(conn))
                conn.sendall(bytes([0x20, 3, 0, 0, 0]))  # CONNACK, MQTT 5, success
                conn.sendall(b"\x30" + _varint(ANNOUNCED))  # PUBLISH of 20 MiB ...
                chunk = b"\0" * 65536
                sent = 0
                while sent < ANNOUNCED and not self._stop.is_set():
                    conn.sendall(chunk)  # ... streamed until the client hangs up
                    sent += len(chunk)
                self.streamed += sent >= ANNOUNCED
                conn.settimeout(0.5)
                while _read_packet(conn):
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


@pytest.fixture
def broker() -> Iterator[HostileBroker]:
    b = HostileBroker()
    try:
        yield b
    finally:
        b.close()


def _peak_while(run: Any, until: Any, settle: float = 0.0) -> int:
    tracemalloc.start()
    try:
        run()
        procs.wait_for(until, timeout=30, interval=0.05, what="hostile exchange")
        time.sleep(settle)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_agent_refuses_an_oversized_packet_without_reading_it(
    broker: HostileBroker, tmp_path: Path
) -> None:
    publisher = Publisher(
        Connection(
            "127.0.0.1", broker.port, tls=False, username="3310-juwiring-01", password="pw",
            client_id="pantau-3310-juwiring-01", reconnect_min_s=0.1, reconnect_max_s=0.2,
        ),
        Topics(*(f"pantau/v1/33/3310/3310-juwiring-01/{k}" for k in ("state", "status", "event"))),
        Spool(str(tmp_path / "spool.sqlite"), max_events=100, max_bytes=1 << 20),
        status=lambda _value, _reason: b"{}",
        state=lambda: b"{}",
    )  # fmt: skip
    try:
        peak = _peak_while(publisher.start, lambda: len(broker.connects) >= 3)
    finally:
        publisher.stop(5)
    # it hung up and came back (three connections), never holding the announced 20 MiB
    assert peak < 4 * 1024 * 1024, peak
    # MQTT 5 CONNECT property Maximum Packet Size (39), four bytes, the agent's limit
    prop = bytes([39]) + MAX_INCOMING_PACKET.to_bytes(4, "big")
    assert all(prop in packet for packet in broker.connects)


def test_the_agent_subscribes_to_nothing(mosquitto_factory: Any, tmp_path: Path) -> None:
    """On a real mosquitto (logging every packet): the agent connects, publishes its birth and
    state, and never sends SUBSCRIBE, so a broker has nothing to deliver to it."""
    real = mosquitto_factory()
    publisher = Publisher(
        Connection("127.0.0.1", real.port, tls=False, client_id="pantau-3310-juwiring-01"),
        Topics(*(f"pantau/v1/33/3310/3310-juwiring-01/{k}" for k in ("state", "status", "event"))),
        Spool(str(tmp_path / "spool.sqlite"), max_events=100, max_bytes=1 << 20),
        status=lambda _value, _reason: b"{}",
        state=lambda: b"{}",
    )
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        procs.wait_for(
            lambda: "Received PUBLISH from pantau-3310-juwiring-01" in real.log(),
            timeout=10,
            what="the agent's first publish",
        )
    finally:
        publisher.stop(5)
    log = real.log()
    assert "New client connected from 127.0.0.1" in log
    assert "Received SUBSCRIBE" not in log


def test_control_plain_paho_allocates_the_announced_packet(broker: HostileBroker) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="control", protocol=mqtt.MQTTv5)

    def run() -> None:
        client.connect("127.0.0.1", broker.port)
        client.loop_start()

    try:
        peak = _peak_while(run, lambda: broker.streamed >= 1, settle=1.0)
    finally:
        client.disconnect()
        client.loop_stop()
    assert peak >= ANNOUNCED, peak
