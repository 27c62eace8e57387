"""The actor that owns the event store, and the client every replica uses to reach it.

chDB allows one process per data directory, so in embedded mode this actor is the only
process that touches ClickHouse. It is also the single writer in server mode, because the
id index that keeps retries from being stored twice needs one owner.

Durability: ``write`` returns once the new rows are in the write-ahead log, fsync'd
(storage/write_ahead_log.py). A flush loop inserts what the log holds into ClickHouse every
``store_flush_interval_ms`` (or at once when a read of the event API needs it), then feeds
the live counters and the rollups. A restarted actor first inserts whatever the log holds
past its checkpoint. Retrying a write is always safe: ids already accepted, stored or still
waiting in the log, are reported as duplicates and not written again.
"""

# Threads, and what each one does (all in this actor's process):
#   event loop        every remote method; group commit of concurrent writes; back-pressure and
#                     the timing of inserts (FlushLoop).
#   wal-append        dedups each group of writes (AcceptedIds; the id index is this thread's
#                     alone), appends the fresh rows to the write-ahead log and adds them to
#                     PendingWrites; bulk loads, and the replay at start (checkpointing the log
#                     as it goes), dedup here too.
#   clickhouse-write  every ClickHouse write (ClickHouseWriter): inserts from the log, each followed
#                     by the log checkpoint (and the deletion of checkpointed segments) and the
#                     PendingWrites release, replays, bulk loads, other tables; it tags each insert
#                     for the live counters and reads their snapshots between inserts.
#   clickhouse-read   READ_THREADS threads for queries (ReadPool), each with a client of its own;
#                     analytics statements run under the query budget and wait in a bounded queue.
#   rollup-feed       feeds the rollups up to the stored inserts (RollupFeeder).
#   realtime-feed     sends each insert's deltas to the counter shards and the bus (RealtimeFeed).
# Locks, one per piece of state those threads share, each taken once per batch, never per event;
# the event loop takes only locks that guard memory, never one held through disk or ClickHouse work:
#   PendingWrites._lock  pending batches, their ids, row count and acceptance times, and the seq
#                        stored through
#   WriteAheadLog._lock  the segment list and the checkpoint with it (no file work under it)
#   WriteAheadLog._file_lock  the open segment, through an append's write and fsync: taken by the
#                        append thread and close() only
#   RollupFeeder._lock   the stored and fed insert seqs, and the acceptance times of the inserts not
#                        yet fed (InsertMemory locks the stored tables). The write thread reads the
#                        oldest pending time before taking it, never under it.
#   RealtimeFeed._lock   the insert seq (the live counters' tag) and the bound event loop
#   ReadPool._lock       the counts of analytics statements waiting for a read thread and running
# Read by any thread without a lock, each an int that one thread assigns (atomic under the GIL):
#   WriteAheadLog.last_seq (the append thread), WriteAheadLog.checkpointed (the checkpointing
#   thread), len(AcceptedIds) (the append thread).
# The event loop's alone: the watermark's last as_of (_as_of_ms) and the seq the replay at start
# stored through (_replayed_through, set by the constructor).

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from actors import names
from actors.accepted_ids import AcceptedIds
from actors.clickhouse_writer import ClickHouseWriter
from actors.flush_loop import FlushLoop
from actors.group_commit import GroupCommit
from actors.pending_writes import PendingWrites
from actors.read_pool import ReadPool
from actors.realtime_feed import RealtimeFeed
from actors.rollup_feeder import RollupFeeder
from actors.service_actor import service_actor
from actors.store_metrics import StoreMetrics
from core.arrow_ipc import pack, unpack
from core.errors import AnalyticsError, StoreUnavailable
from core.settings import Settings
from semantic.freshness import Watermark
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
from storage.id_index import IdHashIndex
from storage.query_budget import QueryBudget
from storage.write_ahead_log import WriteAheadLog

log = logging.getLogger("analytics.event_store")

# One insert carries at most this many rows; bigger queues are split over several inserts.
MAX_ROWS_PER_INSERT = 200_000
# Writes wait while this many acknowledged rows are not yet in ClickHouse (ClickHouse is down
# or slower than ingest): memory stays bounded and clients see the back-pressure.
MAX_PENDING_ROWS = 1_000_000
# Query threads, each with its own client: reads run beside the inserts and beside each other.
READ_THREADS = 4
# How long a restarted store waits for the rows it replayed from the log to reach the rollups.
REPLAY_FEED_SECONDS = 60.0
# How long an erasure waits for the rollups to hold every stored event before it gives up (and is retried).
ERASURE_SETTLE_SECONDS = 120.0


@dataclass(slots=True)
class _Part:
    """A table from one caller, split back into per-request segments after the append."""

    table: pa.Table
    sizes: list[int]
    # ``table`` as the caller sent it (Arrow IPC), logged as it is when nothing of it is dropped.
    payload: bytes


class EventStoreActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        config = Settings(**settings)
        self._config = config
        store = ClickHouseEvents.open(
            config.clickhouse_dsn,
            chdb_path=config.chdb_path,
            database=config.clickhouse_database,
            retention_days=config.retention_days,
            rollup_retention_days=config.rollup_retention_days,
            minute_retention_days=config.minute_retention_days,
        )
        started = time.perf_counter()
        index = IdHashIndex(store.all_id_hashes())
        self.index_load_seconds = time.perf_counter() - started
        self._metrics = StoreMetrics()
        self._wal = WriteAheadLog(config.data_dir.resolve() / "wal")
        self._pending = PendingWrites(
            stored_through=self._wal.last_seq,
            max_rows=MAX_PENDING_ROWS,
            max_rows_per_insert=MAX_ROWS_PER_INSERT,
            on_rows=self._metrics.pending_rows,
        )
        self._ids = AcceptedIds(index, self._pending, on_count=self._metrics.indexed_ids)
        self._rollups = RollupFeeder(
            self._connect,
            fed_through=store.rollups.fed_through,
            interval_seconds=config.rollup_feed_interval_ms / 1000,
            registry=self._metrics.registry,
            oldest_pending_ms=self._pending.oldest_accepted_ms,
        )
        # The flush and watermark lags, from the same times the watermark is computed from.
        self._metrics.track_lag(self._pending.oldest_accepted_ms, lambda: self._rollups.position()[2])
        # Hands every stored batch to the live counters, off the write path.
        self._feed = RealtimeFeed(config)
        self._writer = ClickHouseWriter(store, rollups=self._rollups, feed=self._feed, metrics=self._metrics)
        self._reads = ReadPool(
            self._connect,
            threads=READ_THREADS,
            budget=QueryBudget.from_settings(config),
            batch_budget=QueryBudget.for_batch(config),
            max_queued=config.query_max_queued,
        )
        # Appends have a thread of their own, apart from the inserts, so a slow insert never holds
        # up an acknowledgement.
        self._appender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-append")
        self._commit = GroupCommit(
            self._accept_parts, weight=lambda part: part.table.num_rows, max_weight=MAX_ROWS_PER_INSERT
        )
        self._flush = FlushLoop(
            self._pending,
            insert=self._writer.insert,
            checkpoint=self._wal.checkpoint,
            writer=self._writer.executor,
            interval_seconds=config.store_flush_interval_ms / 1000,
            on_error=self._metrics.flush_failed,
        )
        self._as_of_ms = 0
        self.replayed_rows = self._appender.submit(self._replay_log).result()
        # Replayed rows were acknowledged before this process started: the watermark cannot pass
        # them until they are in the rollups, so they are fed before the store serves.
        self._replayed_through = self._rollups.position()[0] if self.replayed_rows else 0
        # Writes to tables other than events (content metadata updates) change answers too; counted
        # from the clock at start, so a restarted actor never hands out a count an earlier one used.
        self._tables_seq = time.time_ns()
        if self.replayed_rows and not self._rollups.wait_fed(self._replayed_through, REPLAY_FEED_SECONDS):
            log.warning("the rollups are still behind the rows replayed from the log; the watermark waits for them")

    # ---- accepting writes -----------------------------------------------------------------
    async def write(self, payload: bytes, sizes: list[int]) -> list[WriteReceipt]:
        """Accept the rows in ``payload`` (core/arrow_ipc.py); ``sizes`` splits them into the
        callers' requests, each getting a receipt. Returns once they are in the log."""
        self._start_flushing()
        await self._flush.make_room()
        # Shielded inside: a caller that goes away (client disconnect) does not cancel the write.
        return await self._commit.submit(_Part(unpack(payload), sizes, payload))

    async def _accept_parts(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        receipts = await asyncio.get_running_loop().run_in_executor(self._appender, self._append_parts, parts)
        # Woken here rather than by each caller, so rows whose caller went away are inserted too.
        self._flush.wake()
        return receipts

    def _append_parts(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        """On the append thread: log the new rows (fsync'd), then count them as pending."""
        table = pa.concat_tables([p.table for p in parts]) if len(parts) > 1 else parts[0].table
        fresh = self._ids.fresh(table, self._reads.thread_store())
        if fresh.table.num_rows:
            started = time.perf_counter()
            # None a duplicate: log the bytes the callers sent, a record each, instead of encoding
            # them again. The pending entry's seq is the last record's, so its checkpoint covers all.
            if fresh.all_new:
                seq = self._wal.append_packed_records([part.payload for part in parts])
            else:
                seq = self._wal.append(fresh.table)
            self._metrics.log_appended(time.perf_counter() - started)
            # Indexed now: a retry that arrives before the flush is already a duplicate.
            self._ids.add(fresh.new_hashes)
            self._pending.add(seq, fresh.table, fresh.new_ids)
        self._metrics.duplicates_dropped(fresh.duplicates)
        return _receipts(parts, fresh.ids, fresh.keep)

    def _replay_log(self) -> int:
        """At start, on the append thread: insert what the log acknowledged but ClickHouse may not
        hold (a crash)."""
        replayed = 0
        for seq, table in self._wal.unstored():
            fresh = self._ids.fresh(table, self._reads.thread_store())
            if fresh.table.num_rows:
                self._ids.add(fresh.new_hashes)
                self._writer.insert_and_wait(fresh.table, fresh.new_ids)
                replayed += fresh.table.num_rows
            self._wal.checkpoint(seq)
        if replayed:
            log.warning("inserted %s acknowledged rows from the write-ahead log after a restart", replayed)
        return replayed

    # ---- from the log into ClickHouse -----------------------------------------------------
    def _start_flushing(self) -> None:
        if self._flush.start():
            self._feed.bind_loop(asyncio.get_running_loop())

    async def _caught_up(self) -> None:
        """Wait until every acknowledged row is in ClickHouse (reads of the event API)."""
        target = self._wal.last_seq
        if self._pending.stored_through >= target:
            return
        self._start_flushing()
        await self._flush.until_stored(target)

    def _connect(self) -> Any:
        config = self._config
        return clickhouse.connect(
            config.clickhouse_dsn, chdb_path=config.chdb_path, database=config.clickhouse_database
        )

    # ---- reads ----------------------------------------------------------------------------
    # The event API reads what it was told: it waits for acknowledged rows to be inserted.
    async def get(self, event_id: str) -> dict[str, Any] | None:
        await self._caught_up()
        return await self._reads.call("get", event_id)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        await self._caught_up()
        return await self._reads.call("list", filters, limit, cursor)

    async def count(self, filters: EventFilter) -> int:
        await self._caught_up()
        return await self._reads.call("count", filters)

    async def ping(self) -> bool:
        return await self._reads.call("ping")

    # Analytics statements: under the query budget, refused with Overloaded when too many wait.
    async def query(self, sql: str, parameters: dict[str, Any] | None = None, batch: bool = False) -> QueryResult:
        return await self._reads.call_analytics("query", sql, parameters, batch=batch)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None, batch: bool = False) -> pa.Table:
        return await self._reads.call_analytics("query_arrow", sql, parameters, batch=batch)

    async def watermark(self) -> tuple[int, int, int, int]:
        """(stored_seq, fed_seq, as_of_ms, tables_seq): the last insert in the events table, the last
        one fed to the rollups, an instant (epoch ms) such that every event acknowledged before it is
        in both, and the count of writes to the other tables (metadata). Memory only, no ClickHouse
        statement.

        as_of is the earliest of now, the oldest pending write's acceptance and the acceptance bound
        of each insert not yet fed (RollupFeeder.position): an event acknowledged earlier was accepted
        earlier still, so it is in none of those, so it is stored and fed. Pending writes are read
        first: a batch leaves them only once its insert is recorded in the rollup feeder, so none is
        missed between the two reads. It never goes back: a later answer covers what an earlier did.
        """
        now = time.time_ns() // 1_000_000
        oldest_pending = self._pending.oldest_accepted_ms()
        stored, fed, oldest_unfed = self._rollups.position()
        if fed >= self._replayed_through:
            as_of = min(t for t in (now, oldest_pending, oldest_unfed) if t is not None)
            self._as_of_ms = max(self._as_of_ms, as_of)
        return stored, fed, self._as_of_ms, self._tables_seq

    # ---- bulk loads -----------------------------------------------------------------------
    async def insert_table(self, table: str, rows: pa.Table) -> None:
        if table != "events":
            await self._writer.insert_table(table, rows)
            self._tables_seq += 1
            return
        await self.load_events(rows)
        await self._rollups.settle()

    async def load_events(self, rows: pa.Table) -> None:
        """Bulk load: skips the log (durable when this returns) but deduplicated, indexed and
        counted like ingest. The rollups get the rows later (``settle_rollups`` waits for them)."""
        await asyncio.get_running_loop().run_in_executor(self._appender, self._load_events, rows)

    def _load_events(self, rows: pa.Table) -> None:
        """On the append thread, each chunk inserted on the write thread."""
        for start in range(0, rows.num_rows, MAX_ROWS_PER_INSERT):
            chunk = rows.slice(start, MAX_ROWS_PER_INSERT).select(EVENT_COLUMNS)
            fresh = self._ids.fresh(chunk, self._reads.thread_store())
            self._metrics.duplicates_dropped(fresh.duplicates)
            if fresh.table.num_rows:
                self._ids.add(fresh.new_hashes)
                self._writer.insert_and_wait(fresh.table, fresh.new_ids)
        # Arrow's allocator keeps what a bulk load freed: hand it back.
        pa.default_memory_pool().release_unused()

    async def settle_rollups(self, timeout_seconds: float = 60.0) -> int:
        """Wait until every write acknowledged so far is in ClickHouse and in the rollups."""
        await self._caught_up()
        return await self._rollups.settle(timeout_seconds)

    # ---- erasure (semantic/erasure.py) ----------------------------------------------------
    async def user_data_plan(self, user_ids: list[str]) -> dict[str, Any]:
        """Where a user's data is, once every event acknowledged so far is stored and in the rollups."""
        await self.settle_rollups(ERASURE_SETTLE_SECONDS)
        return await self._reads.call("user_data_plan", user_ids)

    async def erase_user_data(self, user_ids: list[str], plan: dict[str, Any]) -> dict[str, Any]:
        """Remove a user's rows and refill the rollup slices of ``plan`` without them (idempotent)."""
        await self.settle_rollups(ERASURE_SETTLE_SECONDS)
        try:
            erased = await self._writer.erase_user_data(user_ids, plan, ERASURE_SETTLE_SECONDS)
        finally:
            # The tables changed under answers cached for the current watermark: move it on.
            self._tables_seq += 1
        # The log's open segment still holds the user's events (all in ClickHouse by now): closed, the
        # next append starts a new one, and the checkpoint after it deletes this one.
        self._wal.close()
        return erased

    async def user_data_remaining(self, user_ids: list[str]) -> dict[str, int]:
        return await self._reads.call("user_data_remaining", user_ids)

    # ---- live counters, metrics, lifecycle ------------------------------------------------
    async def realtime_snapshot(self, shard: int) -> dict[str, Any]:
        """A counter shard's window from ClickHouse, tagged with the last insert it includes.

        Runs on the ClickHouse write thread, between inserts, so the tag is exact.
        """
        return await self._writer.realtime_snapshot(shard)

    async def realtime_position(self) -> tuple[int, int]:
        """(epoch, seq) of the last stored insert: shards compare it with the deltas they got."""
        return self._feed.position()

    async def metrics_text(self) -> bytes:
        return self._metrics.text()

    def close(self) -> None:
        """Stop the threads and close the log (the actor's process ends anyway; for tests and tools)."""
        self._flush.stop()
        self._rollups.stop()
        self._appender.shutdown(wait=True)
        self._writer.shutdown()
        self._reads.shutdown()
        self._wal.close()

    async def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "indexed_ids": len(self._ids),
            "index_load_seconds": self.index_load_seconds,
            "rollup_lag_inserts": self._rollups.lag,
            "pending_rows": self._pending.rows,
            "log_seq": self._wal.last_seq,
            "stored_through": self._pending.stored_through,
            "replayed_rows": self.replayed_rows,
        }


def _receipts(parts: list[_Part], ids: list[str], keep: np.ndarray) -> list[list[WriteReceipt]]:
    """One receipt per caller's request: rows kept are inserted, the others are duplicates."""
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

    def __init__(self, actor: ray.actor.ActorHandle, *, retry_seconds: float = 30.0, batch: bool = False) -> None:
        """``batch``: reads for report runs and exports, under the batch query budget."""
        self._actor = actor
        self._retry_seconds = retry_seconds
        self._batch = batch
        self._commit: GroupCommit[EventColumns, WriteReceipt] = GroupCommit(
            self._send, weight=column_rows, max_weight=MAX_ROWS_PER_INSERT
        )

    async def write(self, rows: EventColumns) -> WriteReceipt:
        return await self._commit.submit(rows)

    async def _send(self, parts: list[EventColumns]) -> list[WriteReceipt]:
        # One table for every request in this flush (built here, not per request).
        table = events_table(parts)
        sizes = [column_rows(p) for p in parts]
        receipts: list[WriteReceipt] = await self._retrying(self._actor.write, pack(table), sizes)
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
            except RayTaskError as exc:
                # Ray wraps what the actor raised; our own errors (a query over budget, overloaded,
                # a bad cursor) reach the caller as they were raised, never retried.
                if isinstance(exc.cause, AnalyticsError):
                    raise exc.cause from None
                raise

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
        if self._batch:
            return await self._retrying(self._actor.query, sql, parameters, True)
        return await self._retrying(self._actor.query, sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        if self._batch:
            return await self._retrying(self._actor.query_arrow, sql, parameters, True)
        return await self._retrying(self._actor.query_arrow, sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        await self._retrying(self._actor.insert_table, table, rows)

    async def settle_rollups(self) -> int:
        return int(await self._retrying(self._actor.settle_rollups))

    async def watermark(self) -> Watermark:
        stored_seq, fed_seq, as_of_ms, tables_seq = await self._retrying(self._actor.watermark)
        return Watermark(stored_seq, fed_seq, as_of_ms, tables_seq)

    async def metrics_text(self) -> bytes:
        return bytes(await self._retrying(self._actor.metrics_text))

    # A user's data, for erasure (semantic/erasure.py UserDataStore).
    async def user_data_plan(self, user_ids: list[str]) -> dict[str, Any]:
        return dict(await self._retrying(self._actor.user_data_plan, user_ids))

    async def erase_user_data(self, user_ids: list[str], plan: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._retrying(self._actor.erase_user_data, user_ids, plan))

    async def user_data_remaining(self, user_ids: list[str]) -> dict[str, int]:
        return dict(await self._retrying(self._actor.user_data_remaining, user_ids))
