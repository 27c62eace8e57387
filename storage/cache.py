"""A small cache interface with Redis and in-process implementations, chosen by settings."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...
    async def delete(self, *keys: str) -> int: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class InProcessCache:
    """Per-process cache with expiry; for the embedded default and unit tests."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if key not in self._entries and len(self._entries) >= self._max_entries:
            now = time.monotonic()
            for stale in [k for k, (exp, _) in self._entries.items() if exp < now]:
                del self._entries[stale]
            if len(self._entries) >= self._max_entries:
                # Still full: drop the oldest insertion (dicts keep insertion order).
                self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + ttl_seconds, value)

    async def delete(self, *keys: str) -> int:
        return sum(self._entries.pop(k, None) is not None for k in keys)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    def __init__(self, url: str, *, prefix: str = "analytics:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        # The client is made without decode_responses, so values come back as bytes.
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._redis.set(self._prefix + key, value, px=max(1, int(ttl_seconds * 1000)))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._redis.delete(*(self._prefix + k for k in keys)))

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=5))
        except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def open_cache(redis_url: str | None, *, prefix: str = "analytics:") -> Cache:
    return RedisCache(redis_url, prefix=prefix) if redis_url else InProcessCache()
