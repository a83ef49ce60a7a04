"""A real 3-node ``nats-server`` (Debian 2.9) cluster with JetStream and MQTT listeners.

Each node gets its own directory (config, JetStream store, log), a client port, a cluster
(route) port and an MQTT port on 127.0.0.1, all chosen once and kept across :meth:`NatsNode.kill`
and :meth:`NatsNode.start`, so MQTT clients reconnect to the same addresses and the node rejoins
the cluster with its store. nats-server speaks MQTT 3.1.1 only (QoS 0/1, retained messages,
wills, persistent sessions kept in JetStream, so a session resumes on any node). The MQTT
streams and consumers are replicated on all three nodes (``stream_replicas``/``consumer_replicas``
3), so one node may die without taking a session or queued messages with it.

Authentication (``users``: name -> password) uses nats' ``authorization`` block; with
``mqtt_no_auth_user`` unset every MQTT client must log in. Permissions are not set here: the
shipped config (deploy/nats) carries them.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from .procs import HarnessError, free_port, kill, port_open, spawn, stop, wait_for

NATS_SERVER = "/usr/sbin/nats-server"


class NatsNode:
    """One node of a :class:`NatsCluster`. Not started by the constructor."""

    def __init__(self, cluster: NatsCluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = f"n{index + 1}"
        self.workdir = cluster.workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.client_port = free_port()
        self.route_port = free_port()
        self.mqtt_port = free_port()
        self.monitor_port = free_port()
        self.config_file = self.workdir / "nats.conf"
        self.log_file = self.workdir / "nats.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the MQTT listener."""
        return f"{self.host}:{self.mqtt_port}"

    def write_config(self) -> None:
        routes = ", ".join(f'"nats-route://127.0.0.1:{n.route_port}"' for n in self.cluster.nodes)
        users = ""
        if self.cluster.users:
            entries = "\n".join(
                f'    {{ user: "{u}", password: "{p}" }}' for u, p in self.cluster.users.items()
            )
            users = f"authorization {{\n  users: [\n{entries}\n  ]\n}}\n"
        self.config_file.write_text(
            f"""server_name: {self.name}
listen: 127.0.0.1:{self.client_port}
http: 127.0.0.1:{self.monitor_port}
jetstream {{
  store_dir: "{self.workdir / "js"}"
  max_memory_store: 64MB
  max_file_store: 256MB
}}
cluster {{
  name: pantau
  listen: 127.0.0.1:{self.route_port}
  routes: [{routes}]
}}
mqtt {{
  listen: 127.0.0.1:{self.mqtt_port}
  ack_wait: "{self.cluster.ack_wait}"
  max_ack_pending: 1000
  stream_replicas: 3
  consumer_replicas: 3
}}
{users}""",
            encoding="utf-8",
        )

    def start(self) -> None:
        if self.running:
            return
        self.write_config()
        self._proc = spawn(
            [NATS_SERVER, "-c", str(self.config_file), "-l", str(self.log_file)],
            self.workdir / "stdout.log",
        )

    def wait_mqtt(self, timeout: float = 30.0) -> None:
        wait_for(
            lambda: port_open(self.host, self.mqtt_port),
            timeout=timeout,
            what=f"nats {self.name} MQTT listener",
            alive=self._proc,
            log=self.log,
        )

    def jetstream_leader(self) -> str:
        """The JetStream meta leader this node knows ("" while there is none or on error)."""
        try:
            url = f"http://{self.host}:{self.monitor_port}/jsz"
            with urllib.request.urlopen(url, timeout=1) as resp:
                doc = json.loads(resp.read())
        except (OSError, ValueError):
            return ""
        return str((doc.get("meta_cluster") or {}).get("leader") or "")

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        kill(self._proc)
        self._proc = None

    def stop(self) -> None:
        stop(self._proc, timeout=10.0)
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class NatsCluster:
    """Three (or ``size``) nats-server nodes routed to each other, JetStream on every node."""

    def __init__(
        self,
        workdir: Path,
        *,
        size: int = 3,
        users: Mapping[str, str] | None = None,
        ack_wait: str = "5s",
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.users = dict(users or {})
        self.ack_wait = ack_wait
        self.nodes: list[NatsNode] = []
        self.nodes = [NatsNode(self, i) for i in range(size)]

    @property
    def endpoints(self) -> list[str]:
        return [n.endpoint for n in self.nodes]

    def start(self, timeout: float = 60.0) -> None:
        """Start every node; wait until each accepts MQTT and knows a JetStream meta leader.

        The MQTT port opens before JetStream is ready: a QoS 1 subscription made earlier gets
        its JetStream consumer late, and what is published meanwhile never reaches it.
        """
        for node in self.nodes:
            node.start()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            node.wait_mqtt(max(1.0, deadline - time.monotonic()))
        for node in self.nodes:
            wait_for(
                lambda node=node: bool(node.jetstream_leader()),
                timeout=max(1.0, deadline - time.monotonic()),
                interval=0.1,
                what=f"nats {node.name}: JetStream meta leader",
                log=node.log,
            )

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def node_of(self, endpoint: str) -> NatsNode:
        for node in self.nodes:
            if node.endpoint == endpoint:
                return node
        raise HarnessError(f"no node listens on {endpoint}")
