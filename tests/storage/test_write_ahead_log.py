"""The write-ahead log on disk: what was appended comes back after a restart, in order, until
it is checkpointed; a torn or corrupt tail is cut off; checkpointed segments are deleted."""

from __future__ import annotations

from pathlib import Path

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
