"""The event store's one ClickHouse write thread: every insert into ``events`` (flushes from the
log, replays, bulk loads) and into other tables runs on it, in order, and each stored batch is
handed on from it to the rollup feeder and the real-time feed. Its client is used nowhere else
after the store's constructor."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from actors.realtime_feed import RealtimeFeed
from actors.rollup_feeder import RollupFeeder
from actors.store_metrics import StoreMetrics
from core.errors import StoreUnavailable
from storage.events import ClickHouseEvents


class ClickHouseWriter:
    def __init__(
        self, store: ClickHouseEvents, *, rollups: RollupFeeder, feed: RealtimeFeed, metrics: StoreMetrics
    ) -> None:
        self._store = store
        self._rollups = rollups
        self._feed = feed
        self._metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-write")

    def insert(self, table: pa.Table, ids: Iterable[str] | None = None) -> None:
        """On the write thread: insert new rows, then hand them to the rollups and the counters.
        ``ids``: the rows' ids, in any order, when the caller holds them as strings already (they
        are read from ``table`` otherwise)."""
        # Same rows, same token: a retried insert is a no-op inside ClickHouse too.
        ids = table.column("id").to_pylist() if ids is None else ids
        token = hashlib.blake2b("\n".join(sorted(ids)).encode(), digest_size=16).hexdigest()
        started = time.perf_counter()
        try:
            seq = self._store.insert_raw(table, token)
        except Exception:
            self._metrics.insert_failed()
            raise
        self._metrics.inserted(table.num_rows, time.perf_counter() - started)
        self._rollups.stored(seq, table)
        # Only what ClickHouse accepted reaches the live counters.
        self._feed.inserted(table)

    def insert_and_wait(self, table: pa.Table, ids: Iterable[str] | None = None) -> None:
        """From another thread: ``insert`` on the write thread, returning when it is done."""
        self.executor.submit(self.insert, table, ids).result()

    async def insert_table(self, name: str, rows: pa.Table) -> None:
        """Rows for a table other than ``events``, as they are."""
        await asyncio.get_running_loop().run_in_executor(self.executor, self._store.insert_table, name, rows)

    async def erase_user_data(self, user_ids: list[str], plan: dict[str, Any], wait_seconds: float) -> dict[str, Any]:
        """An erasure's ClickHouse part (storage/user_data_tables.py), on this thread: no insert runs
        until it is done, so once the rollups are fed through the last insert, nothing is fed beside it
        either, and the slices it refills hold exactly what the feed would have put there."""
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self._erase_user_data, user_ids, plan, wait_seconds
        )

    def _erase_user_data(self, user_ids: list[str], plan: dict[str, Any], wait_seconds: float) -> dict[str, Any]:
        stored = self._rollups.position()[0]
        if not self._rollups.wait_fed(stored, wait_seconds):
            raise StoreUnavailable("the rollups are behind the stored events; the erasure is tried again")
        return self._store.erase_user_data(user_ids, plan, fed_through=stored)

    async def realtime_snapshot(self, shard: int) -> dict[str, Any]:
        """A counter shard's window, read between inserts, so its tag is exact."""
        return await asyncio.get_running_loop().run_in_executor(
            self.executor, self._feed.snapshot, self._store.client, shard
        )

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)
