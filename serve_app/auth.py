"""Authentication: ``Authorization: Bearer <API key or JWT>`` becomes a Principal.

API keys (``ak_...``) are looked up by hash in PostgreSQL and the answer is cached briefly, never past
the key's expiry or the end of a rotated secret's grace period. A token of three dot-separated parts
is a JWT when JWTs are configured (serve_app/jwt_tokens.py); it is checked on every request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import orjson

from core.access import ContentScope, Principal, Role
from core.errors import Unauthenticated
from serve_app.jwt_tokens import JwtVerifier, looks_like_jwt
from storage.cache import Cache
from storage.metadata import ApiKey, hash_key

_HOW = "send 'Authorization: Bearer <api key or JWT>'"


class ApiKeyLookup(Protocol):
    """What authentication needs of the metadata store (storage/metadata.py MetadataStore)."""

    async def find_api_key(self, plain: str) -> ApiKey | None: ...


class Authenticator:
    def __init__(
        self, metadata: ApiKeyLookup, cache: Cache, *, cache_seconds: float, jwt: JwtVerifier | None = None
    ) -> None:
        self._metadata = metadata
        self._cache = cache
        self._cache_seconds = cache_seconds
        self._jwt = jwt

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated(f"missing Authorization header; {_HOW}")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(f"Authorization header must be 'Bearer <api key or JWT>'; {_HOW}")
        if self._jwt is not None and looks_like_jwt(token):
            return self._jwt.verify(token)
        return await self._api_key_principal(token)

    async def _api_key_principal(self, token: str) -> Principal:
        cache_key = f"auth:{hash_key(token)}"
        if self._cache_seconds > 0:
            cached = await self._cache.get(cache_key)
            if cached is not None:
                return _principal_from_cache(cached)
        key = await self._metadata.find_api_key(token)
        if key is None:
            hint = "; JWT bearer tokens are not enabled on this service" if looks_like_jwt(token) else ""
            raise Unauthenticated(f"API key is not valid or has been revoked{hint}")
        now = datetime.now(UTC)
        if key.expired(now):
            raise Unauthenticated("API key has expired")
        principal = Principal(key_id=key.id, name=key.name, role=key.role, scope=key.scope)
        seconds = self._cacheable_seconds(key, now)
        if seconds > 0:
            await self._cache.set(cache_key, _principal_to_cache(principal), seconds)
        return principal

    def _cacheable_seconds(self, key: ApiKey, now: datetime) -> float:
        """How long a lookup may be remembered: never past the key's expiry, nor past the end of a
        previous secret's grace period (the lookup may have been by that secret)."""
        seconds = self._cache_seconds
        for ends in (key.expires_at, key.previous_secret_valid_until):
            if ends is not None:
                seconds = min(seconds, (ends - now).total_seconds())
        return seconds

    async def forget(self, *key_hashes: str) -> None:
        """Drop the cached lookups of these secrets (a revoked key, a rotated-out secret), so they stop
        working at once (with Redis: on every replica)."""
        if key_hashes:
            await self._cache.delete(*(f"auth:{h}" for h in key_hashes))


def _principal_to_cache(principal: Principal) -> bytes:
    return orjson.dumps(
        {
            "id": principal.key_id,
            "name": principal.name,
            "role": principal.role.value,
            **principal.scope.to_dict(),
        }
    )


def _principal_from_cache(cached: bytes) -> Principal:
    data = orjson.loads(cached)
    return Principal(
        key_id=data["id"],
        name=data["name"],
        role=Role(data["role"]),
        scope=ContentScope.of(data.get("categories", ()), data.get("content_ids", ())),
    )
