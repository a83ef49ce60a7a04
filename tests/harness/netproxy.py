"""A userspace TCP proxy that counts bytes and can emulate a thin, slow or broken line.

There is no ``tc netem`` on these machines, so a link is emulated between a client and a server
in userspace: :class:`LinkProxy` listens on a free loopback port and relays every accepted
connection to ``(target_host, target_port)``. Per direction it can:

- count the bytes each side sent (``up``: client to server, ``down``: server to client): TCP
  payload, i.e. everything the connection carries including TLS records and MQTT framing, but
  not IP/TCP headers (the kernel adds those);
- limit the bandwidth (``rate_bps``, bits per second: chunks leave one after another, each taking
  ``8 * len / rate_bps`` seconds) and add a one-way ``delay_s`` after that;
- :meth:`LinkProxy.stall` for a while (nothing is delivered, nothing is lost, sockets stay open:
  a congested or flapping radio link);
- :meth:`LinkProxy.blackhole` (everything is silently dropped and no FIN or RST is ever sent:
  a cut cable, a dead NAT entry or a station that lost power, as the other side sees it), in
  both directions or only one (``up=False`` or ``down=False``: a half-open link that still
  carries the other way).

Backpressure is real: each direction buffers at most ``buffer_bytes`` in the proxy (a router's
queue); beyond that the proxy stops reading, so the sender's socket fills and its writes block,
as on a real thin line. Threads are daemons; :meth:`LinkProxy.close` ends everything.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from .procs import free_port

_CHUNK = 512


@dataclass
class Shape:
    """How one direction of the link behaves (change the fields at any time)."""

    rate_bps: float | None = None
    delay_s: float = 0.0


@dataclass
class Counters:
    up: int = 0
    down: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, direction: str, n: int) -> None:
        with self.lock:
            setattr(self, direction, getattr(self, direction) + n)

    def read(self) -> tuple[int, int]:
        with self.lock:
            return self.up, self.down


class _Pipe:
    """One direction of one connection: a reader thread and a paced writer thread."""

    def __init__(self, proxy: LinkProxy, src: socket.socket, dst: socket.socket, way: str) -> None:
        self.proxy = proxy
        self.src = src
        self.dst = dst
        self.way = way
        self.shape = proxy.shape_up if way == "up" else proxy.shape_down
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.cond = threading.Condition()
        self.eof = False
        for target in (self._read, self._write):
            threading.Thread(target=target, daemon=True, name=f"proxy-{way}").start()

    def _read(self) -> None:
        while True:
            try:
                data = self.src.recv(_CHUNK)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.proxy.counters.add(self.way, len(data))
                self.queue.append((time.monotonic(), data))
                self.queued += len(data)
                self.cond.notify_all()
                while self.queued > self.proxy.buffer_bytes and not self.proxy.closed:
                    self.cond.wait(0.1)

    def _write(self) -> None:
        tx_free = 0.0  # when the emulated line is free to send the next chunk
        while True:
            with self.cond:
                while not self.queue and not self.eof:
                    self.cond.wait(0.1)
                if not self.queue:
                    break  # eof and drained
                arrived, data = self.queue.popleft()
                self.queued -= len(data)
                self.cond.notify_all()
            rate = self.shape.rate_bps
            start = max(tx_free, arrived)
            tx_free = start + (len(data) * 8 / rate if rate else 0.0)
            deliver_at = tx_free + self.shape.delay_s
            while True:
                now = time.monotonic()
                hold = max(deliver_at - now, self.proxy.stalled_until - now)
                if hold <= 0 or self.proxy.closed:
                    break
                time.sleep(min(hold, 0.05))
            tx_free = max(tx_free, time.monotonic() - self.shape.delay_s)
            if self.proxy.dropping[self.way]:
                continue  # dropped on the floor; the sender never learns
            try:
                self.dst.sendall(data)
            except OSError:
                break
        if not self.proxy.dropping[self.way]:
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)


class LinkProxy:
    """Relay ``127.0.0.1:port`` to the target, counting and shaping (see the module doc)."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        up: Shape | None = None,
        down: Shape | None = None,
        buffer_bytes: int = 16 * 1024,
    ) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.shape_up = up or Shape()
        self.shape_down = down or Shape()
        self.buffer_bytes = buffer_bytes
        self.counters = Counters()
        self.stalled_until = 0.0
        self.blackholed = False  # both ways (new connections too)
        self.dropping = {"up": False, "down": False}
        self.closed = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.blackholed:  # a dead line: the SYN got through (loopback) but nothing else
                with self._lock:
                    self._socks.append(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, server]
                self.counters.connections += 1
            _Pipe(self, client, server, "up")
            _Pipe(self, server, client, "down")

    # ------------------------------------------------------------------ control

    def bytes(self) -> tuple[int, int]:
        """(up, down) bytes carried so far, all connections."""
        return self.counters.read()

    def stall(self, seconds: float) -> None:
        """Deliver nothing for ``seconds`` (data is held, not lost; sockets stay open)."""
        self.stalled_until = max(self.stalled_until, time.monotonic() + seconds)

    def blackhole(self, on: bool = True, *, up: bool = True, down: bool = True) -> None:
        """Silently drop from now on (no FIN/RST): client to server (``up``), server to client
        (``down``) or both; with both, new connections get nowhere either."""
        self.dropping = {"up": on and up, "down": on and down}
        self.blackholed = on and up and down

    def cut(self) -> None:
        """Drop the current connections abruptly (RST-like close) but keep accepting new ones."""
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.closed = True
        self._listener.close()
        self.cut()

    def __enter__(self) -> LinkProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
