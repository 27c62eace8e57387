"""RecentPlayback's invariant: a pair's history comes from the held rows only when all of it is held."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from storage.recent_playback import RecentPlayback


def _rows(*rows: tuple[int, int, str]) -> pa.Table:
    """(pair hash, stored_seq, event id) per row."""
    hashes, seqs, ids = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.table(
        {
            "session_hash": pa.array(hashes, pa.uint64()),
            "stored_seq": pa.array(seqs, pa.uint64()),
            "id": pa.array(ids, pa.string()),
        }
    )


def _ids(table: pa.Table | None) -> list[str] | None:
    return None if table is None else sorted(table.column("id").to_pylist())


def test_history_is_the_held_rows_of_the_touched_pairs_and_the_new_ones() -> None:
    recent = RecentPlayback()
    recent.start(np.array([], dtype=np.uint64))
    assert _ids(recent.history(_rows((1, 1, "a1"), (2, 1, "b1")))) == ["a1", "b1"]
    assert _ids(recent.history(_rows((1, 2, "a2")))) == ["a1", "a2"]
    assert _ids(recent.history(_rows((2, 3, "b2"), (3, 3, "c1")))) == ["b1", "b2", "c1"]
    assert recent.held_rows == 5


def test_a_pair_with_rows_only_in_events_is_not_answered_and_nothing_is_held() -> None:
    recent = RecentPlayback()
    recent.start(np.array([7, 9], dtype=np.uint64))
    assert recent.history(_rows((1, 5, "a1"), (9, 5, "z3"))) is None
    assert recent.held_rows == 0
    # Read back, the pair's rows are all held from then on; held rows of other pairs are replaced,
    # not doubled.
    recent.history(_rows((1, 6, "a2")))
    recent.replace(_rows((9, 1, "z1"), (9, 2, "z2"), (9, 7, "z4"), (1, 6, "a2"), (1, 7, "a3")))
    assert recent.held_rows == 5
    assert _ids(recent.history(_rows((9, 8, "z5"), (1, 8, "a4")))) == ["a2", "a3", "a4", "z1", "z2", "z4", "z5"]
    # Pair 7 was never read back: still elsewhere.
    assert recent.history(_rows((7, 9, "s1"))) is None


def test_eviction_keeps_the_pairs_touched_last_and_sends_the_rest_elsewhere() -> None:
    recent = RecentPlayback(max_rows=6)
    recent.start(np.array([], dtype=np.uint64))
    recent.history(_rows((1, 1, "a1"), (1, 1, "a2"), (2, 1, "b1")))
    recent.history(_rows((3, 2, "c1"), (3, 2, "c2")))
    recent.history(_rows((2, 3, "b2")))
    # 6 rows: not yet past the limit.
    assert recent.held_rows == 6
    recent.history(_rows((4, 4, "d1")))
    # Past it: the pairs touched last are kept while they fit in half (4 then 2 then 3 would be 5 rows).
    assert recent.held_rows == 3
    assert _ids(recent.history(_rows((2, 5, "b3")))) == ["b1", "b2", "b3"]
    assert recent.history(_rows((1, 6, "a3"))) is None
    assert recent.history(_rows((3, 6, "c3"))) is None


def test_forgotten_pairs_are_not_answered_until_read_back() -> None:
    recent = RecentPlayback()
    recent.start(np.array([5], dtype=np.uint64))
    recent.history(_rows((1, 1, "a1"), (2, 1, "b1")))
    recent.forget(_rows((1, 2, "a2")))
    assert recent.held_rows == 1
    assert recent.history(_rows((1, 3, "a3"))) is None
    assert _ids(recent.history(_rows((2, 3, "b2")))) == ["b1", "b2"]
    assert recent.history(_rows((5, 3, "e1"))) is None


def test_reset_starts_over() -> None:
    recent = RecentPlayback()
    recent.start(np.array([], dtype=np.uint64))
    recent.history(_rows((1, 1, "a1")))
    recent.reset()
    assert not recent.started and recent.held_rows == 0
    with pytest.raises(RuntimeError):
        recent.history(_rows((1, 2, "a2")))
