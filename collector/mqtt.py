"""The MQTT side: a paho-mqtt 2.x client feeding :class:`pantau.collector.fleet.Fleet`.

Callbacks run on paho's network thread and never raise (an exception there would kill paho's
loop): every failure is caught, counted (``internal_error``) and logged at a bounded rate. The
message callback is the ingest hot path: decode (outside the lock) and apply under the fleet lock,
nothing else. Subscriptions are (re)made in ``on_connect``, i.e. after every reconnect, and the
broker then re-sends every retained state and status, which rebuilds the fleet after a broker or
collector restart. A failed connection attempt (``on_connect_fail``, or a CONNACK refusal) is
counted in ``connect_failures`` and logged as a warning: once per outage, then once a minute.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from pantau.collector.config import MqttConfig
from pantau.collector.durable import Checkpointer
from pantau.collector.fleet import Fleet
from pantau.contract.vocabulary import INTERNAL_ERROR, STALE_SEQ, STALE_SESSION, STALE_WILL

log = logging.getLogger(__name__)
#: Rejections that are normal protocol life (late wills, replays after a reconnect), not worth a
#: log line.
_QUIET = frozenset({STALE_SESSION, STALE_WILL, STALE_SEQ})


class _RateLimited:
    """Log at most one record per ``interval`` seconds (counting the suppressed ones)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.next = 0.0
        self.suppressed = 0

    def reset(self) -> None:
        """Let the next record through at once (a new episode, e.g. the next outage)."""
        self.next = 0.0
        self.suppressed = 0

    def allow(self) -> int | None:
        now = self.clock()
        if now < self.next:
            self.suppressed += 1
            return None
        self.next = now + self.interval
        suppressed, self.suppressed = self.suppressed, 0
        return suppressed


class _Client(paho.Client):
    """paho's client, remembering why the last connection attempt failed.

    paho's ``on_connect_fail`` callback is given no reason; the exception is raised (and dropped)
    by :meth:`reconnect` on paho's network thread.
    """

    last_connect_error: OSError | None = None
    #: Every broker (host, port) to try in turn; :meth:`advance` moves to the next.
    endpoints: tuple[tuple[str, int], ...] = ()
    _index = 0
    _advance = False

    def advance(self) -> None:
        """Use the next endpoint for the next attempt (after a failure or a lost connection)."""
        self._advance = len(self.endpoints) > 1

    def reconnect(self) -> MQTTErrorCode:
        if self._advance:
            self._advance = False
            self._index = (self._index + 1) % len(self.endpoints)
            self._host, self._port = self.endpoints[self._index]
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise


def _describe(exc: OSError | None) -> str:
    """A connection error in one line, e.g. ``ConnectionRefusedError: Connection refused``."""
    if exc is None:
        return "unknown error"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _not_logged(suppressed: int) -> str:
    return f" ({suppressed} failed attempts since the last warning)" if suppressed else ""


#: With ``fleet.state_file``: QoS 1 messages the broker may have in flight to an MQTT 5 collector
#: (Receive Maximum). Without a state file none is asked for (the broker's limit applies).
RECEIVE_MAXIMUM: Final = 10000
#: The in-flight window assumed for an MQTT 3.1.1 collector (deploy/mosquitto.conf).
MQTT311_WINDOW: Final = 100


def default_client_id() -> str:
    """``pantau-collector-{hostname}``: stable across restarts (the broker keeps the session of
    a client id), different per host. Two replicas on one host need ``mqtt.client_id`` set."""
    return f"pantau-collector-{socket.gethostname()[:32]}"


class MqttIngest:
    """Subscribe to the configured topic filters and feed every message to the fleet."""

    def __init__(
        self,
        cfg: MqttConfig,
        fleet: Fleet,
        *,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
        state_file: str = "",
    ) -> None:
        self.cfg = cfg
        self.fleet = fleet
        self.clock = clock
        self.connects = 0
        self._stopping = False
        self.subscribe_failures = 0
        #: Connection attempts that failed (refused, unresolvable, TLS, CONNACK refusal).
        self.connect_failures = 0
        self._errors = _RateLimited()
        self._rejections = _RateLimited()
        #: One warning per outage, then at most one a minute while it lasts.
        self._connect_log = _RateLimited(60.0)
        self._session_up = False
        #: Connections after which the broker had no session for us (queued messages lost).
        self.sessions_lost = 0
        self.persistent = cfg.session_expiry_s > 0
        v5 = cfg.protocol == "5"
        self.client_id = cfg.client_id or default_client_id()
        self.client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else not self.persistent,
            manual_ack=bool(state_file),
        )
        self.client.endpoints = cfg.broker_endpoints()
        self.checkpointer: Checkpointer | None = None
        if state_file:
            # Acknowledgements wait for checkpoints, which rewrite the whole file (2.5 MB at
            # 20,000 stations): a wide window lets one write release thousands of them
            # (bench/checkpoint.py). MQTT 5 asks for it (Receive Maximum); with 3.1.1 the broker's
            # in-flight limit applies (deploy/mosquitto: 100).
            window = RECEIVE_MAXIMUM if v5 else MQTT311_WINDOW
            self.checkpointer = Checkpointer(
                Path(state_file), fleet, self.client.ack, batch=window // 2
            )
        self._connect_properties: Properties | None = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
            if state_file:
                props.ReceiveMaximum = RECEIVE_MAXIMUM
            self._connect_properties = props
        if cfg.username:
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls:
            self.client.tls_set(
                ca_certs=cfg.ca_file or None,
                certfile=cfg.cert_file or None,
                keyfile=cfg.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        # Annotated int, but paho computes with any number: fractions of a second work.
        self.client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        if v5:
            self._subscriptions: list[Any] = [
                (t, SubscribeOptions(qos=cfg.qos)) for t in cfg.topics
            ]
        else:
            self._subscriptions = [(t, cfg.qos) for t in cfg.topics]
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect in the background (retrying with backoff until :meth:`stop`)."""
        if self.checkpointer is not None:
            self.checkpointer.start()
        self.fleet.set_connected(False, self.clock())  # blind until connected and replayed
        if self.cfg.protocol == "5":
            # clean_start False on every connect, the first one included (paho's default cleans
            # the first): the session the previous process left is resumed.
            self.client.connect_async(
                *self.client.endpoints[0],
                keepalive=self.cfg.keepalive_s,
                clean_start=not self.persistent,
                properties=self._connect_properties,
            )
        else:
            self.client.connect_async(*self.client.endpoints[0], keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        if self.checkpointer is not None:
            self.checkpointer.stop()  # last checkpoint; its acknowledgements still go out
        self.client.disconnect()
        self.client.loop_stop()
        self.fleet.set_connected(False)

    @property
    def connected(self) -> bool:
        return self.fleet.mqtt_connected

    # ------------------------------------------------------------------ callbacks (paho thread)

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        try:
            if reason.is_failure:
                self.connect_failures += 1
                self.client.advance()
                suppressed = self._connect_log.allow()
                if suppressed is not None:
                    log.warning(
                        "MQTT connection to %s:%d refused by the broker: %s; retrying with "
                        "backoff%s",
                        client.host,
                        client.port,
                        reason,
                        _not_logged(suppressed),
                    )
                return
            self._connect_log.reset()
            self.connects += 1
            self._session_up = True
            if self.checkpointer is not None:
                self.checkpointer.new_connection()
            if self.persistent and not flags.session_present:
                if self.connects > 1:
                    # The broker lost our session (restarted without persistence, or we were
                    # away longer than mqtt.session_expiry_s): events sent meanwhile are gone.
                    self.sessions_lost += 1
                    log.warning(
                        "MQTT broker had no session for client id %s: events published while "
                        "the collector was away are lost (state is rebuilt from retained messages)",
                        self.client_id,
                    )
            elif self.persistent:
                log.info("MQTT session of %s resumed: queued messages follow", self.client_id)
            result, _mid = client.subscribe(self._subscriptions)
            if result != paho.MQTT_ERR_SUCCESS:
                log.warning("MQTT subscribe could not be sent: %s", paho.error_string(result))
                return
            self.fleet.set_connected(True, self.clock())  # still blind until the replay is over
            log.info(
                "MQTT connected to %s:%d, subscribing to %s",
                client.host,
                client.port,
                ", ".join(self.cfg.topics),
            )
        except Exception:
            log.exception("MQTT on_connect failed")

    def _on_connect_fail(self, client: paho.Client, _u: Any) -> None:
        """No connection at all (refused, unresolvable host, timeout, TLS handshake)."""
        try:
            self.connect_failures += 1
            self.client.advance()
            suppressed = self._connect_log.allow()
            if suppressed is not None:
                error = client.last_connect_error if isinstance(client, _Client) else None
                log.warning(
                    "MQTT cannot connect to %s:%d: %s; retrying with backoff%s",
                    client.host,
                    client.port,
                    _describe(error),
                    _not_logged(suppressed),
                )
        except Exception:
            log.exception("MQTT on_connect_fail failed")

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        try:
            granted = 0
            for topic, rc in zip(self.cfg.topics, reasons, strict=False):
                if rc.is_failure:
                    self.subscribe_failures += 1
                    log.error("MQTT subscription to %s refused by the broker: %s", topic, rc)
                else:
                    granted += 1
            if granted:
                # The broker now replays the retained states; the fleet ends its blind period
                # once they have stopped coming.
                self.fleet.set_subscribed(self.clock())
        except Exception:
            log.exception("MQTT on_subscribe failed")

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        try:
            self.fleet.set_connected(False, self.clock())
            if self.checkpointer is not None:
                self.checkpointer.new_connection()
            # Only a session that was up is news; after a refused CONNACK paho calls this too,
            # and the refusal was already logged (rate-limited) by _on_connect.
            if not self._stopping and self._session_up:
                self.client.advance()  # the node may be gone: the next one first
                log.warning("MQTT disconnected (%s); reconnecting", reason)
            self._session_up = False
        except Exception:
            log.exception("MQTT on_disconnect failed")

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            # bytes from the network (a bytearray only if a user set one)
            payload = cast(bytes, msg.payload)
            reason = self.fleet.ingest(msg.topic, payload, self.clock(), retained=msg.retain)
            if reason and reason not in _QUIET:
                suppressed = self._rejections.allow()
                if suppressed is not None:
                    log.info(
                        "rejected a message on %.200r: %s (%d other rejections not logged)",
                        msg.topic,
                        reason,
                        suppressed,
                    )
        except Exception:
            self.fleet.count_rejection(INTERNAL_ERROR)
            suppressed = self._errors.allow()
            if suppressed is not None:
                log.exception("error handling an MQTT message (%d similar suppressed)", suppressed)
        if self.checkpointer is not None:
            try:
                # after the message was applied (or failed): its acknowledgement may wait for
                # the next checkpoint of the event counts
                self.checkpointer.received(msg.mid, msg.qos)
            except Exception:
                log.exception("MQTT acknowledgement failed")
