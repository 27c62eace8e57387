"""Rows the event store has acknowledged (they are in the write-ahead log) but not yet inserted
into ClickHouse, oldest first, with the bound that pushes back on writers.

Three threads share it, so ``_lock`` guards every field: the append thread adds a batch once it
is logged, the ClickHouse write thread releases a batch once it is inserted and checkpointed,
and the event loop takes batches to insert and reads the totals. The lock is taken once per
batch. Each batch keeps the list of its ids it was added with, so a release (and the insert's
deduplication token) needs no conversion of the rows' ids back from Arrow, and the wall time it was
added at, before any of its rows was acknowledged: the data watermark (actors/event_store.py
``watermark``) is never later than the oldest pending batch's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import pyarrow as pa


class LoggedBatch(NamedTuple):
    seq: int  # log seq of the batch's last record
    table: pa.Table  # its rows
    ids: Sequence[str]  # their ids, distinct, as the append thread had them
    accepted_ms: int = 0  # wall time (epoch ms) it was added, before its rows were acknowledged


class PendingWrites:
    def __init__(
        self,
        *,
        stored_through: int,
        max_rows: int,
        max_rows_per_insert: int,
        on_rows: Callable[[int], None] | None = None,
    ) -> None:
        """``stored_through``: the log seq ClickHouse already holds. Writers wait while more than
        ``max_rows`` are pending; one insert takes at most ``max_rows_per_insert`` (but always one
        batch). ``on_rows`` hears the pending row count after each change, under the lock, so
        successive counts arrive in order."""
        self._max_rows = max_rows
        self.max_rows_per_insert = max_rows_per_insert
        self._on_rows = on_rows
        self._lock = threading.Lock()
        self._batches: list[LoggedBatch] = []
        self._ids: set[str] = set()
        self._rows = 0
        self._stored_through = stored_through

    # ---- the append thread ----------------------------------------------------------------
    def add(self, seq: int, table: pa.Table, ids: Sequence[str]) -> None:
        """``table`` (whose rows have the distinct ``ids``) is durable in the log up to ``seq``.
        ``ids`` is kept with the batch, not copied: the caller leaves it unchanged."""
        with self._lock:
            # Read under the lock, so the batches' times run in their order.
            self._batches.append(LoggedBatch(seq, table, ids, time.time_ns() // 1_000_000))
            self._ids.update(ids)
            self._rows += table.num_rows
            self._changed()

    def pending_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` that are pending."""
        with self._lock:
            return {event_id for event_id in ids if event_id in self._ids}

    # ---- the event loop -------------------------------------------------------------------
    def take(self) -> list[LoggedBatch]:
        """The oldest batches for one insert (not removed until ``release``)."""
        taken: list[LoggedBatch] = []
        rows = 0
        with self._lock:
            for batch in self._batches:
                if taken and rows + batch.table.num_rows > self.max_rows_per_insert:
                    break
                taken.append(batch)
                rows += batch.table.num_rows
        return taken

    def counts(self) -> tuple[int, int]:
        """(batches, rows) pending, read together."""
        with self._lock:
            return len(self._batches), self._rows

    def oldest_accepted_ms(self) -> int | None:
        """When the oldest pending batch was added (epoch ms), or None when none is pending: every row
        acknowledged before it has left (it is in ClickHouse)."""
        with self._lock:
            return self._batches[0].accepted_ms if self._batches else None

    @property
    def rows(self) -> int:
        with self._lock:
            return self._rows

    @property
    def full(self) -> bool:
        """Writers wait while this holds."""
        with self._lock:
            return self._rows > self._max_rows

    @property
    def stored_through(self) -> int:
        """Every log seq up to this one is in ClickHouse."""
        with self._lock:
            return self._stored_through

    # ---- the ClickHouse write thread ------------------------------------------------------
    def release(self, batch: list[LoggedBatch]) -> None:
        """``batch`` (the oldest pending, as ``take`` gave it) is in ClickHouse and checkpointed."""
        seqs = [b.seq for b in batch]
        with self._lock:
            released = self._batches[: len(batch)]
            if [b.seq for b in released] != seqs:
                raise RuntimeError(f"log records {seqs} released are not the oldest pending ones")
            del self._batches[: len(batch)]
            self._ids.difference_update(*(b.ids for b in released))
            self._rows -= sum(b.table.num_rows for b in released)
            self._stored_through = seqs[-1]
            self._changed()

    def _changed(self) -> None:
        if self._on_rows is not None:
            self._on_rows(self._rows)
