"""The ingest counters move by the same, exact amounts whichever transport received the events:
they are recorded by the ingestion service, not by the routes or the resolvers."""

from __future__ import annotations

from typing import Any

import pytest

from core.access import Role
from core.errors import StoreUnavailable
from tests.graphql.conftest import rest_client, run
from tests.graphql.fakes import FakeServices, MemoryEventStore

TRACK = "mutation($e: EventInput!) { trackEvent(event: $e) { id duplicate } }"
TRACK_MANY = "mutation($es: [EventInput!]!) { trackEvents(events: $es) { accepted rejected duplicates } }"


def counters(services: FakeServices) -> dict[str, float]:
    return {
        "accepted": services.count("analytics_events_accepted_total"),
        "duplicate": services.count("analytics_events_duplicate_total"),
        "invalid": services.count("analytics_events_rejected_total", reason="invalid_value"),
        "unknown_field": services.count("analytics_events_rejected_total", reason="unknown_field"),
        "too_large": services.count("analytics_events_rejected_total", reason="too_large"),
        "store_errors": services.count("analytics_store_errors_total", store="events"),
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def batch(prefix: str, *, camel: bool) -> list[dict[str, Any]]:
    """Three valid events (one a repeat of the first, so a duplicate), an invalid country and an unknown field."""
    kind, session = ("eventType", "sessionId") if camel else ("event_type", "session_id")
    return [
        {"id": f"{prefix}-1", kind: "content_view", session: prefix},
        {"id": f"{prefix}-2", kind: "content_play", session: prefix},
        {"id": f"{prefix}-1", kind: "content_view", session: prefix},
        {kind: "content_view", "country": "Narnia"},
    ]


async def test_graphql_track_events_counts_each_event(services: FakeServices) -> None:
    before = counters(services)
    result = await run(services, Role.SERVICE, TRACK_MANY, {"es": batch("g", camel=True)})
    assert result.data == {"trackEvents": {"accepted": 3, "rejected": 1, "duplicates": 1}}
    assert moved(before, counters(services)) == {"accepted": 3, "duplicate": 1, "invalid": 1}
    assert services.count("analytics_ingest_request_seconds_count", route="graphql_batch") == 1


def test_rest_batch_counts_each_event(services: FakeServices) -> None:
    client = rest_client(services, Role.SERVICE)
    before = counters(services)
    body = batch("r", camel=False) + [{"event_type": "content_view", "colour": "red"}]
    response = client.post("/api/v1/analytics/events/batch", json={"events": body})
    assert (response.json()["accepted"], response.json()["rejected"], response.json()["duplicates"]) == (3, 2, 1)
    assert moved(before, counters(services)) == {"accepted": 3, "duplicate": 1, "invalid": 1, "unknown_field": 1}
    assert services.count("analytics_ingest_request_seconds_count", route="batch") == 1


async def test_single_events_count_alike_on_both_transports(services: FakeServices) -> None:
    client = rest_client(services, Role.SERVICE)
    before = counters(services)
    assert client.post("/api/v1/analytics/events", json={"id": "one", "event_type": "content_view"}).status_code == 201
    assert (await run(services, Role.SERVICE, TRACK, {"e": {"id": "one", "eventType": "content_view"}})).data == {
        "trackEvent": {"id": "one", "duplicate": True}
    }
    assert (
        client.post("/api/v1/analytics/events", json={"event_type": "content_view", "country": "X"}).status_code == 422
    )
    assert (await run(services, Role.SERVICE, TRACK, {"e": {"eventType": "content_view", "country": "X"}})).errors
    too_big = {"event_type": "content_view", "properties": {"blob": "x" * services.settings.max_event_bytes}}
    assert client.post("/api/v1/analytics/events", json=too_big).status_code == 413
    assert moved(before, counters(services)) == {"accepted": 2, "duplicate": 1, "invalid": 2, "too_large": 1}
    assert services.count("analytics_ingest_request_seconds_count", route="event") == 1
    assert services.count("analytics_ingest_request_seconds_count", route="graphql_event") == 1
    tracked = client.post("/api/v1/analytics/track/content-view", json={"content_id": "c1"})
    assert tracked.status_code == 201
    assert services.count("analytics_ingest_request_seconds_count", route="content_view") == 1


class UnreachableStore(MemoryEventStore):
    async def write(self, rows: Any) -> Any:
        raise ConnectionError("the store is down")


async def test_a_store_failure_counts_as_a_store_error_only(services: FakeServices) -> None:
    services.ingest.store = UnreachableStore()
    before = counters(services)
    with pytest.raises(StoreUnavailable):
        await services.ingest.ingest_batch(batch("s", camel=False))
    result = await run(services, Role.SERVICE, TRACK_MANY, {"es": batch("t", camel=True)})
    assert result.errors is not None and result.errors[0].formatted["extensions"]["code"] == "store_unavailable"
    response = rest_client(services, Role.SERVICE).post("/api/v1/analytics/events", json={"event_type": "content_view"})
    assert response.status_code == 503
    assert moved(before, counters(services)) == {"store_errors": 3}


async def test_requests_refused_before_ingest_count_nothing(services: FakeServices) -> None:
    client = rest_client(services, Role.VIEWER)
    before = counters(services)
    assert client.post("/api/v1/analytics/events/batch", json={"events": batch("v", camel=False)}).status_code == 403
    assert (await run(services, Role.VIEWER, TRACK_MANY, {"es": batch("w", camel=True)})).errors
    assert (await run(services, Role.SERVICE, TRACK_MANY, {"es": []})).errors  # an empty batch: the envelope
    assert moved(before, counters(services)) == {}
