"""What an ingress replica uses to read the live layer: queries, and the subscription fan-out.

``LiveUpdates`` keeps one long poll to the live hub per replica, however many subscribers the
replica has; each subscriber reads the latest state when it is ready for the next message,
so a slow client skips versions instead of queueing them.

Answers are the typed models of semantic/realtime_results.py, read once here from the dicts the
actors (or the minute-table fallback) send.

Content scopes (semantic/content_scope.py) apply here for every transport: trending ranks only the
in-scope content, a content's live counters outside the scope are 404, and the global live metrics,
which no scope narrows, refuse a scoped principal (403).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors import names
from actors.trending import MAX_TRENDING_LIMIT
from core.access import ContentScope
from core.errors import InvalidRequest, StoreUnavailable
from semantic.content_scope import ScopeNotApplicable, current_scope, require_applicable, require_in_scope
from semantic.live_counters import WINDOWS
from semantic.live_deltas import shard_of
from semantic.realtime_results import ContentLive, LiveState, RealtimeMetrics, TrendingList
from semantic.realtime_rollup import RealtimeRollup
from storage.events import EventStore

log = logging.getLogger("analytics.realtime_client")

_CALL_TIMEOUT_SECONDS = 10.0
_RESYNC_TIMEOUT_SECONDS = 600.0
_POLL_SECONDS = 10.0
# Global live metrics count every content and the events naming none: no content scope narrows them.
GLOBAL_METRICS = "the global live metrics"


def check_window(window: str, field: str = "window") -> str:
    if window not in WINDOWS:
        raise InvalidRequest(f"{field} must be one of {', '.join(WINDOWS)}", details={"field": field})
    return window


def check_limit(limit: int, field: str = "limit") -> int:
    if not 1 <= limit <= MAX_TRENDING_LIMIT:
        raise InvalidRequest(f"{field} must be between 1 and {MAX_TRENDING_LIMIT}", details={"field": field})
    return limit


class RealtimeClient:
    def __init__(self, shards: int, store: EventStore | None = None) -> None:
        self._shards = shards
        # Answers from ClickHouse's minute table while the actors cannot.
        self._rollup = RealtimeRollup(store) if store is not None else None
        # Where the categories of content come from, for content scopes.
        self._store = store
        self._handles: dict[str, Any] = {}
        self.updates = LiveUpdates(self)

    def actor(self, name: str) -> Any:
        handle = self._handles.get(name)
        if handle is None:
            try:
                handle = ray.get_actor(name, namespace=names.NAMESPACE)
            except ValueError as exc:
                raise StoreUnavailable(f"the real-time actor {name} is not running") from exc
            self._handles[name] = handle
        return handle

    async def _call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(
                getattr(self.actor(name), method).remote(*args, **kwargs), _CALL_TIMEOUT_SECONDS
            )
        except (RayActorError, TimeoutError) as exc:
            self._handles.pop(name, None)
            raise StoreUnavailable("the live counters are restarting; retry shortly") from exc

    async def resync_shards(self) -> int:
        """Every counter shard re-reads its window from ClickHouse now (an erasure changed the minute
        table under it), then the hub computes its state afresh; returns how many shards did. Raises
        when one cannot be reached, so the caller tries again."""
        # A re-read takes as long as the window is large: no read's timeout here.
        shards = [self.actor(names.counter_shard(i)) for i in range(self._shards)]
        await asyncio.wait_for(asyncio.gather(*(shard.resync.remote() for shard in shards)), _RESYNC_TIMEOUT_SECONDS)
        await self._call(names.LIVE_HUB, "snapshot", max_age=0.0)
        return self._shards

    async def realtime(self) -> RealtimeMetrics:
        require_applicable(GLOBAL_METRICS)
        # The hub's latest tick (at most half a second old) is served as is: reads never queue computations.
        try:
            metrics = await self._call(names.LIVE_HUB, "snapshot", max_age=0.5)
        except StoreUnavailable:
            if self._rollup is None:
                raise
            metrics = await self._rollup.realtime()
        return RealtimeMetrics.model_validate(metrics)

    async def trending(
        self, window: str, limit: int, category: str | None = None, scope: ContentScope | None = None
    ) -> TrendingList:
        """The window's ranking of the content in ``scope`` (by default the request's content scope)."""
        check_window(window)
        check_limit(limit)
        # An empty category is no category, whichever transport sent it: filtering on it would rank nothing.
        category = category or None
        scope = current_scope() if scope is None else scope
        within = {} if scope.unrestricted else {"scope": scope.to_dict()}
        try:
            ranking = await self._call(names.LIVE_HUB, "top", window, limit, category, **within)
        except StoreUnavailable:
            if self._rollup is None:
                raise
            ranking = await self._rollup.trending(window, limit, category, scope=scope)
        return TrendingList.model_validate(ranking)

    async def content_live(self, content_id: str, scope: ContentScope | None = None) -> ContentLive:
        """A content's live counters; 404 outside ``scope`` (by default the request's content scope), as
        the analytics answer for a content never recorded."""
        if not content_id:
            raise InvalidRequest("content_id must not be empty", details={"field": "content_id"})
        scope = current_scope() if scope is None else scope
        if not scope.unrestricted:
            if self._store is None:
                raise ScopeNotApplicable("live counters read without the content metadata", scope)
            await require_in_scope(self._store, [content_id], scope)
        shard = names.counter_shard(shard_of(content_id, self._shards))
        try:
            view = await self._call(shard, "content_view", content_id)
        except StoreUnavailable:
            if self._rollup is None:
                raise
            return ContentLive.model_validate(await self._rollup.content_live(content_id))
        return ContentLive.model_validate({**view, "source": "live"})

    async def trending_updates(
        self, window: str, limit: int, interval_seconds: float, scope: ContentScope
    ) -> AsyncIterator[TrendingList]:
        """The window's ranking as the live state changes, at most once per ``interval_seconds``: the
        hub's own for all content; within a content scope, ranked again within it (so it is the ranking
        ``trending`` answers) and sent only when it changed."""
        sent: TrendingList | None = None
        async for state in self.updates.stream(interval_seconds):
            if scope.unrestricted:
                ranking = state.trending.get(window)
                if ranking is not None:
                    yield ranking.top(limit)
                continue
            scoped = await self.trending(window, limit, scope=scope)
            if sent is None or scoped.items != sent.items:
                sent = scoped
                yield scoped


class LiveUpdates:
    def __init__(self, client: RealtimeClient) -> None:
        self._client = client
        self._replica = uuid.uuid4().hex
        self._interest: Counter[str] = Counter()
        self._subscribers = 0
        self._state: LiveState | None = None
        self._version = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def _ensure_polling(self) -> None:
        if self._task is None or self._task.done() or self._task.cancelling():
            self._task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def _poll_loop(self) -> None:
        idle_since: float | None = None
        while True:
            if self._subscribers == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 30:
                    self._task = None
                    return
            else:
                idle_since = None
            try:
                hub = self._client.actor(names.LIVE_HUB)
                state = await hub.poll.remote(self._replica, self._version, sorted(self._interest), _POLL_SECONDS)
                self.polls += 1
            except Exception:  # noqa: BLE001 - the hub restarts by itself; poll again shortly
                self._client._handles.pop(names.LIVE_HUB, None)
                await asyncio.sleep(0.5)
                continue
            if state is not None:
                try:
                    # Read once per version here, whatever the number of subscribers.
                    parsed = LiveState.from_hub(state)
                except ValueError:  # skip this version; the next one may be readable
                    log.warning("the live hub sent a state this replica cannot read", exc_info=True)
                    self._version = state.get("version", self._version)
                    continue
                self._state = parsed
                self._version = parsed.version
                self._changed.set()
                self._changed = asyncio.Event()

    async def _next(self, after: LiveState | None) -> LiveState:
        while self._state is None or self._state is after:
            await self._changed.wait()
        return self._state

    async def stream(self, interval_seconds: float, content_id: str | None = None) -> AsyncIterator[LiveState]:
        """The latest state, at most once per ``interval_seconds``, whenever it changed."""
        self._subscribers += 1
        if content_id is not None:
            self._interest[content_id] += 1
            if self._interest[content_id] == 1 and self._task is not None and not self._task.done():
                self._task.cancel()  # poll again at once with the new content id
        self._ensure_polling()
        sent: LiveState | None = None
        try:
            while True:
                state = await self._next(sent)
                if content_id is not None and content_id not in state.contents:
                    sent = state  # the hub has not computed this content yet: wait for the next version
                    continue
                sent = state
                started = time.monotonic()
                yield state
                wait = interval_seconds - (time.monotonic() - started)
                if wait > 0:
                    await asyncio.sleep(wait)
        finally:
            self._subscribers -= 1
            if content_id is not None:
                self._interest[content_id] -= 1
                if self._interest[content_id] <= 0:
                    del self._interest[content_id]
