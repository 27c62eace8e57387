"""Token buckets, one per key: in Redis (one atomic Lua script, shared by every replica) or in-process.

A bucket holds up to ``burst`` tokens and gains ``per_second`` tokens a second; a request takes one
token, and is refused while the bucket holds less than one, with the wait until it will hold one.
Both backends run the same integer arithmetic (tokens in millionths, time in milliseconds, every
product and quotient an IEEE double as Lua computes it), so given the same clock they make the same
decisions; ``take_tokens`` below is the Python half, ``_TAKE_TOKENS_LUA`` the Redis half.

A caller may ask for several tokens at once and gets as many whole tokens as the bucket holds, up to
that: ``LeasedTokenBuckets`` does so to answer most requests of a busy key from tokens it already
holds, instead of a round trip to Redis for each.

A bucket that has been idle long enough to refill completely is indistinguishable from a new one, so
its state expires then (a Redis key TTL; pruning in-process) and idle callers cost no memory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import StoreUnavailable

# Tokens are counted in millionths, so a refill of a fraction of a token per millisecond is kept.
TOKEN = 1_000_000
# Kept past a full refill before expiry; only bounds how long idle state lingers.
_EXPIRY_MARGIN_MS = 60_000

# Milliseconds on some clock that only moves forward (buckets compare readings of one clock).
Clock = Callable[[], int]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """``burst`` requests at once, refilled at ``per_second`` requests a second."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not self.per_second > 0 or self.burst < 1:
            raise ValueError(f"a bucket needs per_second > 0 and burst >= 1, not {self.per_second}/{self.burst}")

    @property
    def capacity(self) -> int:
        return self.burst * TOKEN

    @property
    def refill_per_ms(self) -> float:
        return self.per_second * 1000

    @property
    def expiry_ms(self) -> int:
        """How long an untouched bucket's state matters: the time to refill from empty, plus a margin."""
        return math.ceil(self.capacity / self.refill_per_ms) + _EXPIRY_MARGIN_MS


@dataclass(frozen=True, slots=True)
class Decision:
    # Whole tokens taken: up to the number asked for; 0 = refused.
    granted: int
    # Refused: milliseconds until the bucket holds a token again. Granted: 0.
    retry_after_ms: int

    @property
    def allowed(self) -> bool:
        return self.granted > 0


@dataclass(slots=True)
class BucketState:
    tokens: int
    at_ms: int


def take_tokens(
    state: BucketState | None, now_ms: int, limit: BucketLimit, wanted: int = 1
) -> tuple[BucketState, Decision]:
    """Refill ``state`` up to ``now_ms`` and take up to ``wanted`` whole tokens (None: a new, full bucket).

    A clock reading behind the bucket's (another replica's clock) refills nothing; time never runs back.
    """
    capacity = limit.capacity
    if state is None:
        tokens, at_ms = capacity, now_ms
    else:
        tokens, at_ms = state.tokens, state.at_ms
        if now_ms > at_ms:
            tokens = min(capacity, tokens + math.floor((now_ms - at_ms) * limit.refill_per_ms))
            at_ms = now_ms
    if tokens >= TOKEN:
        granted = min(wanted, tokens // TOKEN)
        return BucketState(tokens - granted * TOKEN, at_ms), Decision(granted, 0)
    wait_ms = math.ceil((TOKEN - tokens) / limit.refill_per_ms)
    return BucketState(tokens, at_ms), Decision(0, wait_ms)


# KEYS[1]: the bucket. ARGV: per_second, burst, now in ms ("" = the Redis server's clock), expiry in ms,
# tokens wanted. Returns {granted, retry_after_ms}. The same steps as take_tokens, in Lua's doubles.
_TAKE_TOKENS_LUA = """
local TOKEN = 1000000
local refill_per_ms = tonumber(ARGV[1]) * 1000
local capacity = tonumber(ARGV[2]) * TOKEN
local now = tonumber(ARGV[3])
local wanted = tonumber(ARGV[5])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
elseif now > at then
  tokens = math.min(capacity, tokens + math.floor((now - at) * refill_per_ms))
  at = now
end
local granted = 0
local wait = 0
if tokens >= TOKEN then
  granted = math.min(wanted, math.floor(tokens / TOKEN))
  tokens = tokens - granted * TOKEN
else
  wait = math.ceil((TOKEN - tokens) / refill_per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%d', tokens), 'at', string.format('%d', at))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return {granted, wait}
"""


class TokenBuckets(Protocol):
    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        """Take up to ``wanted`` tokens from ``key``'s bucket (created full on first use)."""
        ...

    async def close(self) -> None: ...


class InProcessTokenBuckets:
    """Buckets in this process: for the embedded default, and while Redis cannot be reached."""

    def __init__(self, clock: Clock = monotonic_ms, *, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[BucketState, int]] = {}  # key -> (state, expires at ms)
        self._max_buckets = max_buckets

    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        now = self._clock()
        entry = self._buckets.get(key)
        state = entry[0] if entry is not None and entry[1] > now else None
        state, decision = take_tokens(state, now, limit, wanted)
        if entry is None and len(self._buckets) >= self._max_buckets:
            self._prune(now)
        self._buckets[key] = (state, now + limit.expiry_ms)
        return decision

    def _prune(self, now: int) -> None:
        for stale in [key for key, (_, expires) in self._buckets.items() if expires <= now]:
            del self._buckets[stale]
        if len(self._buckets) >= self._max_buckets:
            # Still full of live buckets: forget the oldest, as if it had refilled.
            self._buckets.pop(next(iter(self._buckets)))

    async def close(self) -> None:
        self._buckets.clear()


class RedisTokenBuckets:
    """Buckets in Redis under ``prefix``: every replica draws from the same bucket, in one round trip.

    ``clock`` None uses the Redis server's clock, so replicas on different hosts agree on time.
    A Redis failure raises StoreUnavailable.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "analytics:ratelimit:",
        clock: Clock | None = None,
        timeout_seconds: float = 1.0,
    ) -> None:
        import redis.asyncio as redis
        from redis.exceptions import RedisError

        self._redis = redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        self._script: Any = self._redis.register_script(_TAKE_TOKENS_LUA)
        self._failures: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
        self._prefix = prefix
        self._clock = clock

    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        now = "" if self._clock is None else str(self._clock())
        # repr: the shortest text that reads back as the same double in Lua.
        args = [repr(limit.per_second), limit.burst, now, limit.expiry_ms, wanted]
        try:
            granted, wait_ms = await self._script(keys=[self._prefix + key], args=args)
        except self._failures as exc:
            raise StoreUnavailable(f"the rate limit store (Redis) did not answer: {type(exc).__name__}") from exc
        return Decision(int(granted), int(wait_ms))

    async def close(self) -> None:
        await self._redis.aclose()


# Past this many leases, expired ones are dropped before another is added.
_MAX_LEASES = 10_000


@dataclass(slots=True)
class _Lease:
    tokens: int
    expires_ms: int


class LeasedTokenBuckets:
    """``shared`` buckets taken from a few tokens at a time: a key's requests spend the tokens this
    process already holds, and only an empty lease asks ``shared`` (a round trip to Redis) for more.

    A lease is at most ``lease_size(limit)`` tokens and is dropped unused after ``lease_ms``, so no
    request is ever admitted without a token of the shared bucket, and a key loses at most one
    lease's leftover per process and lease period.
    """

    def __init__(self, shared: TokenBuckets, clock: Clock = monotonic_ms, *, lease_ms: int = 1000) -> None:
        self._shared = shared
        self._clock = clock
        self._lease_ms = lease_ms
        self._leases: dict[str, _Lease] = {}

    @staticmethod
    def lease_size(limit: BucketLimit) -> int:
        """A fiftieth of a second's rate, at most a twentieth of the burst; one for small limits."""
        return max(1, min(limit.burst // 20, int(limit.per_second // 50)))

    async def take(self, key: str, limit: BucketLimit, wanted: int = 1) -> Decision:
        now = self._clock()
        lease = self._leases.get(key)
        if lease is not None and lease.expires_ms > now and lease.tokens > 0:
            given = min(wanted, lease.tokens)
            lease.tokens -= given
            return Decision(given, 0)
        decision = await self._shared.take(key, limit, max(wanted, self.lease_size(limit)))
        given = min(wanted, decision.granted)
        if decision.granted > given:
            self._keep(key, decision.granted - given, now)
        return Decision(given, decision.retry_after_ms)

    def _keep(self, key: str, tokens: int, now: int) -> None:
        lease = self._leases.get(key)
        if lease is not None and lease.expires_ms > now:
            # Concurrent requests that each found the lease empty: their leftovers add up.
            lease.tokens += tokens
            return
        if len(self._leases) >= _MAX_LEASES:
            for stale in [k for k, held in self._leases.items() if held.expires_ms <= now]:
                del self._leases[stale]
        self._leases[key] = _Lease(tokens, now + self._lease_ms)

    async def close(self) -> None:
        self._leases.clear()
        await self._shared.close()
