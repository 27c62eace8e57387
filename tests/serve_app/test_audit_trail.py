"""The audit trail over HTTP (serve_app/audit_trail.py, serve_app/routes/audit.py): the service's own app
(create_app) over the in-process fakes of tests/graphql/fakes.py, with a real MetadataStore and audit
log on PostgreSQL: one database for the module (entries cannot be removed), each test calling from
its own client address and reading back only the entries from that address.

Mutations, audited reads and refusals each leave one entry with the caller's key, role and name, the
parameters' digest, the outcome and status, the request id and the client's address; ingest and
unauthenticated requests leave one entry per caller and minute; GraphQL leaves one per audited root
field; the audit route filters, pages and refuses bad parameters naming them; an operation that must
be recorded first does not run when it cannot be.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry

from core.access import CAN_ERASE_USER_DATA, Principal, Role
from core.errors import AnalyticsError
from core.settings import Settings
from core.user_ids import suppression_digest
from semantic.saved_queries import SavedKind, SavedQueryService
from serve_app.audit_trail import (
    AuditTrail,
    AuditTrailMetrics,
    add_audit_trail,
    arguments_digest,
    parameter_digest,
    record_before,
)
from serve_app.deps import Allow
from serve_app.factory import create_app
from serve_app.http import error_response
from storage.audit_log import AuditEntry, AuditFilter, AuditLog, AuditRecord, Outcome, encode_cursor
from storage.metadata import MetadataStore
from tests.graphql.fakes import ROLE_KEYS, FakeServices

ADDRESSES = (f"203.0.113.{n}" for n in itertools.count(1))
# Every request of a test falls in this minute (the trail's clock is fixed).
NOW = 1_900_000_000.0 + 17.0
MINUTE = "2030-03-17T17:46:00+00:00"
EVENTS = "/api/v1/analytics/events"
AUDIT = "/api/v1/admin/audit"
GRAPHQL = "/graphql"


@dataclass
class Audited:
    services: FakeServices
    metadata: MetadataStore
    trail: AuditTrail
    app: FastAPI
    # This test's client address: its requests come from it, and entries() reads only theirs.
    address: str

    def client(self, role: Role | None = None, **headers: str) -> httpx.AsyncClient:
        if role is not None:
            headers["Authorization"] = f"Bearer {ROLE_KEYS[role]}"
        transport = httpx.ASGITransport(app=self.app, client=(self.address, 4711))
        return httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)

    async def stored(self, **filters: Any) -> list[AuditRecord]:
        """The stored entries from this test's address matching ``filters``, newest first."""
        page = await self.metadata.audit_log.page(AuditFilter(client_address=self.address, **filters), limit=1000)
        return page.entries

    async def entries(self, **filters: Any) -> list[AuditRecord]:
        """As ``stored``, once the trail has written everything it holds."""
        await self.trail.drain()
        return await self.stored(**filters)

    def count(self, name: str, **labels: str) -> float:
        return self.trail.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture(scope="module")
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    yield store
    await store.close()


def started_trail(audit_log: AuditLog) -> AuditTrail:
    trail = AuditTrail(audit_log, AuditTrailMetrics(CollectorRegistry()), clock=lambda: NOW, retry_seconds=0.01)
    trail.start()
    return trail


@pytest.fixture
async def audited(metadata: MetadataStore) -> AsyncIterator[Audited]:
    services = FakeServices.build()
    trail = started_trail(metadata.audit_log)
    # The fakes stand in for Services.start; these two are real.
    services.metadata = metadata  # type: ignore[attr-defined]
    services.audit_trail = trail  # type: ignore[attr-defined]
    app = create_app(Settings(environment="test"))
    app.state.services = services
    yield Audited(services, metadata, trail, app, next(ADDRESSES))
    await trail.close()


def entry_fields(record: AuditRecord) -> dict[str, Any]:
    """What an entry says, without its id and time."""
    return {k: v for k, v in record.to_dict().items() if k not in ("id", "at")}


# --- REST: mutations, audited reads, refusals ---------------------------------------------------------


async def test_a_mutation_is_recorded_with_who_what_digest_outcome_request_and_address(audited: Audited) -> None:
    body = {"name": "reporting", "role": "viewer"}
    async with audited.client(Role.ADMIN, **{"X-Request-ID": "req-create-1"}) as admin:
        response = await admin.post("/api/v1/admin/api-keys", content=json.dumps(body))
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"] == "req-create-1"

    request_entry, change_entry = await audited.entries(request_id="req-create-1")
    # The same parameters in another order and spacing digest the same; the body itself is not kept.
    same_body = b'{ "role": "viewer",  "name": "reporting" }'
    assert entry_fields(request_entry) == {
        "actor_key_id": "key_admin",
        "actor_role": "admin",
        "actor_name": "admin",
        "action": "POST /api/v1/admin/api-keys",
        "operation": "manage API keys",
        "target": None,
        "parameter_digest": parameter_digest({}, b"", [same_body]),
        "outcome": "ok",
        "status": 201,
        "request_id": "req-create-1",
        "client_address": audited.address,
        "details": {},
    }
    assert "reporting" not in json.dumps(request_entry.to_dict())
    # The change the route recorded itself carries the same request id and address.
    assert (change_entry.entry.action, change_entry.entry.target) == ("api_key.create", response.json()["id"])
    assert (change_entry.entry.request_id, change_entry.entry.client_address) == ("req-create-1", audited.address)


async def test_an_audited_read_is_recorded_and_an_ordinary_read_is_not(audited: Audited) -> None:
    async with audited.client(Role.ADMIN) as admin:
        raw = await admin.get(EVENTS, params={"user_id": "u-1", "limit": "5"})
        assert raw.status_code == 200, raw.text
        users = await admin.get("/api/v1/analytics/users", params={"window": "7d"})
        assert users.status_code == 200, users.text
        ordinary = await admin.get("/api/v1/analytics/real-time")
        assert ordinary.status_code == 200, ordinary.text

    # A generated id when the client sent none, echoed on every answer.
    request_ids = [r.headers["x-request-id"] for r in (raw, users, ordinary)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in request_ids) and len(set(request_ids)) == 3
    [raw_entry] = await audited.entries(request_id=request_ids[0])
    assert (raw_entry.entry.action, raw_entry.entry.operation, raw_entry.entry.outcome, raw_entry.entry.status) == (
        "GET /api/v1/analytics/events",
        "query raw events",
        "ok",
        200,
    )
    # The query string's pairs in any order digest the same.
    assert raw_entry.entry.parameter_digest == parameter_digest({}, b"limit=5&user_id=u-1")
    assert raw_entry.entry.parameter_digest != parameter_digest({}, b"limit=5&user_id=u-2")
    [users_entry] = await audited.entries(request_id=request_ids[1])
    assert users_entry.entry.operation == "read user analytics"
    assert await audited.entries(request_id=request_ids[2]) == []


async def test_a_refusal_is_recorded_as_denied_and_a_bad_request_as_failed(audited: Audited) -> None:
    async with audited.client(Role.VIEWER, **{"X-Request-ID": "req-denied"}) as viewer:
        assert (await viewer.delete("/api/v1/admin/api-keys/key_abc")).status_code == 403
    async with audited.client(Role.ANALYST, **{"X-Request-ID": "req-denied-read"}) as analyst:
        # Not an audited read, but a refusal of any operation is recorded.
        assert (await analyst.get("/api/v1/admin/retention")).status_code == 403
    async with audited.client(Role.ADMIN, **{"X-Request-ID": "req-missing"}) as admin:
        assert (await admin.delete("/api/v1/admin/api-keys/key_missing")).status_code == 404

    [denied] = await audited.entries(request_id="req-denied")
    assert entry_fields(denied) | {"parameter_digest": None} == {
        "actor_key_id": "key_viewer",
        "actor_role": "viewer",
        "actor_name": "viewer",
        "action": "DELETE /api/v1/admin/api-keys/{key_id}",
        "operation": "manage API keys",
        "target": "key_abc",
        "parameter_digest": None,
        "outcome": "denied",
        "status": 403,
        "request_id": "req-denied",
        "client_address": audited.address,
        "details": {},
    }
    assert denied.entry.parameter_digest == parameter_digest({"key_id": "key_abc"}, b"")
    [denied_read] = await audited.entries(request_id="req-denied-read")
    assert (denied_read.entry.operation, denied_read.entry.outcome) == ("read the data retention", "denied")
    [missing] = await audited.entries(request_id="req-missing")
    assert (missing.entry.target, missing.entry.outcome, missing.entry.status) == ("key_missing", "failed", 404)
    assert len(await audited.entries(outcome="denied")) == 2


async def test_an_insane_request_id_is_replaced(audited: Audited) -> None:
    async with audited.client(Role.ADMIN, **{"X-Request-ID": "two words; DROP"}) as admin:
        response = await admin.get(AUDIT)
    given = response.headers["x-request-id"]
    assert given != "two words; DROP" and len(given) == 32
    [entry] = await audited.entries(operation="read the audit log")
    assert entry.entry.request_id == given


# --- ingest and unauthenticated requests: one entry per caller and minute -----------------------------


async def test_ingest_is_recorded_once_per_key_and_minute_with_its_counts(audited: Audited) -> None:
    async with audited.client(Role.SERVICE) as service:
        for i in range(6):
            event = {"event_type": "content_view", "content_id": f"c-{i}", "id": f"e-{i}"}
            assert (await service.post(EVENTS, json=event)).status_code == 201
        # Sent again: a duplicate.
        duplicate = await service.post(EVENTS, json={"event_type": "content_view", "content_id": "c-0", "id": "e-0"})
        assert duplicate.status_code == 200
        batch = {"events": [{"event_type": "content_view", "content_id": "c-7"}, {"event_type": "NOT VALID"}]}
        assert (await service.post(f"{EVENTS}/batch", json=batch)).status_code == 200
        assert (await service.post(EVENTS, json={"event_type": "content_view", "nope": 1})).status_code == 422

    ok, failed = (
        await audited.entries(action="ingest.minute", outcome="ok"),
        await audited.entries(action="ingest.minute", outcome="failed"),
    )
    assert len(await audited.entries()) == 2
    [minute] = ok
    assert entry_fields(minute) == {
        "actor_key_id": "key_service",
        "actor_role": "service",
        "actor_name": "service",
        "action": "ingest.minute",
        "operation": "ingest events",
        "target": None,
        "parameter_digest": None,
        "outcome": "ok",
        "status": None,
        "request_id": None,
        "client_address": audited.address,
        "details": {
            "minute": MINUTE,
            "requests": 8,
            "statuses": {"200": 2, "201": 6},
            "routes": {"POST /api/v1/analytics/events": 7, "POST /api/v1/analytics/events/batch": 1},
            "events": {"accepted": 7, "duplicates": 1, "rejected": 1},
            "first_request_id": minute.entry.details["first_request_id"],
            "last_request_id": minute.entry.details["last_request_id"],
        },
    }
    assert minute.at.isoformat() == MINUTE
    [refused] = failed
    assert (refused.entry.status, refused.entry.details["requests"], refused.entry.details["events"]) == (
        422,
        1,
        {"rejected": 1},
    )


async def test_a_minute_of_ingest_is_written_once_it_is_over(audited: Audited) -> None:
    now = [NOW]
    audited.trail.clock = lambda: now[0]
    async with audited.client(Role.SERVICE) as service:
        for _ in range(3):
            assert (await service.post(EVENTS, json={"event_type": "content_view"})).status_code == 201
        await audited.trail.drain(all_minutes=False)
        assert await audited.stored() == []
        now[0] = NOW + 60
        assert (await service.post(EVENTS, json={"event_type": "content_view"})).status_code == 201
    await audited.trail.drain(all_minutes=False)
    [minute] = await audited.stored()
    assert (minute.at.isoformat(), minute.entry.details["requests"]) == (MINUTE, 3)


async def test_requests_without_a_valid_key_are_recorded_once_per_address_and_minute(audited: Audited) -> None:
    async with audited.client() as nobody, audited.client(**{"Authorization": "Bearer ak_wrong"}) as wrong:
        assert (await nobody.post(EVENTS, json={"event_type": "x"})).status_code == 401
        assert (await wrong.delete("/api/v1/admin/api-keys/key_x")).status_code == 401
        assert (await wrong.get(AUDIT)).status_code == 401
        assert (await nobody.post(GRAPHQL, json={"query": "{ __typename }"})).status_code == 401

    [minute] = await audited.entries()
    assert (minute.entry.action, minute.entry.outcome, minute.entry.status, minute.entry.actor_key_id) == (
        "unauthenticated.minute",
        "denied",
        401,
        None,
    )
    assert minute.entry.client_address == audited.address
    assert minute.entry.details["requests"] == 4
    assert minute.entry.details["routes"] == {
        "DELETE /api/v1/admin/api-keys/{key_id}": 1,
        "GET /api/v1/admin/audit": 1,
        "POST /api/v1/analytics/events": 1,
        "POST /graphql": 1,
    }


# --- GraphQL ------------------------------------------------------------------------------------------

CREATE = """mutation Make($q: SavedQueryInput!) { made: createSavedQuery(query: $q) { id version } }"""
DELETE = """mutation Drop($id: String!) { deleteSavedQuery(id: $id, version: 1) { id } }"""
UPSERT = """mutation { upsertContentMetadata(contentId: "video-9", metadata: {title: "Nine"}) { contentId } }"""


async def test_a_graphql_mutation_is_recorded_per_root_field(audited: Audited) -> None:
    audited.services.saved_queries = SavedQueryService.build(
        audited.metadata, {"paths": SavedKind(validate=lambda definition: definition)}
    )
    saved = {"name": "Entry paths", "kind": "paths", "definition": {"start": "entry"}}
    async with audited.client(Role.ANALYST, **{"X-Request-ID": "gql-1"}) as analyst:
        response = await analyst.post(GRAPHQL, json={"query": CREATE, "variables": {"q": saved}})
        assert response.status_code == 200 and "errors" not in response.json(), response.text
        made = response.json()["data"]["made"]["id"]
        async with audited.client(Role.VIEWER, **{"X-Request-ID": "gql-2"}) as viewer:
            refused = await viewer.post(GRAPHQL, json={"query": DELETE, "variables": {"id": made}})
        assert refused.json()["errors"][0]["extensions"]["code"] == "forbidden"
        dropped = await analyst.post(
            GRAPHQL, json={"query": DELETE, "variables": {"id": made}}, headers={"X-Request-ID": "gql-3"}
        )
        assert "errors" not in dropped.json(), dropped.text
    async with audited.client(Role.SERVICE, **{"X-Request-ID": "gql-4"}) as service:
        # The fakes' metadata store cannot store it: an unexpected error.
        assert "errors" in (await service.post(GRAPHQL, json={"query": UPSERT})).json()

    created, change = await audited.entries(request_id="gql-1")
    assert entry_fields(created) == {
        "actor_key_id": "key_analyst",
        "actor_role": "analyst",
        "actor_name": "analyst",
        "action": "graphql mutation createSavedQuery",
        "operation": "manage saved queries",
        "target": None,
        "parameter_digest": arguments_digest("createSavedQuery", {"query": saved}),
        "outcome": "ok",
        "status": 200,
        "request_id": "gql-1",
        "client_address": audited.address,
        "details": {"graphql_operation": "Make"},
    }
    # The service's own record of the change carries the same request id.
    assert (change.entry.action, change.entry.target, change.entry.client_address) == (
        "saved_query.create",
        made,
        audited.address,
    )
    [denied] = await audited.entries(request_id="gql-2")
    assert (denied.entry.action, denied.entry.actor_role, denied.entry.target) == (
        "graphql mutation deleteSavedQuery",
        "viewer",
        made,
    )
    assert (denied.entry.outcome, denied.entry.status) == ("denied", 403)
    deleted = [e for e in await audited.entries(request_id="gql-3") if e.entry.action.startswith("graphql")]
    assert [(e.entry.target, e.entry.outcome) for e in deleted] == [(made, "ok")]
    assert deleted[0].entry.parameter_digest == denied.entry.parameter_digest
    [failed] = await audited.entries(request_id="gql-4")
    assert (failed.entry.target, failed.entry.outcome, failed.entry.status) == ("video-9", "error", 500)


async def test_graphql_audited_reads_are_recorded_ordinary_reads_and_ingest_fields_are_not(audited: Audited) -> None:
    query = """query Look($limit: Int!) { events(limit: $limit) { nextCursor } realtime { activeUsers5m }
      ... on Query { again: events(limit: 2) { nextCursor } } skipped: event(id: "e") @skip(if: true) { id } }"""
    track = 'mutation { trackEvents(events: [{eventType: "content_view", contentId: "c"}]) { accepted rejected } }'
    async with audited.client(Role.ADMIN, **{"X-Request-ID": "gql-read"}) as admin:
        read = await admin.post(GRAPHQL, json={"query": query, "variables": {"limit": 1}})
        assert read.status_code == 200 and "errors" not in read.json(), read.text
        tracked = await admin.post(GRAPHQL, json={"query": track}, headers={"X-Request-ID": "gql-track"})
        assert tracked.json()["data"]["trackEvents"]["accepted"] == 1, tracked.text

    entries = await audited.entries(request_id="gql-read")
    assert [(e.entry.action, e.entry.operation) for e in entries] == [
        ("graphql query events", "query raw events"),
        ("graphql query events", "query raw events"),
    ]
    assert {e.entry.parameter_digest for e in entries} == {
        arguments_digest("events", {"limit": 1}),
        arguments_digest("events", {"limit": 2}),
    }
    assert await audited.entries(request_id="gql-track") == []
    [minute] = await audited.entries(action="ingest.minute")
    assert minute.entry.details["routes"] == {"graphql mutation trackEvents": 1}
    assert minute.entry.details["events"] == {"accepted": 1, "rejected": 0}


# --- the audit route ----------------------------------------------------------------------------------


async def test_the_audit_route_filters_and_pages_and_is_itself_audited(audited: Audited) -> None:
    await audited.metadata.audit_log.append_many(
        [AuditEntry(action="api_key.create", target=f"key_{i}", client_address=audited.address) for i in range(5)]
    )
    here = {"client_address": audited.address}
    async with audited.client(Role.ADMIN) as admin:
        first = await admin.get(AUDIT, params={**here, "action": "api_key.create", "limit": "2"})
        assert first.status_code == 200, first.text
        pages = [first.json()]
        while pages[-1]["next_cursor"] is not None:
            params = {**here, "action": "api_key.create", "limit": "2", "cursor": pages[-1]["next_cursor"]}
            pages.append((await admin.get(AUDIT, params=params)).json())
        await audited.trail.drain()
        by_name = await admin.get(AUDIT, params={**here, "operation": "READ_AUDIT_LOG"})
        await audited.trail.drain()
        by_words = await admin.get(AUDIT, params={**here, "operation": "read the audit log", "role": "admin"})

    assert [[e["target"] for e in p["entries"]] for p in pages] == [["key_4", "key_3"], ["key_2", "key_1"], ["key_0"]]
    assert set(pages[0]["entries"][0]) == {
        "id",
        "at",
        "actor_key_id",
        "actor_role",
        "actor_name",
        "action",
        "operation",
        "target",
        "parameter_digest",
        "outcome",
        "status",
        "request_id",
        "client_address",
        "details",
    }
    # Each read of the log is an entry: by_name finds the three page reads, by_words those and by_name.
    assert by_name.status_code == 200 and len(by_name.json()["entries"]) == 3
    assert len(by_words.json()["entries"]) == 4
    reads = await audited.entries(operation="read the audit log")
    assert len(reads) == 5
    assert {r.entry.action for r in reads} == {"GET /api/v1/admin/audit"}


async def test_the_audit_route_filters_by_time_outcome_target_and_address(audited: Audited) -> None:
    action = f"test action {audited.address}"
    await audited.metadata.audit_log.append_many(
        [
            AuditEntry(action=action, target="t1", outcome=Outcome.DENIED, client_address="192.0.2.1", at=_at("10:00")),
            AuditEntry(action=action, target="t2", client_address="192.0.2.2", at=_at("11:00")),
        ]
    )
    async with audited.client(Role.ADMIN) as admin:

        async def targets(**params: str) -> list[str]:
            response = await admin.get(AUDIT, params={"action": action, **params})
            assert response.status_code == 200, response.text
            return [e["target"] for e in response.json()["entries"]]

        assert await targets() == ["t2", "t1"]
        assert await targets(outcome="denied") == ["t1"]
        assert await targets(target="t2") == ["t2"]
        assert await targets(client_address="192.0.2.1") == ["t1"]
        assert await targets(since="2026-01-05T10:30:00Z") == ["t2"]
        # No offset: UTC.
        assert await targets(until="2026-01-05T10:30:00") == ["t1"]
        assert await targets(since="2026-01-05T09:00:00+00:00", until="2026-01-05T12:00:00+00:00") == ["t2", "t1"]


def _at(hour_minute: str) -> datetime:
    return datetime.fromisoformat(f"2026-01-05T{hour_minute}:00+00:00")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"actor": "key_a"}, "actor"),
        ({"role": "root"}, "role"),
        ({"operation": "delete everything"}, "operation"),
        ({"outcome": "maybe"}, "outcome"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "1700000000"}, "until"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": encode_cursor(2**63)}, "cursor"),
        ({"target": ""}, "target"),
        ({"target": "x" * 501}, "target"),
        ({"target": "a\x00b"}, "target"),
        ([("role", "admin"), ("role", "viewer")], "role"),
    ],
)
async def test_the_audit_route_refuses_a_bad_parameter_naming_it(audited: Audited, params: Any, field: str) -> None:
    async with audited.client(Role.ADMIN) as admin:
        response = await admin.get(AUDIT, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    details = body["details"] if isinstance(body["details"], list) else [body["details"]]
    assert (body["error"], details[0]["field"]) == ("invalid_request", field)
    assert body["message"].startswith(f"{field}: ")


async def test_only_admins_read_the_audit_log(audited: Audited) -> None:
    for role in (Role.ANALYST, Role.CONTENT_MANAGER, Role.VIEWER, Role.SERVICE):
        async with audited.client(role) as client:
            assert (await client.get(AUDIT)).status_code == 403, role
    denied = await audited.entries(operation="read the audit log", outcome="denied")
    assert sorted(e.entry.actor_role or "" for e in denied) == ["analyst", "content_manager", "service", "viewer"]


async def test_nothing_in_the_api_changes_or_removes_an_entry(audited: Audited) -> None:
    async with audited.client(Role.ADMIN) as admin:
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            assert (await admin.request(method, AUDIT)).status_code == 405, method


# --- failures of the trail -----------------------------------------------------------------------------


async def test_a_failed_audit_write_is_counted_and_never_fails_the_request(audited: Audited, dsn: str) -> None:
    closed = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    await closed.close()
    broken = started_trail(AuditLog(closed))
    audited.services.audit_trail = broken  # type: ignore[attr-defined]
    async with audited.client(Role.ADMIN) as admin:
        response = await admin.post("/api/v1/admin/api-keys", json={"name": "n", "role": "viewer"})
    assert response.status_code == 201
    await broken.drain()
    metrics = broken.metrics.registry
    assert metrics.get_sample_value("analytics_audit_write_failures_total") == 4
    assert metrics.get_sample_value("analytics_audit_entries_dropped_total", {"reason": "write_failed"}) == 1
    assert metrics.get_sample_value("analytics_audit_entries_written_total") == 0
    await broken.close()


async def test_a_full_queue_drops_the_newest_entry_and_counts_it(metadata: MetadataStore) -> None:
    trail = AuditTrail(metadata.audit_log, AuditTrailMetrics(CollectorRegistry()), queue_size=2)
    for i in range(3):
        trail.record(AuditEntry(action=f"queued {i}", actor_key_id="key_queued"))
    assert trail.metrics.registry.get_sample_value("analytics_audit_entries_dropped_total", {"reason": "queue_full"})
    trail.start()
    await trail.close()
    stored = await metadata.audit_log.page(AuditFilter(actor_key_id="key_queued"))
    assert [r.entry.action for r in stored.entries] == ["queued 1", "queued 0"]
    assert trail.metrics.registry.get_sample_value("analytics_audit_entries_written_total") == 2


def eraser_app(services: FakeServices) -> FastAPI:
    """An erasure route as the permission matrix's operations declare them, recorded before it runs."""
    app = FastAPI()
    ran: list[str] = []
    app.state.services = services
    app.state.ran = ran

    @app.exception_handler(AnalyticsError)
    async def _error(_: Request, exc: AnalyticsError) -> Response:
        return error_response(exc)

    @app.delete("/api/v1/admin/users/{user_id}")
    async def erase(
        user_id: str,
        _: Annotated[Principal, Depends(Allow(CAN_ERASE_USER_DATA))],
        __: Annotated[None, Depends(record_before)],
    ) -> Response:
        ran.append(user_id)
        return Response(status_code=202)

    add_audit_trail(app)
    return app


async def test_an_operation_recorded_first_runs_only_after_its_entry_is_stored(audited: Audited, dsn: str) -> None:
    app = eraser_app(audited.services)
    transport = httpx.ASGITransport(app=app, client=(audited.address, 4711))
    headers = {"Authorization": f"Bearer {ROLE_KEYS[Role.ADMIN]}", "X-Request-ID": "erase-1"}
    async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as admin:
        assert (await admin.delete("/api/v1/admin/users/u-42")).status_code == 202
        assert app.state.ran == ["u-42"]
        started, done = reversed(await audited.entries(request_id="erase-1"))
        # A person's id is kept as its digest, never as sent: the log outlives an erasure.
        expected_target = "user-sha256:" + suppression_digest("u-42").hex()
        assert (started.entry.outcome, started.entry.status, started.entry.target) == ("started", None, expected_target)
        assert (done.entry.outcome, done.entry.status, done.entry.operation) == ("ok", 202, "erase a user's data")

        # The audit log cannot be written: the erasure does not run.
        closed = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        await closed.close()
        audited.services.audit_trail = started_trail(AuditLog(closed))  # type: ignore[attr-defined]
        refused = await admin.delete("/api/v1/admin/users/u-43")
        assert refused.status_code == 503 and refused.json()["error"] == "store_unavailable"
        assert app.state.ran == ["u-42"]
        await audited.services.audit_trail.close()  # type: ignore[attr-defined]


# --- digests ------------------------------------------------------------------------------------------


def test_a_digest_depends_on_the_parameters_not_their_spelling() -> None:
    base = parameter_digest({"id": "1"}, b"a=1&b=2", [b'{"x": 1, "y": [1, 2]}'])
    assert parameter_digest({"id": "1"}, b"b=2&a=1", [b'{"y":[1,2],', b'"x":1}']) == base
    assert parameter_digest({"id": "2"}, b"a=1&b=2", [b'{"x": 1, "y": [1, 2]}']) != base
    assert parameter_digest({"id": "1"}, b"a=1&b=3", [b'{"x": 1, "y": [1, 2]}']) != base
    assert parameter_digest({"id": "1"}, b"a=1&b=2", [b'{"x": 1, "y": [2, 1]}']) != base
    # A body that is not JSON is digested by its bytes.
    assert parameter_digest({}, b"", [b"not json"]) != parameter_digest({}, b"", [b"not json!"])
    assert len(base) == 64 and int(base, 16) >= 0
