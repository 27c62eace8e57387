"""The actor that owns the event store, and the client every replica uses to reach it.

chDB allows one process per data directory, so in embedded mode this actor is the only
process that touches ClickHouse. It is also the single writer in server mode, because the
id index that keeps retries from being stored twice needs one owner.

Durability: ``write`` returns only after ClickHouse accepted the insert. Retrying a write
is always safe: ids already stored are reported as duplicates and not inserted again.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from actors.wire import pack, unpack
from core.errors import StoreUnavailable
from core.settings import Settings
from storage import clickhouse
from storage.events import EVENT_COLUMNS, ClickHouseEvents, EventFilter, EventPage, QueryResult, WriteReceipt
from storage.id_index import IdHashIndex, hash_ids

# One insert carries at most this many rows; bigger queues are split over several inserts.
MAX_ROWS_PER_INSERT = 200_000


@dataclass(slots=True)
class _Part:
    """A table from one caller, split back into per-request segments after the insert."""

    table: pa.Table
    sizes: list[int]


# Read queries run on a small pool, each thread with its own client (chDB serves several
# clients on one directory inside one process); writes keep a thread of their own.
READ_THREADS = 4


class EventStoreActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        config = Settings(**settings)
        self._config = config
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-write")
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
        self._m_duplicates = Counter(
            "analytics_store_duplicates_dropped", "Events not inserted because their id was stored", registry=self._registry
        )
        self._m_errors = Counter("analytics_store_insert_errors", "Failed ClickHouse inserts", registry=self._registry)
        self._m_index = Gauge("analytics_store_indexed_ids", "Event ids in the dedup index", registry=self._registry)
        self._m_index.set(len(self._index))
        self.index_load_seconds = time.perf_counter() - started
        self._commit = GroupCommit(self._flush, weight=lambda part: part.table.num_rows, max_weight=MAX_ROWS_PER_INSERT)
        self._rollups = RollupFeeder(
            self._connect,
            fed_through=self._store.rollups.fed_through,
            interval_seconds=config.rollup_feed_interval_ms / 1000,
            registry=self._registry,
        )
        # Hands every stored batch to the live counters, off the write path.
        self._feed = RealtimeFeed(config)

    async def write(self, payload: bytes, sizes: list[int]) -> list[WriteReceipt]:
        """Store the rows in ``payload`` (actors/wire.py); ``sizes`` splits them into the callers'
        requests, each getting a receipt."""
        self._feed.bind_loop(asyncio.get_running_loop())
        return await self._commit.submit(_Part(unpack(payload), sizes))

    async def _flush(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._insert_parts, parts)

    def _insert_parts(self, parts: list[_Part]) -> list[list[WriteReceipt]]:
        table = pa.concat_tables([p.table for p in parts]) if len(parts) > 1 else parts[0].table
        ids: list[str] = table.column("id").to_pylist()
        hashes = hash_ids(ids)
        keep = np.ones(len(ids), dtype=bool)
        # A repeat inside this group: the first occurrence wins.
        first_seen: dict[str, int] = {}
        for pos, event_id in enumerate(ids):
            if event_id in first_seen:
                keep[pos] = False
            else:
                first_seen[event_id] = pos
        candidates = np.flatnonzero(self._index.contains(hashes) & keep)
        if candidates.size:
            stored = self._store.stored_ids([ids[i] for i in candidates])
            for i in candidates:
                if ids[i] in stored:
                    keep[i] = False
        fresh = table.filter(pa.array(keep)) if not keep.all() else table
        if fresh.num_rows:
            token = hashlib.blake2b("\n".join(sorted(fresh.column("id").to_pylist())).encode(), digest_size=16).hexdigest()
            # Indexed before the insert: a failed insert may still have stored some parts, and an
            # indexed id is only a candidate that the next write confirms against ClickHouse.
            self._index.add(hashes[keep])
            self._m_index.set(len(self._index))
            started = time.perf_counter()
            try:
                seq = self._store.insert_raw(fresh, token)
            except Exception:
                self._m_errors.inc()
                raise
            self._m_insert_seconds.observe(time.perf_counter() - started)
            self._rollups.stored(seq)
            self._m_insert_rows.observe(fresh.num_rows)
            # Only what ClickHouse accepted reaches the live counters.
            self._feed.inserted(fresh)
        self._m_duplicates.inc(int((~keep).sum()))
        return self._receipts(parts, ids, keep)

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

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self._read("get", event_id)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        return await self._read("list", filters, limit, cursor)

    async def count(self, filters: EventFilter) -> int:
        return await self._read("count", filters)

    async def ping(self) -> bool:
        return await self._read("ping")

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return await self._read("query", sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return await self._read("query_arrow", sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._insert_table, table, rows)
        if table == "events":
            # A bulk load is done when its rows are in the rollups too.
            await self._rollups.settle()

    async def settle_rollups(self) -> int:
        """Wait until every insert acknowledged so far is in the rollups; returns the fed seq."""
        return await self._rollups.settle()

    def _insert_table(self, table: str, rows: pa.Table) -> None:
        if table == "events":
            # Bulk loads of events take the same path as ingest: deduplicated, indexed, counted.
            for start in range(0, rows.num_rows, MAX_ROWS_PER_INSERT):
                chunk = rows.slice(start, MAX_ROWS_PER_INSERT).select(EVENT_COLUMNS)
                self._insert_parts([_Part(chunk, [chunk.num_rows])])
            return
        self._store.insert_table(table, rows)

    async def realtime_snapshot(self, shard: int) -> dict[str, Any]:
        """A counter shard's window from ClickHouse, tagged with the last insert it includes.

        Runs on the write thread, between inserts, so the tag is exact.
        """
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._feed.snapshot, self._store.client, shard)

    async def realtime_position(self) -> tuple[int, int]:
        """(epoch, seq) of the last stored insert: shards compare it with the deltas they got."""
        return self._feed.position()

    async def metrics_text(self) -> bytes:
        return generate_latest(self._registry)

    async def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "indexed_ids": len(self._index),
            "index_load_seconds": self.index_load_seconds,
            "rollup_lag_inserts": self._rollups.lag,
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
        self._commit: GroupCommit[pa.Table, WriteReceipt] = GroupCommit(
            self._send, weight=lambda t: t.num_rows, max_weight=MAX_ROWS_PER_INSERT
        )

    async def write(self, batch: pa.Table) -> WriteReceipt:
        return await self._commit.submit(batch)

    async def _send(self, tables: list[pa.Table]) -> list[WriteReceipt]:
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        receipts: list[WriteReceipt] = await self._retrying(self._actor.write, pack(table), [t.num_rows for t in tables])
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
