"""The event store's flush loop: moves acknowledged rows from the write-ahead log into ClickHouse.

A task on the actor's event loop decides when; the insert itself, the log checkpoint and the
release of the pending rows run on the ClickHouse write thread, in that order, so a row leaves
``PendingWrites`` only once ClickHouse holds it and a restart would not replay it. A failed
step keeps the rows pending and the flush is retried; batches a failed flush had inserted
already (its checkpoint or release failed) are not inserted again, so neither ClickHouse nor
the rollups and live counters the insert hands them to get them twice. A failed insert may still
have stored its rows (an error after ClickHouse committed), so its retry carries exactly the same
batches, whose same dedup token ClickHouse recognises; batches logged since go in an insert of
their own. The asyncio events are touched only on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import Executor

import pyarrow as pa

from actors.pending_writes import LoggedBatch, PendingWrites

log = logging.getLogger("analytics.event_store")


class FlushLoop:
    def __init__(
        self,
        pending: PendingWrites,
        *,
        insert: Callable[[pa.Table, Iterable[str]], None],
        checkpoint: Callable[[int], None],
        writer: Executor,
        interval_seconds: float,
        retry_seconds: float = 1.0,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        """``insert`` (given the rows and their ids) and ``checkpoint`` (the log's) run on ``writer``,
        the ClickHouse write thread. ``on_error`` hears each failure of a step after the insert
        (the checkpoint or the release), on that thread; ``insert`` counts its own failures."""
        self._pending = pending
        self._insert = insert
        self._checkpoint = checkpoint
        self._writer = writer
        self._interval = interval_seconds
        self._retry = retry_seconds
        self._on_error = on_error
        # The log seq through which rows are in ClickHouse, released or not (the write thread's).
        self._inserted_through = pending.stored_through
        # The batches of an insert that raised, retried as they were (the write thread's).
        self._failed_insert: list[LoggedBatch] = []
        self._task: asyncio.Task[None] | None = None
        # Rows wait to be inserted / someone waits for them: insert now.
        self._wanted = asyncio.Event()
        self._now = asyncio.Event()

    def start(self) -> bool:
        """Run on the running event loop, unless running already; True when it (re)started."""
        if self._task is not None and not self._task.done():
            return False
        self._wanted = asyncio.Event()
        self._now = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return True

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def wake(self) -> None:
        """Rows were logged: insert them within the interval."""
        self._wanted.set()

    async def make_room(self) -> None:
        """Back-pressure: wait while too many acknowledged rows are not yet in ClickHouse."""
        while self._pending.full:
            self._now.set()
            await asyncio.sleep(0.01)

    async def until_stored(self, seq: int) -> None:
        """Insert at once, until every log record up to ``seq`` is in ClickHouse."""
        while self._pending.stored_through < seq:
            self._wanted.set()
            self._now.set()
            await asyncio.sleep(0.002)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            # Linger so one insert carries everything that arrives meanwhile, unless a reader waits.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), timeout=self._interval)
            self._wanted.clear()
            self._now.clear()
            batch = self._pending.take()
            if not batch:
                continue
            try:
                await loop.run_in_executor(self._writer, self._store, batch)
            except Exception:
                step = "inserting" if self._inserted_through < batch[-1].seq else "checkpointing"
                log.exception("%s %s logged batches failed; retrying", step, len(batch))
                await asyncio.sleep(self._retry)
            batches, rows = self._pending.counts()
            if batches:
                # Rows that arrived during this insert wait out the interval like any others: each
                # insert costs about the same CPU whatever its size, and going again at once made a
                # busy writer insert back to back. Only a backlog of a full insert or more goes at once.
                self._wanted.set()
                if rows >= self._pending.max_rows_per_insert:
                    self._now.set()

    def _store(self, batch: list[LoggedBatch]) -> None:
        """On the ClickHouse write thread: insert logged batches, checkpoint the log, release them."""
        # A retry after a failed checkpoint or release takes the same oldest batches again, maybe
        # with newer ones: only those newer ones are inserted.
        fresh = [b for b in batch if b.seq > self._inserted_through]
        if self._failed_insert:
            # Pending batches leave only once stored, so the failed ones still lead ``fresh``.
            last = self._failed_insert[-1].seq
            retried = [b for b in fresh if b.seq <= last]
            self._insert_batches(retried)
            fresh = fresh[len(retried) :]
        if fresh:
            self._insert_batches(fresh)
        try:
            self._checkpoint(batch[-1].seq)
            self._pending.release(batch)
        except Exception:
            if self._on_error is not None:
                self._on_error()
            raise

    def _insert_batches(self, batches: list[LoggedBatch]) -> None:
        table = pa.concat_tables([b.table for b in batches]) if len(batches) > 1 else batches[0].table
        self._failed_insert = batches
        self._insert(table, itertools.chain.from_iterable(b.ids for b in batches))
        self._failed_insert = []
        self._inserted_through = batches[-1].seq
