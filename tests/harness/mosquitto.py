"""A real ``mosquitto`` (2.0.x) broker on a free loopback port, one per test.

Config is generated per broker in its own directory: ``user root`` (as root mosquitto would drop
to user ``mosquitto`` and then fail to read files in a 0700 temp dir), ``persistence false``,
``log_dest file`` (read it with :meth:`Mosquitto.log`). Ports are chosen once and kept across
:meth:`Mosquitto.stop`/:meth:`Mosquitto.start`/:meth:`Mosquitto.restart`, so clients can
reconnect to the same address.

Authentication: ``users`` maps user name to password; the file is hashed with
``mosquitto_passwd -U``. ``acl`` is the text of a mosquitto ACL file (:data:`PANTAU_ACL` is the
deployment's rule: each station writes only under its own id, ``collector`` reads everything).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from .certs import TlsCerts
from .procs import HarnessError, free_port, kill, port_open, spawn, stop, wait_for

#: Stations (user name == station id) may write only under their own id; the collector reads all.
PANTAU_ACL = """\
# stations: user name is the station id; write only under pantau/v1/{provinsi}/{kabkota}/{id}/
pattern write pantau/v1/+/+/%u/#

user collector
topic read pantau/v1/#
"""

#: Users created when ``auth=True`` and no ``users`` are given.
DEFAULT_USERS: Mapping[str, str] = {
    "collector": "collector-secret",
    "3310-juwiring-01": "juwiring-01-secret",
    "3310-klaten-02": "klaten-02-secret",
}


class Mosquitto:
    """One mosquitto process. Not started by the constructor: call :meth:`start`."""

    def __init__(
        self,
        workdir: Path,
        *,
        auth: bool = False,
        tls: bool = False,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        certs: TlsCerts | None = None,
        extra_config: str = "",
    ) -> None:
        if tls and certs is None:
            raise HarnessError("tls=True needs certs (the tls_certs fixture)")
        if users is not None and not auth:
            raise HarnessError("users given but auth=False: anonymous brokers have no users")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port: int | None = free_port() if tls else None
        self.auth = auth
        self.users: dict[str, str] = dict(DEFAULT_USERS if users is None else users) if auth else {}
        self.acl = acl
        self.certs = certs
        self.ca_file: Path | None = certs.ca_cert if tls and certs else None
        self.config_file = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config(extra_config)

    # ------------------------------------------------------------------ config

    def _write_config(self, extra_config: str) -> None:
        lines = [
            "per_listener_settings false",
            "user root",
            "persistence false",
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
            "log_timestamp_format %H:%M:%S",
            f"allow_anonymous {'false' if self.auth else 'true'}",
        ]
        if self.auth:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            subprocess.run(
                ["mosquitto_passwd", "-U", str(pwfile)],
                check=True,
                capture_output=True,
            )
            lines.append(f"password_file {pwfile}")
        if self.acl is not None:
            aclfile = self.workdir / "acl"
            aclfile.write_text(self.acl)
            lines.append(f"acl_file {aclfile}")
        lines.append(f"listener {self.port} {self.host}")
        if self.tls_port is not None and self.certs is not None:
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.certs.ca_cert}",
                f"certfile {self.certs.server_cert}",
                f"keyfile {self.certs.server_key}",
                "require_certificate false",
            ]
        if extra_config:
            lines.append(extra_config)
        self.config_file.write_text("\n".join(lines) + "\n")

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start (no-op if running) and wait until every listener accepts connections."""
        if self.running:
            return self
        self._proc = spawn(
            ["mosquitto", "-c", str(self.config_file)], self.workdir / "mosquitto.out"
        )
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        wait_for(
            lambda: all(port_open(self.host, p) for p in ports),
            timeout=timeout,
            what=f"mosquitto on {self.host}:{ports}",
            alive=self._proc,
            log=self.log,
        )
        return self

    def stop(self) -> None:
        """Clean shutdown (SIGTERM): clients see a closed connection, no will is delayed."""
        stop(self._proc)
        self._proc = None

    def kill(self) -> None:
        """Abrupt crash (SIGKILL)."""
        kill(self._proc)
        self._proc = None

    def restart(self) -> Mosquitto:
        """Stop and start on the same ports (retained messages are lost: persistence false)."""
        self.stop()
        return self.start()

    def log(self) -> str:
        """The broker's log so far (plus anything it printed before opening its log file)."""
        paths = (self.workdir / "mosquitto.out", self.log_file)
        parts = [p.read_text(errors="replace") for p in paths if p.exists()]
        return "".join(parts)

    def __repr__(self) -> str:
        tls = f" tls={self.tls_port}" if self.tls_port else ""
        return f"<Mosquitto {self.host}:{self.port}{tls} auth={self.auth} running={self.running}>"
