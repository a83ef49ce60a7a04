"""A local MQTT broker for ``pantau demo`` and ``pantau simulate``: mosquitto when installed,
else an embedded pure-Python broker (amqtt, the ``demo`` extra) so a laptop with only pip works.

Both listen on loopback only. mosquitto runs with the provisioned password file and ACL (the same
security model as production, minus TLS, which loopback does not need), client ids bound to user
names (``use_username_as_clientid``) as in deploy/mosquitto/mosquitto.conf. The embedded broker
speaks MQTT 3.1.1 only and runs anonymous, which the demo says when it starts: it has no
identities, so it cannot bind client ids either, and any local process can connect with a
station's or the collector's client id and disconnect it. It is a demo broker, never a deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pantau.contract.errors import PantauError

log = logging.getLogger(__name__)

BrokerKind = Literal["mosquitto", "embedded"]


class BrokerError(PantauError, RuntimeError):
    """The local broker could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def choose_kind(requested: str = "auto") -> BrokerKind:
    """``auto`` picks mosquitto when its binary is on PATH, else the embedded broker."""
    if requested == "mosquitto":
        if shutil.which("mosquitto") is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        return "mosquitto"
    if requested == "embedded":
        return "embedded"
    if requested != "auto":
        raise BrokerError(f"unknown broker kind {requested!r} (auto, mosquitto, embedded)")
    return "mosquitto" if shutil.which("mosquitto") else "embedded"


@dataclass
class LocalBroker:
    """Start with :meth:`start`, stop with :meth:`stop`; ``port`` is chosen free when 0."""

    workdir: Path
    kind: BrokerKind = "mosquitto"
    port: int = 0
    password_file: Path | None = None
    acl_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _broker: Any = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def authenticated(self) -> bool:
        return self.kind == "mosquitto" and self.password_file is not None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        if self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            self._start_embedded()
        if not wait_for_port(self.host, self.port, 10.0):
            self.stop()
            raise BrokerError(f"{self.kind} broker did not listen on {self.host}:{self.port}")

    def _start_mosquitto(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # One identity per client id (a listener option: right after the listener line).
            *(["use_username_as_clientid true"] if self.password_file is not None else []),
            # Retained states and the collector's persistent session survive a broker restart
            # (saved every 10 s and on a clean stop), as in deploy/mosquitto/mosquitto.conf.
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 10",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            # Root drops to 'mosquitto', which cannot read a private work dir: stay who we are.
            f"user {getpass.getuser()}",
            # The demo fleet reconnects at once after a restart; retained states are its memory.
            # The queue also holds the QoS 1 events sent while the collector is away.
            "max_queued_messages 100000",
        ]
        if self.password_file is not None:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
            if self.acl_file is not None:
                lines.append(f"acl_file {self.acl_file}")
        else:
            lines.append("allow_anonymous true")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        binary = shutil.which("mosquitto")
        if binary is None:
            raise BrokerError("mosquitto is not installed")
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _start_embedded(self) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise BrokerError(
                "no mosquitto on PATH and the embedded broker is not installed: "
                "pip install 'pantau[demo]' or apt-get install mosquitto"
            ) from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = threading.Event()
        errors: list[BaseException] = []

        async def _start() -> None:
            broker = Broker(config, loop=loop)
            await broker.start()
            self._broker = broker

        def _run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(_start())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        # amqtt logs every connection, and a port probe as an error; the demo's output matters.
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        self._thread = threading.Thread(target=_run, name="embedded-broker", daemon=True)
        self._thread.start()
        started.wait(15)
        if errors:
            raise BrokerError(f"embedded broker failed to start: {errors[0]}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._loop is not None and self._broker is not None:
            loop = self._loop
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(5)
            self._broker = None
            self._loop = None
