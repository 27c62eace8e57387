"""Fuzzing the REST app's inputs with hypothesis: ingest bodies (one event, batches, the tracking routes)
and query bodies (POST /query and the behaviour analyses). Whatever is sent, the answer is never a 5xx,
every 4xx names the field at fault, and a batch stores exactly the events it says it accepted, never
one whose properties nest past the limit or whose ip_address is not an address.

The app is the service's own (create_app) over the in-process fakes of tests/graphql/fakes.py; the
queries run on real chDB in this process (an empty-but-for-a-few-rows database), so a query body that
passes every check is compiled and executed for real. What an event's depth, keys and address are is
computed here by reference functions (tests/core/test_input_limits.py), not taken from the code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import Role
from core.settings import Settings
from semantic.analytics_query import AnalyticsQueryService, RecentQueries
from semantic.public_catalog import DIMENSIONS, METRICS
from serve_app.factory import create_app
from tests.core.test_input_limits import depth_of, nested, reference_is_ip
from tests.graphql.fakes import ROLE_KEYS, FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_funnels import Row, event_table

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = Settings(environment="test")
EVENTS = "/api/v1/analytics/events"
ANALYTICS = "/api/v1/analytics"

# --- what a JSON body can hold ----------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0])
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
# Nesting well past the properties limit and the JSON encoder's (254), below the parser's (1024).
DEEP = st.integers(1, 700).map(nested)
ANY_VALUE = JSON_VALUES | DEEP


def body_text(value: Any) -> bytes:
    """The body as JSON text by the standard library: it writes nesting that orjson would refuse."""
    return json.dumps(value).encode()


@dataclass(frozen=True)
class Client:
    services: FakeServices
    http: TestClient

    def post(self, path: str, body: bytes, role: Role = Role.ADMIN) -> Any:
        headers = {"Authorization": f"Bearer {ROLE_KEYS[role]}", "Content-Type": "application/json"}
        return self.http.post(path, content=body, headers=headers)


def rest_app(services: FakeServices) -> Client:
    app = create_app(LIMITS)
    app.state.services = services  # no lifespan: the fakes stand in for Services.start
    # Failures come back as answers (a 500 is a failed assertion here, not an exception).
    return Client(services, TestClient(app, raise_server_exceptions=False))


def named_fields(body: dict[str, Any]) -> list[str]:
    """The fields a 4xx body names: the batch's per-event errors, or the error body's details."""
    if "accepted" in body:
        assert body["errors"], body
        assert all(e["message"] and e["code"] for e in body["errors"]), body
        return [e["field"] for e in body["errors"]]
    assert set(body) <= {"error", "message", "details"}, body
    assert body["error"] and body["message"], body
    details = body.get("details")
    if isinstance(details, dict):
        return [details.get("field", "")]
    assert isinstance(details, list) and details, body
    return [d.get("field", "") for d in details]


def assert_answered(response: Any) -> dict[str, Any]:
    """No 5xx; a JSON body; a 4xx names every field it refuses."""
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        fields = named_fields(body)
        assert fields and all(isinstance(f, str) and f for f in fields), body
    return body


# --- ingest ------------------------------------------------------------------------------------------------

NOW = datetime.now(UTC)
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_:/.", min_size=1, max_size=30)
# Values a field accepts, and values it refuses, for each field of an event.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "id": st.uuids().map(str),
    "event_type": st.sampled_from(["content_view", "search_query", "content_play", "my_custom_event"]),
    "event_category": st.sampled_from(["content", "custom"]),
    "timestamp": st.integers(0, 86_400).map(lambda s: (NOW - timedelta(seconds=s)).isoformat()),
    "ip_address": st.ip_addresses().map(str) | st.sampled_from([" 203.0.113.7 ", "fe80::1%eth0", "::ffff:1.2.3.4"]),
    "country": st.sampled_from(["US", "de"]),
    "properties": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
    # Around the depth limit (32), and far past it.
    | (st.integers(1, 40) | st.integers(1, 700)).map(lambda n: {"deep": nested(n - 1)})
    # Around the key limit (1,000): 50 keys per object, and the "wide" key.
    | st.integers(15, 25).map(lambda n: {"wide": [{f"k{i}": i for i in range(50)} for _ in range(n)]}),
    **{
        name: WORD for name in ("user_id", "session_id", "content_id", "resource_type", "resource_id", "region", "city")
    },
    "user_agent": st.text(max_size=60),
    "referrer": st.sampled_from(["https://www.google.com/search?q=x", "https://platform.example/a", ""]),
}
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "event_type": st.sampled_from(["Bad-Type", "x", "", "content view"]),
    "event_category": st.sampled_from(["Bad", "x"]),
    "timestamp": st.sampled_from(
        [(NOW + timedelta(days=1)).isoformat(), (NOW - timedelta(days=4000)).isoformat(), "2026-13-45", "yesterday"]
    ),
    "ip_address": st.sampled_from(["999.1.1.1::zz", "1.2.3", "1.2.3.4:80", "1.2.3.04", "::ffff:999.1.1.1"])
    | st.text(alphabet="0123456789abcdef.:%", min_size=2, max_size=20),
    "country": st.sampled_from(["U1", "USA", "u"]),
}


def field_value(name: str) -> st.SearchStrategy[Any]:
    """Mostly what the field accepts; now and then what it refuses, or any JSON at all."""
    wrong = WRONG.get(name, st.just(""))
    return st.sampled_from(["valid"] * 6 + ["wrong", "any"]).flatmap(
        lambda kind: VALID[name] if kind == "valid" else wrong if kind == "wrong" else ANY_VALUE
    )


@st.composite
def events(draw: st.DrawFn) -> Any:
    """Mostly valid events with a few fields each; some with a wrong field; now and then not an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(ANY_VALUE)
    event: dict[str, Any] = {}
    if draw(st.integers(0, 19)) > 0:
        event["event_type"] = draw(field_value("event_type"))
    for name in VALID:
        if name != "event_type" and draw(st.integers(0, 3)) == 0:
            event[name] = draw(field_value(name))
    if draw(st.integers(0, 19)) == 0:
        event[draw(st.text(min_size=1, max_size=10))] = draw(ANY_VALUE)  # an unknown field
    return event


def must_refuse(event: Any) -> bool:
    """What a stored event can never be, judged here: properties past the depth limit, an ip_address
    that is text but not an address."""
    if not isinstance(event, dict):
        return True
    properties = event.get("properties")
    if isinstance(properties, dict) and depth_of(properties) > LIMITS.max_properties_depth:
        return True
    ip = event.get("ip_address")
    return isinstance(ip, str) and not reference_is_ip(ip.strip())


@pytest.fixture(scope="module")
def ingest() -> Client:
    return rest_app(FakeServices.build())


@FUZZ
@given(batch=st.lists(events(), min_size=1, max_size=8))
def test_a_batch_is_answered_per_event(ingest: Client, batch: list[Any]) -> None:
    rows_before = len(ingest.services.events.rows)
    response = ingest.post(f"{EVENTS}/batch", body_text({"events": batch}))
    body = assert_answered(response)
    assert response.status_code in (200, 422), body
    refused = {e["index"] for e in body["errors"]}
    assert refused <= set(range(len(batch)))
    assert body["accepted"] + body["rejected"] == len(batch)
    assert body["rejected"] == len(refused)
    assert (response.status_code == 422) == (body["accepted"] == 0)
    # Never stored: what the reference functions say must be refused.
    assert {i for i, event in enumerate(batch) if must_refuse(event)} <= refused
    assert len(ingest.services.events.rows) - rows_before == body["accepted"] - body["duplicates"]


@FUZZ
@given(event=events())
def test_a_single_event_is_stored_or_refused_by_name(ingest: Client, event: Any) -> None:
    response = ingest.post(EVENTS, body_text(event))
    body = assert_answered(response)
    assert response.status_code in (200, 201, 413, 422), body
    if must_refuse(event):
        assert response.status_code in (413, 422), body


TRACK_BODIES: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "/track/content-view": {
        "content_id": st.text(max_size=300),
        "duration_seconds": st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5),
        "position": st.integers(),
        "source": st.text(max_size=20),
    },
    "/track/search": {
        "query": st.text(max_size=1100),
        "results_count": st.integers(-5, 2**70) | st.booleans() | st.text(max_size=3),
        "filters": JSON_VALUES | DEEP,
        "page": st.integers(),
    },
    "/track/user-action": {
        "action": st.sampled_from(["user_login", "content_like", "Bad Action", "a"]) | st.text(max_size=70),
        "user_id": st.text(max_size=300),
    },
}


@st.composite
def tracking_calls(draw: st.DrawFn) -> tuple[str, Any]:
    route = draw(st.sampled_from(sorted(TRACK_BODIES)))
    if draw(st.integers(0, 9)) == 0:
        return route, draw(ANY_VALUE)
    body = draw(events())
    if not isinstance(body, dict):
        body = {}
    body.pop("event_type", None)
    for name, plausible in TRACK_BODIES[route].items():
        if draw(st.integers(0, 3)) > 0:
            body[name] = draw(plausible if draw(st.integers(0, 3)) else ANY_VALUE)
    return route, body


@FUZZ
@given(call=tracking_calls())
def test_the_tracking_routes_store_or_refuse_by_name(ingest: Client, call: tuple[str, Any]) -> None:
    route, body = call
    response = ingest.post(f"{ANALYTICS}{route}", body_text(body))
    answer = assert_answered(response)
    assert response.status_code in (200, 201, 400, 413, 422), answer
    if must_refuse(body):
        assert response.status_code >= 400, answer


RAW_BODIES = (
    st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | st.integers(1, 3000).map(lambda n: b'{"events": [' + b"[" * n + b"]" * n + b"]}")
    | st.integers(1, 3000).map(lambda n: b"{" * n)
    | st.sampled_from([b"", b"null", b"[]", b'{"events": []}', b'{"events": {}}', b'"\\ud800"', b"1e999"])
)


@FUZZ
@given(path=st.sampled_from([f"{EVENTS}/batch", EVENTS, f"{ANALYTICS}/track/search"]), raw=RAW_BODIES)
def test_any_bytes_get_an_answer_naming_the_problem(ingest: Client, path: str, raw: bytes) -> None:
    response = ingest.post(path, raw)
    assert_answered(response)


def test_a_body_nested_past_the_parser_is_refused_whole_by_name(ingest: Client) -> None:
    depth = 1100  # past orjson's 1024
    raw = b'{"events": [{"event_type": "content_view"}, {"event_type": "content_view", "properties": '
    raw += b'{"a": ' * depth + b"1" + b"}" * depth + b"}]}"
    response = ingest.post(f"{EVENTS}/batch", raw)
    assert response.status_code == 400
    body = response.json()
    assert body["details"]["field"] == "(body)"
    assert "nests more than 1024 levels" in body["message"]


def test_a_graphql_body_nested_past_the_parser_is_a_400(ingest: Client) -> None:
    depth = 1100  # past orjson's 1024: the standard library's parser would hit the recursion limit
    raw = b'{"query": "{ __typename }", "variables": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
    response = ingest.post("/graphql", raw)
    assert response.status_code == 400, response.text


# --- queries -----------------------------------------------------------------------------------------------

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
RANGE = {"start_date": "2026-03-02", "end_date": "2026-03-15"}
QUERY_BODIES: dict[str, dict[str, Any]] = {
    "/query": {
        "metrics": ["views", "users"],
        "dimensions": ["country", "day"],
        "filters": [{"dimension": "country", "op": "in", "values": ["DE", "FR"]}],
        "date_range": RANGE,
        "timezone": "Europe/Berlin",
        "compare_to": "previous_period",
        "order_by": [{"field": "views", "direction": "desc"}],
        "limit": 10,
    },
    "/funnels": {
        "date_range": RANGE,
        "steps": [
            {"event_type": "content_view", "label": "viewed"},
            {"event_type": "search_query", "filters": [{"dimension": "content_id", "value": "A"}]},
        ],
        "conversion_window": {"value": 1, "unit": "hours"},
        "exclusions": [{"event_type": "content_like", "after_step": 1}],
        "breakdown": {"dimension": "country", "limit": 2},
    },
    "/retention": {
        "date_range": RANGE,
        "start_event": {"event_type": "content_view"},
        "return_event": {"event_type": "content_view", "filters": [{"dimension": "content_id", "value": "B"}]},
        "bucket": "day",
        "periods": 10,
    },
    "/paths": {"date_range": RANGE, "anchor": "content:A", "depth": 2, "event_types": ["content_view"]},
    "/stickiness": {"date_range": RANGE, "event": {"event_type": "content_view"}, "window": "week"},
}
TOKENS = st.sampled_from(
    [
        *sorted(METRICS)[:40],
        *sorted(DIMENSIONS),
        *("in", "not_in", "eq", "neq", "contains", "gt", "gte", "lt", "lte", "between"),
        *("day", "week", "month", "hour", "year", "asc", "desc", "after", "before"),
        *("last_7_days", "today", "previous_year", "UTC", "Asia/Riyadh", "Mars/Base", "content:", "page"),
        *("2026-02-30", "0001-01-01", "9999-12-31", "2026-03-01", "1970-01-01", "2100-01-01"),
        *(0, -1, 1, 50, 10_001, 2**63, 2**70, 1e308, -1e308, "inf", "NaN", "1e999"),
    ]
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: dict keys and list positions, the value itself first."""
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += paths_of(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            out += paths_of(inner, (*prefix, index))
    return out


def mutated(value: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    """A copy of ``value`` with the place at ``path`` replaced, removed or given an extra member."""
    if not path:
        if action == "extra" and isinstance(value, dict):
            return {**value, "unexpected": replacement}
        if action == "extra" and isinstance(value, list):
            return [*value, replacement]
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and action == "remove":
            del copy[head]
        else:
            copy[head] = mutated(value[head], rest, action, replacement)
        return copy
    copy_list = list(value)
    if not rest and action == "remove":
        del copy_list[head]
    else:
        copy_list[head] = mutated(value[head], rest, action, replacement)
    return copy_list


@st.composite
def query_calls(draw: st.DrawFn) -> tuple[str, Any, Role]:
    route = draw(st.sampled_from(sorted(QUERY_BODIES)))
    body: Any = QUERY_BODIES[route]
    for _ in range(draw(st.integers(0, 3))):
        # Not the body itself: a body that is no object at all is test_query_routes_answer_any_bytes_by_name's.
        place = draw(st.sampled_from(paths_of(body)[1:]))
        action = draw(st.sampled_from(["replace", "replace", "remove", "extra"]))
        body = mutated(body, place, action, draw(TOKENS | ANY_VALUE))
    role = draw(st.sampled_from([Role.ADMIN, Role.ANALYST]))
    return route, body, role


def query_rows() -> list[Row]:
    rows = []
    for i in range(8):
        day = T0 + timedelta(days=i % 4)
        user, session = f"u{i}", f"s{i}"
        rows += [
            Row(day, "content_view", user, session, country="DE" if i % 2 else "FR", content_id="A"),
            Row(day + timedelta(seconds=40), "search_query", user, session, properties='{"query": "cats"}'),
            Row(day + timedelta(days=1), "content_view", user, f"{session}-b", content_id="B"),
        ]
    return rows


@pytest.fixture(scope="module")
def queries(chdb_dir: Path) -> Iterator[Client]:
    events = open_store(chdb_dir, f"input_fuzz_{secrets.token_hex(4)}")
    events.insert(event_table(query_rows()), "input_fuzz")
    store = InProcessStore(events)
    services = FakeServices.build()
    query = AnalyticsQueryService(store)  # type: ignore[arg-type]
    analytics = replace(services.analytics, query=query, recent_queries=RecentQueries(query))
    yield rest_app(replace(services, events=store, analytics=analytics))  # type: ignore[arg-type]
    events.close()


def test_the_unmutated_query_bodies_are_answered(queries: Client) -> None:
    for route, body in QUERY_BODIES.items():
        response = queries.post(f"{ANALYTICS}{route}", body_text(body))
        assert response.status_code == 200, (route, response.text)


@FUZZ
@given(call=query_calls())
def test_query_bodies_are_answered_or_refused_by_name(queries: Client, call: tuple[str, Any, Role]) -> None:
    route, body, role = call
    response = queries.post(f"{ANALYTICS}{route}", body_text(body), role)
    answer = assert_answered(response)
    assert response.status_code in (200, 400, 403, 413, 422), answer


@FUZZ
@given(route=st.sampled_from(sorted(QUERY_BODIES)), raw=RAW_BODIES)
def test_query_routes_answer_any_bytes_by_name(queries: Client, route: str, raw: bytes) -> None:
    assert_answered(queries.post(f"{ANALYTICS}{route}", raw))
