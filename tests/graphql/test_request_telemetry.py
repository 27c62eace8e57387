"""The service's own requests as api_request events (serve_app/request_telemetry.py) and the replica's
event store statements as database_query events (serve_app/recorded_event_store.py), through the REST
app over the in-process fakes: route templates (never raw paths), statuses as answered, the statements
each request ran, the cache's hit or miss; no recorder, no recording; a recorder that fails, the same
answers."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.access import Role
from core.settings import Settings
from semantic.self_telemetry import SelfTelemetry, SelfTelemetryMetrics, describe
from serve_app.factory import create_app
from serve_app.recorded_event_store import RecordedEventStore, event_store
from serve_app.request_telemetry import self_telemetry
from storage.events import EventFilter
from tests.graphql.fakes import ROLE_KEYS, FakeServices, MemoryEventStore


class FakeActor:
    """Stands for the event store actor: each method answers from a MemoryEventStore."""

    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        return SimpleNamespace(remote=lambda *args: method(*args))


def _client(services: FakeServices) -> TestClient:
    app = create_app(Settings(environment="test"))
    app.state.services = services
    headers = {"Authorization": f"Bearer {ROLE_KEYS[Role.ADMIN]}"}
    return TestClient(app, headers=headers, raise_server_exceptions=False)


def _recorded_services() -> tuple[FakeServices, SelfTelemetry, MemoryEventStore]:
    services = FakeServices.build()
    memory = services.events
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())
    services.events = RecordedEventStore(FakeActor(memory), telemetry)  # type: ignore[assignment,arg-type]
    services.telemetry = telemetry  # type: ignore[attr-defined]
    return services, telemetry, memory


def _flush(telemetry: SelfTelemetry, services: FakeServices) -> None:
    async def flush() -> None:
        telemetry.start(services.ingest)
        await telemetry.close()

    asyncio.run(flush())


def _of_type(memory: MemoryEventStore, event_type: str) -> list[dict[str, Any]]:
    rows = [r for r in memory.rows.values() if r["event_type"] == event_type]
    return sorted(rows, key=lambda r: r["timestamp"])


def test_requests_are_recorded_by_route_template_with_their_statements() -> None:
    services, telemetry, memory = _recorded_services()
    client = _client(services)
    answers = [
        client.post("/api/v1/analytics/events", json={"id": "known-1", "event_type": "content_view"}),
        client.get("/api/v1/analytics/events/known-1"),
        client.get("/api/v1/analytics/events/missing-7"),
        client.get("/api/v1/analytics/events", params={"event_type": "content_view", "limit": 5}),
        client.get("/healthz"),
        client.get("/nope/12345"),
        client.delete("/healthz"),
        client.post("/graphql", json={"query": "{ __typename }"}),
        client.get("/api/v1/analytics/users"),
        client.get("/api/v1/analytics/users"),
        # The fakes run no SQL: the search analytics fail, an unexpected error.
        client.get("/api/v1/analytics/search/overview"),
        TestClient(client.app, raise_server_exceptions=False).get("/api/v1/analytics/content/c-9"),
    ]
    statuses = [a.status_code for a in answers]
    assert statuses == [201, 200, 404, 200, 200, 404, 405, 200, 200, 200, 500, 401]
    assert [a.headers.get("x-cache") for a in answers[8:10]] == ["miss", "hit"]

    _flush(telemetry, services)
    requests = _of_type(memory, "api_request")
    assert [(r["properties"]["method"], r["properties"]["endpoint"]) for r in requests] == [
        ("POST", "/api/v1/analytics/events"),
        ("GET", "/api/v1/analytics/events/{event_id}"),
        ("GET", "/api/v1/analytics/events/{event_id}"),
        ("GET", "/api/v1/analytics/events"),
        ("GET", "/healthz"),
        ("GET", "(unmatched)"),
        ("DELETE", "/healthz"),
        ("POST", "/graphql"),
        ("GET", "/api/v1/analytics/users"),
        ("GET", "/api/v1/analytics/users"),
        ("GET", "/api/v1/analytics/search/overview"),
        ("GET", "/api/v1/analytics/content/{content_id}"),
    ]
    assert [r["properties"]["status"] for r in requests] == statuses
    assert {r["properties"]["service"] for r in requests} == {"analytics"}
    assert [r["properties"].get("cache_hit") for r in requests[8:10]] == [False, True]
    assert all("cache_hit" not in r["properties"] for r in requests[:8])
    # The event reads each ran one statement of the event store; the others ran none of it.
    assert [r["properties"]["db_query_count"] for r in requests[:5]] == [0, 1, 1, 1, 0]
    for request in requests:
        assert request["properties"]["duration_ms"] >= request["properties"]["db_time_ms"] >= 0

    statements = _of_type(memory, "database_query")
    assert [(s["properties"]["fingerprint"], s["properties"].get("rows")) for s in statements] == [
        ("SELECT … FROM events WHERE id = ? LIMIT ?", 1),
        ("SELECT … FROM events WHERE id = ? LIMIT ?", 0),
        ("SELECT … FROM events WHERE event_type = ? ORDER BY timestamp DESC, id DESC LIMIT ?", 1),
    ]
    assert {(s["properties"]["database"], s["properties"]["operation"]) for s in statements} == {
        ("clickhouse", "select")
    }
    for request, statement in zip(requests[1:4], statements, strict=True):
        assert request["properties"]["db_time_ms"] == pytest.approx(statement["properties"]["duration_ms"], abs=0.01)
    # No id of a path, none of a statement's values.
    recorded = repr([r["properties"] for r in requests + statements])
    assert "known-1" not in recorded and "missing-7" not in recorded and "12345" not in recorded


def test_no_recorder_records_nothing() -> None:
    services = FakeServices.build()
    assert getattr(services, "telemetry", None) is None
    assert _client(services).get("/healthz").status_code == 200
    assert services.events.rows == {}


def test_a_recorder_that_fails_changes_no_answer() -> None:
    class Broken(SelfTelemetry):
        def end_request(self, *args: Any) -> None:
            raise RuntimeError("recording failed")

    services = FakeServices.build()
    services.telemetry = Broken(flush_seconds=60)  # type: ignore[attr-defined]
    client = _client(services)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/api/v1/analytics/events/nothing").status_code == 404


def test_the_settings_decide_whether_the_service_records() -> None:
    assert self_telemetry(Settings(self_telemetry=False)) is None
    recorder = self_telemetry(Settings(self_telemetry_flush_ms=250))
    assert recorder is not None and recorder._flush_seconds == 0.25
    memory = MemoryEventStore()
    assert type(event_store(FakeActor(memory), None)).__name__ == "RemoteEventStore"  # type: ignore[arg-type]
    assert isinstance(event_store(FakeActor(memory), recorder), RecordedEventStore)  # type: ignore[arg-type]


async def test_the_event_store_records_every_read_it_runs() -> None:
    memory = MemoryEventStore()
    telemetry = SelfTelemetry(flush_seconds=60, metrics=SelfTelemetryMetrics())
    store = RecordedEventStore(FakeActor(memory), telemetry)  # type: ignore[arg-type]
    assert await store.count(EventFilter(user_id="u-1", content_id="c-1")) == 0
    assert await store.ping() is True
    with pytest.raises(AssertionError):
        await store.query("SELECT count() FROM events WHERE user_id = {u:String}", {"u": "u-1"})
    with pytest.raises(AssertionError):
        await store.query_arrow("SELECT 1")
    entries = [(e[2], e[3], e[5], e[6]) for e in telemetry._buffer]
    assert [(database, *describe(database, source), rows, error) for database, source, rows, error in entries] == [
        ("clickhouse", "select", "SELECT count() FROM events WHERE user_id = ? AND content_id = ?", 1, None),
        ("clickhouse", "select", "SELECT ?", 1, None),
        ("clickhouse", "select", "SELECT count() FROM events WHERE user_id = ?", None, "AssertionError"),
        ("clickhouse", "select", "SELECT ?", None, "AssertionError"),
    ]
