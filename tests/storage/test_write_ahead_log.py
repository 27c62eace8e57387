"""The write-ahead log on disk: what was appended comes back after a restart, in order, until
it is checkpointed; a torn or corrupt tail is cut off; checkpointed segments are deleted."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.arrow_ipc import pack
from storage import write_ahead_log
from storage.write_ahead_log import CorruptLog, WriteAheadLog


def _rows(prefix: str, n: int) -> pa.Table:
    return pa.table({"id": [f"{prefix}{i}" for i in range(n)], "n": list(range(n))})


def _unstored(folder: Path) -> list[tuple[int, list[str]]]:
    log = WriteAheadLog(folder)
    try:
        return [(seq, table.column("id").to_pylist()) for seq, table in log.unstored()]
    finally:
        log.close()


def test_appended_records_come_back_in_order_until_checkpointed(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    assert [log.append(_rows("a", 2)), log.append(_rows("b", 1)), log.append(_rows("c", 3))] == [1, 2, 3]
    log.close()  # as if the process died: nothing was checkpointed
    assert _unstored(tmp_path) == [(1, ["a0", "a1"]), (2, ["b0"]), (3, ["c0", "c1", "c2"])]

    reopened = WriteAheadLog(tmp_path)
    assert reopened.last_seq == 3
    reopened.checkpoint(2)
    assert reopened.append(_rows("d", 1)) == 4  # seqs go on after the restart
    reopened.close()
    assert _unstored(tmp_path) == [(3, ["c0", "c1", "c2"]), (4, ["d0"])]


def test_records_appended_as_sent_read_back_like_the_others(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    payload = pack(_rows("p", 3))
    assert [log.append(_rows("a", 1)), log.append_packed_records([payload]), log.append(_rows("b", 2))] == [1, 2, 3]
    log.close()
    assert _unstored(tmp_path) == [(1, ["a0"]), (2, ["p0", "p1", "p2"]), (3, ["b0", "b1"])]
    # The record is the caller's bytes behind the header, unchanged.
    assert payload in (tmp_path / "wal-00000000000000000001.log").read_bytes()


def test_records_appended_together_are_consecutive_and_one_torn_cuts_those_after_it(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    log.append(_rows("a", 1))
    assert log.append_packed_records([pack(_rows("p", 2)), pack(_rows("q", 1)), pack(_rows("r", 3))]) == 4
    assert log.append(_rows("b", 1)) == 5
    log.close()
    assert [seq for seq, _ in _unstored(tmp_path)] == [1, 2, 3, 4, 5]
    (segment,) = tmp_path.glob("wal-*.log")
    data = segment.read_bytes()
    # A crash in the middle of the group's write: "q" reached the disk only in part.
    segment.write_bytes(data[: data.index(b"q0") + 2])
    assert _unstored(tmp_path) == [(1, ["a0"]), (2, ["p0", "p1"])]


def test_a_group_of_more_records_than_one_writev_takes_is_written_whole(tmp_path: Path) -> None:
    # Two buffers a record: 1,100 records are more than writev's 1,024 buffers at once.
    log = WriteAheadLog(tmp_path)
    assert log.append_packed_records([pack(_rows(f"g{i}-", 1)) for i in range(1100)]) == 1100
    log.close()
    assert _unstored(tmp_path) == [(i + 1, [f"g{i}-0"]) for i in range(1100)]


def test_torn_and_corrupt_tails_are_cut_off(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path)
    log.append(_rows("a", 2))
    log.append(_rows("b", 2))
    log.close()
    (segment,) = tmp_path.glob("wal-*.log")
    data = segment.read_bytes()
    # A crash in the middle of the second append: half of it reached the disk.
    second = data.index(b"b0") - 40
    segment.write_bytes(data[: second + (len(data) - second) // 2])
    assert [ids for _, ids in _unstored(tmp_path)] == [["a0", "a1"]]
    # The cut is permanent, and new appends follow the last good record.
    log = WriteAheadLog(tmp_path)
    assert log.append(_rows("c", 1)) == 2
    log.close()
    assert [ids for _, ids in _unstored(tmp_path)] == [["a0", "a1"], ["c0"]]
    # A flipped byte in a record that is not the log's last: corruption, not a crash. Refusing
    # to start beats silently dropping the acknowledged events after it.
    first = min(tmp_path.glob("wal-*.log"))
    raw = bytearray(first.read_bytes())
    raw[-5] ^= 0xFF
    first.write_bytes(bytes(raw))
    with pytest.raises(CorruptLog, match="unreadable record"):
        WriteAheadLog(tmp_path)


def test_checkpointed_segments_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(write_ahead_log, "SEGMENT_BYTES", 1)  # one record per segment
    log = WriteAheadLog(tmp_path)
    for prefix in "abcd":
        log.append(_rows(prefix, 10))
    assert len(list(tmp_path.glob("wal-*.log"))) == 4
    log.checkpoint(3)
    # The segment holding seq 4 stays (it is being appended to); 1-3 are gone.
    assert [p.name for p in sorted(tmp_path.glob("wal-*.log"))] == [f"wal-{4:020d}.log"]
    log.close()
    assert _unstored(tmp_path) == [(4, [f"d{i}" for i in range(10)])]
    assert (tmp_path / "checkpoint").read_text() == "3"


def test_no_file_is_opened_synced_or_deleted_under_the_lock_readers_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_lock`` guards memory only: every open, fsync and unlink of a roll or a checkpoint
    finds it free (a reader such as the store's event loop never waits behind the disk)."""
    monkeypatch.setattr(write_ahead_log, "SEGMENT_BYTES", 1)  # a roll before every append
    log = WriteAheadLog(tmp_path)
    seen: dict[str, list[bool]] = {"open": [], "fsync_dir": [], "fdatasync": [], "unlink": []}

    def watch(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            seen[name].append(log._lock.locked())
            return real(*args, **kwargs)

        return watched

    monkeypatch.setattr(write_ahead_log, "open", watch("open", open), raising=False)
    monkeypatch.setattr(write_ahead_log, "_fsync_dir", watch("fsync_dir", write_ahead_log._fsync_dir))
    monkeypatch.setattr(write_ahead_log.os, "fdatasync", watch("fdatasync", os.fdatasync))
    monkeypatch.setattr(Path, "unlink", watch("unlink", Path.unlink))
    for prefix in "abcd":
        log.append(_rows(prefix, 3))
    log.checkpoint(3)
    log.close()
    counts = {name: len(calls) for name, calls in seen.items()}
    assert counts == {"open": 4, "fsync_dir": 4, "fdatasync": 4, "unlink": 3}
    assert not any(locked for calls in seen.values() for locked in calls)


def test_seqs_and_checkpoints_do_not_wait_for_a_roll_or_a_deletion_under_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(write_ahead_log, "SEGMENT_BYTES", 1)
    log = WriteAheadLog(tmp_path)
    for prefix in "ab":
        log.append(_rows(prefix, 2))
    in_disk_work, release = threading.Event(), threading.Event()

    def stalled(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            in_disk_work.set()
            assert release.wait(timeout=10)
            return real(*args, **kwargs)

        return call

    # An append stuck in its roll's directory fsync: the seqs read at once, a checkpoint completes.
    monkeypatch.setattr(write_ahead_log, "_fsync_dir", stalled(write_ahead_log._fsync_dir))
    appending = threading.Thread(target=log.append, args=(_rows("c", 2),))
    appending.start()
    assert in_disk_work.wait(timeout=10)
    assert (log.last_seq, log.checkpointed) == (2, 0)
    checkpointing = threading.Thread(target=log.checkpoint, args=(1,))
    checkpointing.start()
    checkpointing.join(timeout=10)
    assert not checkpointing.is_alive()
    assert log.checkpointed == 1
    release.set()
    appending.join(timeout=10)
    assert log.last_seq == 3

    # A checkpoint stuck deleting a segment: the seqs read at once, an append (with a roll) completes.
    monkeypatch.undo()
    monkeypatch.setattr(write_ahead_log, "SEGMENT_BYTES", 1)
    in_disk_work.clear()
    release.clear()
    monkeypatch.setattr(Path, "unlink", stalled(Path.unlink))
    checkpointing = threading.Thread(target=log.checkpoint, args=(2,))
    checkpointing.start()
    assert in_disk_work.wait(timeout=10)
    assert (log.last_seq, log.checkpointed) == (3, 2)
    appending = threading.Thread(target=log.append, args=(_rows("d", 2),))
    appending.start()
    appending.join(timeout=10)
    assert not appending.is_alive()
    assert log.last_seq == 4
    release.set()
    checkpointing.join(timeout=10)
    log.close()
    assert [seq for seq, _ in _unstored(tmp_path)] == [3, 4]


def test_close_waits_for_an_append_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A close during a roll does not close the segment under the append, nor leave it open after."""
    log = WriteAheadLog(tmp_path)
    in_roll, release = threading.Event(), threading.Event()
    real_fsync_dir = write_ahead_log._fsync_dir

    def stalled(folder: Path) -> None:
        in_roll.set()
        assert release.wait(timeout=10)
        real_fsync_dir(folder)

    monkeypatch.setattr(write_ahead_log, "_fsync_dir", stalled)
    seqs: list[int] = []
    appending = threading.Thread(target=lambda: seqs.append(log.append(_rows("a", 2))))
    appending.start()
    assert in_roll.wait(timeout=10)
    closing = threading.Thread(target=log.close)
    closing.start()
    closing.join(timeout=0.2)
    assert closing.is_alive()  # waiting for the append
    release.set()
    appending.join(timeout=10)
    closing.join(timeout=10)
    assert seqs == [1] and not closing.is_alive()
    assert log._file is None
    assert _unstored(tmp_path) == [(1, ["a0", "a1"])]
