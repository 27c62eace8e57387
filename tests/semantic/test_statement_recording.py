"""The service's statements on its stores, recorded: Redis commands through the recorded cache and
PostgreSQL statements through the metadata store's query logger, on the real servers of this machine.
Each statement is recorded once, with its fingerprint and never its values, counted for the request it
ran in; the cache's and the store's answers and errors are unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.access import Role
from semantic.recorded_cache import RecordedCache, recorded_cache
from semantic.self_telemetry import SelfTelemetry, SelfTelemetryMetrics, describe
from storage.cache import InProcessCache, RedisCache
from storage.metadata import MetadataStore
from storage.saved_queries import SavedQueryRepository


def _recorded(telemetry: SelfTelemetry) -> list[dict[str, Any]]:
    """The statements in the buffer as their events would say them."""
    out = []
    for entry in telemetry._buffer:
        if entry[0] == 1:
            _, _, database, source, duration_ms, rows, error = entry
            operation, fingerprint = describe(database, source)
            out.append(
                {
                    "database": database,
                    "operation": operation,
                    "fingerprint": fingerprint,
                    "rows": rows,
                    "error": error,
                    "duration_ms": duration_ms,
                }
            )
    return out


async def test_redis_commands_are_recorded_without_keys_or_values(redis_url: str, unique: str) -> None:
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())
    cache = RecordedCache(RedisCache(redis_url, prefix=f"test:{unique}:"), telemetry)
    token, statements = telemetry.begin_request()
    try:
        assert await cache.get("auth:secret-digest") is None
        await cache.set("auth:secret-digest", b"value-bytes", 30)
        assert await cache.get("auth:secret-digest") == b"value-bytes"
        assert await cache.delete("auth:secret-digest", "auth:other") == 1
        assert await cache.ping() is True
    finally:
        telemetry.end_request(token, statements, "/x", "GET", 200, 0.01, None)
        await cache.close()
    recorded = _recorded(telemetry)
    assert [(r["operation"], r["fingerprint"], r["rows"]) for r in recorded] == [
        ("get", "GET auth:?", 0),
        ("set", "SET auth:?", 1),
        ("get", "GET auth:?", 1),
        ("del", "DEL auth:?", 1),
        ("ping", "PING", None),
    ]
    assert {r["database"] for r in recorded} == {"redis"}
    assert statements.count == 5 and statements.time_ms == pytest.approx(sum(r["duration_ms"] for r in recorded))
    assert "secret" not in repr(recorded) and "value-bytes" not in repr(recorded)


async def test_a_failing_command_is_recorded_and_raised(unique: str) -> None:
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())
    # Nothing listens on port 1.
    cache = RecordedCache(RedisCache("redis://127.0.0.1:1/0", prefix=f"test:{unique}:"), telemetry)
    with pytest.raises(Exception) as raised:
        await cache.get("auth:x")
    await cache.close()
    (recorded,) = _recorded(telemetry)
    assert recorded["fingerprint"] == "GET auth:?" and recorded["error"] == type(raised.value).__name__


def test_only_redis_is_recorded_and_only_when_recording() -> None:
    telemetry = SelfTelemetry(flush_seconds=60)
    in_process = InProcessCache()
    assert recorded_cache(in_process, telemetry, redis=False) is in_process
    assert recorded_cache(in_process, None, redis=True) is in_process
    assert isinstance(recorded_cache(in_process, telemetry, redis=True), RecordedCache)


@pytest.fixture
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


async def test_postgres_statements_are_recorded_once_each(dsn: str) -> None:
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())
    store = await MetadataStore.connect(dsn, query_logger=telemetry.postgres_statement)
    try:
        await store.migrate()
        _, plain = await store.create_api_key("recorded", Role.ANALYST)
        telemetry._buffer.clear()
        token, statements = telemetry.begin_request()
        found = await store.find_api_key(plain)
        assert found is not None and found.name == "recorded"
        assert await store.find_api_key("ak_not-a-key") is None
        with pytest.raises(Exception, match="nope"):
            await store.pool.execute("SELECT * FROM nope WHERE id = $1", "key_1")
        assert (await SavedQueryRepository(store.pool).get("no-such-id")) is None
        telemetry.end_request(token, statements, "/x", "GET", 200, 0.01, None)
        # The logger hears a statement once the loop runs its callbacks.
        await store.ping()
        recorded = _recorded(telemetry)
    finally:
        await store.close()
    lookup = (
        "SELECT id, name, role, key_prefix, created_at, revoked_at, expires_at, scope_categories, "
        "scope_content_ids, rotated_at, CASE WHEN previous_key_valid_until > now() THEN previous_key_valid_until "
        "END AS previous_secret_valid_until FROM api_keys WHERE revoked_at IS NULL "
        "AND (key_hash = ? OR (previous_key_hash = ? AND previous_key_valid_until > now()))"
    )
    assert [(r["operation"], r["fingerprint"], r["error"]) for r in recorded[:4]] == [
        ("select", lookup, None),
        ("select", lookup, None),
        ("select", "SELECT * FROM nope WHERE id = ?", "UndefinedTableError"),
        ("select", recorded[3]["fingerprint"], None),
    ]
    assert recorded[3]["fingerprint"].startswith("SELECT id, name, description") and "no-such-id" not in repr(recorded)
    # The pool's reset of a connection it takes back is not a statement of the store's.
    assert not any("RESET ALL" in r["fingerprint"] for r in recorded)
    assert {r["database"] for r in recorded} == {"postgres"} and statements.count == 4
    assert plain not in repr(recorded)
