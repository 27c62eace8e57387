"""The analytics result cache: one answer per (kind, normalized request, caller's scope, data watermark).

A key names everything the answer depends on, so an entry is never wrong: when new data reaches the
tables the watermark moves and the next request computes afresh. Entries are stored as the JSON the
REST answer sends, so a hit costs a lookup and no re-serialization. Identical requests that miss at
the same moment share one computation (many viewers of one dashboard cost one query per refresh).

Backed by Redis when configured (shared by every replica), else by an in-process cache
(storage/cache.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from semantic.freshness import Watermark
from storage.cache import Cache

log = logging.getLogger(__name__)
_KEY_VERSION = "r1"

# Set by the transport for a request whose caller asked for a fresh answer (HTTP ``Cache-Control:
# no-cache``, a dashboard's refresh button): the cache is not read, and the answer computed is stored
# for the next caller.
FRESH_ANSWER_REQUESTED: ContextVar[bool] = ContextVar("fresh_answer_requested", default=False)


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "analytics_result_cache_requests",
            "Analytics answers asked of the result cache, by kind of analysis and outcome (hit, miss, shared: "
            "a miss that waited for an identical computation already running; refresh: the caller asked for "
            "a fresh answer)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.errors = Counter(
            "analytics_result_cache_errors",
            "Result cache reads or writes that failed (the answer was computed and served anyway)",
            registry=self.registry,
        )


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    # The answer as JSON bytes, exactly as the REST route sends it.
    body: bytes
    hit: bool

    def json(self) -> Any:
        return orjson.loads(self.body)


Question = BaseModel | dict[str, Any] | str


def request_fingerprint(request: Question) -> str:
    """A stable digest of a normalized request: same fields and values, same digest (key order ignored).
    A string is taken as a digest made already."""
    if isinstance(request, str):
        return request
    data = request.model_dump(mode="json") if isinstance(request, BaseModel) else request
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).hexdigest()


class ResultCache:
    def __init__(self, cache: Cache, *, ttl_seconds: float, metrics: CacheMetrics | None = None) -> None:
        self._cache = cache
        self._ttl = ttl_seconds
        self._metrics = metrics or CacheMetrics()
        self._running: dict[str, asyncio.Future[bytes]] = {}

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    def key(self, kind: str, request: Question, scope: str, watermark: Watermark) -> str:
        return self.key_at(kind, request, scope, watermark.key)

    def key_at(self, kind: str, request: Question, scope: str, version: str) -> str:
        scope_digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
        return f"result:{_KEY_VERSION}:{kind}:{request_fingerprint(request)}:{scope_digest}:{version}"

    async def answer(
        self,
        kind: str,
        request: Question,
        scope: str,
        watermark: Watermark,
        compute: Callable[[], Awaitable[BaseModel]],
    ) -> CachedAnswer:
        """The cached answer, or ``compute()``'s, stored for the next caller."""
        return await self.answer_at(kind, request, scope, watermark.key, compute)

    async def answer_at(
        self,
        kind: str,
        request: Question,
        scope: str,
        version: str,
        compute: Callable[[], Awaitable[BaseModel]],
    ) -> CachedAnswer:
        """As ``answer``, for a ``version`` of the data other than a watermark (a dashboard's refresh tick)."""
        if not self.enabled:
            self._metrics.requests.labels(kind=kind, outcome="miss").inc()
            return CachedAnswer(_encode(await compute()), hit=False)
        key = self.key_at(kind, request, scope, version)
        if FRESH_ANSWER_REQUESTED.get():
            self._metrics.requests.labels(kind=kind, outcome="refresh").inc()
            body = _encode(await compute())
            await self._set(key, body)
            return CachedAnswer(body, hit=False)
        found = await self._get(key)
        if found is not None:
            self._metrics.requests.labels(kind=kind, outcome="hit").inc()
            return CachedAnswer(found, hit=True)
        running = self._running.get(key)
        if running is not None:
            self._metrics.requests.labels(kind=kind, outcome="shared").inc()
            return CachedAnswer(await asyncio.shield(running), hit=True)
        self._metrics.requests.labels(kind=kind, outcome="miss").inc()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            body = _encode(await compute())
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            # Waiters see the exception; mark it retrieved for when there are none.
            future.exception()
            raise
        finally:
            self._running.pop(key, None)
        future.set_result(body)
        await self._set(key, body)
        return CachedAnswer(body, hit=False)

    async def _get(self, key: str) -> bytes | None:
        try:
            return await self._cache.get(key)
        except Exception:  # noqa: BLE001 - a cache outage costs speed, never answers
            self._metrics.errors.inc()
            log.warning("result cache read failed", exc_info=True)
            return None

    async def _set(self, key: str, body: bytes) -> None:
        try:
            await self._cache.set(key, body, self._ttl)
        except Exception:  # noqa: BLE001 - a cache outage costs speed, never answers
            self._metrics.errors.inc()
            log.warning("result cache write failed", exc_info=True)


def _encode(answer: BaseModel) -> bytes:
    return orjson.dumps(answer.model_dump(mode="json"), option=orjson.OPT_NON_STR_KEYS)
