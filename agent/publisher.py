"""The MQTT side of the agent: one network thread owns the paho client.

What it does:

- connects to the first broker endpoint that answers (several: the nodes of a cluster, tried in
  the configured or a once-shuffled order, see :meth:`Publisher._run`) with MQTT 5 (or 3.1.1 by config; a broker that answers "unsupported protocol
  version" to MQTT 5, e.g. amqtt or NATS, makes it fall back to 3.1.1 at once), TLS verified
  against a CA, username/password;
- sets the Last Will (``offline``/``will``, retained) and, on every successful (re)connect,
  publishes the birth (``online``, retained), a fresh state (retained), then the spooled events in
  order; all QoS 1;
- deletes a spooled event only when its PUBACK arrives (a broker-side rejection, e.g. an ACL
  denial under MQTT 5, keeps it for the next connection and is logged);
- sends a compact heartbeat (``beat``, QoS 1, not retained, never spooled) when the service
  asks for one (:meth:`Publisher.request_beat`: nothing was published for ``heartbeat_s``), at
  most one in flight: on a stalled link beats are skipped, not queued;
- with MQTT 5 and a broker that allows topic aliases, the heartbeat's and the state's topics are
  sent in full once per connection and then as a 2-byte alias (a heartbeat's topic would be ~40
  bytes of its ~75);
- never queues more than :data:`MAX_QUEUED` messages in paho (:data:`MAX_INFLIGHT` of them in
  flight): events wait in the spool, not in memory, however slow or stalled the link;
- on loss, reconnects with exponential backoff and jitter (:func:`backoff_delay`), so thousands
  of stations do not reconnect in lockstep after a broker restart; each reconnect round walks
  the endpoints from the first, so a dead node costs one refused (or timed-out) attempt and the
  agent is back on a preferred node once that returns; the will, birth, state and spool are
  per connection, whichever node it goes to;
- on :meth:`Publisher.stop`, publishes ``offline``/``shutdown`` (retained), waits for its
  PUBACK (bounded) and disconnects cleanly (so the broker does not send the will).

Against a hostile or broken broker: the agent subscribes to nothing (it only publishes), announces
a maximum packet size of :data:`MAX_INCOMING_PACKET` in its MQTT 5 CONNECT (a conforming broker
never sends more), and its paho client refuses any incoming packet whose announced length exceeds
that, before reading it, and reads the network in chunks of at most :data:`RECV_CHUNK` (paho itself
would allocate the whole announced length, up to 256 MiB, per read; one such packet used to cost
~800 MB). See docs/agent.md for what remains.

paho is not safe to drive from two threads without its own loop thread, so every paho call
happens on the network thread: other threads only raise flags (:meth:`Publisher.publish_state`,
:meth:`Publisher.events_added`) that the thread acts on within :data:`TICK_S`. Callbacks never
raise (a paho callback that raises kills its loop).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pantau.agent.errors import SpoolError
from pantau.agent.loglimit import LogLimiter
from pantau.agent.spool import Spool
from pantau.contract import wire

TICK_S: Final = 0.2
#: Largest packet the agent accepts from the broker (CONNACK, PUBACK, PINGRESP, DISCONNECT: a few
#: bytes; reason strings and user properties included, far less than this).
MAX_INCOMING_PACKET: Final = 16 * 1024
#: Largest single read from the socket.
RECV_CHUNK: Final = 16 * 1024
#: MQTT 5 CONNACK reason "Unsupported Protocol Version".
UNSUPPORTED_PROTOCOL: Final = 0x84
#: Spooled events in flight at once (the rest wait in the spool, not in memory).
WINDOW: Final = 32
#: paho's bounds: every message it holds (in flight or queued) costs memory until its PUBACK.
#: The window of events plus a state, a beat, the birth and the shutdown status fit; a publish
#: beyond is refused by paho (``MQTT_ERR_QUEUE_SIZE``) and retried later, the spool is the queue.
MAX_INFLIGHT: Final = WINDOW + 4
MAX_QUEUED: Final = WINDOW + 8
SHUTDOWN_ACK_S: Final = 2.0
#: MQTT 5 PUBACK reason "Not authorized" (the broker's ACL refused the publish).
NOT_AUTHORIZED: Final = 0x87


def backoff_delay(attempt: int, low: float, high: float, unit: float) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): equal jitter.

    The ceiling doubles from ``low`` to ``high``; the delay is uniform in [ceiling/2, ceiling]
    (``unit`` in [0, 1) is the random draw), so waits grow but never synchronise.
    """
    ceiling = min(high, low * float(1 << min(attempt, 32)))
    return ceiling / 2 + unit * ceiling / 2


_BOUNDED: list[type[Any]] = []


def bounded_client_class() -> type[Any]:
    """paho's ``Client`` that refuses oversized incoming packets and reads in bounded chunks.

    Built on first use (paho is imported lazily, see :meth:`Publisher._make_client`). It hooks
    paho's socket read, a private method; tests/agent and tests/adversarial check it against
    paho's real packet reader, so a paho upgrade that changes it fails there.
    """
    if not _BOUNDED:
        import paho.mqtt.client as mqtt

        class BoundedClient(mqtt.Client):
            def _sock_recv(self, bufsize: int) -> bytes:
                packet = self._in_packet
                if packet["have_remaining"] and packet["remaining_length"] > MAX_INCOMING_PACKET:
                    # paho turns an OSError here into "connection lost": the agent reconnects.
                    raise ConnectionAbortedError(
                        f"broker sent a {packet['remaining_length']}-byte packet "
                        f"(more than {MAX_INCOMING_PACKET})"
                    )
                data: bytes = super()._sock_recv(min(bufsize, RECV_CHUNK))
                return data

        _BOUNDED.append(BoundedClient)
    return _BOUNDED[0]


def _note_sent(client: Any) -> None:
    """Tell paho a packet went out, so it sends no needless PINGREQ.

    MQTT needs a PINGREQ only when the client sent nothing for ``keepalive`` seconds; a heartbeat
    sent a little more often than that, whose PUBACK also proves the broker alive, makes pings
    unnecessary: on a metered line they would cost ~50 bytes a minute. paho 2.2 never updates
    its "last packet sent" time after an ordinary write (reported upstream as "PINGREQ still going
    out even when QoS 1 publishes are happening"), so it pings every keepalive regardless. This
    sets that time when a QoS 1 publish is handed to paho. paho still pings when nothing was
    *received* for ``keepalive`` (a PUBACK counts) and drops the connection when that ping gets
    no answer: a dead link is detected as before. Attributes missing in another paho version:
    nothing is done (only bytes are lost).
    """
    lock = getattr(client, "_msgtime_mutex", None)
    if lock is None or not hasattr(client, "_last_msg_out"):
        return
    with lock:
        client._last_msg_out = time.monotonic()


@dataclass(frozen=True, slots=True)
class Connection:
    """Resolved broker settings (the password is read from its file by the caller)."""

    host: str
    port: int
    protocol: str = "5"
    tls: bool = True
    ca_file: str = ""
    username: str = ""
    password: str | None = None
    client_id: str = ""
    keepalive_s: int = 60
    connect_timeout_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 120.0
    #: Every broker (host, port) in preference order; empty: just ``host``/``port``.
    endpoints: tuple[tuple[str, int], ...] = ()
    #: Walk the endpoints in an order drawn once (per publisher) instead of the given one.
    shuffle: bool = False

    def all_endpoints(self) -> tuple[tuple[str, int], ...]:
        return self.endpoints or ((self.host, self.port),)

    def __repr__(self) -> str:  # never show the password
        where = ", ".join(f"{h}:{p}" for h, p in self.all_endpoints())
        return f"Connection({where}, mqtt {self.protocol}, tls={self.tls})"


@dataclass(frozen=True, slots=True)
class Topics:
    state: str
    status: str
    event: str
    beat: str = ""


StatusFactory = Callable[[wire.StatusValue, str], bytes]
StateFactory = Callable[[], bytes | None]
BeatFactory = Callable[[], bytes]


class Publisher:
    """Owns the paho client on its own thread. Thread-safe entry points are public methods."""

    def __init__(
        self,
        conn: Connection,
        topics: Topics,
        spool: Spool,
        *,
        status: StatusFactory,
        state: StateFactory,
        beat: BeatFactory | None = None,
        log: logging.Logger | None = None,
        rng: random.Random | None = None,
        order_lock: threading.RLock | None = None,
    ) -> None:
        self.conn = conn
        self.topics = topics
        self.spool = spool
        self._status = status
        self._state = state
        #: Shared with whoever spools events (see :meth:`_send_state`).
        self._order = order_lock or threading.RLock()
        #: The will of the connection being attempted: made once per connection that comes up,
        #: not per attempt (each would take a seq the collector then misses).
        self._will: bytes | None = None
        self._beat = beat
        self.log = log or logging.getLogger("pantau.agent.publisher")
        self._log_limit = LogLimiter(self.log)  # spool errors repeat per event on a full disk
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._want_state = threading.Event()
        self._want_pump = threading.Event()
        self._want_beat = threading.Event()
        self._beat_mid: int | None = None
        #: At most one state in flight: a newer one wanted meanwhile goes out on its PUBACK (a
        #: retained state supersedes the previous one, so a slow line carries only the latest).
        self._state_mid: int | None = None
        self._state_pending = False
        #: Topic aliases of this connection (MQTT 5): topic -> alias, and whether the broker has
        #: learnt it (the first publish carries topic and alias, later ones only the alias). Only
        #: the topics sent often get one, the heartbeat's first: a broker may allow just one.
        self._aliases: dict[str, tuple[int, bool]] = {}
        #: ``time.monotonic()`` of the last publish of any kind (the service times beats by it).
        self.last_publish = time.monotonic()
        #: Beats sent, and beats skipped because the previous one was still unacknowledged.
        self.beats_sent = 0
        self.beats_skipped = 0
        #: Most messages paho held at once (in flight + queued) since start: bounded by MAX_QUEUED.
        self.max_held = 0
        self._inflight: dict[int, int] = {}  # paho mid -> spool id
        self._last_sent = 0
        self._shutdown_mid: int | None = None
        self._shutdown_acked = threading.Event()
        self._last_error = ""
        self.connects = 0
        #: The MQTT version in use ("5" or "3.1.1"; may fall back from 5 once).
        self.protocol = conn.protocol
        self._fallback = False
        self._came_up = False
        #: The endpoints in the order each reconnect round tries them.
        self.walk = list(conn.all_endpoints())
        if conn.shuffle:
            self._rng.shuffle(self.walk)
        #: The endpoint of the current (or last attempted) connection.
        self.endpoint = self.walk[0]
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # ------------------------------------------------------------------ public, any thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Publish the orderly ``offline`` (if connected), disconnect, end the thread.

        Waits at most ``timeout`` (default: long enough for a connect in progress to give up
        plus the offline's PUBACK; the systemd unit and WinSW allow 15 s).
        """
        self._stopping.set()
        if self._thread is not None:
            if timeout is None:
                timeout = self.conn.connect_timeout_s + SHUTDOWN_ACK_S + 1.0
            self._thread.join(timeout)

    def publish_state(self) -> None:
        """Publish a fresh state soon (retained; also done after every reconnect)."""
        self._want_state.set()

    def request_beat(self) -> None:
        """Send a heartbeat soon (if connected and the last one was acknowledged)."""
        self._want_beat.set()

    def events_added(self) -> None:
        """New events are in the spool: send them soon if connected."""
        self._want_pump.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # ------------------------------------------------------------------ network thread

    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        v5 = self.protocol == "5"
        client = bounded_client_class()(
            CallbackAPIVersion.VERSION2,
            client_id=self.conn.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.connect_timeout = self.conn.connect_timeout_s
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(MAX_QUEUED)
        if self.conn.tls:
            client.tls_set(
                ca_certs=self.conn.ca_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if self.conn.username:
            client.username_pw_set(self.conn.username, self.conn.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _note_error(self, text: str) -> None:
        """Log a connection problem once per distinct text (a dead broker is not log spam)."""
        if text != self._last_error:
            host, port = self.endpoint
            self.log.warning("mqtt %s:%s: %s", host, port, text)
            self._last_error = text

    def _run(self) -> None:
        """Reconnect rounds: each tries the endpoints in :attr:`walk` order until one comes up.

        A round that ends (all endpoints failed, or the connection that came up was lost) is
        followed by the backoff wait; the wait's doubling restarts after a connection was up.
        """
        attempt = 0
        while not self._stopping.is_set():
            if self._round():
                attempt = 0
            if self._stopping.is_set():
                return
            delay = backoff_delay(
                attempt, self.conn.reconnect_min_s, self.conn.reconnect_max_s, self._rng.random()
            )
            attempt += 1
            self._stopping.wait(delay)

    def _round(self) -> bool:
        """Try each endpoint once (a protocol fallback retries the same one); True if a
        connection came up (and has since been lost, or a stop was requested and served)."""
        index = 0
        while index < len(self.walk) and not self._stopping.is_set():
            self.endpoint = self.walk[index]
            if self._connect_once():
                self._serve()
                if self._stopping.is_set():
                    self._shutdown()
                    return True
                if self._came_up:
                    return True
            if self._fallback:
                self._fallback = False
                self.protocol = "3.1.1"
                self._client = self._make_client()
                continue
            index += 1
        return False

    def _connect_once(self) -> bool:
        import paho.mqtt.client as mqtt

        client = self._client
        try:
            if self._will is None:
                self._will = self._status("offline", "will")
            client.will_set(self.topics.status, self._will, qos=1, retain=True)
            kwargs: dict[str, Any] = {}
            if self.protocol == "5":
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                kwargs["clean_start"] = True
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.MaximumPacketSize = MAX_INCOMING_PACKET
                kwargs["properties"] = properties
            self._came_up = False
            host, port = self.endpoint
            rc = client.connect(host, port, self.conn.keepalive_s, **kwargs)
        except (OSError, ValueError) as exc:
            self._note_error(f"cannot connect: {type(exc).__name__}: {exc}")
            return False
        return bool(rc == mqtt.MQTT_ERR_SUCCESS)

    def _serve(self) -> None:
        """Run the client until the connection drops or a stop is requested."""
        import paho.mqtt.client as mqtt

        client = self._client
        connack_deadline = time.monotonic() + self.conn.connect_timeout_s
        while not self._stopping.is_set():
            if not self._connected.is_set() and time.monotonic() > connack_deadline:
                # A broker that accepts TCP but never answers CONNECT (amqtt does this with a
                # v5 CONNECT that carries a will): give up; the next connect closes the socket.
                self._note_error(f"no CONNACK within {self.conn.connect_timeout_s:g} s")
                self._abandon(client)
                return
            if self._connected.is_set():
                if self._want_pump.is_set():
                    self._want_pump.clear()
                    self._pump()
                if self._want_state.is_set():
                    self._want_state.clear()
                    self._send_state()
                if self._want_beat.is_set():
                    self._want_beat.clear()
                    self._send_beat()
            rc = client.loop(timeout=TICK_S)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                self._connected.clear()
                return

    @staticmethod
    def _abandon(client: Any) -> None:
        """Give up a CONNECT the broker has not answered, without leaving a will behind.

        A broker that is only slow (a cluster node waiting for its replicated session store after
        another node died) may still complete the CONNECT later, and would then publish this
        connection's will when it finds the socket closed: the station shown offline while it is
        already connected elsewhere. A DISCONNECT queued behind the CONNECT ends that session
        cleanly instead (a clean disconnect sends no will).
        """
        try:
            client.disconnect()
            client.loop_write()
        except (OSError, ValueError):
            pass  # the socket is gone already: nothing can be sent, nothing to take back

    def _shutdown(self) -> None:
        client = self._client
        if not self._connected.is_set():
            client.disconnect()
            return
        info = self._publish(self.topics.status, self._status("offline", "shutdown"), retain=True)
        self._shutdown_mid = info.mid
        deadline = time.monotonic() + SHUTDOWN_ACK_S
        while not self._shutdown_acked.is_set() and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != 0:
                break
        client.disconnect()
        deadline = time.monotonic() + 1.0
        while client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.05)
        self._connected.clear()
        self.log.info("mqtt: disconnected (shutdown)")

    def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> Any:
        """QoS 1 publish through paho, with a topic alias when the broker allows one."""
        props = None
        name = topic
        known = self._aliases.get(topic)
        if known is not None:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            alias, learnt = known
            if learnt:
                name = ""  # the broker knows this topic by its alias on this connection
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.TopicAlias = alias
        client = self._client
        info = client.publish(name, payload, qos=1, retain=retain, properties=props)
        self.last_publish = time.monotonic()
        if info.rc == 0:
            _note_sent(client)
            if known is not None:
                self._aliases[topic] = (known[0], True)
        held = len(client._out_messages)  # paho has no public count
        self.max_held = max(self.max_held, held)
        return info

    def _room(self) -> bool:
        """paho can take another message (checked before stamping one: a seq is for sending)."""
        return len(self._client._out_messages) < MAX_QUEUED

    def _send_state(self) -> None:
        """Send what is spooled, then stamp and publish the state, under the order lock.

        Events take their seq when spooled; the state takes its seq here. Holding the lock that
        :meth:`pantau.agent.service.Agent.emit` holds means no event can take a lower seq and
        still be unsent when the state goes out (unless the in-flight window is full, e.g. while
        a backlog drains; the collector tolerates such reordering for a while). At most one state
        is in flight: a newer one wanted meanwhile is stamped and sent on its PUBACK.
        """
        with self._order:
            self._pump()
            if self._state_mid is not None or not self._room():
                self._state_pending = True  # sent on the next PUBACK
                return
            payload = self._state()
            if payload is not None:
                info = self._publish(self.topics.state, payload, retain=True)
                if info.rc != 0:  # paho's queue is full (a stalled link): after the next PUBACK
                    self._state_pending = True
                else:
                    self._state_mid = info.mid

    def _send_beat(self) -> None:
        """Stamp and publish a heartbeat (after what is spooled, as for a state)."""
        if self._beat is None:
            return
        if self._beat_mid is not None or not self._room():
            self.beats_skipped += 1  # the last one is unacknowledged: the link is slow or gone
            return
        with self._order:
            self._pump()
            info = self._publish(self.topics.beat, self._beat())
        if info.rc == 0:
            self._beat_mid = info.mid
            self.beats_sent += 1

    def _pump(self) -> None:
        """Send spooled events after the last one sent, keeping at most WINDOW in flight."""
        while len(self._inflight) < WINDOW:
            try:
                rows = self.spool.after(self._last_sent, WINDOW - len(self._inflight))
            except SpoolError as exc:
                self._log_limit.log_limited(logging.ERROR, "spool-read", "spool: %s", exc)
                return
            if not rows:
                return
            for row in rows:
                info = self._publish(row.topic, row.payload)
                if info.rc != 0:  # paho's queue is full: the rest waits in the spool
                    return
                self._inflight[info.mid] = row.id
                self._last_sent = row.id

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: Any, _userdata: Any, _flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                if reason.value == UNSUPPORTED_PROTOCOL and self.protocol == "5":
                    self.log.warning("mqtt: the broker does not speak MQTT 5, using 3.1.1")
                    self._fallback = True
                    return
                self._note_error(f"broker refused the connection: {reason}")
                return
            self._last_error = ""
            self._will = None  # this connection's will is set; the next one takes a new seq
            self.connects += 1
            self._came_up = True
            self.log.info("mqtt: connected to %s:%s", *self.endpoint)
            # Whatever paho kept from the last connection is resent from the spool instead.
            client.drop_out_messages()
            self._inflight.clear()
            self._last_sent = 0
            self._beat_mid = None
            self._state_mid = None
            self._state_pending = False
            self._want_beat.clear()  # asked for while disconnected: the birth says as much
            most = 0
            if self.protocol == "5" and props is not None:
                most = int(getattr(props, "TopicAliasMaximum", 0) or 0)
            frequent = [t for t in (self.topics.beat, self.topics.state) if t]
            self._aliases = {t: (i + 1, False) for i, t in enumerate(frequent[:most])}
            self._connected.set()
            self._publish(self.topics.status, self._status("online", ""), retain=True)
            self._want_state.clear()
            self._send_state()
            self._want_pump.clear()
            self._pump()
        except Exception:
            self.log.exception("mqtt: error in on_connect")

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        try:
            was = self._connected.is_set()
            self._connected.clear()
            self._inflight.clear()
            self._beat_mid = None
            self._state_mid = None
            if was and not self._stopping.is_set():
                self._note_error(f"connection lost: {reason}")
        except Exception:
            self.log.exception("mqtt: error in on_disconnect")

    def _event_acked(self, mid: int, reason: Any) -> None:
        event_id = self._inflight.pop(mid, None)
        if event_id is None:
            return
        if reason.is_failure:
            self.log.error("mqtt: broker rejected event %d: %s (kept)", event_id, reason)
            return
        try:
            self.spool.delete(event_id)
        except SpoolError as exc:  # kept: sent again after a reconnect (same seq)
            self._log_limit.log_limited(logging.ERROR, "spool-delete", "spool: %s", exc)

    def _not_authorized(self) -> None:
        """The broker's ACL refused a publish: say which station id this agent publishes as."""
        station = self.topics.state.split("/")[-2]
        root = self.topics.state.rsplit("/", 1)[0]
        self._log_limit.log_limited(
            logging.ERROR,
            "acl-denied",
            "mqtt: the broker refused a publish (not authorized): this agent publishes as station "
            "%s under %s/#, as user %r; the broker's ACL must let that user write there. Check "
            "station.id, provinsi, kabkota and mqtt.username in agent.toml against the ACL made "
            "by `pantau provision` (each station may publish only as its own id)",
            station,
            root,
            self.conn.username or station,
        )

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        try:
            if getattr(reason, "value", 0) == NOT_AUTHORIZED:
                self._not_authorized()
            if mid == self._shutdown_mid:
                self._shutdown_acked.set()
                return
            if mid == self._beat_mid:
                self._beat_mid = None
            elif mid == self._state_mid:
                self._state_mid = None
            else:
                self._event_acked(mid, reason)
            if self._state_pending and self._state_mid is None:
                self._state_pending = False
                self._want_state.set()
            self._pump()
        except Exception:
            self.log.exception("mqtt: error in on_publish")
