"""API-key authentication: ``Authorization: Bearer <key>``; keys are looked up by hash, briefly cached."""

from __future__ import annotations

import orjson

from core.access import Principal, Role
from core.errors import Unauthenticated
from storage.cache import Cache
from storage.metadata import MetadataStore, hash_key


class Authenticator:
    def __init__(self, metadata: MetadataStore, cache: Cache, *, cache_seconds: float) -> None:
        self._metadata = metadata
        self._cache = cache
        self._cache_seconds = cache_seconds

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <api key>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Authorization header must be 'Bearer <api key>'")
        digest = hash_key(token)
        cache_key = f"auth:{digest}"
        if self._cache_seconds > 0:
            cached = await self._cache.get(cache_key)
            if cached is not None:
                data = orjson.loads(cached)
                return Principal(key_id=data["id"], name=data["name"], role=Role(data["role"]))
        key = await self._metadata.find_api_key(token)
        if key is None:
            raise Unauthenticated("API key is not valid or has been revoked")
        if self._cache_seconds > 0:
            payload = orjson.dumps({"id": key.id, "name": key.name, "role": key.role.value})
            await self._cache.set(cache_key, payload, self._cache_seconds)
        return Principal(key_id=key.id, name=key.name, role=key.role)

    async def forget(self, key_hash: str) -> None:
        """Drop a revoked key from the cache so it stops working at once (in Redis: on every replica)."""
        await self._cache.delete(f"auth:{key_hash}")
