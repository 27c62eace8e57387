"""A user's data in Redis, for erasure: every key of the service's prefix is looked at once.

Deleted: every cached analytics answer (their keys are digests of the question, so which ones speak
of the user cannot be told; the next request computes them afresh without the user), and every other
key whose name has the user id as one of its ``:``-separated parts or whose text value holds it as a
JSON string. The live snapshots are rewritten by the counter shards once they re-read ClickHouse, and
rate-limit buckets (hashes per API key) hold no user data.
"""

from __future__ import annotations

from typing import Any

import orjson

PREFIX = b"analytics:"
RESULT_PREFIX = b"analytics:result:"
_BATCH = 500


async def erase_from_redis(url: str, user_ids: list[str]) -> dict[str, int]:
    """Delete the keys above; returns how many keys were looked at and how many were deleted, of them
    cached answers."""
    import redis.asyncio as redis

    client: Any = redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    parts = {user_id.encode() for user_id in user_ids}
    quoted = [orjson.dumps(user_id) for user_id in user_ids]
    counts = {"keys_scanned": 0, "keys_deleted": 0, "cached_answers_deleted": 0}
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=PREFIX + b"*", count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                await _erase_batch(client, batch, parts, quoted, counts)
                batch = []
        if batch:
            await _erase_batch(client, batch, parts, quoted, counts)
    finally:
        await client.aclose()
    return counts


async def user_keys(url: str, user_ids: list[str]) -> list[str]:
    """The keys of the service's prefix that name the user or hold the id (what ``erase_from_redis``
    would delete besides the cached answers): none after an erasure."""
    import redis.asyncio as redis

    client: Any = redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
    parts = {user_id.encode() for user_id in user_ids}
    quoted = [orjson.dumps(user_id) for user_id in user_ids]
    found: list[str] = []
    try:
        keys = [key async for key in client.scan_iter(match=PREFIX + b"*", count=_BATCH)]
        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            values = await _values(client, batch)
            named = zip(batch, values, strict=True)
            found += [key.decode() for key, value in named if _names_user(key, value, parts, quoted)]
    finally:
        await client.aclose()
    return found


async def _erase_batch(
    client: Any, keys: list[bytes], parts: set[bytes], quoted: list[bytes], counts: dict[str, int]
) -> None:
    counts["keys_scanned"] += len(keys)
    values = await _values(client, keys)
    doomed = []
    for key, value in zip(keys, values, strict=True):
        if key.startswith(RESULT_PREFIX):
            doomed.append(key)
            counts["cached_answers_deleted"] += 1
        elif _names_user(key, value, parts, quoted):
            doomed.append(key)
    if doomed:
        counts["keys_deleted"] += int(await client.delete(*doomed))


async def _values(client: Any, keys: list[bytes]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    # A key of another type (a hash) answers WRONGTYPE: kept as that error, never a text value.
    return list(await pipe.execute(raise_on_error=False))


def _names_user(key: bytes, value: Any, parts: set[bytes], quoted: list[bytes]) -> bool:
    if parts & set(key.split(b":")):
        return True
    return isinstance(value, bytes) and any(text in value for text in quoted)
