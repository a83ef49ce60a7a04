"""A small synchronous wrapper around a paho-mqtt 2.x client for tests.

Every wait has a timeout and raises :class:`~harness.procs.HarnessError` when it expires, so a
test fails with a reason instead of hanging. Received messages land in :attr:`MqttClient.messages`.

Gotchas (mosquitto 2.0, paho 2.x): a publish denied by the ACL is visible only with MQTT 5 and
QoS >= 1, as PUBACK reason 135 in ``on_publish`` (``MessageInfo.rc`` stays 0); a normal MQTT 5
publish may get reason 16 (no matching subscribers), so check ``reason.is_failure``, never
``== 0``. With TLS, certificate errors are raised by :meth:`MqttClient.connect` itself
(``ssl.SSLCertVerificationError``).
"""

from __future__ import annotations

import queue
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from .procs import HarnessError


class MqttClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | str | None = None,
        protocol: int = mqtt.MQTTv5,
        keepalive: int = 60,
    ) -> None:
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        self.client.reconnect_delay_set(0.05, 0.5)
        if username is not None:
            self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._cond = threading.Condition()
        self._connack: ReasonCode | None = None
        self._acks: dict[int, ReasonCode | int] = {}
        self._subacks: dict[int, list[ReasonCode]] = {}
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -------------------------------------------------------------- callbacks (loop thread)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._connack = reason
            self._cond.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = reason
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = reasons
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(msg)

    def _wait(self, pred: Any, timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(pred, timeout):
                raise HarnessError(f"MQTT {what}: nothing after {timeout} s")

    # -------------------------------------------------------------- API

    def connect(self, timeout: float = 5.0) -> ReasonCode:
        """Connect and return the CONNACK reason (check ``.is_failure``). TLS errors raise."""
        self.client.connect(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        self._wait(lambda: self._connack is not None, timeout, "CONNACK")
        assert self._connack is not None
        return self._connack

    def publish(
        self,
        topic: str,
        payload: bytes | str = b"",
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = 5.0,
    ) -> ReasonCode | int:
        """Publish and, for QoS >= 1, wait for the broker's acknowledgement; return its reason."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise HarnessError(f"MQTT publish to {topic!r} failed locally: {info.rc}")
        self._wait(lambda: info.mid in self._acks, timeout, f"PUBACK for {topic!r}")
        with self._cond:
            return self._acks.pop(info.mid)

    def subscribe(self, topic: str, *, qos: int = 1, timeout: float = 5.0) -> list[ReasonCode]:
        """Subscribe and wait for the SUBACK; return its reasons."""
        rc, mid = self.client.subscribe(topic, qos=qos)
        if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise HarnessError(f"MQTT subscribe to {topic!r} failed locally: {rc}")
        self._wait(lambda: mid in self._subacks, timeout, f"SUBACK for {topic!r}")
        with self._cond:
            return self._subacks.pop(mid)

    def expect(self, topic: str | None = None, *, timeout: float = 5.0) -> mqtt.MQTTMessage:
        """The next received message (on ``topic`` if given; others received meanwhile are
        dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HarnessError(f"MQTT: no message on {topic or 'any topic'} in {timeout} s")
            try:
                msg = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if topic is None or msg.topic == topic:
                return msg

    def close(self) -> None:
        """Clean disconnect (no will) and stop the network thread. Safe to call twice."""
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def __enter__(self) -> MqttClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
