"""storage/token_buckets.py: one suite for both backends on a clock the test moves, the two backends
making the same decisions over one long sequence, and what is particular to each.

Expected decisions come from an exact model in the test (fractions: tokens refill at
``per_second / 1000`` a millisecond up to ``burst``; a request takes one), with rates whose refill per
millisecond is a whole number of the store's millionths, so the store's fixed point is exact too.
"""

from __future__ import annotations

import math
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction

import pytest
import redis.asyncio as redis_asyncio

from core.errors import StoreUnavailable
from storage.token_buckets import (
    BucketLimit,
    Decision,
    InProcessTokenBuckets,
    LeasedTokenBuckets,
    RedisTokenBuckets,
    TokenBuckets,
)

START_MS = 1_700_000_000_000


class ManualClock:
    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@dataclass
class ExactBucket:
    """The token bucket in exact arithmetic: the model the stores are held to."""

    per_second: Fraction
    burst: int
    tokens: Fraction | None = None
    at_ms: int = 0

    def take(self, now_ms: int, wanted: int = 1) -> Decision:
        if self.tokens is None:
            self.tokens, self.at_ms = Fraction(self.burst), now_ms
        elif now_ms > self.at_ms:
            self.tokens = min(Fraction(self.burst), self.tokens + (now_ms - self.at_ms) * self.per_second / 1000)
            self.at_ms = now_ms
        if self.tokens >= 1:
            granted = min(wanted, math.floor(self.tokens))
            self.tokens -= granted
            return Decision(granted, 0)
        return Decision(0, math.ceil((1 - self.tokens) * 1000 / self.per_second))


async def _drop_keys(redis_url: str, pattern: str) -> None:
    raw = redis_asyncio.from_url(redis_url)
    try:
        leftovers = [key async for key in raw.scan_iter(match=pattern)]
        if leftovers:
            await raw.delete(*leftovers)
    finally:
        await raw.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["in_process", "redis"])
async def buckets(
    request: pytest.FixtureRequest, clock: ManualClock, redis_url: str, unique: str
) -> AsyncIterator[TokenBuckets]:
    if request.param == "in_process":
        made: TokenBuckets = InProcessTokenBuckets(clock)
        yield made
        await made.close()
        return
    made = RedisTokenBuckets(redis_url, prefix=f"test:{unique}:", clock=clock)
    yield made
    await made.close()
    await _drop_keys(redis_url, f"test:{unique}:*")


async def take_many(buckets: TokenBuckets, key: str, limit: BucketLimit, n: int) -> list[Decision]:
    return [await buckets.take(key, limit) for _ in range(n)]


async def test_a_new_bucket_allows_its_burst_then_refuses(buckets: TokenBuckets) -> None:
    limit = BucketLimit(per_second=2, burst=3)
    decisions = await take_many(buckets, "k", limit, 5)
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    # One token at 2 a second is half a second away.
    assert decisions[3].retry_after_ms == decisions[4].retry_after_ms == 500


async def test_a_refused_key_recovers_after_the_wait_it_was_given(buckets: TokenBuckets, clock: ManualClock) -> None:
    limit = BucketLimit(per_second=4, burst=1)
    assert (await buckets.take("k", limit)).allowed
    refused = await buckets.take("k", limit)
    assert refused == Decision(0, 250)
    clock.advance(refused.retry_after_ms - 1)
    assert await buckets.take("k", limit) == Decision(0, 1)
    clock.advance(1)
    assert (await buckets.take("k", limit)).allowed
    assert not (await buckets.take("k", limit)).allowed


async def test_part_of_a_token_shortens_the_wait(buckets: TokenBuckets, clock: ManualClock) -> None:
    limit = BucketLimit(per_second=2, burst=1)
    await buckets.take("k", limit)
    clock.advance(200)  # 0.4 of a token
    assert await buckets.take("k", limit) == Decision(0, 300)


async def test_refill_stops_at_the_burst(buckets: TokenBuckets, clock: ManualClock) -> None:
    limit = BucketLimit(per_second=10, burst=4)
    await take_many(buckets, "k", limit, 4)
    clock.advance(3_600_000)
    assert [d.allowed for d in await take_many(buckets, "k", limit, 6)] == [True] * 4 + [False] * 2


async def test_a_fractional_rate_rounds_the_wait_up(buckets: TokenBuckets) -> None:
    limit = BucketLimit(per_second=0.3, burst=1)
    await buckets.take("k", limit)
    assert await buckets.take("k", limit) == Decision(0, math.ceil(1000 / 0.3))


async def test_keys_have_buckets_of_their_own(buckets: TokenBuckets) -> None:
    limit = BucketLimit(per_second=1, burst=2)
    await take_many(buckets, "a", limit, 2)
    assert not (await buckets.take("a", limit)).allowed
    assert [d.allowed for d in await take_many(buckets, "b", limit, 3)] == [True, True, False]


async def test_a_clock_behind_the_bucket_refills_nothing(buckets: TokenBuckets, clock: ManualClock) -> None:
    limit = BucketLimit(per_second=1, burst=1)
    clock.advance(10_000)
    await buckets.take("k", limit)
    clock.advance(-5_000)
    assert await buckets.take("k", limit) == Decision(0, 1000)
    clock.advance(5_000 + 1000)
    assert (await buckets.take("k", limit)).allowed


def _sequence(seed: int, length: int) -> list[tuple[int, str, int]]:
    """Steps of (milliseconds to advance, key, tokens wanted): bursts, short gaps, waits, a few keys."""
    rng = random.Random(seed)
    steps = [0, 0, 0, 1, 3, 40, 125, 333, 800, 2500]
    return [(rng.choice(steps), rng.choice("abc"), rng.choice([1, 1, 1, 2, 5])) for _ in range(length)]


@pytest.mark.parametrize(("per_second", "burst"), [(2, 3), (2.5, 1), (7, 5), (0.5, 2)])
async def test_both_backends_make_the_decisions_of_the_exact_model(
    redis_url: str, unique: str, per_second: float, burst: int
) -> None:
    limit = BucketLimit(per_second=per_second, burst=burst)
    clock = ManualClock()
    in_process = InProcessTokenBuckets(clock)
    shared = RedisTokenBuckets(redis_url, prefix=f"test:{unique}:", clock=clock)
    models = {key: ExactBucket(Fraction(str(per_second)), burst) for key in "abc"}
    steps = _sequence(seed=int(per_second * 10) + burst, length=400)
    expected, local, redis = [], [], []
    try:
        for step_ms, key, wanted in steps:
            clock.advance(step_ms)
            expected.append(models[key].take(clock.now, wanted))
            local.append(await in_process.take(key, limit, wanted))
            redis.append(await shared.take(key, limit, wanted))
    finally:
        await shared.close()
        await _drop_keys(redis_url, f"test:{unique}:*")
    assert local == expected
    assert redis == expected
    # The sequence sees every kind of answer: refused, granted in full, granted in part.
    assert any(not d.allowed for d in expected)
    granted_of_wanted = [(d.granted, wanted) for d, (_, _, wanted) in zip(expected, steps, strict=True)]
    assert burst == 1 or any(granted == wanted > 1 for granted, wanted in granted_of_wanted)
    assert burst == 1 or any(0 < granted < wanted for granted, wanted in granted_of_wanted)


async def test_several_tokens_are_granted_up_to_what_the_bucket_holds(buckets: TokenBuckets) -> None:
    limit = BucketLimit(per_second=1, burst=5)
    assert await buckets.take("k", limit, 3) == Decision(3, 0)
    assert await buckets.take("k", limit, 3) == Decision(2, 0)
    assert await buckets.take("k", limit, 3) == Decision(0, 1000)


def test_a_limit_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="per_second > 0"):
        BucketLimit(per_second=0, burst=1)
    with pytest.raises(ValueError, match="burst >= 1"):
        BucketLimit(per_second=1, burst=0)


async def test_redis_uses_its_own_clock_when_none_is_given(redis_url: str, unique: str) -> None:
    buckets = RedisTokenBuckets(redis_url, prefix=f"test:{unique}:")
    limit = BucketLimit(per_second=1, burst=2)
    try:
        decisions = await take_many(buckets, "k", limit, 3)
    finally:
        await buckets.close()
        await _drop_keys(redis_url, f"test:{unique}:*")
    assert [d.allowed for d in decisions] == [True, True, False]
    # Whatever time passed between the calls, the wait is at most one token's refill.
    assert 0 < decisions[2].retry_after_ms <= 1000


async def test_redis_state_expires_once_the_bucket_would_be_full(redis_url: str, unique: str) -> None:
    clock = ManualClock()
    buckets = RedisTokenBuckets(redis_url, prefix=f"test:{unique}:", clock=clock)
    limit = BucketLimit(per_second=4, burst=2)
    raw = redis_asyncio.from_url(redis_url)
    try:
        await buckets.take("k", limit)
        ttl_ms = await raw.pttl(f"test:{unique}:k")
        keys = [key async for key in raw.scan_iter(match=f"test:{unique}:*")]
    finally:
        await raw.aclose()
        await buckets.close()
        await _drop_keys(redis_url, f"test:{unique}:*")
    assert keys == [f"test:{unique}:k".encode()]
    # Empty to full takes burst / per_second = 500 ms; the state is kept that long and a minute more.
    assert 500 < ttl_ms <= 500 + 60_000


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens on it once closed
    buckets = RedisTokenBuckets(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.5)
    try:
        with pytest.raises(StoreUnavailable, match="rate limit store"):
            await buckets.take("k", BucketLimit(per_second=1, burst=1))
    finally:
        await buckets.close()


async def test_in_process_makes_room_from_idle_buckets_first(clock: ManualClock) -> None:
    buckets = InProcessTokenBuckets(clock, max_buckets=2)
    limit = BucketLimit(per_second=1, burst=1)
    await buckets.take("idle", limit)
    clock.advance(limit.expiry_ms)
    await buckets.take("busy", limit)
    await buckets.take("new", limit)  # full: the idle bucket goes, the busy one stays
    assert await buckets.take("busy", limit) == Decision(0, 1000)


async def test_in_process_full_of_busy_buckets_forgets_the_oldest(clock: ManualClock) -> None:
    buckets = InProcessTokenBuckets(clock, max_buckets=2)
    limit = BucketLimit(per_second=1, burst=1)
    await buckets.take("first", limit)
    await buckets.take("second", limit)
    await buckets.take("third", limit)
    # Forgotten means full again: the oldest gets a token before its refill.
    assert (await buckets.take("first", limit)).allowed
    assert not (await buckets.take("third", limit)).allowed


class CountingBuckets:
    """Shared buckets that count the calls reaching them (each would be a Redis round trip)."""

    def __init__(self, inner: TokenBuckets) -> None:
        self.inner = inner
        self.calls = 0

    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        self.calls += 1
        return await self.inner.take(key, limit, wanted)

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize(
    ("per_second", "burst", "size"),
    [(2000, 2000, 40), (10_000, 10_000, 200), (100, 200, 2), (500, 60, 3), (10, 50, 1), (0.5, 1, 1)],
)
def test_a_lease_is_a_fiftieth_of_the_rate_and_a_twentieth_of_the_burst(per_second, burst, size) -> None:
    assert LeasedTokenBuckets.lease_size(BucketLimit(per_second, burst)) == size


async def test_leases_answer_most_requests_without_the_shared_store(clock: ManualClock) -> None:
    shared = CountingBuckets(InProcessTokenBuckets(clock))
    leased = LeasedTokenBuckets(shared, clock)
    limit = BucketLimit(per_second=500, burst=1000)  # leases of 10
    assert [(await leased.take("k", limit)).allowed for _ in range(25)] == [True] * 25
    assert shared.calls == math.ceil(25 / 10)


async def test_leases_never_admit_more_than_the_shared_bucket_holds(clock: ManualClock) -> None:
    shared = InProcessTokenBuckets(clock)
    replicas = [LeasedTokenBuckets(shared, clock) for _ in range(3)]
    limit = BucketLimit(per_second=100, burst=40)  # leases of 2; the clock stands still: no refill
    admitted = 0
    for i in range(60):
        admitted += (await replicas[i % 3].take("k", limit)).allowed
    assert admitted == 40


async def test_a_refusal_carries_the_shared_wait(clock: ManualClock) -> None:
    leased = LeasedTokenBuckets(InProcessTokenBuckets(clock), clock)
    limit = BucketLimit(per_second=100, burst=40)
    for _ in range(40):
        await leased.take("k", limit)
    # One token at 100 a second is 10 ms away.
    assert await leased.take("k", limit) == Decision(0, 10)


async def test_a_lease_unused_for_its_period_is_dropped(clock: ManualClock) -> None:
    shared = CountingBuckets(InProcessTokenBuckets(clock))
    leased = LeasedTokenBuckets(shared, clock, lease_ms=1000)
    limit = BucketLimit(per_second=500, burst=1000)
    await leased.take("k", limit)  # holds 9 more
    clock.advance(999)
    await leased.take("k", limit)
    assert shared.calls == 1
    clock.advance(1)
    await leased.take("k", limit)
    assert shared.calls == 2


async def test_with_leases_of_one_the_decisions_are_the_shared_buckets(clock: ManualClock) -> None:
    limit = BucketLimit(per_second=2, burst=3)
    alone = InProcessTokenBuckets(clock)
    leased = LeasedTokenBuckets(InProcessTokenBuckets(clock), clock)
    for step_ms, key, _ in _sequence(seed=7, length=200):
        clock.advance(step_ms)
        assert await leased.take(key, limit) == await alone.take(key, limit)
