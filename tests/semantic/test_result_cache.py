"""The result cache on the real Redis and in-process: keys, hits, shared computations, outages."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from pydantic import BaseModel

from semantic.freshness import Watermark, WatermarkTracker
from semantic.result_cache import FRESH_ANSWER_REQUESTED, CacheMetrics, ResultCache, request_fingerprint
from storage.cache import InProcessCache, RedisCache


class Answer(BaseModel):
    value: int


class Request(BaseModel):
    metrics: list[str]
    limit: int


W1 = Watermark(stored_seq=10, fed_seq=10, as_of_ms=1_700_000_000_000)
W2 = Watermark(stored_seq=11, fed_seq=10, as_of_ms=1_700_000_001_000)


def _count(metrics: CacheMetrics, kind: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "analytics_result_cache_requests_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


@pytest.fixture(params=["in-process", "redis"])
def backend(request: pytest.FixtureRequest, redis_url: str):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        return RedisCache(redis_url, prefix=f"test-{secrets.token_hex(4)}:")
    return InProcessCache()


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> Answer:
        self.calls += 1
        await asyncio.sleep(0.01)
        return Answer(value=self.calls)


async def test_a_repeated_request_is_a_hit_until_the_watermark_or_scope_changes(backend) -> None:  # type: ignore[no-untyped-def]
    metrics = CacheMetrics()
    cache = ResultCache(backend, ttl_seconds=60, metrics=metrics)
    compute = Counter()
    request = Request(metrics=["views"], limit=10)

    first = await cache.answer("query", request, "role=analyst", W1, compute)
    again = await cache.answer("query", Request(limit=10, metrics=["views"]), "role=analyst", W1, compute)
    assert (first.hit, again.hit) == (False, True)
    assert first.json() == again.json() == {"value": 1}
    assert compute.calls == 1

    moved = await cache.answer("query", request, "role=analyst", W2, compute)
    other_scope = await cache.answer("query", request, "role=viewer", W1, compute)
    other_request = await cache.answer("query", Request(metrics=["views"], limit=11), "role=analyst", W1, compute)
    other_kind = await cache.answer("funnel", request, "role=analyst", W1, compute)
    assert [a.hit for a in (moved, other_scope, other_request, other_kind)] == [False] * 4
    assert compute.calls == 5
    assert _count(metrics, "query", "hit") == 1
    assert _count(metrics, "query", "miss") == 4
    await backend.close()


async def test_identical_concurrent_misses_share_one_computation(backend) -> None:  # type: ignore[no-untyped-def]
    metrics = CacheMetrics()
    cache = ResultCache(backend, ttl_seconds=60, metrics=metrics)
    compute = Counter()
    answers = await asyncio.gather(
        *(cache.answer("query", {"m": ["views"]}, "role=admin", W1, compute) for _ in range(20))
    )
    assert compute.calls == 1
    assert {a.body for a in answers} == {answers[0].body}
    assert _count(metrics, "query", "miss") == 1
    assert _count(metrics, "query", "shared") == 19
    await backend.close()


async def test_a_failed_computation_is_not_cached_and_reaches_every_waiter(backend) -> None:  # type: ignore[no-untyped-def]
    cache = ResultCache(backend, ttl_seconds=60)
    calls = 0

    async def failing() -> Answer:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    results = await asyncio.gather(
        *(cache.answer("query", {"a": 1}, "s", W1, failing) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert calls == 1
    answer = await cache.answer("query", {"a": 1}, "s", W1, Counter())
    assert answer.hit is False
    await backend.close()


async def test_a_cache_outage_costs_speed_not_answers() -> None:
    metrics = CacheMetrics()
    # Nothing listens on port 1.
    cache = ResultCache(RedisCache("redis://127.0.0.1:1/0"), ttl_seconds=60, metrics=metrics)
    compute = Counter()
    first = await cache.answer("query", {"a": 1}, "s", W1, compute)
    second = await cache.answer("query", {"a": 1}, "s", W1, compute)
    assert (first.json(), second.json()) == ({"value": 1}, {"value": 2})
    assert metrics.errors._value.get() >= 2  # type: ignore[attr-defined]


async def test_a_fresh_answer_asked_for_is_computed_and_then_served_to_others(backend) -> None:  # type: ignore[no-untyped-def]
    metrics = CacheMetrics()
    cache = ResultCache(backend, ttl_seconds=60, metrics=metrics)
    compute = Counter()
    await cache.answer("query", {"a": 1}, "s", W1, compute)

    async def asked_fresh() -> Any:
        FRESH_ANSWER_REQUESTED.set(True)
        return await cache.answer("query", {"a": 1}, "s", W1, compute)

    # A task of its own, as a request is: the flag stays with that request.
    fresh = await asyncio.create_task(asked_fresh())
    assert (fresh.hit, fresh.json()) == (False, {"value": 2})
    after = await cache.answer("query", {"a": 1}, "s", W1, compute)
    assert (after.hit, after.json(), compute.calls) == (True, {"value": 2}, 2)
    assert _count(metrics, "query", "refresh") == 1
    await backend.close()


async def test_ttl_zero_turns_the_cache_off() -> None:
    cache = ResultCache(InProcessCache(), ttl_seconds=0)
    compute = Counter()
    await cache.answer("query", {"a": 1}, "s", W1, compute)
    second = await cache.answer("query", {"a": 1}, "s", W1, compute)
    assert second.hit is False and compute.calls == 2


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1, "b": [1, 2]}) != request_fingerprint({"a": 1, "b": [2, 1]})


async def test_the_tracker_polls_in_the_background_and_asks_when_stale() -> None:
    seq = 0

    async def source() -> Watermark:
        nonlocal seq
        seq += 1
        return Watermark(seq, seq, seq)

    tracker = WatermarkTracker(source, poll_seconds=0.02)
    first = await tracker.current()
    assert first.stored_seq == 1
    await asyncio.sleep(0.1)
    later = await tracker.current()
    assert later.stored_seq > first.stored_seq
    await tracker.close()
    # With the poll stopped, a reader past five polls asks the store itself.
    stale_seq = (await tracker.current()).stored_seq
    await tracker.close()
    await asyncio.sleep(0.15)
    assert (await tracker.current()).stored_seq > stale_seq
    await tracker.close()
