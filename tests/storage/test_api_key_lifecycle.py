"""API key expiry, content scope and rotation against the real PostgreSQL (storage/metadata.py), and
the authentication cache (serve_app/auth.py) in front of it, in-process and in Redis: a cached lookup
never keeps an expired key or a rotated-out secret working."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.access import ContentScope, Role
from core.errors import Conflict, NotFound, Unauthenticated
from serve_app.auth import Authenticator
from storage.cache import Cache, InProcessCache, RedisCache
from storage.metadata import MetadataStore, hash_key

SCOPE = ContentScope.of(["news", "sport"], ["c1", "c2"])


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[MetadataStore]:
    metadata = await MetadataStore.connect(dsn)
    await metadata.migrate()
    await metadata.pool.execute("DELETE FROM api_keys; DELETE FROM api_key_retired_secrets")
    yield metadata
    await metadata.close()


@pytest.fixture(params=["in-process", "redis"])
async def cache(request: pytest.FixtureRequest, redis_url: str, unique: str) -> AsyncIterator[Cache]:
    made: Cache = InProcessCache() if request.param == "in-process" else RedisCache(redis_url, prefix=f"test:{unique}:")
    yield made
    await made.close()


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def refusal(auth: Authenticator, key: str) -> str:
    with pytest.raises(Unauthenticated) as exc:
        await auth.authenticate(f"Bearer {key}")
    return exc.value.message


# ---- expiry and scope ----------------------------------------------------------------------


async def test_expiry_and_scope_round_trip(store: MetadataStore) -> None:
    expires = soon(3600).replace(microsecond=0)
    key, plain = await store.create_api_key("scoped", Role.VIEWER, expires_at=expires, scope=SCOPE)
    assert (key.expires_at, key.scope) == (expires, SCOPE)
    found = await store.find_api_key(plain)
    assert found == key
    listed = (await store.list_api_keys())[0].to_dict()
    assert listed["expires_at"] == expires.isoformat() and listed["status"] == "active"
    assert listed["scope"] == {"categories": ["news", "sport"], "content_ids": ["c1", "c2"]}
    plain_key, _ = await store.create_api_key("everything", Role.VIEWER)
    assert plain_key.scope.unrestricted and plain_key.expires_at is None


async def test_the_principal_carries_the_key_scope(store: MetadataStore) -> None:
    _, plain = await store.create_api_key("scoped", Role.CONTENT_MANAGER, scope=SCOPE)
    auth = Authenticator(store, InProcessCache(), cache_seconds=60)
    first = await auth.authenticate(f"Bearer {plain}")
    cached = await auth.authenticate(f"Bearer {plain}")
    assert first.scope == cached.scope == SCOPE and cached.role is Role.CONTENT_MANAGER


async def test_an_expired_key_is_refused_saying_so(store: MetadataStore) -> None:
    key, plain = await store.create_api_key("old", Role.ANALYST, expires_at=soon(3600))
    auth = Authenticator(store, InProcessCache(), cache_seconds=0)
    assert (await auth.authenticate(f"Bearer {plain}")).key_id == key.id
    await store.pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id)
    assert await refusal(auth, plain) == "API key has expired"
    assert (await store.list_api_keys())[0].to_dict()["status"] == "expired"


async def test_an_expired_admin_key_does_not_count_as_an_admin(store: MetadataStore) -> None:
    key, _ = await store.create_api_key("admin", Role.ADMIN, expires_at=soon(3600))
    assert await store.has_active_admin()
    await store.pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id)
    assert not await store.has_active_admin()
    # At the next start a new admin key is made, so the operator is not locked out.
    assert await store.ensure_bootstrap_admin(None) is not None


# ---- rotation ----------------------------------------------------------------------------


async def test_rotation_with_grace_keeps_the_old_secret_until_the_grace_ends(store: MetadataStore) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE, scope=SCOPE)
    rotated, new, retired = await store.rotate_api_key(key.id, grace_seconds=3600)
    assert retired == [hash_key(old)]
    assert new != old and new.startswith("ak_") and rotated.key_prefix == new[:8]
    assert (rotated.id, rotated.role, rotated.scope) == (key.id, Role.SERVICE, SCOPE)
    assert rotated.rotated_at is not None and rotated.previous_secret_valid_until is not None
    assert rotated.to_dict()["previous_secret_in_grace"] is True
    auth = Authenticator(store, InProcessCache(), cache_seconds=0)
    assert (await auth.authenticate(f"Bearer {old}")).key_id == key.id
    assert (await auth.authenticate(f"Bearer {new}")).key_id == key.id
    # The grace period ends (moved to the past rather than waited for).
    await store.pool.execute(
        "UPDATE api_keys SET previous_key_valid_until = now() - interval '1 second' WHERE id = $1", key.id
    )
    assert await refusal(auth, old) == "API key is not valid or has been revoked"
    assert (await auth.authenticate(f"Bearer {new}")).key_id == key.id
    listed = (await store.list_api_keys())[0].to_dict()
    assert listed["previous_secret_in_grace"] is False and listed["previous_secret_valid_until"] is None


async def test_rotation_with_no_grace_stops_the_old_secret_at_once(store: MetadataStore) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE)
    rotated, new, _ = await store.rotate_api_key(key.id, grace_seconds=0)
    assert rotated.previous_secret_valid_until is None
    assert await store.find_api_key(old) is None
    assert (await store.find_api_key(new)).id == key.id


async def test_a_second_rotation_ends_the_first_grace_period(store: MetadataStore) -> None:
    key, first = await store.create_api_key("svc", Role.SERVICE)
    _, second, _ = await store.rotate_api_key(key.id, grace_seconds=3600)
    _, third, retired = await store.rotate_api_key(key.id, grace_seconds=3600)
    assert retired == [hash_key(second), hash_key(first)]
    assert await store.find_api_key(first) is None
    assert (await store.find_api_key(second)).id == (await store.find_api_key(third)).id == key.id


async def test_revoking_a_rotated_key_stops_both_secrets(store: MetadataStore) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE)
    _, new, _ = await store.rotate_api_key(key.id, grace_seconds=3600)
    _, hashes = await store.revoke_api_key(key.id)
    assert hashes == [hash_key(new), hash_key(old)]
    assert await store.find_api_key(old) is None and await store.find_api_key(new) is None


async def test_what_cannot_be_rotated(store: MetadataStore) -> None:
    with pytest.raises(NotFound, match="'key_missing' does not exist"):
        await store.rotate_api_key("key_missing", grace_seconds=0)
    revoked, _ = await store.create_api_key("gone", Role.VIEWER)
    await store.revoke_api_key(revoked.id)
    with pytest.raises(Conflict, match="is revoked"):
        await store.rotate_api_key(revoked.id, grace_seconds=0)
    expired, _ = await store.create_api_key("old", Role.VIEWER, expires_at=soon(3600))
    await store.pool.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", expired.id)
    with pytest.raises(Conflict, match="has expired"):
        await store.rotate_api_key(expired.id, grace_seconds=0)


async def test_a_rotated_away_bootstrap_key_is_not_made_again(store: MetadataStore) -> None:
    given = "ak_bootstrap_key_to_rotate_away"
    assert await store.ensure_bootstrap_admin(given) == given
    key = await store.find_api_key(given)
    await store.rotate_api_key(key.id, grace_seconds=0)
    # The next start, with the same ANALYTICS_BOOTSTRAP_ADMIN_KEY: the rotation sticks.
    assert await store.ensure_bootstrap_admin(given) is None
    assert await store.find_api_key(given) is None
    assert [k.id for k in await store.list_api_keys()] == [key.id]


# ---- the authentication cache --------------------------------------------------------------


async def test_the_cache_does_not_outlive_the_key_expiry(store: MetadataStore, cache: Cache) -> None:
    key, plain = await store.create_api_key("brief", Role.VIEWER, expires_at=soon(2))
    auth = Authenticator(store, cache, cache_seconds=3600)
    assert (await auth.authenticate(f"Bearer {plain}")).key_id == key.id
    assert await cache.get(f"auth:{hash_key(plain)}") is not None
    # Past the expiry, the cached lookup is gone with it, and the key is refused.
    await asyncio.sleep(2.1)
    assert await refusal(auth, plain) == "API key has expired"


async def test_rotation_clears_the_cache_and_no_grace_stops_the_old_secret(store: MetadataStore, cache: Cache) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE)
    auth = Authenticator(store, cache, cache_seconds=3600)
    await auth.authenticate(f"Bearer {old}")
    _, new, retired = await store.rotate_api_key(key.id, grace_seconds=0)
    await auth.forget(*retired)
    assert await refusal(auth, old) == "API key is not valid or has been revoked"
    assert (await auth.authenticate(f"Bearer {new}")).key_id == key.id


async def test_the_cache_does_not_outlive_a_grace_period(store: MetadataStore, cache: Cache) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE)
    auth = Authenticator(store, cache, cache_seconds=3600)
    await auth.authenticate(f"Bearer {old}")
    _, new, retired = await store.rotate_api_key(key.id, grace_seconds=2)
    await auth.forget(*retired)
    # During the grace period both secrets work (and are cached, but not past its end).
    assert (await auth.authenticate(f"Bearer {old}")).key_id == key.id
    assert (await auth.authenticate(f"Bearer {new}")).key_id == key.id
    await asyncio.sleep(2.1)
    assert await refusal(auth, old) == "API key is not valid or has been revoked"
    assert (await auth.authenticate(f"Bearer {new}")).key_id == key.id


async def test_revocation_clears_the_cache_of_both_secrets(store: MetadataStore, cache: Cache) -> None:
    key, old = await store.create_api_key("svc", Role.SERVICE)
    auth = Authenticator(store, cache, cache_seconds=3600)
    _, new, retired = await store.rotate_api_key(key.id, grace_seconds=3600)
    await auth.forget(*retired)
    await auth.authenticate(f"Bearer {old}")
    await auth.authenticate(f"Bearer {new}")
    _, hashes = await store.revoke_api_key(key.id)
    await auth.forget(*hashes)
    assert await refusal(auth, old) == await refusal(auth, new) == "API key is not valid or has been revoked"
