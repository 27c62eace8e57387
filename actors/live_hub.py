"""The live hub: computes the live state once per tick and fans it out to every ingress replica.

It also owns the trending rankings (actors/trending.py) and answers trending reads.

Replicas long-poll ``poll`` with the version they have and the content ids their subscribers
watch; the hub computes global metrics, the trending rankings and those content views once
per tick (``realtime_tick_ms``) for all of them, however many subscribers there are. Idle
(nobody polling), it still ticks every ``realtime_flush_seconds`` to keep Redis fresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import ray

from actors import names
from actors.service_actor import service_actor
from actors.trending import Trending
from core.settings import Settings
from semantic.live_counters import iso_millis, merge_global
from semantic.live_deltas import shard_of

log = logging.getLogger("analytics.live_hub")

WATCHER_IDLE_SECONDS = 15.0
GLOBAL_KEY = "analytics:rt:global"
TRENDING_KEY_PREFIX = "analytics:rt:trending:"
REDIS_TTL_SECONDS = 10


class LiveHubActor:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._config = Settings(**settings)
        self._version = 0
        self._state: dict[str, Any] | None = None
        self._digest = b""
        self._computed_at = 0.0
        self._changed = asyncio.Event()
        self._watchers: dict[str, tuple[frozenset[str], float]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._handles: dict[str, Any] = {}
        self._redis: Any = None
        self._rankings = Trending(self._config)
        self.ticks = 0

    def _ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def ready(self) -> bool:
        self._ensure_started()
        return True

    def _actor(self, name: str) -> Any:
        if name not in self._handles:
            self._handles[name] = ray.get_actor(name, namespace=names.NAMESPACE)
        return self._handles[name]

    def _watched(self) -> set[str]:
        now = time.monotonic()
        for replica in [r for r, (_, seen) in self._watchers.items() if now - seen > WATCHER_IDLE_SECONDS]:
            del self._watchers[replica]
        return set().union(*(ids for ids, _ in self._watchers.values())) if self._watchers else set()

    async def _shard_view(self, index: int, ids: list[str]) -> dict[str, Any] | None:
        name = names.counter_shard(index)
        try:
            return await self._actor(name).live_view.remote(ids)
        except Exception:  # noqa: BLE001 - a restarting shard is left out of this tick
            self._handles.pop(name, None)
            return None

    async def _trending(self) -> dict[str, Any]:
        try:
            return await self._rankings.top_all(max_age=self._config.realtime_tick_ms / 2000)
        except Exception:  # keep the last ranking
            log.warning("trending refresh failed", exc_info=True)
            return (self._state or {}).get("trending", {})

    async def _compute(self) -> None:
        shards = self._config.counter_shards
        watched = sorted(self._watched())
        per_shard: list[list[str]] = [[] for _ in range(shards)]
        for content_id in watched:
            per_shard[shard_of(content_id, shards)].append(content_id)
        views, trending = await asyncio.gather(
            asyncio.gather(*(self._shard_view(i, per_shard[i]) for i in range(shards))), self._trending()
        )
        present = [v for v in views if v is not None]
        source = "live" if len(present) == shards else "live_partial"
        computed_at = time.time()
        global_metrics = {**merge_global([v["global"] for v in present]), "source": source}
        contents: dict[str, Any] = {}
        for view in present:
            for content_id, content in view["contents"].items():
                contents[content_id] = {**content, "source": "live"}
        state = {"global": global_metrics, "trending": trending, "contents": contents}
        # A new version only when a figure changed (the rankings' own timestamps do not count).
        ranked = {w: r.get("items") for w, r in trending.items()}
        digest = orjson.dumps([global_metrics, contents, ranked], option=orjson.OPT_SORT_KEYS)
        self._computed_at = computed_at
        if digest != self._digest:
            self._digest = digest
            self._version += 1
            self._state = {**state, "version": self._version, "computed_at": iso_millis(int(computed_at * 1000))}
            self._changed.set()
            self._changed = asyncio.Event()
        self.ticks += 1

    async def _fresh(self, max_age: float) -> dict[str, Any]:
        if self._state is None or time.time() - self._computed_at > max_age:
            async with self._lock:
                if self._state is None or time.time() - self._computed_at > max_age:
                    await self._compute()
        assert self._state is not None
        return self._state

    async def _loop(self) -> None:
        while True:
            busy = bool(self._watched())
            await asyncio.sleep(self._config.realtime_tick_ms / 1000 if busy else self._config.realtime_flush_seconds)
            try:
                async with self._lock:
                    await self._compute()
                await self._flush_redis()
            except Exception:  # try again next tick
                log.warning("live hub tick failed", exc_info=True)

    # ---- API ------------------------------------------------------------------------------
    async def snapshot(self, max_age: float = 0.1) -> dict[str, Any]:
        """The global live metrics, at most ``max_age`` seconds old."""
        self._ensure_started()
        state = await self._fresh(max_age)
        return {**state["global"], "computed_at": state["computed_at"]}

    async def poll(
        self, replica: str, after_version: int, content_ids: list[str], timeout: float = 10.0
    ) -> dict[str, Any] | None:
        """The state once its version differs from ``after_version`` (None after ``timeout``)."""
        self._ensure_started()
        ids = frozenset(content_ids)
        known = self._watchers.get(replica)
        self._watchers[replica] = (ids, time.monotonic())
        if known is None or not ids <= known[0]:
            await self._fresh(0.0)  # a new watcher or new content ids: do not make them wait a tick
        elif self._state is None:
            await self._fresh(1.0)
        if self._state is None or self._version == after_version:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=timeout)
            except TimeoutError:
                return None
            finally:
                self._watchers[replica] = (ids, time.monotonic())
        state = self._state
        assert state is not None
        return {**state, "contents": {c: v for c, v in state["contents"].items() if c in ids}}

    async def top(
        self,
        window: str,
        limit: int = 20,
        category: str | None = None,
        max_age: float = 0.2,
        scope: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """One window's trending ranking (``GET /content/trending``), within a content scope if given."""
        self._ensure_started()
        return await self._rankings.top(window, limit, category, max_age, scope)

    async def categories(self) -> dict[str, str]:
        return await self._rankings.categories()

    async def describe(self) -> dict[str, Any]:
        return {"version": self._version, "ticks": self.ticks, "watchers": len(self._watchers)}

    async def _flush_redis(self) -> None:
        if not self._config.redis_url or self._state is None:
            return
        if self._redis is None:
            import redis.asyncio as redis

            self._redis = redis.from_url(self._config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        body = {**self._state["global"], "computed_at": self._state["computed_at"]}
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(GLOBAL_KEY, orjson.dumps(body), ex=REDIS_TTL_SECONDS)
        # The tick's rankings: every window's top MAX_TRENDING_LIMIT.
        for window, ranking in self._state["trending"].items():
            pipe.set(f"{TRENDING_KEY_PREFIX}{window}", orjson.dumps(ranking), ex=REDIS_TTL_SECONDS)
        await pipe.execute()


def live_hub_actor(settings: Settings, *, detached: bool = False) -> ray.actor.ActorHandle:
    return service_actor(
        LiveHubActor, names.LIVE_HUB, settings.model_dump(mode="json"), detached=detached, max_concurrency=10_000
    )
