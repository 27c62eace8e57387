"""storage/cache.py: one suite for every Cache implementation, plus what is particular to each."""

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from storage.cache import Cache, InProcessCache, RedisCache, open_cache


@pytest.fixture(params=["in_process", "redis"])
async def cache(request: pytest.FixtureRequest, redis_url: str, unique: str) -> AsyncIterator[Cache]:
    if request.param == "in_process":
        made: Cache = InProcessCache()
        yield made
        await made.close()
        return
    made = RedisCache(redis_url, prefix=f"test:{unique}:")
    yield made
    await made.close()
    raw = redis_asyncio.from_url(redis_url)
    try:
        leftovers = [key async for key in raw.scan_iter(match=f"test:{unique}:*")]
        if leftovers:
            await raw.delete(*leftovers)
    finally:
        await raw.aclose()


async def test_get_missing(cache):
    assert await cache.get("missing") is None


async def test_set_then_get(cache):
    await cache.set("k", b"value", 60)
    assert await cache.get("k") == b"value"
    assert await cache.get("K") is None


async def test_set_overwrites(cache):
    await cache.set("k", b"one", 60)
    await cache.set("k", b"two", 60)
    assert await cache.get("k") == b"two"


async def test_binary_values_round_trip(cache):
    value = bytes(range(256)) + b"\x00tail"
    await cache.set("bin", value, 60)
    got = await cache.get("bin")
    assert type(got) is bytes
    assert got == value


async def test_entries_expire(cache):
    await cache.set("short", b"s", 0.2)
    await cache.set("long", b"l", 60)
    assert await cache.get("short") == b"s"
    await asyncio.sleep(0.3)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"l"


async def test_set_renews_the_ttl(cache):
    await cache.set("k", b"a", 0.2)
    await cache.set("k", b"b", 60)
    await asyncio.sleep(0.3)
    assert await cache.get("k") == b"b"


async def test_delete_counts_removed_keys(cache):
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.delete("a", "b", "missing") == 2
    assert await cache.get("a") is None
    assert await cache.get("b") is None
    assert await cache.delete("a") == 0
    assert await cache.delete() == 0


async def test_delete_leaves_other_keys(cache):
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.delete("a") == 1
    assert await cache.get("b") == b"2"


async def test_ping(cache):
    assert await cache.ping() is True


# --- InProcessCache -----------------------------------------------------------------------


async def test_in_process_evicts_oldest_when_full():
    cache = InProcessCache(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), 60)
    await cache.set("d", b"d", 60)
    assert [await cache.get(k) for k in ("a", "b", "c", "d")] == [None, b"b", b"c", b"d"]
    await cache.set("e", b"e", 60)
    assert [await cache.get(k) for k in ("b", "c", "d", "e")] == [None, b"c", b"d", b"e"]
    assert len(cache._entries) == 3


async def test_in_process_evicts_expired_entries_first():
    cache = InProcessCache(max_entries=3)
    await cache.set("a", b"a", 60)
    await cache.set("stale", b"s", 0.01)
    await cache.set("c", b"c", 60)
    await asyncio.sleep(0.02)
    await cache.set("d", b"d", 60)
    # The expired entry made room; the oldest live one stays.
    assert [await cache.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]
    assert "stale" not in cache._entries


async def test_in_process_overwrite_when_full_keeps_other_entries():
    cache = InProcessCache(max_entries=2)
    await cache.set("a", b"a", 60)
    await cache.set("b", b"b", 60)
    await cache.set("b", b"b2", 60)
    assert [await cache.get("a"), await cache.get("b")] == [b"a", b"b2"]


async def test_in_process_close_clears():
    cache = InProcessCache()
    await cache.set("k", b"v", 60)
    await cache.close()
    assert await cache.get("k") is None


# --- RedisCache ---------------------------------------------------------------------------


async def test_redis_keys_carry_the_prefix(redis_url, unique):
    cache = RedisCache(redis_url, prefix=f"test:{unique}:")
    raw = redis_asyncio.from_url(redis_url)
    try:
        await cache.set("k", b"v", 60)
        assert await raw.get(f"test:{unique}:k") == b"v"
        assert await raw.get("k") is None
        ttl_ms = await raw.pttl(f"test:{unique}:k")
        assert 55_000 < ttl_ms <= 60_000
        # Another prefix is another namespace.
        other = RedisCache(redis_url, prefix=f"test:{unique}:other:")
        assert await other.get("k") is None
        assert await other.delete("k") == 0
        await other.close()
        assert await cache.get("k") == b"v"
    finally:
        await raw.delete(f"test:{unique}:k")
        await raw.aclose()
        await cache.close()


async def test_redis_tiny_ttl_is_at_least_one_millisecond(redis_url, unique):
    cache = RedisCache(redis_url, prefix=f"test:{unique}:")
    try:
        # A ttl that rounds to 0 ms would be an error in Redis.
        await cache.set("tiny", b"t", 0.0001)
        await asyncio.sleep(0.01)
        assert await cache.get("tiny") is None
    finally:
        await cache.close()


async def test_redis_ping_false_when_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cache = RedisCache(f"redis://127.0.0.1:{port}/0")
    try:
        assert await cache.ping() is False
    finally:
        await cache.close()


# --- open_cache ---------------------------------------------------------------------------


async def test_open_cache_picks_the_class_by_url(redis_url):
    assert type(open_cache(None)) is InProcessCache
    assert type(open_cache("")) is InProcessCache
    redis_cache = open_cache(redis_url, prefix="test:open:")
    try:
        assert type(redis_cache) is RedisCache
        assert redis_cache._prefix == "test:open:"
        assert await redis_cache.ping() is True
    finally:
        await redis_cache.close()
