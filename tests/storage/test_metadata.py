"""storage/metadata.py against the real PostgreSQL: one fresh database per test."""

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

import storage
from core.access import Role
from core.errors import NotFound, StoreUnavailable
from storage.metadata import ApiKey, MetadataStore, hash_key, new_key

# Every migration file, in order (each feature adds its own).
MIGRATIONS = sorted(p.name for p in (Path(storage.__file__).parent / "migrations" / "postgres").glob("*.sql"))


@pytest.fixture
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[MetadataStore]:
    metadata = await MetadataStore.connect(dsn)
    await metadata.migrate()
    yield metadata
    await metadata.close()


def test_hash_key_is_sha256_hex():
    assert hash_key("ak_example") == hashlib.sha256(b"ak_example").hexdigest()


def test_new_key_format():
    keys = {new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(k.startswith("ak_") and len(k) == 3 + 43 for k in keys)


# --- migrations ---------------------------------------------------------------------------


async def test_migrate_applies_once(dsn):
    metadata = await MetadataStore.connect(dsn)
    try:
        assert MIGRATIONS[:3] == ["001_api_keys.sql", "002_saved_queries.sql", "003_api_key_lifecycle.sql"]
        assert await metadata.migrate() == MIGRATIONS
        assert await metadata.migrate() == []
        rows = await metadata.pool.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [tuple(r) for r in rows] == [(int(name[:3]), name) for name in MIGRATIONS]
        tables = await metadata.pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert {"api_keys", "api_key_retired_secrets", "audit_log", "saved_queries", "schema_migrations"} <= {
            r["tablename"] for r in tables
        }
    finally:
        await metadata.close()


async def test_concurrent_migrations_apply_once(dsn):
    first, second = await MetadataStore.connect(dsn), await MetadataStore.connect(dsn)
    try:
        results = await asyncio.gather(first.migrate(), second.migrate())
        assert sorted(results) == [[], MIGRATIONS]
    finally:
        await first.close()
        await second.close()


async def test_connect_gives_up_with_store_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port: the readiness wait retries, then gives up.
    with pytest.raises(StoreUnavailable, match="PostgreSQL is not reachable"):
        await MetadataStore.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", wait_seconds=0.3)


# --- API keys -----------------------------------------------------------------------------


async def test_create_and_find_api_key(store):
    before = datetime.now(UTC)
    key, plain = await store.create_api_key("ingest bot", Role.SERVICE)
    assert plain.startswith("ak_")
    assert key.name == "ingest bot"
    assert key.role is Role.SERVICE
    assert key.key_prefix == plain[:8]
    assert key.id.startswith("key_") and len(key.id) == 4 + 16
    assert key.revoked_at is None
    assert key.created_at.tzinfo is not None
    assert abs((key.created_at - before).total_seconds()) < 60

    assert await store.find_api_key(plain) == key
    assert await store.find_api_key(plain + "x") is None
    # Only the hash is stored.
    stored = await store.pool.fetchrow("SELECT key_hash FROM api_keys WHERE id = $1", key.id)
    assert stored["key_hash"] == hash_key(plain)
    assert await store.pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = $1", plain) == 0


async def test_create_api_key_with_given_plain(store):
    key, plain = await store.create_api_key("fixed", Role.ANALYST, plain="ak_given_123456")
    assert plain == "ak_given_123456"
    assert key.key_prefix == "ak_given"
    assert (await store.find_api_key("ak_given_123456")).id == key.id


async def test_same_plain_key_twice_is_refused(store):
    await store.create_api_key("one", Role.VIEWER, plain="ak_same")
    with pytest.raises(asyncpg.UniqueViolationError):
        await store.create_api_key("two", Role.VIEWER, plain="ak_same")


async def test_list_api_keys_in_creation_order(store):
    assert await store.list_api_keys() == []
    made = [await store.create_api_key(f"k{n}", role) for n, role in enumerate([Role.ADMIN, Role.VIEWER, Role.SERVICE])]
    listed = await store.list_api_keys()
    assert [k.id for k in listed] == [k.id for k, _ in made]
    assert [(k.name, k.role) for k in listed] == [("k0", Role.ADMIN), ("k1", Role.VIEWER), ("k2", Role.SERVICE)]


async def test_revoke_api_key(store):
    key, plain = await store.create_api_key("temp", Role.VIEWER)
    other, other_plain = await store.create_api_key("keep", Role.VIEWER)

    revoked, key_hashes = await store.revoke_api_key(key.id)
    assert key_hashes == [hash_key(plain)]
    assert revoked.id == key.id and revoked.name == "temp"
    assert revoked.revoked_at is not None
    assert await store.find_api_key(plain) is None
    assert await store.find_api_key(other_plain) == other

    # Listed still, with the revocation time; revoking again keeps the first time.
    listed = {k.id: k for k in await store.list_api_keys()}
    assert listed[key.id].revoked_at == revoked.revoked_at
    assert listed[other.id].revoked_at is None
    again, again_hashes = await store.revoke_api_key(key.id)
    assert (again.revoked_at, again_hashes) == (revoked.revoked_at, key_hashes)


async def test_revoke_unknown_key_is_not_found(store):
    with pytest.raises(NotFound) as exc:
        await store.revoke_api_key("key_missing")
    assert exc.value.message == "API key 'key_missing' does not exist"


def test_api_key_to_dict():
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    key = ApiKey(id="key_1", name="n", role=Role.CONTENT_MANAGER, key_prefix="ak_abcde", created_at=created)
    assert key.to_dict() == {
        "id": "key_1",
        "name": "n",
        "role": "content_manager",
        "key_prefix": "ak_abcde",
        "status": "active",
        "created_at": "2026-01-02T03:04:05+00:00",
        "expires_at": None,
        "revoked_at": None,
        "rotated_at": None,
        "previous_secret_in_grace": False,
        "previous_secret_valid_until": None,
        "scope": {"categories": [], "content_ids": []},
    }
    revoked = ApiKey(id="key_1", name="n", role=Role.ADMIN, key_prefix="p", created_at=created, revoked_at=created)
    assert revoked.to_dict()["revoked_at"] == "2026-01-02T03:04:05+00:00"
    assert revoked.to_dict()["status"] == "revoked"


# --- bootstrap admin ----------------------------------------------------------------------


async def test_bootstrap_admin_without_a_given_key(store):
    plain = await store.ensure_bootstrap_admin(None)
    assert plain is not None and plain.startswith("ak_")
    key = await store.find_api_key(plain)
    assert (key.name, key.role) == ("bootstrap admin", Role.ADMIN)
    assert await store.ensure_bootstrap_admin(None) is None
    assert len(await store.list_api_keys()) == 1


async def test_bootstrap_admin_not_made_when_an_admin_exists(store):
    await store.create_api_key("existing", Role.ADMIN)
    assert await store.ensure_bootstrap_admin(None) is None
    assert [k.name for k in await store.list_api_keys()] == ["existing"]


async def test_bootstrap_admin_made_when_only_a_revoked_admin_exists(store):
    old, _ = await store.create_api_key("old admin", Role.ADMIN)
    await store.revoke_api_key(old.id)
    await store.create_api_key("viewer", Role.VIEWER)
    plain = await store.ensure_bootstrap_admin(None)
    assert (await store.find_api_key(plain)).role is Role.ADMIN


async def test_bootstrap_admin_with_a_given_key(store):
    given = "ak_bootstrap_given_key"
    assert await store.ensure_bootstrap_admin(given) == given
    key = await store.find_api_key(given)
    assert (key.name, key.role, key.key_prefix) == ("bootstrap admin", Role.ADMIN, "ak_boots")
    assert await store.ensure_bootstrap_admin(given) is None
    assert [k.id for k in await store.list_api_keys()] == [key.id]
    # Lock released: another call right after does not block.
    assert await asyncio.wait_for(store.ensure_bootstrap_admin(None), timeout=5) is None


async def test_bootstrap_with_a_revoked_given_key_does_not_crash(store):
    given = "ak_bootstrap_then_revoked"
    await store.ensure_bootstrap_admin(given)
    key = await store.find_api_key(given)
    await store.revoke_api_key(key.id)
    # The next service start runs this again with the same configured key: no crash, and the
    # revocation sticks (the key is not brought back).
    assert await store.ensure_bootstrap_admin(given) is None
    assert await store.find_api_key(given) is None


async def test_bootstrap_with_a_single_connection_pool(dsn, store):
    single = await MetadataStore.connect(dsn, min_size=1, max_size=1)
    try:
        assert await asyncio.wait_for(single.ensure_bootstrap_admin(None), timeout=1) is not None
    finally:
        await single.close()


# --- audit and ping -----------------------------------------------------------------------


async def test_audit_round_trip(store):
    before = datetime.now(UTC)
    await store.audit("key.create", actor_key_id="key_admin", target="key_1", details={"role": "viewer", "n": [1, 2]})
    await store.audit("key.revoke", actor_key_id="key_admin", target="key_1")
    await store.audit("bootstrap", actor_key_id=None)

    entries = await store.audit_entries()
    assert [{k: v for k, v in e.items() if k != "at"} for e in entries] == [
        {"actor_key_id": None, "action": "bootstrap", "target": None, "details": {}},
        {"actor_key_id": "key_admin", "action": "key.revoke", "target": "key_1", "details": {}},
        {
            "actor_key_id": "key_admin",
            "action": "key.create",
            "target": "key_1",
            "details": {"role": "viewer", "n": [1, 2]},
        },
    ]
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert all(t.tzinfo is not None and abs((t - before).total_seconds()) < 60 for t in times)

    assert [e["action"] for e in await store.audit_entries(limit=2)] == ["bootstrap", "key.revoke"]


async def test_audit_entries_empty(store):
    assert await store.audit_entries() == []


async def test_ping(dsn):
    metadata = await MetadataStore.connect(dsn)
    assert await metadata.ping() is True
    await metadata.close()
    assert await metadata.ping() is False
