"""The event ids the store has accepted, stored or still pending in the log: which rows of a
batch are new, so a retried write is reported as duplicates and never stored twice.

The hash index (storage/id_index.py) is confined to one thread, the store's append thread
(and its constructor, before that thread starts); only its size is read elsewhere, through
``len()``: a copy that thread assigns after each change, read without a lock (one int
attribute, atomic under the GIL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from actors.pending_writes import PendingWrites
from storage.events import ClickHouseEvents
from storage.id_index import IdHashIndex, hash_ids


@dataclass(frozen=True, slots=True)
class Fresh:
    """A batch split into its new rows and the rest."""

    table: pa.Table  # the new rows (the batch itself when all are new)
    ids: list[str]  # every row's id, in the batch's order
    hashes: np.ndarray  # every row's id hash
    keep: np.ndarray  # True where the row is new

    @property
    def all_new(self) -> bool:
        return bool(self.keep.all())

    @property
    def duplicates(self) -> int:
        return int((~self.keep).sum())

    @property
    def new_ids(self) -> list[str]:
        """The new rows' ids, in order (``ids`` itself when all are new: not to be changed)."""
        return self.ids if self.all_new else [self.ids[i] for i in np.flatnonzero(self.keep)]

    @property
    def new_hashes(self) -> np.ndarray:
        return self.hashes[self.keep]


class AcceptedIds:
    def __init__(
        self, index: IdHashIndex, pending: PendingWrites, *, on_count: Callable[[int], None] | None = None
    ) -> None:
        """``on_count`` hears the number of indexed ids now and after each ``add``."""
        self._index = index
        self._pending = pending
        self._on_count = on_count
        self._count = 0
        self._publish()

    def __len__(self) -> int:
        """Ids in the index (any thread)."""
        return self._count

    def fresh(self, table: pa.Table, store: ClickHouseEvents) -> Fresh:
        """The rows of ``table`` not accepted before; ``store`` confirms the index's candidates."""
        ids: list[str] = table.column("id").to_pylist()
        hashes = hash_ids(ids)
        keep = self._new_rows(ids, hashes, store)
        return Fresh(table if keep.all() else table.filter(pa.array(keep)), ids, hashes, keep)

    def add(self, hashes: np.ndarray) -> None:
        """These ids are accepted: in the log, or stored."""
        self._index.add(hashes)
        self._publish()

    def _publish(self) -> None:
        # On the owning thread only, so successive counts reach ``on_count`` in order.
        self._count = len(self._index)
        if self._on_count is not None:
            self._on_count(self._count)

    def _new_rows(self, ids: list[str], hashes: np.ndarray, store: ClickHouseEvents) -> np.ndarray:
        """Which rows are new: not repeated earlier in ``ids``, not accepted before."""
        keep = np.ones(len(ids), dtype=bool)
        first_seen: dict[str, int] = {}
        for pos, event_id in enumerate(ids):
            if event_id in first_seen:
                keep[pos] = False
            else:
                first_seen[event_id] = pos
        # The index may answer yes for an id never stored (a hash collision, a failed insert):
        # a yes is confirmed against the log's pending rows, then against ClickHouse.
        candidates = np.flatnonzero(self._index.contains(hashes) & keep)
        if candidates.size:
            pending = self._pending.pending_ids(ids[i] for i in candidates)
            stored = store.stored_ids([ids[i] for i in candidates if ids[i] not in pending])
            for i in candidates:
                if ids[i] in pending or ids[i] in stored:
                    keep[i] = False
        return keep
