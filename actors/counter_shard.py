"""Counter shard actors: the live counters of the content ids whose hash falls in their shard.

Fed by the event store's real-time feed (one delta per insert, tagged ``(epoch, seq)``). At
start, after a restart, when a delta went missing, when the event store restarted, and every
``realtime_resync_seconds``, a shard re-reads its window from ClickHouse's minute table (a
snapshot tagged with the last insert it includes) and re-applies only the deltas tagged after
it. So its counters always equal what ClickHouse holds, plus the deltas of newer inserts.

Every ``realtime_flush_seconds`` (≤ 1 s) it writes the content it changed to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from typing import Any

import orjson
import pyarrow as pa
import ray

from actors import names
from actors.service_actor import service_actor
from core.arrow_ipc import pack, unpack
from core.heap import settle_heap
from core.settings import Settings
from semantic.live_counters import LiveCounters
from semantic.live_deltas import shard_of

log = logging.getLogger("analytics.counter_shard")

Tag = tuple[int, int]
# Redis key layout (documented in docs/realtime.md).
REDIS_PREFIX = "analytics:rt:"
CONTENT_KEY_TTL_SECONDS = 25 * 3600
SHARD_KEY_TTL_SECONDS = 10
_POSITION_CHECK_SECONDS = 2.0
_READY_TIMEOUT_SECONDS = 30.0
# A Redis flush lets reads in after this much work (a view is cheap: the windows' totals are kept up
# to date, so it does not walk the content's minutes).
_FLUSH_SLICE_SECONDS = 0.001
# How often a shard collects its whole heap (also after each re-read). A shard holds many long-lived
# objects (its counters and everything imported), and a full automatic collection walks them all on
# the event loop, stalling reads even with a fresh state. So the survivors
# are frozen (core/heap.py) and the automatic collections only look at newer objects.
_SETTLE_SECONDS = 600.0
# The shard process's GIL switch interval (Python's default is 5 ms). A read is handed from Ray's
# task thread to the event loop and its answer back, and each hand-off may wait a whole interval
# while the loop applies a delta.
_SWITCH_INTERVAL_SECONDS = 0.001


def content_key(content_id: str) -> str:
    return f"{REDIS_PREFIX}content:{content_id}"


def redis_content_view(view: dict[str, Any]) -> dict[str, Any]:
    """What a content key holds: the windows without the minute series."""
    return {k: v for k, v in view.items() if k != "series"}


class CounterShardActor:
    def __init__(self, settings: dict[str, Any], index: int) -> None:
        self._config = Settings(**settings)
        self.index = index
        self._counters = LiveCounters()
        self._watermark: Tag = (0, 0)
        self._epoch = 0
        self._contiguous = 0
        self._received: set[int] = set()
        self._resyncing = True
        self._log: list[tuple[Tag, pa.Table | None, pa.Table | None]] = []
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._store: Any = None
        self._redis: Any = None
        self._task: asyncio.Task[None] | None = None
        self.resyncs = 0
        self.deltas = 0
        self.last_resync_seconds = 0.0
        sys.setswitchinterval(_SWITCH_INTERVAL_SECONDS)  # the process holds this actor alone

    # ---- lifecycle ------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def ready(self) -> dict[str, Any]:
        self._ensure_started()
        await asyncio.wait_for(self._ready.wait(), timeout=120)
        return await self.describe()

    async def _await_ready(self) -> None:
        self._ensure_started()
        if not self._ready.is_set():
            await asyncio.wait_for(self._ready.wait(), timeout=_READY_TIMEOUT_SECONDS)

    def _event_store(self) -> Any:
        if self._store is None:
            self._store = ray.get_actor(names.EVENT_STORE, namespace=names.NAMESPACE)
        return self._store

    async def _maintain(self) -> None:
        while True:
            try:
                await self._maintain_loop()
            except Exception:  # keep the shard serving; the next resync repairs it
                log.exception("shard %s: maintenance failed", self.index)
                self._wake.set()
                await asyncio.sleep(1.0)

    async def _maintain_loop(self) -> None:
        if not self._ready.is_set() or self._wake.is_set():
            self._wake.clear()
            await self._resync()
        last_check = time.monotonic()
        last_full = time.monotonic()
        last_settle = time.monotonic()
        # Inserts the store had finished at the previous check; their deltas must have come since.
        expected: int | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._config.realtime_flush_seconds)
            wanted = self._wake.is_set()
            self._wake.clear()
            try:
                await self._flush_redis()
            except Exception:  # Redis down: the actors keep counting
                log.warning("redis snapshot failed", exc_info=True)
            now = time.monotonic()
            if now - last_settle >= _SETTLE_SECONDS:
                settle_heap()
                last_settle = now
            else:
                # What survived a flush interval is likely to live on: only the next settle looks at it.
                gc.freeze()
            if now - last_check >= _POSITION_CHECK_SECONDS:
                last_check = now
                try:
                    epoch, seq = await self._event_store().realtime_position.remote()
                except Exception:  # noqa: BLE001 - the store is restarting; check again later
                    self._store = None
                    continue
                if epoch != self._epoch or (expected is not None and self._contiguous < expected):
                    wanted = True
                expected = seq if self._contiguous < seq else None
            resync_every = self._config.realtime_resync_seconds
            if resync_every and now - last_full >= resync_every:
                wanted = True
            if wanted:
                await self._resync()
                last_full = last_settle = time.monotonic()
                expected = None

    async def _resync(self) -> None:
        self._resyncing = True
        delay = 0.1
        while True:
            # Deltas received before this request are in the snapshot: keep only later ones.
            self._log = []
            started = time.perf_counter()
            try:
                snapshot = await self._event_store().realtime_snapshot.remote(self.index)
                break
            except Exception:  # the event store is (re)starting
                self._store = None
                log.info("shard %s: snapshot failed, retrying", self.index, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        tag: Tag = tuple(snapshot["tag"])  # type: ignore[assignment]
        counters = LiveCounters()
        counters.apply(snapshot["history"], None)
        counters.apply(snapshot["detail"], snapshot["seconds"])
        later = [entry for entry in self._log if entry[0] > tag]
        for _, rows, seconds in later:
            counters.apply(rows, seconds)
        counters.dirty.update(self._counters.content_ids())  # so gone content is dropped from Redis too
        self._counters = counters
        self._watermark = tag
        self._epoch = tag[0]
        self._contiguous = tag[1]
        self._received = {t[1] for t, _, _ in later if t[0] == tag[0]}
        self._advance_contiguous()
        self._log = []
        self._resyncing = False
        self.resyncs += 1
        self.last_resync_seconds = time.perf_counter() - started
        settle_heap()  # the old counters are garbage, the new ones long-lived
        self._ready.set()

    def _advance_contiguous(self) -> None:
        while self._contiguous + 1 in self._received:
            self._contiguous += 1
            self._received.discard(self._contiguous)

    # ---- feed -----------------------------------------------------------------------------
    async def apply(self, tag: Tag, rows_payload: bytes | None, seconds_payload: bytes | None) -> None:
        """One insert's delta for this shard (actors/wire.py payloads; None when it had none)."""
        self._ensure_started()
        rows = unpack(rows_payload) if rows_payload is not None else None
        seconds = unpack(seconds_payload) if seconds_payload is not None else None
        tag = (int(tag[0]), int(tag[1]))
        if self._resyncing:
            self._log.append((tag, rows, seconds))
        if not self._ready.is_set() or tag <= self._watermark:
            return
        epoch, seq = tag
        if epoch > self._epoch:
            # The event store restarted: deltas of its previous life may be lost.
            self._epoch, self._contiguous, self._received = epoch, 0, set()
            self._wake.set()
        if epoch == self._epoch and seq > self._contiguous:
            self._received.add(seq)
            self._advance_contiguous()
        # Whole, between two awaits: a read sees all of an insert's delta or none of it.
        self._counters.apply(rows, seconds)
        self.deltas += 1

    async def resync(self) -> dict[str, Any]:
        await self._await_ready()
        await self._resync()
        return await self.describe()

    # ---- reads ----------------------------------------------------------------------------
    async def content_view(self, content_id: str) -> dict[str, Any] | None:
        await self._await_ready()
        return self._counters.content_view(content_id, empty_ok=True)

    async def trending_table(self) -> bytes:
        """The trending figures of this shard's content, as one Arrow IPC buffer (core/arrow_ipc.py:
        Ray's own Arrow serializer cost more than computing the table)."""
        await self._await_ready()
        return pack(self._counters.trending_table())

    async def global_partial(self) -> dict[str, Any]:
        await self._await_ready()
        return self._counters.global_partial()

    async def live_view(self, content_ids: list[str]) -> dict[str, Any]:
        """Everything a hub tick needs from this shard, in one call."""
        await self._await_ready()
        now = time.time()
        return {
            "global": self._counters.global_partial(now),
            "contents": {c: self._counters.content_view(c, now, empty_ok=True) for c in content_ids},
        }

    async def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "pid": os.getpid(),
            "ready": self._ready.is_set(),
            "watermark": list(self._watermark),
            "contiguous": [self._epoch, self._contiguous],
            "contents": len(self._counters.content_ids()),
            "resyncs": self.resyncs,
            "deltas": self.deltas,
            "last_resync_seconds": round(self.last_resync_seconds, 4),
        }

    # ---- Redis ----------------------------------------------------------------------------
    async def _flush_redis(self) -> None:
        if not self._config.redis_url or not self._ready.is_set():
            return
        if self._redis is None:
            import redis.asyncio as redis

            self._redis = redis.from_url(self._config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        now = time.time()
        self._counters.advance(now)
        dirty = sorted(self._counters.take_dirty())
        try:
            for start in range(0, max(len(dirty), 1), 1000):
                pipe = self._redis.pipeline(transaction=False)
                slice_start = time.perf_counter()
                for content_id in dirty[start : start + 1000]:
                    if time.perf_counter() - slice_start >= _FLUSH_SLICE_SECONDS:
                        await asyncio.sleep(0)  # let reads in between: a flush may build hundreds of views
                        slice_start = time.perf_counter()
                    view = self._counters.content_view(content_id, now, series=False)
                    if view is None:
                        pipe.delete(content_key(content_id))
                    else:
                        pipe.set(
                            content_key(content_id), orjson.dumps(redis_content_view(view)), ex=CONTENT_KEY_TTL_SECONDS
                        )
                if start == 0:
                    meta = {**(await self.describe()), "flushed_at": now}
                    pipe.set(f"{REDIS_PREFIX}shard:{self.index}", orjson.dumps(meta), ex=SHARD_KEY_TTL_SECONDS)
                await pipe.execute()
        except Exception:
            self._counters.dirty.update(dirty)  # write them next time
            raise


def counter_shard_actor(settings: Settings, index: int, *, detached: bool = False) -> ray.actor.ActorHandle:
    """Counter shard ``index``: created on first call, looked up afterwards."""
    # Restarted after a crash; it rebuilds its window from ClickHouse.
    return service_actor(
        CounterShardActor,
        names.counter_shard(index),
        settings.model_dump(mode="json"),
        index,
        detached=detached,
        max_concurrency=1000,
    )


def counter_shard_actors(settings: Settings, *, detached: bool = False) -> list[ray.actor.ActorHandle]:
    return [counter_shard_actor(settings, i, detached=detached) for i in range(settings.counter_shards)]


def find_counter_shard(index: int) -> ray.actor.ActorHandle:
    return ray.get_actor(names.counter_shard(index), namespace=names.NAMESPACE)


def owner_of(content_id: str, shards: int) -> int:
    return shard_of(content_id, shards)
