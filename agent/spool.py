"""A bounded, crash-safe on-disk queue of outgoing events (SQLite in WAL mode).

Events are written here *before* they are published and deleted only when the broker has
acknowledged them (PUBACK), so a broker outage, a dead link or a ``kill -9`` loses nothing: the
next connection sends what is left, oldest first. ``synchronous=FULL`` makes a committed event
survive a power cut too (an event is a few hundred bytes and rare, so the fsync is cheap).

The queue is bounded by ``max_events`` and ``max_bytes``; when full, the oldest events are
dropped and counted (``dropped_total``, persisted), and :meth:`Spool.append` returns how many
were dropped so the service can report a ``spool_dropped`` event. A small key/value table keeps
what must survive a restart (the change baseline).

A database that cannot be opened as SQLite (a torn file after a disk fault) is moved aside to
``<path>.corrupt-<n>`` and a new one started, so the agent keeps running. One connection is
shared by the service and the publisher's network thread behind a lock.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pantau.agent.errors import SpoolError

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Spooled:
    id: int
    topic: str
    payload: bytes


class Spool:
    """Append at the tail, read in order, delete by id."""

    def __init__(self, path: str, max_events: int, max_bytes: int) -> None:
        self.path = path
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.recovered_from = ""
        self._db = self._open()
        row = self._db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM events")
        self._count, self._bytes = row.fetchone()
        self._dropped = int(self.get("dropped_total") or 0)

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpoolError(f"cannot create the spool directory: {exc}") from None
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
                raise SpoolError(f"cannot open spool {self.path}: {exc}") from None
        # Not a database (torn or foreign file): keep it for inspection, start a new one.
        n = 1
        while os.path.exists(f"{self.path}.corrupt-{n}"):
            n += 1
        os.replace(self.path, f"{self.path}.corrupt-{n}")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)
        self.recovered_from = f"{self.path}.corrupt-{n}"
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM events").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    # ------------------------------------------------------------------ queue

    def append(self, topic: str, payload: bytes) -> int:
        """Store one event; return how many old events were dropped to make room."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO events (topic, payload) VALUES (?, ?)", (topic, payload)
                )
                self._count += 1
                self._bytes += len(payload)
                dropped = self._trim()
                if dropped:
                    self._dropped += dropped
                    self._set("dropped_total", str(self._dropped))
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise SpoolError(f"cannot write to spool {self.path}: {exc}") from None
            return dropped

    def _trim(self) -> int:
        dropped = 0
        while self._count > self.max_events or (self._bytes > self.max_bytes and self._count > 1):
            row = self._db.execute(
                "SELECT id, length(payload) FROM events ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                break
            self._db.execute("DELETE FROM events WHERE id = ?", (row[0],))
            self._count -= 1
            self._bytes -= row[1]
            dropped += 1
        return dropped

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # no transaction open: nothing to undo
            self._db.execute("ROLLBACK")
        row = self._db.execute("SELECT count(*), coalesce(sum(length(payload)), 0) FROM events")
        self._count, self._bytes = row.fetchone()

    def after(self, last_id: int, limit: int) -> list[Spooled]:
        """Up to ``limit`` events with id greater than ``last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [Spooled(r[0], r[1], bytes(r[2])) for r in rows]

    def delete(self, event_id: int) -> None:
        """Forget an event the broker acknowledged (a no-op if it was already dropped)."""
        with self._lock:
            try:
                row = self._db.execute(
                    "DELETE FROM events WHERE id = ? RETURNING length(payload)", (event_id,)
                ).fetchone()
            except sqlite3.Error as exc:  # a full disk: the WAL cannot grow
                raise SpoolError(f"cannot forget a sent event in {self.path}: {exc}") from None
            if row is not None:
                self._count -= 1
                self._bytes -= row[0]

    @property
    def queued(self) -> int:
        return int(self._count)

    @property
    def queued_bytes(self) -> int:
        return int(self._bytes)

    @property
    def dropped_total(self) -> int:
        return self._dropped

    # ------------------------------------------------------------------ key/value

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        with self._lock:
            try:
                self._set(key, value)
            except sqlite3.Error as exc:
                raise SpoolError(f"cannot write to spool {self.path}: {exc}") from None

    def _set(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
