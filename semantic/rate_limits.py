"""Rate limits per principal and route class: each API key has one token bucket per class of route.

The classes: ``ingest`` (sending events and content metadata), ``query`` (every analytics read, the
query layer, saved queries), ``export`` (report and export downloads), ``admin`` (keys, audit log and
the other /api/v1/admin routes). Each has its rate and burst in settings. A request over its limit is
refused with RateLimited (429) naming the limit, the class and when to retry.

The buckets are in Redis when it is configured, so the limit holds for a key across replicas. A
replica takes a busy key's tokens from Redis a few at a time (storage/token_buckets.py
LeasedTokenBuckets), so most requests cost no round trip; no request passes without a token of the
shared bucket. While Redis does not answer, each replica keeps the limits with buckets of its own
(the service stays up; a key may then get up to the limit from each replica) and tries Redis again a
few seconds later.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

from core.access import Operation, Permission, Principal
from core.errors import RateLimited, StoreUnavailable
from core.settings import Settings
from storage.token_buckets import (
    BucketLimit,
    Decision,
    InProcessTokenBuckets,
    LeasedTokenBuckets,
    RedisTokenBuckets,
    TokenBuckets,
)

log = logging.getLogger(__name__)

# After Redis fails, requests use this replica's buckets for this long before Redis is tried again, so
# an outage costs one failed round trip per period instead of one per request.
SHARED_STORE_RETRY_SECONDS = 5.0


class RouteClass(StrEnum):
    INGEST = "ingest"
    QUERY = "query"
    EXPORT = "export"
    ADMIN = "admin"


# The class of the operations each permission guards; every other permission's operations are queries.
# The REST routes (serve_app/deps.py Allow) and the GraphQL fields (by their permission class) both
# read it, so an operation counts against the same bucket on either transport.
_ROUTE_CLASS_OF: dict[Operation, RouteClass] = {
    Operation.INGEST_EVENTS: RouteClass.INGEST,
    Operation.WRITE_CONTENT_METADATA: RouteClass.INGEST,
    Operation.MANAGE_API_KEYS: RouteClass.ADMIN,
    Operation.READ_AUDIT_LOG: RouteClass.ADMIN,
    Operation.READ_RETENTION: RouteClass.ADMIN,
    Operation.ERASE_USER_DATA: RouteClass.ADMIN,
    Operation.EXPORT_USER_DATA: RouteClass.EXPORT,
    Operation.EXPORT_DATA: RouteClass.EXPORT,
    Operation.DOWNLOAD_REPORTS: RouteClass.EXPORT,
    Operation.RUN_BATCH_JOBS: RouteClass.ADMIN,
}


def route_class_of(permission: Permission) -> RouteClass:
    return _ROUTE_CLASS_OF.get(permission.operation, RouteClass.QUERY)


def limits_from(settings: Settings) -> dict[RouteClass, BucketLimit]:
    return {
        RouteClass.INGEST: BucketLimit(settings.rate_limit_ingest_per_second, settings.rate_limit_ingest_burst),
        RouteClass.QUERY: BucketLimit(settings.rate_limit_query_per_second, settings.rate_limit_query_burst),
        RouteClass.EXPORT: BucketLimit(settings.rate_limit_export_per_second, settings.rate_limit_export_burst),
        RouteClass.ADMIN: BucketLimit(settings.rate_limit_admin_per_second, settings.rate_limit_admin_burst),
    }


class RateLimitMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.refused = Counter(
            "analytics_rate_limited_requests",
            "Requests refused with 429 because their API key went over the rate limit of the route class",
            ["route_class"],
            registry=self.registry,
        )
        self.local_decisions = Counter(
            "analytics_rate_limit_local_decisions",
            "Rate limit decisions made with this replica's own buckets because Redis did not answer",
            registry=self.registry,
        )


class RateLimiter:
    """Admits a principal's request of a route class, or raises RateLimited.

    ``shared`` is where the buckets live; with ``fallback`` (buckets of this process), a shared store
    that fails is replaced by it for SHARED_STORE_RETRY_SECONDS. ``shared`` None admits everything.
    """

    def __init__(
        self,
        shared: TokenBuckets | None,
        limits: Mapping[RouteClass, BucketLimit],
        metrics: RateLimitMetrics,
        *,
        fallback: TokenBuckets | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._shared = shared
        self._fallback = fallback
        self._limits = dict(limits)
        self._metrics = metrics
        self._monotonic = monotonic
        self._shared_down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, metrics: RateLimitMetrics) -> RateLimiter:
        limits = limits_from(settings)
        if not settings.rate_limits_enabled:
            return cls(None, limits, metrics)
        if settings.redis_url:
            shared = LeasedTokenBuckets(RedisTokenBuckets(settings.redis_url))
            return cls(shared, limits, metrics, fallback=InProcessTokenBuckets())
        return cls(InProcessTokenBuckets(), limits, metrics)

    @property
    def enabled(self) -> bool:
        return self._shared is not None

    def limit(self, route_class: RouteClass) -> BucketLimit:
        return self._limits[route_class]

    async def admit(self, principal: Principal, route_class: RouteClass) -> None:
        if self._shared is None:
            return
        limit = self._limits[route_class]
        decision = await self._take(f"{route_class.value}:{principal.key_id}", limit)
        if not decision.allowed:
            self._metrics.refused.labels(route_class=route_class.value).inc()
            raise _refusal(route_class, limit, decision)

    async def _take(self, key: str, limit: BucketLimit) -> Decision:
        assert self._shared is not None
        if self._fallback is None:
            return await self._shared.take(key, limit)
        if self._shared_down_until:
            if self._monotonic() < self._shared_down_until:
                self._metrics.local_decisions.inc()
                return await self._fallback.take(key, limit)
            self._shared_down_until = 0.0
        try:
            return await self._shared.take(key, limit)
        except StoreUnavailable as exc:
            log.warning(
                "rate limits: %s; using this replica's own buckets for %.0f s", exc.message, SHARED_STORE_RETRY_SECONDS
            )
            self._shared_down_until = self._monotonic() + SHARED_STORE_RETRY_SECONDS
            self._metrics.local_decisions.inc()
            return await self._fallback.take(key, limit)

    async def close(self) -> None:
        for buckets in (self._shared, self._fallback):
            if buckets is not None:
                await buckets.close()


def _refusal(route_class: RouteClass, limit: BucketLimit, decision: Decision) -> RateLimited:
    # Retry-After is in whole seconds; waiting less than one would be refused again.
    seconds = max(1, math.ceil(decision.retry_after_ms / 1000))
    return RateLimited(
        f"rate limit of {limit.per_second:g} {route_class.value} requests per second (burst {limit.burst}) "
        f"exceeded for this API key; retry after {seconds} s",
        retry_after_seconds=seconds,
        details={
            "route_class": route_class.value,
            "limit_per_second": limit.per_second,
            "burst": limit.burst,
            "retry_after_seconds": seconds,
        },
    )
