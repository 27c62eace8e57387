"""semantic/rate_limits.py: one bucket per key and route class, the refusal's message and metrics,
limits from settings, and the replica's own buckets while Redis does not answer."""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio
from prometheus_client import CollectorRegistry

from core.access import (
    CAN_INGEST_EVENTS,
    CAN_MANAGE_API_KEYS,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_AUDIT_LOG,
    CAN_READ_CONTENT_ANALYTICS,
    CAN_WRITE_CONTENT_METADATA,
    Principal,
    Role,
)
from core.errors import RateLimited, StoreUnavailable
from core.settings import Settings
from semantic.rate_limits import (
    SHARED_STORE_RETRY_SECONDS,
    RateLimiter,
    RateLimitMetrics,
    RouteClass,
    limits_from,
    route_class_of,
)
from storage.token_buckets import BucketLimit, Decision, InProcessTokenBuckets
from tests.storage.test_token_buckets import ManualClock

ALICE = Principal(key_id="key-alice", name="alice", role=Role.SERVICE)
BOB = Principal(key_id="key-bob", name="bob", role=Role.SERVICE)


def small_limits() -> dict[RouteClass, BucketLimit]:
    return {
        RouteClass.INGEST: BucketLimit(per_second=2, burst=2),
        RouteClass.QUERY: BucketLimit(per_second=1, burst=1),
        RouteClass.EXPORT: BucketLimit(per_second=0.5, burst=1),
        RouteClass.ADMIN: BucketLimit(per_second=1, burst=3),
    }


def refused_count(metrics: RateLimitMetrics, route_class: str) -> float:
    value = metrics.registry.get_sample_value("analytics_rate_limited_requests_total", {"route_class": route_class})
    return value or 0.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def metrics() -> RateLimitMetrics:
    return RateLimitMetrics(CollectorRegistry())


@pytest.fixture
def limiter(clock: ManualClock, metrics: RateLimitMetrics) -> RateLimiter:
    return RateLimiter(InProcessTokenBuckets(clock), small_limits(), metrics)


async def test_over_the_burst_is_refused_naming_the_limit_and_class(
    limiter: RateLimiter, metrics: RateLimitMetrics
) -> None:
    await limiter.admit(ALICE, RouteClass.INGEST)
    await limiter.admit(ALICE, RouteClass.INGEST)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(ALICE, RouteClass.INGEST)
    error = refused.value
    assert (error.status, error.code) == (429, "rate_limited")
    assert error.message == (
        "rate limit of 2 ingest requests per second (burst 2) exceeded for this API key; retry after 1 s"
    )
    assert error.retry_after_seconds == 1
    assert error.details == {"route_class": "ingest", "limit_per_second": 2, "burst": 2, "retry_after_seconds": 1}
    assert refused_count(metrics, "ingest") == 1
    assert refused_count(metrics, "query") == 0


async def test_retry_after_is_whole_seconds_rounded_up(limiter: RateLimiter, clock: ManualClock) -> None:
    await limiter.admit(ALICE, RouteClass.EXPORT)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(ALICE, RouteClass.EXPORT)
    assert refused.value.retry_after_seconds == 2  # one token at 0.5 a second
    clock.advance(1_500)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit(ALICE, RouteClass.EXPORT)
    assert refused.value.retry_after_seconds == 1  # 500 ms left: never 0
    clock.advance(500)
    await limiter.admit(ALICE, RouteClass.EXPORT)


async def test_each_key_and_each_class_has_its_own_bucket(limiter: RateLimiter) -> None:
    await limiter.admit(ALICE, RouteClass.QUERY)
    with pytest.raises(RateLimited):
        await limiter.admit(ALICE, RouteClass.QUERY)
    await limiter.admit(BOB, RouteClass.QUERY)
    for _ in range(3):
        await limiter.admit(ALICE, RouteClass.ADMIN)
    await limiter.admit(ALICE, RouteClass.INGEST)


async def test_disabled_limits_admit_everything(metrics: RateLimitMetrics) -> None:
    limiter = RateLimiter.from_settings(Settings(rate_limits_enabled=False, rate_limit_ingest_burst=1), metrics)
    assert not limiter.enabled
    for _ in range(10):
        await limiter.admit(ALICE, RouteClass.INGEST)


def test_limits_come_from_settings() -> None:
    settings = Settings(
        rate_limit_ingest_per_second=11,
        rate_limit_ingest_burst=12,
        rate_limit_query_per_second=13,
        rate_limit_query_burst=14,
        rate_limit_export_per_second=0.25,
        rate_limit_export_burst=16,
        rate_limit_admin_per_second=17,
        rate_limit_admin_burst=18,
    )
    assert limits_from(settings) == {
        RouteClass.INGEST: BucketLimit(11, 12),
        RouteClass.QUERY: BucketLimit(13, 14),
        RouteClass.EXPORT: BucketLimit(0.25, 16),
        RouteClass.ADMIN: BucketLimit(17, 18),
    }


def test_the_defaults_leave_room_for_the_measured_peaks() -> None:
    # docs/benchmarks.md: about 500 single events/s per replica, 2,740 cached queries/s from one key.
    limits = limits_from(Settings())
    assert limits[RouteClass.INGEST].per_second >= 2000 and limits[RouteClass.INGEST].burst >= 2000
    assert limits[RouteClass.QUERY].per_second >= 2 * 2740


async def test_with_redis_replicas_draw_from_one_bucket_per_key(
    metrics: RateLimitMetrics, redis_url: str, unique: str
) -> None:
    settings = Settings(redis_url=redis_url, rate_limit_admin_per_second=0.01, rate_limit_admin_burst=2)
    replicas = [RateLimiter.from_settings(settings, metrics) for _ in range(2)]
    caller = Principal(key_id=f"test-{unique}", name="test", role=Role.ADMIN)
    try:
        await replicas[0].admit(caller, RouteClass.ADMIN)
        await replicas[1].admit(caller, RouteClass.ADMIN)
        for replica in replicas:
            with pytest.raises(RateLimited):
                await replica.admit(caller, RouteClass.ADMIN)
    finally:
        for replica in replicas:
            await replica.close()
        raw = redis_asyncio.from_url(redis_url)
        await raw.delete(f"analytics:ratelimit:admin:test-{unique}")
        await raw.aclose()
    assert metrics.registry.get_sample_value("analytics_rate_limit_local_decisions_total") == 0


@pytest.mark.parametrize(
    ("permission", "route_class"),
    [
        (CAN_INGEST_EVENTS, RouteClass.INGEST),
        (CAN_WRITE_CONTENT_METADATA, RouteClass.INGEST),
        (CAN_MANAGE_API_KEYS, RouteClass.ADMIN),
        (CAN_READ_AUDIT_LOG, RouteClass.ADMIN),
        (CAN_READ_CONTENT_ANALYTICS, RouteClass.QUERY),
        (CAN_QUERY_RAW_EVENTS, RouteClass.QUERY),
    ],
)
def test_the_class_of_each_permission(permission, route_class) -> None:
    assert route_class_of(permission) == route_class


class FailingBuckets:
    """A shared store that is down until told otherwise, counting the calls that reached it."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        self.calls += 1
        if self.down:
            raise StoreUnavailable("the rate limit store (Redis) did not answer: ConnectionError")
        return Decision(1, 0)

    async def close(self) -> None:
        pass


async def test_while_redis_is_down_the_replica_keeps_the_limits_itself(
    clock: ManualClock, metrics: RateLimitMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    shared = FailingBuckets()
    now = [100.0]
    limiter = RateLimiter(
        shared, small_limits(), metrics, fallback=InProcessTokenBuckets(clock), monotonic=lambda: now[0]
    )
    await limiter.admit(ALICE, RouteClass.INGEST)
    await limiter.admit(ALICE, RouteClass.INGEST)
    with pytest.raises(RateLimited):
        await limiter.admit(ALICE, RouteClass.INGEST)
    # Only the first request tried Redis; the others went straight to the replica's buckets.
    assert shared.calls == 1
    assert metrics.registry.get_sample_value("analytics_rate_limit_local_decisions_total") == 3
    assert "using this replica's own buckets" in caplog.text
    shared.down = False
    now[0] += SHARED_STORE_RETRY_SECONDS
    await limiter.admit(ALICE, RouteClass.INGEST)
    assert shared.calls == 2
    assert metrics.registry.get_sample_value("analytics_rate_limit_local_decisions_total") == 3


async def test_without_a_fallback_a_store_failure_is_an_error(metrics: RateLimitMetrics) -> None:
    limiter = RateLimiter(FailingBuckets(), small_limits(), metrics)
    with pytest.raises(StoreUnavailable):
        await limiter.admit(ALICE, RouteClass.QUERY)
