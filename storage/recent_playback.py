"""The playback rows of recently fed sessions, held so that a rollup feed step need not read the
history of the sessions it touches back from ``events``.

A step's watch-time change needs every stored playback row of each (content, session) pair the
step touches (storage/playback_rollup.py). Read back, that is a search of the whole store for
those sessions, which grows with the store; yet most touched sessions are recent, and their
earlier rows went through the feed moments before.

Exact by one invariant: every pair either has its hash in ``elsewhere`` or has every playback row
fed so far held here. A step that touches a pair in ``elsewhere`` reads its touched sessions back
from ``events`` as before, and holds what it read. Starting, ``elsewhere`` is every pair already
stored; evicted pairs join it. Hashes can only collide the safe way: a pair wrongly thought
elsewhere is read back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.id_index import sorted_member

# At most this many rows held, which bounds the memory they take; past it, the pairs touched longest
# ago are dropped until half remain.
MAX_HELD_ROWS = 300_000
HASH = "session_hash"


class RecentPlayback:
    """Held playback rows, with a ``session_hash`` column (cityHash64 of content and session key)
    and a ``stored_seq`` column. Used by one thread, the rollup feed's."""

    def __init__(self, max_rows: int = MAX_HELD_ROWS) -> None:
        self.max_rows = max_rows
        self._held: list[pa.Table] = []
        self._held_rows = 0
        # Sorted hashes of the pairs whose rows are not all held; None until started.
        self._elsewhere: np.ndarray | None = None

    @property
    def started(self) -> bool:
        return self._elsewhere is not None

    @property
    def held_rows(self) -> int:
        return self._held_rows

    def start(self, stored: np.ndarray) -> None:
        """Begin with nothing held; ``stored`` holds the hash of every pair with stored rows."""
        self._elsewhere = np.unique(np.asarray(stored, dtype=np.uint64))
        self._held, self._held_rows = [], 0

    def reset(self) -> None:
        """Forget everything (a step was cut short, and may have held rows it will hold again)."""
        self._elsewhere = None
        self._held, self._held_rows = [], 0

    def history(self, new: pa.Table) -> pa.Table | None:
        """Every row of the pairs ``new`` touches, held ones and ``new``'s own, and holds ``new``;
        None, holding nothing, when some touched pair has rows that are not held."""
        if self._elsewhere is None:
            raise RuntimeError("RecentPlayback.history before start")
        touched = _hashes(new)
        if sorted_member(self._elsewhere, touched).any():
            return None
        earlier = [table.filter(pc.is_in(table.column(HASH), value_set=pa.array(touched))) for table in self._held]
        self._hold(new)
        return pa.concat_tables([*earlier, new]) if earlier else new

    def replace(self, rows: pa.Table) -> None:
        """Hold ``rows``: every stored row of the pairs in it, read back from events."""
        if self._elsewhere is None:
            raise RuntimeError("RecentPlayback.replace before start")
        touched = pa.array(_hashes(rows))
        self._drop(touched)
        self._elsewhere = self._elsewhere[~np.isin(self._elsewhere, touched.to_numpy())]
        self._hold(rows)

    def forget(self, rows: pa.Table) -> None:
        """The pairs in ``rows`` got rows this did not see (a step fed in SQL): drop what is held
        of them, and read them back when next touched."""
        if self._elsewhere is None:
            return
        touched = _hashes(rows)
        self._drop(pa.array(touched))
        self._elsewhere = _added(self._elsewhere, touched)

    def _drop(self, pairs: pa.Array) -> None:
        self._held = [table.filter(pc.invert(pc.is_in(table.column(HASH), value_set=pairs))) for table in self._held]
        self._held_rows = sum(table.num_rows for table in self._held)

    def _hold(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self._held.append(rows)
            self._held_rows += rows.num_rows
        if self._held_rows > self.max_rows:
            self._evict()

    def _evict(self) -> None:
        held = pa.concat_tables(self._held).combine_chunks()
        # A pair's highest stored_seq is the last step that touched it.
        latest = held.group_by(HASH).aggregate([("stored_seq", "max"), ("stored_seq", "count")])
        order = np.argsort(-latest.column("stored_seq_max").to_numpy().astype(np.int64), kind="stable")
        rows_so_far = np.cumsum(latest.column("stored_seq_count").to_numpy()[order])
        keep = int(np.searchsorted(rows_so_far, self.max_rows // 2, side="right"))
        hashes = latest.column(HASH).to_numpy()[order]
        kept = held.filter(pc.is_in(held.column(HASH), value_set=pa.array(hashes[:keep])))
        self._held, self._held_rows = ([kept] if kept.num_rows else []), kept.num_rows
        assert self._elsewhere is not None
        self._elsewhere = _added(self._elsewhere, hashes[keep:])


def _hashes(rows: pa.Table) -> np.ndarray:
    return np.unique(rows.column(HASH).to_numpy().astype(np.uint64, copy=False))


def _added(sorted_set: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``sorted_set`` with ``values`` in it, still sorted and without repeats (one copy of the set)."""
    new = np.unique(values.astype(np.uint64, copy=False))
    new = new[~sorted_member(sorted_set, new)]
    return np.insert(sorted_set, np.searchsorted(sorted_set, new), new)
