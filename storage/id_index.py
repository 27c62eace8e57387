"""An in-memory index of the 64-bit hashes of every stored event id.

It answers "might this id be stored already?" without touching ClickHouse for the
common case (a new id). A hit is only a candidate: the caller confirms it against the
store, so a hash collision can never drop a real event. Memory: 8 bytes per event.

Not thread-safe: one thread at a time looks up and adds (in the event store, its append thread).
"""

from __future__ import annotations

import numpy as np
import xxhash


def hash_ids(ids: list[str]) -> np.ndarray:
    """xxHash64 with seed 0: the same value ClickHouse's ``xxHash64(id)`` gives."""
    digest = xxhash.xxh64_intdigest
    return np.fromiter((digest(i.encode()) for i in ids), dtype=np.uint64, count=len(ids))


class IdHashIndex:
    """Sorted runs in three levels, like an LSM tree: a run per add, merged into a middle
    array every few adds, merged into the main array when the middle reaches 1/8 of it.

    Merges are stable sorts of already sorted runs (timsort merges them) rather than
    ``np.unique``, which sorts everything again and was far slower on large indexes; a repeated
    hash is harmless.
    """

    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self._sorted = np.sort(hashes.astype(np.uint64)) if hashes is not None else np.empty(0, np.uint64)
        self._middle = np.empty(0, np.uint64)
        self._recent: list[np.ndarray] = []
        self._recent_size = 0

    def __len__(self) -> int:
        """Hashes held (a hash given twice counts twice)."""
        return int(self._sorted.size + self._middle.size + self._recent_size)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: True where the hash may already be stored."""
        # Looked up in ascending order: consecutive binary searches then walk the big array in
        # one direction, which keeps its cache lines warm.
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        found = sorted_member(self._sorted, ordered) | sorted_member(self._middle, ordered)
        for chunk in self._recent:
            found |= sorted_member(chunk, ordered)
        mask = np.empty_like(found)
        mask[order] = found
        return mask

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size == 0:
            return
        self._recent.append(np.sort(hashes.astype(np.uint64)))
        self._recent_size += hashes.size
        if len(self._recent) > _MAX_RECENT_RUNS or self._recent_size > _MIN_MIDDLE:
            self._middle = np.sort(np.concatenate([self._middle, *self._recent]), kind="stable")
            self._recent.clear()
            self._recent_size = 0
            if self._middle.size > max(_MIN_MIDDLE, self._sorted.size // 8):
                self._sorted = np.sort(np.concatenate([self._sorted, self._middle]), kind="stable")
                self._middle = np.empty(0, np.uint64)


_MAX_RECENT_RUNS = 16
_MIN_MIDDLE = 65_536


def sorted_member(sorted_array: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Boolean mask: True where a value is in ``sorted_array`` (ascending)."""
    if sorted_array.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(sorted_array, values)
    pos[pos == sorted_array.size] = 0
    return sorted_array[pos] == values
