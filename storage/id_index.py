"""An in-memory index of the 64-bit hashes of every stored event id.

It answers "might this id be stored already?" without touching ClickHouse for the
common case (a new id). A hit is only a candidate: the caller confirms it against the
store, so a hash collision can never drop a real event. Memory: 8 bytes per event.
"""

from __future__ import annotations

import numpy as np
import xxhash


def hash_ids(ids: list[str]) -> np.ndarray:
    """xxHash64 with seed 0: the same value ClickHouse's ``xxHash64(id)`` gives."""
    digest = xxhash.xxh64_intdigest
    return np.fromiter((digest(i.encode()) for i in ids), dtype=np.uint64, count=len(ids))


class IdHashIndex:
    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self._sorted = np.unique(hashes.astype(np.uint64)) if hashes is not None else np.empty(0, np.uint64)
        self._recent: list[np.ndarray] = []
        self._recent_size = 0

    def __len__(self) -> int:
        return int(self._sorted.size + self._recent_size)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: True where the hash may already be stored."""
        mask = _member(self._sorted, hashes)
        for chunk in self._recent:
            mask |= _member(chunk, hashes)
        return mask

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size == 0:
            return
        self._recent.append(np.sort(hashes.astype(np.uint64)))
        self._recent_size += hashes.size
        # Merge small sorted runs into the main array now and then, like an LSM tree,
        # so lookups touch few arrays and inserts stay cheap.
        if len(self._recent) > 16 or self._recent_size > max(65536, self._sorted.size // 8):
            self._sorted = np.unique(np.concatenate([self._sorted, *self._recent]))
            self._recent.clear()
            self._recent_size = 0


def _member(sorted_array: np.ndarray, values: np.ndarray) -> np.ndarray:
    if sorted_array.size == 0:
        return np.zeros(values.shape, dtype=bool)
    pos = np.searchsorted(sorted_array, values)
    pos[pos == sorted_array.size] = 0
    return sorted_array[pos] == values
