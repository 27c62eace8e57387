"""Trending: top-K per window (5m, 1h, 24h), globally, per category, and within a content scope.

Each counter shard computes the trending figures of its own content (a content id lives in
exactly one shard, so its figures are complete there); ``Trending`` merges the shards' tables,
and ranks them. It runs inside the live hub actor, which needs every ranking each tick (and
writes them to Redis with its own snapshot): one process instead of two saves ~190 MiB and a Ray
call per tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray

from actors import names
from actors.event_store import RemoteEventStore, find_event_store_actor
from core.access import ALL_CONTENT, ContentScope
from core.arrow_ipc import unpack
from core.settings import Settings
from semantic.content_scope import scope_from_dict
from semantic.live_counters import WINDOWS, iso_millis
from storage.content_categories import load_categories

log = logging.getLogger("analytics.trending")

# How deep a ranking goes: the hub keeps every window's top this many, and the API's limit stops here.
MAX_TRENDING_LIMIT = 100
_CATEGORY_REFRESH_SECONDS = 30.0
# A category query sees metadata changes within this many seconds.
_CATEGORY_QUERY_REFRESH_SECONDS = 2.0
_FIELDS = ("activity", "popularity", "baseline", "velocity", "acceleration", "score")


class Trending:
    def __init__(self, config: Settings) -> None:
        self._config = config
        self._table: pa.Table | None = None
        self._computed_at = 0.0
        self._complete = False
        self._lock = asyncio.Lock()
        self._categories: dict[str, str] = {}
        self._categories_at = -1e9
        self._shards: dict[int, Any] = {}

    def _shard(self, index: int) -> Any:
        if index not in self._shards:
            self._shards[index] = ray.get_actor(names.counter_shard(index), namespace=names.NAMESPACE)
        return self._shards[index]

    async def _shard_table(self, index: int) -> pa.Table | None:
        try:
            return unpack(await self._shard(index).trending_table.remote())
        except Exception:  # noqa: BLE001 - a restarting shard is left out of this round
            self._shards.pop(index, None)
            return None

    async def _refresh(self) -> None:
        tables = await asyncio.gather(*(self._shard_table(i) for i in range(self._config.counter_shards)))
        present = [t for t in tables if t is not None]
        self._complete = len(present) == len(tables)
        self._table = pa.concat_tables(present) if present else None
        self._computed_at = time.time()
        await self._load_categories(_CATEGORY_REFRESH_SECONDS)

    async def _load_categories(self, max_age: float) -> None:
        if time.monotonic() - self._categories_at <= max_age:
            return
        self._categories_at = time.monotonic()
        try:
            self._categories = await load_categories(RemoteEventStore(find_event_store_actor(5.0), retry_seconds=2.0))
        except Exception:  # keep the last known categories
            log.warning("could not load content categories", exc_info=True)

    async def _fresh(self, max_age: float) -> None:
        if time.time() - self._computed_at <= max_age:
            return
        async with self._lock:
            if time.time() - self._computed_at > max_age:
                await self._refresh()

    def _rank(self, window: str, limit: int, category: str | None, scope: ContentScope = ALL_CONTENT) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        table = self._table
        as_of = None
        if table is not None and table.num_rows:
            active = pc.greater(table.column(f"activity_{window}"), 0)
            if category is not None:
                ids = [c for c, cat in self._categories.items() if cat == category]
                active = pc.and_(active, pc.is_in(table.column("content_id"), value_set=pa.array(ids, pa.string())))
            if not scope.unrestricted:
                # The content scope of the caller: its ids, and the content of its categories.
                inside = scope.content_ids | {c for c, cat in self._categories.items() if cat in scope.categories}
                allowed = pa.array(sorted(inside), pa.string())
                active = pc.and_(active, pc.is_in(table.column("content_id"), value_set=allowed))
            t = table.filter(active)
            if t.num_rows:
                as_of = iso_millis(int(pc.max(t.column("last_event_ms")).as_py()))
                # Highest score first; ties by content id, so the order is stable.
                order = pc.sort_indices(t, sort_keys=[(f"score_{window}", "descending"), ("content_id", "ascending")])
                top = t.take(order[:limit])
                columns = {f: top.column(f"{f}_{window}").to_pylist() for f in _FIELDS}
                for rank, content_id in enumerate(top.column("content_id").to_pylist(), start=1):
                    i = rank - 1
                    items.append(
                        {
                            "rank": rank,
                            "content_id": content_id,
                            "category": self._categories.get(content_id),
                            "score": columns["score"][i],
                            "popularity": columns["popularity"][i],
                            "activity": columns["activity"][i],
                            "baseline_per_minute": columns["baseline"][i],
                            "velocity": columns["velocity"][i],
                            "acceleration": columns["acceleration"][i],
                        }
                    )
        return {
            "window": window,
            "category": category,
            "computed_at": iso_millis(int(self._computed_at * 1000)),
            "as_of": as_of,
            "source": "live" if self._complete else "live_partial",
            "items": items,
        }

    async def top(
        self,
        window: str,
        limit: int = 20,
        category: str | None = None,
        max_age: float = 0.2,
        scope: dict[str, list[str]] | None = None,
    ) -> dict[str, Any]:
        """``scope``: a content scope (``ContentScope.to_dict()``) the ranking is limited to."""
        content_scope = scope_from_dict(scope)
        if category is not None or content_scope.categories:
            await self._load_categories(_CATEGORY_QUERY_REFRESH_SECONDS)
        await self._fresh(max_age)
        return self._rank(window, min(limit, MAX_TRENDING_LIMIT), category, content_scope)

    async def top_all(self, limit: int = MAX_TRENDING_LIMIT, max_age: float = 0.2) -> dict[str, dict[str, Any]]:
        """Every window's ranking from one refresh (what a live hub tick needs)."""
        await self._fresh(max_age)
        return {w: self._rank(w, min(limit, MAX_TRENDING_LIMIT), None) for w in WINDOWS}

    async def categories(self) -> dict[str, str]:
        return dict(self._categories)
