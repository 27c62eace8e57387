"""The cache interface (storage/cache.py) with each Redis command recorded as one of the service's
statements (semantic/self_telemetry.py): the command and the key's namespace, never the key or value."""

from __future__ import annotations

from semantic.self_telemetry import REDIS, SelfTelemetry
from storage.cache import Cache


def _found(value: bytes | None) -> int:
    return 0 if value is None else 1


def _one(_: object) -> int:
    return 1


def _deleted(count: int) -> int:
    return count


class RecordedCache:
    """A ``Cache`` over Redis whose commands are recorded; answers and errors pass through unchanged."""

    def __init__(self, inner: Cache, telemetry: SelfTelemetry) -> None:
        self._inner = inner
        self._telemetry = telemetry

    async def get(self, key: str) -> bytes | None:
        return await self._telemetry.timed(REDIS, ("GET", key), self._inner.get(key), _found)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._telemetry.timed(REDIS, ("SET", key), self._inner.set(key, value, ttl_seconds), _one)

    async def delete(self, *keys: str) -> int:
        return await self._telemetry.timed(
            REDIS, ("DEL", keys[0] if keys else None), self._inner.delete(*keys), _deleted
        )

    async def ping(self) -> bool:
        return await self._telemetry.timed(REDIS, ("PING", None), self._inner.ping())

    async def close(self) -> None:
        await self._inner.close()


def recorded_cache(cache: Cache, telemetry: SelfTelemetry | None, *, redis: bool) -> Cache:
    """``cache`` with its commands recorded when it is Redis and the service records its telemetry."""
    if telemetry is None or not redis:
        return cache
    return RecordedCache(cache, telemetry)
