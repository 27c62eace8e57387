"""actors/accepted_ids.py: which rows of a batch are new. The hash index only nominates
duplicates; each is confirmed against the pending rows, then against ClickHouse."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from actors.accepted_ids import AcceptedIds
from actors.pending_writes import PendingWrites
from storage.id_index import IdHashIndex, hash_ids


class FakeStore:
    """``stored_ids`` of a ClickHouse holding ``stored``; records what it was asked."""

    def __init__(self, stored: set[str]) -> None:
        self.stored = stored
        self.asked: list[list[str]] = []

    def stored_ids(self, ids: list[str]) -> set[str]:
        self.asked.append(list(ids))
        return self.stored & set(ids)


def _pending_with(*ids: str) -> PendingWrites:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=100)
    pending.add(1, pa.table({"id": list(ids)}), ids)
    return pending


def test_rows_are_new_unless_pending_stored_or_repeated_in_the_batch() -> None:
    # In the index: one stored id, one pending id, and one whose insert failed (in neither).
    counts: list[int] = []
    accepted = AcceptedIds(
        IdHashIndex(hash_ids(["stored", "pending", "lost"])), _pending_with("pending"), on_count=counts.append
    )
    store = FakeStore({"stored"})
    table = pa.table({"id": ["new", "stored", "pending", "lost", "new", "other"], "n": [0, 1, 2, 3, 4, 5]})

    fresh = accepted.fresh(table, store)

    assert fresh.keep.tolist() == [True, False, False, True, False, True]
    assert fresh.table.column("n").to_pylist() == [0, 3, 5]
    assert fresh.ids == ["new", "stored", "pending", "lost", "new", "other"]
    assert fresh.new_ids == ["new", "lost", "other"]
    assert fresh.duplicates == 3
    assert not fresh.all_new
    # ClickHouse is asked only about the index's candidates that are not pending.
    assert store.asked == [["stored", "lost"]]
    assert np.array_equal(fresh.new_hashes, hash_ids(["new", "lost", "other"]))

    accepted.add(fresh.new_hashes)
    assert len(accepted) == 6
    assert counts == [3, 6]


def test_a_batch_of_new_ids_comes_back_as_it_is_without_asking_clickhouse() -> None:
    accepted = AcceptedIds(IdHashIndex(), _pending_with())
    store = FakeStore(set())
    table = pa.table({"id": ["a", "b", "c"]})

    fresh = accepted.fresh(table, store)

    assert fresh.table is table
    assert fresh.all_new and fresh.duplicates == 0
    assert store.asked == []
    assert len(accepted) == 0
