"""The actor that owns the event store, and the client every replica uses to reach it.

chDB allows one process per data directory, so in embedded mode this actor is the only
process that touches ClickHouse. It is also the single writer in server mode, because the
id index that keeps retries from being stored twice needs one owner.

Durability: ``write`` returns once the new rows are in the write-ahead log, fsync'd
(storage/write_ahead_log.py). A flusher inserts what the log holds into ClickHouse every
``store_flush_interval_ms`` (or at once when a read of the event API needs it), then
feeds the live counters and the rollups. A restarted actor first inserts whatever the log
holds past its checkpoint. Retrying a write is always safe: ids already accepted, stored or
still waiting in the log, are reported as duplicates and not written again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import names
from actors.group_commit import GroupCommit
from actors.realtime_feed import RealtimeFeed
from actors.rollup_feeder import RollupFeeder
from actors.service_actor import service_actor
from core.arrow_ipc import pack, unpack
from core.errors import StoreUnavailable
from core.settings import Settings
from storage import clickhouse
from storage.events import (
    EVENT_COLUMNS,
    ClickHouseEvents,
    EventColumns,
    EventFilter,
    EventPage,
    QueryResult,
    WriteReceipt,
    column_rows,
    events_table,
)
from storage.id_index import IdHashIndex, hash_ids
from storage.write_ahead_log import WriteAheadLog

log = logging.getLogger("analytics.event_store")

# One insert carries at most this many rows; bigger queues are split over several inserts.
MAX_ROWS_PER_INSERT = 200_000
# Writes wait while this many acknowledged rows are not yet in ClickHouse (ClickHouse is down
# or slower than ingest): memory stays bounded and clients see the back-pressure.
MAX_PENDING_ROWS = 1_000_000
_FLUSH_RETRY_SECONDS = 1.0


@dataclass(slots=True)
class _Part:
    """A table from one caller, split back into per-request segments after the append."""

    table: pa.Table
    sizes: list[int]
    # ``table`` as the caller sent it (Arrow IPC), logged as it is when nothing of it is dropped.
    payload: bytes


# Read queries run on a small pool, each thread with its own client (chDB serves several
# clients on one directory inside one process). Appends to the log have a thread of their
# own, and so do ClickHouse writes, so a slow insert never holds up an acknowledgement.
READ_THREADS = 4


class EventStoreActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        config = Settings(**settings)
        self._config = config
        self._appender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-append")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-write")
        self._readers = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="clickhouse-read")
        self._local = threading.local()
        self._store = ClickHouseEvents.open(
            config.clickhouse_dsn,
            chdb_path=config.chdb_path,
            database=config.clickhouse_database,
            retention_days=config.retention_days,
        )
        started = time.perf_counter()
        self._index = IdHashIndex(self._store.all_id_hashes())
        self.index_load_seconds = time.perf_counter() - started
        self._registry = CollectorRegistry()
        self._m_insert_rows = Histogram(
            "analytics_store_insert_rows",
            "Rows per ClickHouse insert (group commit batch size)",
            buckets=(1, 10, 100, 500, 1000, 5000, 10_000, 50_000, 200_000),
            registry=self._registry,
        )
        self._m_insert_seconds = Histogram(
            "analytics_store_insert_seconds", "Duration of one ClickHouse insert", registry=self._registry
        )
        self._m_append_seconds = Histogram(
            "analytics_store_log_append_seconds",
            "Duration of one write-ahead log append, fsync included",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=self._registry,
        )
        self._m_duplicates = Counter(
            "analytics_store_duplicates_dropped", "Events not inserted because their id was stored", registry=self._registry
        )
        self._m_errors = Counter("analytics_store_insert_errors", "Failed ClickHouse inserts", registry=self._registry)
        self._m_index = Gauge("analytics_store_indexed_ids", "Event ids in the dedup index", registry=self._registry)
        self._m_pending = Gauge(
            "analytics_store_pending_rows", "Acknowledged rows not yet in ClickHouse", registry=self._registry
        )
        # Acknowledged, in the log, not yet in ClickHouse: (log seq, rows), and their ids.
        self._pending: list[tuple[int, pa.Table]] = []
        self._pending_ids: set[str] = set()
        self._pending_rows = 0
        self._pending_lock = threading.Lock()
        self._commit = GroupCommit(self._accept_parts, weight=lambda part: part.table.num_rows, max_weight=MAX_ROWS_PER_INSERT)
        self._rollups = RollupFeeder(
            self._connect,
            fed_through=self._store.rollups.fed_through,
            interval_seconds=config.rollup_feed_interval_ms / 1000,
            registry=self._registry,
        )
        # Hands every stored batch to the live counters, off the write path.
        self._feed = RealtimeFeed(config)
        self._wal = WriteAheadLog(config.data_dir.resolve() / "wal")
        self.replayed_rows = self._replay_log()
        self._stored_through = self._wal.last_seq
        self._m_index.set(len(self._index))
        self._flusher: asyncio.Task[None] | None = None
        self._flush_wanted: asyncio.Event | None = None
        self._flush_now: asyncio.Event | None = None

    # ---- accepting writes -----------------------------------------------------------------
    async def write(self, payload: bytes, sizes: list[int]) -> list[WriteReceipt]:
        """Accept the rows in ``payload`` (core/arrow_ipc.py); ``sizes`` splits them into the
        callers' requests, each getting a receipt. Returns once they are in the log."""
        self._start_flusher()
        while self._pending_rows > MAX_PENDING_ROWS:
            assert self._flush_now is not None
            self._flush_now.set()
            await asyncio.sleep(0.01)
        receipts = await self._commit.submit(_Part(unpack(payload), sizes, payload))
        assert self._flush_wanted is not None
        self._flush_wanted.set()
        return receipts

    async def _accept_parts(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        return await asyncio.get_running_loop().run_in_executor(self._appender, self._append_parts, parts)

    def _append_parts(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        table = pa.concat_tables([p.table for p in parts]) if len(parts) > 1 else parts[0].table
        fresh, ids, hashes, keep = self._fresh(table, self._reader())
        if fresh.num_rows:
            started = time.perf_counter()
            # None a duplicate: log the bytes the callers sent, a record each, instead of encoding
            # them again. The pending entry's seq is the last record's, so its checkpoint covers all.
            if fresh is table:
                seq = self._wal.append_packed_records([part.payload for part in parts])
            else:
                seq = self._wal.append(fresh)
            self._m_append_seconds.observe(time.perf_counter() - started)
            # Indexed now: a retry that arrives before the flush is already a duplicate.
            self._index.add(hashes[keep])
            self._m_index.set(len(self._index))
            with self._pending_lock:
                self._pending.append((seq, fresh))
                self._pending_ids.update(ids[i] for i in np.flatnonzero(keep))
                self._pending_rows += fresh.num_rows
            self._m_pending.set(self._pending_rows)
        self._m_duplicates.inc(int((~keep).sum()))
        return self._receipts(parts, ids, keep)

    def _fresh(self, table: pa.Table, store: ClickHouseEvents) -> tuple[pa.Table, list[str], np.ndarray, np.ndarray]:
        """The rows of ``table`` not accepted before, with every row's id, id hash and keep flag."""
        ids: list[str] = table.column("id").to_pylist()
        hashes = hash_ids(ids)
        keep = self._new_rows(ids, hashes, store)
        return (table.filter(pa.array(keep)) if not keep.all() else table), ids, hashes, keep

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
            with self._pending_lock:
                pending = {ids[i] for i in candidates if ids[i] in self._pending_ids}
            stored = store.stored_ids([ids[i] for i in candidates if ids[i] not in pending])
            for i in candidates:
                if ids[i] in pending or ids[i] in stored:
                    keep[i] = False
        return keep

    @staticmethod
    def _receipts(parts: list[_Part], ids: list[str], keep: np.ndarray) -> list[list[WriteReceipt]]:
        out: list[list[WriteReceipt]] = []
        offset = 0
        for part in parts:
            receipts = []
            for size in part.sizes:
                segment = keep[offset : offset + size]
                duplicates = [ids[offset + i] for i in np.flatnonzero(~segment)]
                receipts.append(WriteReceipt(inserted=int(segment.sum()), duplicate_ids=duplicates))
                offset += size
            out.append(receipts)
        return out

    # ---- from the log into ClickHouse -----------------------------------------------------
    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            loop = asyncio.get_running_loop()
            self._feed.bind_loop(loop)
            self._flush_wanted = asyncio.Event()
            self._flush_now = asyncio.Event()
            self._flusher = loop.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        assert self._flush_wanted is not None and self._flush_now is not None
        loop = asyncio.get_running_loop()
        interval = self._config.store_flush_interval_ms / 1000
        while True:
            await self._flush_wanted.wait()
            # Linger so one insert carries everything that arrives meanwhile, unless a reader waits.
            try:
                await asyncio.wait_for(self._flush_now.wait(), timeout=interval)
            except TimeoutError:
                pass
            self._flush_wanted.clear()
            self._flush_now.clear()
            with self._pending_lock:
                batch = self._take_batch()
            if not batch:
                continue
            try:
                await loop.run_in_executor(self._writer, self._store_pending, batch)
            except Exception:
                self._m_errors.inc()
                log.exception("inserting %s logged batches failed; retrying", len(batch))
                await asyncio.sleep(_FLUSH_RETRY_SECONDS)
            with self._pending_lock:
                more = bool(self._pending)
                backlog = self._pending_rows >= MAX_ROWS_PER_INSERT
            if more:
                # Rows that arrived during this insert wait out the interval like any others: each
                # insert costs 20-40 ms of CPU whatever its size, and going again at once made a busy
                # writer insert back to back (a third of a core at 500 single events/s). Only a
                # backlog bigger than one insert goes at once.
                self._flush_wanted.set()
                if backlog:
                    self._flush_now.set()

    def _take_batch(self) -> list[tuple[int, pa.Table]]:
        taken, rows = [], 0
        for seq, table in self._pending:
            if taken and rows + table.num_rows > MAX_ROWS_PER_INSERT:
                break
            taken.append((seq, table))
            rows += table.num_rows
        return taken

    def _store_pending(self, batch: list[tuple[int, pa.Table]]) -> None:
        """On the ClickHouse write thread: insert logged batches, then release them."""
        table = pa.concat_tables([t for _, t in batch]) if len(batch) > 1 else batch[0][1]
        self._insert(table)
        last = batch[-1][0]
        self._wal.checkpoint(last)
        with self._pending_lock:
            del self._pending[: len(batch)]
            for _, t in batch:
                self._pending_ids.difference_update(t.column("id").to_pylist())
                self._pending_rows -= t.num_rows
        self._stored_through = last
        self._m_pending.set(self._pending_rows)

    def _insert(self, table: pa.Table) -> None:
        """Insert new rows into ClickHouse, then hand them to the counters and the rollups."""
        # Same rows, same token: a retried insert is a no-op inside ClickHouse too.
        token = hashlib.blake2b("\n".join(sorted(table.column("id").to_pylist())).encode(), digest_size=16).hexdigest()
        started = time.perf_counter()
        try:
            seq = self._store.insert_raw(table, token)
        except Exception:
            self._m_errors.inc()
            raise
        self._m_insert_seconds.observe(time.perf_counter() - started)
        self._m_insert_rows.observe(table.num_rows)
        self._rollups.stored(seq, table)
        # Only what ClickHouse accepted reaches the live counters.
        self._feed.inserted(table)

    def _replay_log(self) -> int:
        """At start: insert what the log acknowledged but ClickHouse may not hold (a crash)."""
        replayed = 0
        for seq, table in self._wal.unstored():
            fresh, _, hashes, keep = self._fresh(table, self._store)
            if fresh.num_rows:
                self._index.add(hashes[keep])
                self._insert(fresh)
                replayed += fresh.num_rows
            self._wal.checkpoint(seq)
        if replayed:
            log.warning("inserted %s acknowledged rows from the write-ahead log after a restart", replayed)
        return replayed

    async def _caught_up(self) -> None:
        """Wait until every acknowledged row is in ClickHouse (reads of the event API)."""
        target = self._wal.last_seq
        if self._stored_through >= target:
            return
        self._start_flusher()
        assert self._flush_wanted is not None and self._flush_now is not None
        while self._stored_through < target:
            self._flush_wanted.set()
            self._flush_now.set()
            await asyncio.sleep(0.002)

    def _connect(self) -> Any:
        config = self._config
        return clickhouse.connect(config.clickhouse_dsn, chdb_path=config.chdb_path, database=config.clickhouse_database)

    def _reader(self) -> ClickHouseEvents:
        store = getattr(self._local, "store", None)
        if store is None:
            store = ClickHouseEvents(self._connect())
            self._local.store = store
        return store

    async def _read(self, method: str, *args: Any) -> Any:
        def run() -> Any:
            return getattr(self._reader(), method)(*args)

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    # The event API reads what it was told: it waits for acknowledged rows to be inserted.
    async def get(self, event_id: str) -> dict[str, Any] | None:
        await self._caught_up()
        return await self._read("get", event_id)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        await self._caught_up()
        return await self._read("list", filters, limit, cursor)

    async def count(self, filters: EventFilter) -> int:
        await self._caught_up()
        return await self._read("count", filters)

    async def ping(self) -> bool:
        return await self._read("ping")

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return await self._read("query", sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return await self._read("query_arrow", sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        loop = asyncio.get_running_loop()
        if table != "events":
            await loop.run_in_executor(self._writer, self._store.insert_table, table, rows)
            return
        await self.load_events(rows)
        await self._rollups.settle()

    async def load_events(self, rows: pa.Table) -> None:
        """Bulk load: skips the log (durable when this returns) but deduplicated, indexed and
        counted like ingest. The rollups get the rows later (``settle_rollups`` waits for them)."""
        await asyncio.get_running_loop().run_in_executor(self._appender, self._load_events, rows)

    def _load_events(self, rows: pa.Table) -> None:
        for start in range(0, rows.num_rows, MAX_ROWS_PER_INSERT):
            chunk = rows.slice(start, MAX_ROWS_PER_INSERT).select(EVENT_COLUMNS)
            fresh, _, hashes, keep = self._fresh(chunk, self._reader())
            self._m_duplicates.inc(int((~keep).sum()))
            if fresh.num_rows:
                self._index.add(hashes[keep])
                self._writer.submit(self._insert, fresh).result()
        self._m_index.set(len(self._index))
        # Arrow's allocator keeps what a bulk load freed (~100 MiB after millions of rows): hand it back.
        pa.default_memory_pool().release_unused()

    async def settle_rollups(self) -> int:
        """Wait until every write acknowledged so far is in ClickHouse and in the rollups."""
        await self._caught_up()
        return await self._rollups.settle()

    async def realtime_snapshot(self, shard: int) -> dict[str, Any]:
        """A counter shard's window from ClickHouse, tagged with the last insert it includes.

        Runs on the ClickHouse write thread, between inserts, so the tag is exact.
        """
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._feed.snapshot, self._store.client, shard)

    async def realtime_position(self) -> tuple[int, int]:
        """(epoch, seq) of the last stored insert: shards compare it with the deltas they got."""
        return self._feed.position()

    async def metrics_text(self) -> bytes:
        return generate_latest(self._registry)

    def close(self) -> None:
        """Stop the threads and close the log (the actor's process ends anyway; for tests and tools)."""
        if self._flusher is not None:
            self._flusher.cancel()
        self._rollups.stop()
        for pool in (self._appender, self._writer, self._readers):
            pool.shutdown(wait=True)
        self._wal.close()

    async def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "indexed_ids": len(self._index),
            "index_load_seconds": self.index_load_seconds,
            "rollup_lag_inserts": self._rollups.lag,
            "pending_rows": self._pending_rows,
            "log_seq": self._wal.last_seq,
            "stored_through": self._stored_through,
            "replayed_rows": self.replayed_rows,
        }


def event_store_actor(settings: Settings, *, detached: bool = False) -> ray.actor.ActorHandle:
    """The one event store actor: created on first call, looked up afterwards.

    ``analytics run`` owns it (it dies with the service); a cluster deployed from
    serve_config.yaml gets a detached one that outlives the deploy command.
    """
    # Restarted after a crash; the constructor rebuilds the id index from the store.
    return service_actor(
        EventStoreActor, names.EVENT_STORE, settings.model_dump(mode="json"), detached=detached, max_concurrency=10_000
    )


def find_event_store_actor(timeout_seconds: float = 60.0) -> ray.actor.ActorHandle:
    """Look the actor up by name (replicas never create it: its owner is the runtime)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return ray.get_actor(names.EVENT_STORE, namespace=names.NAMESPACE)
        except ValueError:
            if time.monotonic() > deadline:
                raise StoreUnavailable("the event store actor is not running") from None
            time.sleep(0.2)


_RETRYABLE = (ActorDiedError, ActorUnavailableError, RayActorError)


class RemoteEventStore:
    """``EventStore`` backed by the actor. Writes from concurrent requests share one call."""

    def __init__(self, actor: ray.actor.ActorHandle, *, retry_seconds: float = 30.0) -> None:
        self._actor = actor
        self._retry_seconds = retry_seconds
        self._commit: GroupCommit[EventColumns, WriteReceipt] = GroupCommit(
            self._send, weight=column_rows, max_weight=MAX_ROWS_PER_INSERT
        )

    async def write(self, rows: EventColumns) -> WriteReceipt:
        return await self._commit.submit(rows)

    async def _send(self, parts: list[EventColumns]) -> list[WriteReceipt]:
        # One table for every request in this flush (built here, not per request).
        table = events_table(parts)
        receipts: list[WriteReceipt] = await self._retrying(self._actor.write, pack(table), [column_rows(p) for p in parts])
        return receipts

    async def _retrying(self, method: Any, *args: Any) -> Any:
        # The actor restarts by itself after a crash; writes are idempotent, so retry until it is back.
        deadline = time.monotonic() + self._retry_seconds
        delay = 0.05
        while True:
            try:
                return await method.remote(*args)
            except _RETRYABLE as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable("the event store is restarting; retry the request") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self._retrying(self._actor.get, event_id)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        return await self._retrying(self._actor.list, filters, limit, cursor)

    async def count(self, filters: EventFilter) -> int:
        return await self._retrying(self._actor.count, filters)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._actor.ping.remote(), timeout=5))
        except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
            return False

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return await self._retrying(self._actor.query, sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return await self._retrying(self._actor.query_arrow, sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        await self._retrying(self._actor.insert_table, table, rows)

    async def settle_rollups(self) -> int:
        return int(await self._retrying(self._actor.settle_rollups))

    async def metrics_text(self) -> bytes:
        return bytes(await self._retrying(self._actor.metrics_text))
