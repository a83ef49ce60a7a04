"""The collector as one object: fleet state + MQTT ingest + HTTP, for the CLI and the demo.

from pantau.collector.config import load
from pantau.collector.service import Collector

c = Collector(load("collector.toml")).start()
print(c.url, c.summary().ready)
c.stop()
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pantau.collector import durable
from pantau.collector.config import CollectorConfig
from pantau.collector.errors import StartupError
from pantau.collector.exposition import Renderer
from pantau.collector.fleet import Fleet, Snapshot, Summary, summarize
from pantau.collector.http import HttpServer
from pantau.collector.mqtt import MqttIngest
from pantau.contract.config import ConfigError, read_secret, readable_by_others
from pantau.contract.inventory import (
    InventoryEntry,
    InventoryError,
    entries_for_filters,
    load_inventory,
)

log = logging.getLogger(__name__)

#: Seconds between writes of the first-seen times (:func:`since_path`).
MEMORY_EVERY_S = 60.0


def since_path(state_file: str) -> str:
    """Where first-seen times are kept: next to ``fleet.state_file`` (``x.json`` ->
    ``x.since.json``), written every minute and at stop; empty when there is no state file."""
    if not state_file:
        return ""
    path = Path(state_file)
    return str(path.with_name(path.stem + ".since.json"))


def load_memory(path: str) -> dict[str, dict[str, float]]:
    """The first-seen times a previous run saved (empty if none or unreadable: logged)."""
    if not path:
        return {}
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("%s: cannot read (%s); every 'since' starts afresh", path, exc)
        return {}
    try:
        doc = json.loads(raw)
        stations = doc["stations"]
        return {
            str(st): {str(k): float(t) for k, t in entry.items()} for st, entry in stations.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: not a pantau first-seen file (%s); starting afresh", path, exc)
        return {}


def save_memory(path: str, memory: dict[str, dict[str, float]], now: float) -> None:
    """Write atomically (temporary file + rename): a crash never leaves half a file."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(
            json.dumps({"version": 1, "saved_at": now, "stations": memory}), encoding="utf-8"
        )
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("%s: cannot write (%s)", path, exc)


def read_inventory(path: str) -> list[InventoryEntry]:
    """The inventory named by ``fleet.inventory`` (empty path: none)."""
    return load_inventory(path) if path else []


class Collector:
    """Build with a validated config; :meth:`start` binds HTTP and connects MQTT.

    Raises :class:`pantau.contract.config.ConfigError` (unreadable password file),
    :class:`pantau.contract.inventory.InventoryError` (bad inventory) from the constructor, and
    :class:`pantau.collector.errors.StartupError` (port in use, bad TLS files) from :meth:`start`.
    """

    def __init__(
        self,
        config: CollectorConfig,
        *,
        clock: Callable[[], float] = time.time,
        source: str = "<config>",
        inventory: list[InventoryEntry] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        fleet_cfg = config.fleet
        entries = read_inventory(fleet_cfg.inventory) if inventory is None else inventory
        # A shard exports only the inventory stations its topic filters can hear from, so every
        # shard can be given the whole (national) inventory.
        mine = entries_for_filters(entries, config.mqtt.topics)
        if len(mine) < len(entries):
            log.info(
                "%d of %d inventory stations are outside mqtt.topics and not exported",
                len(entries) - len(mine),
                len(entries),
            )
        entries = mine
        self.fleet = Fleet(
            inventory=entries,
            device_classes=fleet_cfg.device_classes,
            stale_after_intervals=fleet_cfg.stale_after_intervals,
            max_unknown_stations=fleet_cfg.max_unknown_stations,
            forget_unknown_after_s=fleet_cfg.forget_unknown_after_s,
            reorder_window_s=fleet_cfg.reorder_window_s,
            known_since=time.time(),
        )
        self._memory_path = since_path(fleet_cfg.state_file)
        seeded = self.fleet.remember(load_memory(self._memory_path))
        if seeded:
            log.info("first-seen times of %d stations restored from %s", seeded, self._memory_path)
        self._memory_stop = threading.Event()
        self._memory_thread: threading.Thread | None = None
        if len(self.fleet.device_classes) > 16:
            raise ConfigError(
                source, "fleet.device_classes", "more than 16 device classes with the inventory's"
            )
        mqtt_password = None
        if config.mqtt.password_file:
            mqtt_password = read_secret(config.mqtt.password_file, source, "mqtt.password_file")
            if readable_by_others(config.mqtt.password_file):
                log.warning("%s is readable by other users", config.mqtt.password_file)
        http_password = ""
        if config.http.basic_auth_password_file:
            http_password = read_secret(
                config.http.basic_auth_password_file, source, "http.basic_auth_password_file"
            )
        self.renderer = Renderer(level=config.http.gzip_level or 1)
        if fleet_cfg.state_file:
            # Checked here, not with the config: the directory is often a volume that exists only
            # where the collector runs (check-config may run elsewhere).
            parent = Path(fleet_cfg.state_file).parent
            if not parent.is_dir() or not os.access(parent, os.W_OK):
                raise ConfigError(
                    source, "fleet.state_file", f"directory {parent} is missing or not writable"
                )
            restored = durable.restore(Path(fleet_cfg.state_file), self.fleet, clock())
            log.info("event counts of %d stations restored from %s", restored, fleet_cfg.state_file)
        self.mqtt = MqttIngest(
            config.mqtt,
            self.fleet,
            password=mqtt_password,
            clock=clock,
            state_file=fleet_cfg.state_file,
        )
        self.http = HttpServer(
            config.http,
            snapshot=self.snapshot,
            renderer=self.renderer,
            password=http_password,
            mqtt_connected=lambda: self.fleet.mqtt_connected,
        )
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Collector:
        """Serve HTTP, then connect to the broker in the background. Returns ``self``."""
        self.http.start()
        self.mqtt.start()
        self._started = True
        if self._memory_path:
            self._memory_stop.clear()
            self._memory_thread = threading.Thread(
                target=self._keep_memory, name="collector-memory", daemon=True
            )
            self._memory_thread.start()
        log.info(
            "collector serving %s, %d stations in the inventory, broker %s",
            self.url,
            len(self.fleet),
            " or ".join(f"{h}:{p}" for h, p in self.config.mqtt.broker_endpoints()),
        )
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self.mqtt.stop()
        self.http.stop()
        if self._memory_thread is not None:
            self._memory_stop.set()
            self._memory_thread.join(5)
            self._memory_thread = None
        self.save_memory()

    def save_memory(self) -> None:
        """Write the first-seen times now (also every minute and at :meth:`stop`)."""
        if self._memory_path:
            save_memory(self._memory_path, self.fleet.memory(), self.clock())

    def _keep_memory(self) -> None:
        while not self._memory_stop.wait(MEMORY_EVERY_S):
            self.save_memory()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ reading

    @property
    def http_address(self) -> tuple[str, int]:
        """``(host, port)`` the HTTP server is bound to (the real port when configured 0)."""
        return self.http.address

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def mqtt_connected(self) -> bool:
        return self.fleet.mqtt_connected

    def snapshot(self) -> Snapshot:
        return self.fleet.snapshot(self.clock())

    def summary(self) -> Summary:
        """Counts: total, up, ready (up with no problem), offline, stale, never_reported, ..."""
        return summarize(self.snapshot())

    def wait_until(
        self, predicate: Callable[[Collector], bool], timeout: float = 10.0, interval: float = 0.05
    ) -> bool:
        """Poll ``predicate(self)`` until true or ``timeout``; returns the last result."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)


__all__ = ["Collector", "InventoryError", "StartupError"]
