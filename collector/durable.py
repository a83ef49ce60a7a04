"""Durable event counts: a state file, and QoS 1 acknowledgements held until it is written.

Events are the only messages whose effect the broker cannot give back: states and statuses are
retained and replayed on every (re)connect, but an event is delivered once. So the collector keeps
``pantau_station_events_total`` (per station and kind) and, per station, the ``seq`` of the last
event counted for each of its 4 latest sessions in ``fleet.state_file``, and acknowledges a QoS 1
message (PUBACK) only once its effect is in that file:

- collector killed (-9) after counting, before the file was written: the message was not
  acknowledged, the broker redelivers it to the persistent session, it is counted then;
- killed after the file was written, before the acknowledgement: redelivered, and recognised as
  already counted by the saved ``(session, seq)`` (``stale_seq``).

Acknowledgements keep the order the messages came in (MQTT requires it): a state arriving after an
event waits for the event's checkpoint. Checkpoints are batched (:data:`CHECKPOINT_DELAY_S`), so a
spool flush of many events costs one write. The file is JSON, written to a temporary file, fsynced
and renamed over the old one, so a crash leaves either the old or the new file.

Without ``fleet.state_file`` paho acknowledges every message as soon as it is applied (events
counted in memory are then lost with the process).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pantau.collector.errors import CollectorError
from pantau.collector.fleet import EventRecord, Fleet

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
#: Events arriving within this window share one checkpoint write.
CHECKPOINT_DELAY_S: Final = 0.1
#: ... unless this many acknowledgements are waiting: half the broker's in-flight window, so
#: delivery never stalls on a full window (the MQTT adapter passes half of its window).
CHECKPOINT_BATCH: Final = 50


class StateFileError(CollectorError, ValueError):
    """The state file exists but is not a pantau collector state file."""


def load(path: Path) -> list[EventRecord]:
    """The records saved in ``path`` (none if it does not exist); raises :class:`StateFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
        fmt = data.get("format")
        records = [
            EventRecord(
                str(s["station"]),
                str(s["provinsi"]),
                str(s["kabkota"]),
                {str(k): int(v) for k, v in s["events"].items()},
                {str(k): int(v) for k, v in s["sessions"].items()},
            )
            for s in data["stations"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateFileError(f"{path}: not a collector state file ({type(exc).__name__})") from None
    if fmt != FORMAT_VERSION:
        raise StateFileError(f"{path}: unknown format {fmt!r}")
    return records


def save(path: Path, records: list[EventRecord]) -> None:
    """Write ``records`` atomically (temporary file, fsync, rename)."""
    body = {
        "format": FORMAT_VERSION,
        "stations": [
            {
                "station": r.station,
                "provinsi": r.provinsi,
                "kabkota": r.kabkota,
                "events": r.events,
                "sessions": r.sessions,
            }
            for r in records
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(body, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def restore(path: Path, fleet: Fleet, now: float) -> int:
    """Load ``path`` into ``fleet``; a damaged file is kept aside (``.damaged``) and logged, and
    the collector starts counting from zero rather than not starting at all."""
    try:
        records = load(path)
    except StateFileError as exc:
        aside = path.with_name(path.name + ".damaged")
        log.error(  # noqa: TRY400 - one line, the error says it all
            "%s; moved to %s, event counts start from zero", exc, aside
        )
        try:
            os.replace(path, aside)
        except OSError as move_exc:
            log.error("cannot move %s aside: %s", path, move_exc)  # noqa: TRY400
        return 0
    return fleet.restore_events(records, now)


Ack = Callable[[int, int], object]


class Checkpointer:
    """Holds QoS 1 acknowledgements until the event counts they changed are saved.

    :meth:`received` is called on paho's thread after each message was applied; the background
    thread writes the file and sends the acknowledgements waiting for it.
    """

    def __init__(self, path: Path, fleet: Fleet, ack: Ack, batch: int = CHECKPOINT_BATCH) -> None:
        self.path = path
        self.batch = batch
        self.fleet = fleet
        self._ack = ack
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        #: ``(mid, qos)`` in arrival order, all of the current connection.
        self._pending: list[tuple[int, int]] = []
        self._saved_version = fleet.events_version
        self._connection = 0
        self._stopping = False
        self.writes = 0
        self.write_failures = 0
        self._thread = threading.Thread(target=self._run, name="pantau-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write a last checkpoint (acknowledging what waits for it) and end the thread."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def new_connection(self) -> None:
        """A connection ended or began: waiting message ids belong to the old one (the broker
        redelivers those messages), so they must never be acknowledged on the new one."""
        with self._lock:
            self._connection += 1
            self._pending.clear()

    def received(self, mid: int, qos: int) -> None:
        with self._lock:
            if qos == 0:
                return
            if not self._pending and self.fleet.events_version == self._saved_version:
                self._ack(mid, qos)  # nothing to save: acknowledge at once
                return
            self._pending.append((mid, qos))
            if len(self._pending) == 1 or len(self._pending) >= self.batch:
                self._wake.notify()

    def checkpoint(self) -> bool:
        """Save now and acknowledge what waited; False if the write failed.

        A failed write (full or read-only disk) is logged and the messages are acknowledged all
        the same: the counts live on in memory, and holding the acknowledgements would stall the
        broker's delivery of everything, states included, i.e. blind the collector.
        """
        with self._lock:
            batch, connection = list(self._pending), self._connection
        version, records = self.fleet.export_events()
        ok = True
        if version != self._saved_version:
            try:
                save(self.path, records)
                self.writes += 1
            except OSError as exc:
                ok = False
                self.write_failures += 1
                if self.write_failures == 1 or self.write_failures % 100 == 0:
                    log.error(  # noqa: TRY400 - one line, not a traceback per write
                        "cannot write %s: %s (%d failures); event counts are kept in memory only",
                        self.path,
                        exc,
                        self.write_failures,
                    )
        with self._lock:
            if ok:
                self._saved_version = max(self._saved_version, version)
            if connection == self._connection:
                for mid, qos in batch:
                    self._ack(mid, qos)
                del self._pending[: len(batch)]
        return ok

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                stopping = self._stopping
                if not stopping and len(self._pending) < self.batch:
                    self._wake.wait(CHECKPOINT_DELAY_S)
            try:
                ok = self.checkpoint()
            except Exception:
                log.exception("checkpoint failed")
                ok = False
            if stopping:
                return
            if not ok:
                with self._lock:
                    self._wake.wait(1.0)  # a full disk: do not rewrite for every message
