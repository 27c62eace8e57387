"""trackEvent, trackEvents and the raw event queries, through the schema with an in-memory store."""

from __future__ import annotations

from core.access import Role
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices

TRACK = "mutation($e: EventInput!) { trackEvent(event: $e) { id duplicate } }"
TRACK_MANY = """mutation($es: [EventInput!]!) {
  trackEvents(events: $es) { accepted rejected duplicates batchId generatedIds errors { index field code message } }
}"""
EVENTS = """query($f: EventFilterInput, $limit: Int! = 100, $cursor: String) {
  events(filter: $f, limit: $limit, cursor: $cursor) {
    events { id eventType sessionId contentId properties }
    nextCursor
  }
}"""


async def test_track_event_stores_it_once(services: FakeServices) -> None:
    event = {"id": "e-1", "eventType": "content_play", "contentId": "c1", "sessionId": "s1", "properties": {"pos": 3}}
    first = await run(services, Role.SERVICE, TRACK, {"e": event})
    assert first.errors is None
    assert first.data == {"trackEvent": {"id": "e-1", "duplicate": False}}
    again = await run(services, Role.ADMIN, TRACK, {"e": event})
    assert again.data == {"trackEvent": {"id": "e-1", "duplicate": True}}
    stored = services.events.rows["e-1"]
    assert (stored["event_type"], stored["event_category"], stored["properties"]) == (
        "content_play",
        "content",
        {"pos": 3},
    )


async def test_track_event_generates_an_id(services: FakeServices) -> None:
    result = await run(services, Role.SERVICE, TRACK, {"e": {"eventType": "user_login", "userId": "u1"}})
    assert result.errors is None
    assert result.data is not None
    assert result.data["trackEvent"]["id"] in services.events.rows


async def test_track_event_refuses_a_bad_field_and_names_it(services: FakeServices) -> None:
    error = only_error(
        await run(services, Role.SERVICE, TRACK, {"e": {"eventType": "content_view", "country": "Narnia"}})
    )
    assert error["extensions"]["code"] == "validation_failed"
    assert error["extensions"]["status"] == 422
    assert error["extensions"]["details"][0]["field"] == "country"
    assert error["message"].startswith("country: ")
    assert services.events.writes == 0


async def test_track_events_stores_the_valid_ones_and_names_the_bad_fields(services: FakeServices) -> None:
    await run(services, Role.SERVICE, TRACK, {"e": {"id": "seen", "eventType": "content_view"}})
    batch = [
        {"id": "b-1", "eventType": "content_view", "sessionId": "s2"},
        {"id": "seen", "eventType": "content_view"},
        {"eventType": "Not A Type", "sessionId": "s2"},
        {"eventType": "search_query", "sessionId": "s2"},
    ]
    result = await run(services, Role.SERVICE, TRACK_MANY, {"es": batch})
    assert result.errors is None
    assert result.data is not None
    body = result.data["trackEvents"]
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (3, 1, 1)
    assert body["errors"] == [
        {"index": 2, "field": "eventType", "code": body["errors"][0]["code"], "message": body["errors"][0]["message"]}
    ]
    assert set(body["generatedIds"]) == {"3"}
    assert body["generatedIds"]["3"] in services.events.rows
    assert {"b-1", "seen"} <= set(services.events.rows)


async def test_track_events_refuses_an_empty_batch(services: FakeServices) -> None:
    error = only_error(await run(services, Role.SERVICE, TRACK_MANY, {"es": []}))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"] == {"field": "events"}


async def test_events_query_filters(services: FakeServices) -> None:
    batch = [
        {"id": f"q-{i}", "eventType": "content_view", "sessionId": "s-q", "contentId": f"c{i % 2}"} for i in range(5)
    ]
    await run(services, Role.SERVICE, TRACK_MANY, {"es": batch})
    result = await run(services, Role.ADMIN, EVENTS, {"f": {"sessionId": "s-q", "contentId": "c1"}})
    assert result.errors is None
    assert result.data is not None
    assert sorted(e["id"] for e in result.data["events"]["events"]) == ["q-1", "q-3"]
    filters, limit, cursor = services.events.list_calls[-1]
    assert (filters.session_id, filters.content_id, limit, cursor) == ("s-q", "c1", 100, None)

    page = await run(services, Role.ADMIN, EVENTS, {"f": {"sessionId": "s-q"}, "limit": 2})
    assert page.data is not None
    assert len(page.data["events"]["events"]) == 2 and page.data["events"]["nextCursor"]


async def test_events_query_refuses_an_empty_time_range_naming_the_field(services: FakeServices) -> None:
    variables = {"f": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}}
    error = only_error(await run(services, Role.ADMIN, EVENTS, variables))
    assert error["message"] == "'end' must be after 'start'"
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"] == {"field": "end"}
    assert services.events.list_calls == []


async def test_events_query_refuses_a_page_size_out_of_range_naming_the_field(services: FakeServices) -> None:
    for limit, bound in ((0, "greater than or equal to 1"), (1001, "less than or equal to 1000")):
        error = only_error(await run(services, Role.ADMIN, EVENTS, {"limit": limit}))
        assert error["message"] == f"limit: Input should be {bound}"
        assert error["extensions"]["details"][0]["field"] == "limit"
    assert services.events.list_calls == []


async def test_event_by_id(services: FakeServices) -> None:
    await run(services, Role.SERVICE, TRACK, {"e": {"id": "one", "eventType": "content_view", "contentId": "c9"}})
    query = 'query { event(id: "one") { id eventType contentId } missing: event(id: "nope") { id } }'
    result = await run(services, Role.ADMIN, query)
    assert result.errors is None
    assert result.data == {"event": {"id": "one", "eventType": "content_view", "contentId": "c9"}, "missing": None}


async def test_rest_and_graphql_check_the_filters_alike(services: FakeServices) -> None:
    client = rest_client(services, Role.ADMIN)
    cases = [
        (
            {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            {"f": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
        ),
        ({"limit": 1001}, {"limit": 1001}),
        ({"limit": 0}, {"limit": 0}),
    ]
    for params, variables in cases:
        rest = client.get("/api/v1/analytics/events", params=params)
        assert rest.status_code == 400
        error = only_error(await run(services, Role.ADMIN, EVENTS, variables))
        assert error["message"] == rest.json()["message"]
        assert error["extensions"]["details"] == rest.json()["details"]
    assert services.events.list_calls == []
