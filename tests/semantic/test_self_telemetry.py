"""The recorder of the service's own telemetry: what a request and a statement become once flushed
through the real ingestion service, the bounded buffer, failures kept away from the caller, the flush's
own statements left out, and the flush loop."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from core.settings import Settings
from semantic.ingestion import IngestService
from semantic.self_telemetry import (
    FLUSH_CHUNK,
    INGEST_ROUTE,
    Described,
    SelfTelemetry,
    SelfTelemetryMetrics,
)
from storage.events import EventColumns, WriteReceipt


class CapturingStore:
    """The write side of the EventStore interface, keeping each written row as a dict."""

    def __init__(self, *, fail: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.writes = 0
        self.fail = fail

    async def write(self, rows: EventColumns) -> WriteReceipt:
        self.writes += 1
        if self.fail:
            raise ConnectionError("the store is down")
        n = len(rows["id"])
        for i in range(n):
            row = {name: values[i] if isinstance(values, list) else values for name, values in rows.items()}
            row["properties"] = orjson.loads(row["properties"])
            self.rows.append(row)
        return WriteReceipt(inserted=n)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["event_type"] == event_type]


def _recorder(**options: Any) -> tuple[SelfTelemetry, CapturingStore, IngestService]:
    store = CapturingStore(fail=options.pop("fail", False))
    ingest = IngestService(store, Settings(**options.pop("settings", {})))  # type: ignore[arg-type]
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics(), **options)
    telemetry.start(ingest)
    return telemetry, store, ingest


def _count(telemetry: SelfTelemetry, name: str, **labels: str) -> float:
    return telemetry.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_request_and_its_statements_become_events() -> None:
    telemetry, store, _ = _recorder()
    token, statements = telemetry.begin_request()
    telemetry.statement("clickhouse", "SELECT count() FROM events WHERE id = {id:String} LIMIT 5", 0.0123, rows=1)
    telemetry.statement("postgres", "SELECT id FROM api_keys WHERE key_hash = $1", 0.0021)
    telemetry.statement("redis", ("GET", "auth:0f3a9b"), 0.0004, rows=0, error="TimeoutError")
    telemetry.end_request(token, statements, "/api/v1/analytics/content/{content_id}", "GET", 200, 0.0456, True)
    # A statement outside any request is recorded, and counts for no request.
    telemetry.statement("clickhouse", Described("select", "SELECT ?"), 0.001)
    token, statements = telemetry.begin_request()
    telemetry.end_request(token, statements, "/graphql", "POST", 503, 0.002, None)

    assert await telemetry.flush() == 6
    requests = store.of_type("api_request")
    assert [r["properties"] for r in requests] == [
        {
            "service": "analytics",
            "endpoint": "/api/v1/analytics/content/{content_id}",
            "method": "GET",
            "status": 200,
            "duration_ms": 45.6,
            "db_query_count": 3,
            "db_time_ms": round(12.3 + 2.1 + 0.4, 3),
            "cache_hit": True,
        },
        {
            "service": "analytics",
            "endpoint": "/graphql",
            "method": "POST",
            "status": 503,
            "duration_ms": 2.0,
            "db_query_count": 0,
            "db_time_ms": 0.0,
        },
    ]
    assert {(r["event_category"], r["resource_type"], r["resource_id"]) for r in requests} == {
        ("system", "service", "analytics")
    }
    statements_stored = store.of_type("database_query")
    assert [r["properties"] for r in statements_stored] == [
        {
            "service": "analytics",
            "database": "clickhouse",
            "operation": "select",
            "fingerprint": "SELECT count() FROM events WHERE id = ? LIMIT ?",
            "duration_ms": 12.3,
            "rows": 1,
        },
        {
            "service": "analytics",
            "database": "postgres",
            "operation": "select",
            "fingerprint": "SELECT id FROM api_keys WHERE key_hash = ?",
            "duration_ms": 2.1,
        },
        {
            "service": "analytics",
            "database": "redis",
            "operation": "get",
            "fingerprint": "GET auth:?",
            "duration_ms": 0.4,
            "rows": 0,
            "error": "TimeoutError",
        },
        {
            "service": "analytics",
            "database": "clickhouse",
            "operation": "select",
            "fingerprint": "SELECT ?",
            "duration_ms": 1.0,
        },
    ]
    assert [r["resource_id"] for r in statements_stored] == ["clickhouse", "postgres", "redis", "clickhouse"]
    assert "0f3a9b" not in orjson.dumps(store.rows).decode()
    assert _count(telemetry, "analytics_self_telemetry_events_stored_total", event_type="api_request") == 2
    assert _count(telemetry, "analytics_self_telemetry_events_stored_total", event_type="database_query") == 4
    # Flushed: nothing is stored twice.
    assert await telemetry.flush() == 0 and store.writes == 1
    await telemetry.close()


async def test_the_flush_goes_through_the_ingestion_service_under_its_own_route() -> None:
    telemetry, store, ingest = _recorder()
    for i in range(FLUSH_CHUNK + 5):
        telemetry.statement("redis", ("GET", f"auth:{i}"), 0.0001)
    assert await telemetry.flush() == FLUSH_CHUNK + 5
    # A large backlog goes in more than one call, each a batch of the ingestion service.
    assert store.writes == 2 and len(store.rows) == FLUSH_CHUNK + 5
    samples = ingest.metrics.registry.get_sample_value(
        "analytics_ingest_request_seconds_count", {"route": INGEST_ROUTE}
    )
    assert samples == 2
    assert len({r["id"] for r in store.rows}) == FLUSH_CHUNK + 5
    await telemetry.close()


async def test_timed_passes_answers_and_errors_through_and_records_both() -> None:
    telemetry, store, _ = _recorder()

    async def answer() -> list[int]:
        await asyncio.sleep(0.01)
        return [1, 2, 3]

    async def failure() -> None:
        raise LookupError("no such key")

    token, statements = telemetry.begin_request()
    assert await telemetry.timed("clickhouse", "SELECT 1", answer(), len) == [1, 2, 3]
    with pytest.raises(LookupError, match="no such key"):
        await telemetry.timed("redis", ("GET", "auth:x"), failure())
    # A row count that cannot be read leaves the count out; the answer stands.
    assert await telemetry.timed("clickhouse", "SELECT 2", answer(), lambda _: 1 // 0) == [1, 2, 3]
    telemetry.end_request(token, statements, "/x", "GET", 200, 0.05, None)
    assert statements.count == 3 and statements.time_ms >= 20
    await telemetry.flush()
    recorded = [r["properties"] for r in store.of_type("database_query")]
    assert [(p["fingerprint"], p.get("rows"), p.get("error")) for p in recorded] == [
        ("SELECT ?", 3, None),
        ("GET auth:?", None, "LookupError"),
        ("SELECT ?", None, None),
    ]
    assert recorded[0]["duration_ms"] >= 10
    await telemetry.close()


async def test_a_full_buffer_drops_and_counts_never_waits() -> None:
    telemetry, store, _ = _recorder(capacity=3)
    for i in range(5):
        telemetry.statement("redis", ("GET", f"auth:{i}"), 0.0001)
    token, statements = telemetry.begin_request()
    telemetry.end_request(token, statements, "/healthz", "GET", 200, 0.001, None)
    assert telemetry.buffered == 3
    assert _count(telemetry, "analytics_self_telemetry_events_dropped_total", reason="buffer_full") == 3
    assert await telemetry.flush() == 3
    # Room again once flushed.
    telemetry.statement("redis", ("GET", "auth:9"), 0.0001)
    assert telemetry.buffered == 1
    await telemetry.close()
    assert len(store.rows) == 4


async def test_a_store_failure_is_counted_and_never_raised() -> None:
    telemetry, store, _ = _recorder(fail=True)
    for _ in range(4):
        telemetry.statement("postgres", "SELECT 1", 0.001)
    assert await telemetry.flush() == 0
    assert _count(telemetry, "analytics_self_telemetry_events_dropped_total", reason="flush_failed") == 4
    assert telemetry.buffered == 0
    # The store is back: later entries are stored; the failed batch is not retried.
    store.fail = False
    telemetry.statement("postgres", "SELECT 1", 0.001)
    assert await telemetry.flush() == 1 and len(store.rows) == 1
    await telemetry.close()


async def test_events_the_ingestion_service_refuses_are_counted() -> None:
    telemetry, store, _ = _recorder(settings={"max_event_bytes": 512})
    token, statements = telemetry.begin_request()
    telemetry.end_request(token, statements, "/" + "x" * 600, "GET", 404, 0.001, None)
    token, statements = telemetry.begin_request()
    telemetry.end_request(token, statements, "/healthz", "GET", 200, 0.001, None)
    assert await telemetry.flush() == 1
    assert _count(telemetry, "analytics_self_telemetry_events_dropped_total", reason="invalid") == 1
    assert [r["properties"]["endpoint"] for r in store.rows] == ["/healthz"]
    await telemetry.close()


async def test_the_flush_records_none_of_its_own_statements() -> None:
    store = CapturingStore()
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())

    class RecordingIngest:
        """An ingestion service whose store runs a recorded statement per batch."""

        def __init__(self) -> None:
            self.inner = IngestService(store, Settings())  # type: ignore[arg-type]

        async def ingest_batch(self, raw_events: list[Any], route: str = "batch") -> Any:
            await telemetry.timed("clickhouse", "INSERT INTO events FORMAT Arrow", asyncio.sleep(0))
            telemetry.statement("postgres", "SELECT 1", 0.001)
            return await self.inner.ingest_batch(raw_events, route)

    telemetry.start(RecordingIngest())
    telemetry.statement("redis", ("PING", None), 0.0001)
    assert await telemetry.flush() == 1
    assert telemetry.buffered == 0 and await telemetry.flush() == 0
    assert [r["properties"]["fingerprint"] for r in store.rows] == ["PING"]
    # Outside the flush, the same statement is recorded.
    telemetry.statement("postgres", "SELECT 1", 0.001)
    assert telemetry.buffered == 1
    await telemetry.close()


async def test_the_loop_flushes_on_its_interval_and_close_flushes_the_rest() -> None:
    store = CapturingStore()
    telemetry = SelfTelemetry(flush_seconds=0.05, metrics=SelfTelemetryMetrics())
    telemetry.start(IngestService(store, Settings()))  # type: ignore[arg-type]
    telemetry.statement("redis", ("GET", "auth:1"), 0.0001)
    for _ in range(100):
        if store.rows:
            break
        await asyncio.sleep(0.01)
    assert len(store.rows) == 1
    telemetry.statement("redis", ("GET", "auth:2"), 0.0001)
    await telemetry.close()
    assert len(store.rows) == 2
    # Closed: later entries are ignored, not counted as dropped.
    telemetry.statement("redis", ("GET", "auth:3"), 0.0001)
    assert telemetry.buffered == 0
    assert _count(telemetry, "analytics_self_telemetry_events_dropped_total", reason="buffer_full") == 0
