"""The real-time feed, inside the event store actor: after each durable insert, one delta per
counter shard (and one batch notification on the bus), sent off the write path.

Exactly-once against ClickHouse: each insert gets a tag ``(epoch, seq)`` (epoch: this actor
incarnation, seq: its inserts in order), assigned on the write thread right after the insert
succeeds. A shard's snapshot is also read on the write thread, so it holds exactly the inserts
up to some tag; the shard then applies only deltas with a later tag. Every shard gets a
(possibly empty) delta for every insert, so a shard sees a gap when one is lost (an actor died
in between) and re-reads its window.

Threads: the ClickHouse write thread tags inserts and reads snapshots, the feed thread sends,
the event loop binds its loop and reads the position. ``_lock`` guards the insert seq and the
bound loop; the shard handles and calls in flight belong to the feed thread alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow as pa
import ray
from clickhouse_connect.driver.client import Client

from actors import names
from core.arrow_ipc import pack
from core.settings import Settings
from semantic.live_deltas import epoch_millis, shard_deltas
from storage.bus import EVENT_PROCESSED, EventBus, InProcessBus, open_bus
from storage.realtime_minutes import shard_snapshot

log = logging.getLogger("analytics.realtime_feed")

# Columns of the analytics.event_processed notification (columnar, one message per chunk).
BUS_COLUMNS = ("id", "event_type", "event_category", "content_id", "user_id", "session_id")
BUS_CHUNK = 2000
_LOOKUP_RETRY_SECONDS = 2.0
_HANDLE_REFRESH_SECONDS = 30.0


class RealtimeFeed:
    def __init__(self, settings: Settings) -> None:
        self.epoch = time.time_ns()
        self._lock = threading.Lock()
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shards = settings.counter_shards
        self._bus: EventBus = open_bus(settings.nats_url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="realtime-feed")
        # The feed thread's alone.
        self._handles: dict[int, Any] = {}
        self._looked_up: dict[int, float] = {}
        self._in_flight: list[ray.ObjectRef] = []
        self.sent = 0

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The actor's event loop, for the bus client (it is asyncio)."""
        with self._lock:
            self._loop = loop

    def position(self) -> tuple[int, int]:
        """The tag of the last insert."""
        with self._lock:
            return (self.epoch, self._seq)

    # ---- on the write thread ------------------------------------------------------------
    def inserted(self, fresh: pa.Table) -> None:
        """Called right after ``fresh`` is durably stored; never blocks on the counters."""
        with self._lock:
            self._seq += 1
            tag = (self.epoch, self._seq)
        self._executor.submit(self._send, tag, fresh)

    def snapshot(self, client: Client, shard: int) -> dict[str, Any]:
        """Shard ``shard``'s window as of the last insert (call on the write thread)."""
        detail, history, seconds = shard_snapshot(client, shard=shard, shards=self._shards, now=time.time())
        return {"tag": self.position(), "detail": detail, "history": history, "seconds": seconds}

    # ---- on the feed thread ---------------------------------------------------------------
    def _shard(self, index: int) -> Any:
        handle = self._handles.get(index)
        # Looked up again now and then: a shard re-created under its name is a new actor.
        if handle is not None and time.monotonic() - self._looked_up.get(index, 0.0) < _HANDLE_REFRESH_SECONDS:
            return handle
        if time.monotonic() - self._looked_up.get(index, -1e9) < _LOOKUP_RETRY_SECONDS:
            return None
        self._looked_up[index] = time.monotonic()
        try:
            handle = ray.get_actor(names.counter_shard(index), namespace=names.NAMESPACE)
        except ValueError:
            self._handles.pop(index, None)
            return None
        self._handles[index] = handle
        return handle

    def _reap(self) -> None:
        if not self._in_flight:
            return
        # Finished calls are dropped unread: a failed one shows up as a gap the shard repairs itself.
        _, self._in_flight = ray.wait(self._in_flight, num_returns=len(self._in_flight), timeout=0, fetch_local=False)

    def _send(self, tag: tuple[int, int], fresh: pa.Table) -> None:
        # The shards live in the cluster; a store opened outside an actor (tests, tools) has none.
        if ray._private.worker.global_worker.mode != ray.WORKER_MODE:
            return
        try:
            self._reap()
            deltas = shard_deltas(fresh, self._shards)
            for index in range(self._shards):
                handle = self._shard(index)
                if handle is None:
                    continue
                delta = deltas.get(index)
                rows, seconds = (pack(delta.rows), pack(delta.seconds)) if delta else (None, None)
                ref = handle.apply.remote(tag, rows, seconds)
                self._in_flight.append(ref)
                self.sent += 1
            self._publish(tag, fresh)
        except Exception:  # counters repair themselves from ClickHouse
            log.exception("real-time feed failed for %s", tag)

    def _publish(self, tag: tuple[int, int], fresh: pa.Table) -> None:
        with self._lock:
            loop = self._loop
        if loop is None or (isinstance(self._bus, InProcessBus) and not self._bus.has_subscribers):
            return
        millis = epoch_millis(fresh.column("timestamp")).tolist()
        columns = {name: fresh.column(name).to_pylist() for name in BUS_COLUMNS}
        for chunk, start in enumerate(range(0, fresh.num_rows, BUS_CHUNK)):
            end = start + BUS_CHUNK
            body = {
                "epoch": tag[0],
                "seq": tag[1],
                "count": len(millis[start:end]),
                "events": {**{k: v[start:end] for k, v in columns.items()}, "timestamp_ms": millis[start:end]},
            }
            message_id = f"{tag[0]}-{tag[1]}-{chunk}"
            asyncio.run_coroutine_threadsafe(
                self._bus.publish(EVENT_PROCESSED, orjson.dumps(body), message_id=message_id), loop
            )
