"""Spool: order, bounds with counted drop-oldest, persistence, corrupt-file recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from pantau.agent.errors import SpoolError
from pantau.agent.spool import Spool


def test_fifo_delete_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    spool = Spool(path, max_events=100, max_bytes=1 << 20)
    for i in range(5):
        assert spool.append("t", f"e{i}".encode()) == 0
    rows = spool.after(0, 3)
    assert [r.payload for r in rows] == [b"e0", b"e1", b"e2"]
    assert [r.payload for r in spool.after(rows[-1].id, 10)] == [b"e3", b"e4"]
    spool.delete(rows[0].id)
    spool.delete(rows[0].id)  # twice is harmless
    spool.set("baseline", "{}")
    assert spool.queued == 4
    spool.close()
    again = Spool(path, max_events=100, max_bytes=1 << 20)
    assert again.queued == 4
    assert again.queued_bytes == 8
    assert [r.payload for r in again.after(0, 10)] == [b"e1", b"e2", b"e3", b"e4"]
    assert again.get("baseline") == "{}"
    assert again.get("nothing") is None


def test_bounded_by_count_drops_oldest_and_counts(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    spool = Spool(path, max_events=10, max_bytes=1 << 20)
    dropped = [spool.append("t", f"e{i}".encode()) for i in range(13)]
    assert dropped == [0] * 10 + [1, 1, 1]
    assert spool.queued == 10
    assert spool.dropped_total == 3
    assert spool.after(0, 1)[0].payload == b"e3"
    spool.close()
    assert Spool(path, max_events=10, max_bytes=1 << 20).dropped_total == 3


def test_bounded_by_bytes(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.sqlite"), max_events=1000, max_bytes=64 * 1024)
    blob = b"x" * 20_000
    dropped = sum(spool.append("t", blob) for _ in range(5))
    assert dropped == 2
    assert spool.queued == 3
    assert spool.queued_bytes == 60_000


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database, it is a torn file" * 100)
    spool = Spool(str(path), max_events=10, max_bytes=1 << 20)
    assert spool.recovered_from == f"{path}.corrupt-1"
    assert Path(spool.recovered_from).exists()
    spool.append("t", b"ok")
    assert spool.queued == 1


def test_unwritable_directory_is_a_spool_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolError, match="cannot create the spool directory"):
        Spool(str(blocker / "sub" / "s.sqlite"), max_events=10, max_bytes=1 << 20)
