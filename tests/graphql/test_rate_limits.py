"""Rate limits over HTTP, REST and GraphQL alike: 429 with Retry-After naming the limit and the route
class, recovery once Retry-After has passed, one bucket per key and class shared by both transports,
the refusals counted in /metrics, and the class of every route."""

from __future__ import annotations

import importlib
import math
import pkgutil
import time
from collections.abc import Iterator

import httpx
import pytest
import redis.asyncio as redis_asyncio
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.access import Role
from core.settings import Settings
from semantic.rate_limits import RateLimiter, RouteClass, limits_from
from serve_app import metrics, routes
from serve_app.deps import Allow
from serve_app.factory import create_app
from serve_app.graphql_rate_limits import operation_route_classes
from storage.token_buckets import InProcessTokenBuckets, RedisTokenBuckets
from tests.graphql.fakes import ROLE_KEYS, FakeServices
from tests.storage.test_token_buckets import ManualClock

INGEST_PER_SECOND = 0.4  # one token every 2.5 s: Retry-After 3
INGEST_BURST = 2
QUERY_BURST = 3
ADMIN_BURST = 1

TRACK_EVENT = 'mutation { trackEvent(event: {eventType: "content_view", contentId: "c1"}) { id } }'
USERS_OVERVIEW = "{ usersOverview { activeUsers } }"


class NoKeys:
    """The key listing of the metadata store, empty (GET /api/v1/admin/api-keys)."""

    async def list_api_keys(self) -> list[object]:
        return []


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(services: FakeServices, clock: ManualClock) -> FastAPI:
    settings = Settings(
        environment="test",
        rate_limit_ingest_per_second=INGEST_PER_SECOND,
        rate_limit_ingest_burst=INGEST_BURST,
        rate_limit_query_burst=QUERY_BURST,
        rate_limit_admin_burst=ADMIN_BURST,
    )
    made = create_app(settings)
    made.state.services = services  # no lifespan: the fakes stand in for Services.start
    services.metadata = NoKeys()  # type: ignore[attr-defined]
    # The app's limiter with its limits, on a clock the test moves.
    made.state.rate_limiter = RateLimiter(InProcessTokenBuckets(clock), limits_from(settings), metrics.RATE_LIMITS)
    return made


@pytest.fixture
def clients(app: FastAPI) -> Iterator[dict[Role, TestClient]]:
    yield {role: TestClient(app, headers={"Authorization": f"Bearer {key}"}) for role, key in ROLE_KEYS.items()}


def send_event(client: TestClient, content_id: str = "c1") -> int:
    return client.post(
        "/api/v1/analytics/events", json={"event_type": "content_view", "content_id": content_id}
    ).status_code


def graphql(client: TestClient, query: str) -> tuple[int, dict]:
    response = client.post("/graphql", json={"query": query})
    return response.status_code, response.json()


def refused_so_far(route_class: str) -> float:
    value = metrics.REGISTRY.get_sample_value("analytics_rate_limited_requests_total", {"route_class": route_class})
    return value or 0.0


def assert_ingest_refusal(response_status: int, body: dict, headers: dict) -> None:
    wait = math.ceil(1 / INGEST_PER_SECOND)
    assert response_status == 429
    assert headers["retry-after"] == str(wait)
    assert body == {
        "error": "rate_limited",
        "message": f"rate limit of {INGEST_PER_SECOND} ingest requests per second (burst {INGEST_BURST}) "
        f"exceeded for this API key; retry after {wait} s",
        "details": {
            "route_class": "ingest",
            "limit_per_second": INGEST_PER_SECOND,
            "burst": INGEST_BURST,
            "retry_after_seconds": wait,
        },
    }


def test_rest_ingest_over_the_burst_is_429_and_recovers_after_retry_after(
    clients: dict[Role, TestClient], services: FakeServices, clock: ManualClock
) -> None:
    service = clients[Role.SERVICE]
    assert [send_event(service, f"c{i}") for i in range(INGEST_BURST)] == [201] * INGEST_BURST
    refused = service.post("/api/v1/analytics/events", json={"event_type": "content_view", "content_id": "late"})
    assert_ingest_refusal(refused.status_code, refused.json(), dict(refused.headers))
    assert services.events.writes == INGEST_BURST  # the refused event was not stored

    clock.advance(int(refused.headers["retry-after"]) * 1000)
    assert send_event(service, "late") == 201
    assert send_event(service, "later") == 429


def test_a_refusal_is_counted_in_metrics(clients: dict[Role, TestClient]) -> None:
    service = clients[Role.SERVICE]
    before = refused_so_far("ingest")
    statuses = [send_event(service, f"c{i}") for i in range(INGEST_BURST + 3)]
    assert statuses.count(429) == 3
    text = service.get("/metrics").text
    samples = {
        sample.labels["route_class"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "analytics_rate_limited_requests"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert samples["ingest"] == before + 3


def test_keys_and_route_classes_have_buckets_of_their_own(clients: dict[Role, TestClient]) -> None:
    admin, service = clients[Role.ADMIN], clients[Role.SERVICE]
    for _ in range(INGEST_BURST):
        send_event(service)
    assert send_event(service) == 429
    # Another key still ingests; the same key's other classes are untouched.
    assert send_event(admin) == 201
    assert [admin.get("/api/v1/analytics/users").status_code for _ in range(QUERY_BURST)] == [200] * QUERY_BURST
    assert admin.get("/api/v1/analytics/users").status_code == 429


def test_the_admin_routes_have_their_own_limit(clients: dict[Role, TestClient]) -> None:
    admin = clients[Role.ADMIN]
    assert admin.get("/api/v1/admin/api-keys").status_code == 200
    refused = admin.get("/api/v1/admin/api-keys")
    assert refused.status_code == 429
    assert refused.json()["details"]["route_class"] == "admin"
    assert admin.get("/api/v1/analytics/users").status_code == 200


def test_a_refused_role_is_403_and_uses_no_tokens(clients: dict[Role, TestClient]) -> None:
    viewer = clients[Role.VIEWER]
    assert {send_event(viewer) for _ in range(INGEST_BURST + 2)} == {403}
    assert viewer.get("/api/v1/analytics/real-time").status_code == 200


def test_graphql_ingest_is_429_with_retry_after_and_recovers(
    clients: dict[Role, TestClient], services: FakeServices, clock: ManualClock
) -> None:
    service = clients[Role.SERVICE]
    for _ in range(INGEST_BURST):
        status, body = graphql(service, TRACK_EVENT)
        assert status == 200 and "errors" not in body, body
    refused = service.post("/graphql", json={"query": TRACK_EVENT})
    assert_ingest_refusal(refused.status_code, refused.json(), dict(refused.headers))
    assert services.events.writes == INGEST_BURST

    clock.advance(int(refused.headers["retry-after"]) * 1000)
    status, body = graphql(service, TRACK_EVENT)
    assert status == 200 and "errors" not in body, body


def test_rest_and_graphql_draw_from_the_same_buckets(clients: dict[Role, TestClient]) -> None:
    admin = clients[Role.ADMIN]
    assert send_event(admin) == 201
    assert graphql(admin, TRACK_EVENT)[0] == 200
    assert send_event(admin) == 429
    assert graphql(admin, TRACK_EVENT)[0] == 429
    # Reads are queries on both transports, apart from ingest.
    assert admin.get("/api/v1/analytics/users").status_code == 200
    assert graphql(admin, USERS_OVERVIEW)[0] == 200
    assert graphql(admin, USERS_OVERVIEW)[0] == 200
    status, body = graphql(admin, USERS_OVERVIEW)
    assert status == 429 and body["details"]["route_class"] == "query"
    assert admin.get("/api/v1/analytics/users").status_code == 429


async def test_with_redis_the_same_over_http(services: FakeServices, redis_url: str, unique: str) -> None:
    """The limiter as a replica with ANALYTICS_REDIS_URL has it: buckets in Redis, on Redis's clock."""
    settings = Settings(environment="test", rate_limit_ingest_per_second=0.05, rate_limit_ingest_burst=2)
    app = create_app(settings)
    app.state.services = services
    app.state.rate_limiter = RateLimiter(
        RedisTokenBuckets(redis_url, prefix=f"test:{unique}:"),
        limits_from(settings),
        metrics.RATE_LIMITS,
        fallback=InProcessTokenBuckets(),
    )
    headers = {"Authorization": f"Bearer {ROLE_KEYS[Role.SERVICE]}"}
    event = {"event_type": "content_view", "content_id": "c1"}
    mutation = {"query": TRACK_EVENT}
    local_before = metrics.REGISTRY.get_sample_value("analytics_rate_limit_local_decisions_total")
    raw = redis_asyncio.from_url(redis_url)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as http:
            started = time.monotonic()
            first = await http.post("/api/v1/analytics/events", json=event)
            second = await http.post("/graphql", json=mutation)
            third = await http.post("/api/v1/analytics/events", json=event)
            elapsed = time.monotonic() - started
        keys = [key async for key in raw.scan_iter(match=f"test:{unique}:*")]
    finally:
        await app.state.rate_limiter.close()
        await raw.delete(f"test:{unique}:ingest:key_service")
        await raw.aclose()
    assert (first.status_code, second.status_code, third.status_code) == (201, 200, 429)
    # One token at 0.05 a second is 20 s away from an empty bucket, less the time the requests took.
    assert math.ceil(20 - elapsed) <= int(third.headers["retry-after"]) <= 20
    assert third.json()["details"]["route_class"] == "ingest"
    assert keys == [f"test:{unique}:ingest:key_service".encode()]
    assert metrics.REGISTRY.get_sample_value("analytics_rate_limit_local_decisions_total") == local_before


def test_no_limits_when_turned_off(services: FakeServices) -> None:
    app = create_app(Settings(environment="test", rate_limits_enabled=False, rate_limit_ingest_burst=1))
    app.state.services = services
    client = TestClient(app, headers={"Authorization": f"Bearer {ROLE_KEYS[Role.SERVICE]}"})
    assert {send_event(client, f"c{i}") for i in range(5)} == {201}


@pytest.mark.parametrize(
    ("query", "operation_name", "classes"),
    [
        (TRACK_EVENT, None, {RouteClass.INGEST}),
        ("mutation { trackEvents(events: []) { accepted } }", None, {RouteClass.INGEST}),
        (USERS_OVERVIEW, None, {RouteClass.QUERY}),
        (
            'mutation { trackEvent(event: {eventType: "x"}) { id } '
            'createSavedQuery(query: {name: "n", kind: "query", definition: "{}"}) { id } }',
            None,
            {RouteClass.INGEST, RouteClass.QUERY},
        ),
        (
            'mutation { upsertContentMetadata(contentId: "c", metadata: {}) { contentId } }',
            None,
            {RouteClass.INGEST},
        ),
        # The operation the request names, and fields reached through fragments.
        (
            f"query Read {{ usersOverview {{ activeUsers }} }} mutation Send {TRACK_EVENT[9:]}",
            "Send",
            {RouteClass.INGEST},
        ),
        (
            f"query Read {{ usersOverview {{ activeUsers }} }} mutation Send {TRACK_EVENT[9:]}",
            "Read",
            {RouteClass.QUERY},
        ),
        (
            "mutation { ...Send } "
            "fragment Send on Mutation { ... on Mutation { trackEvents(events: []) { accepted } } }",
            None,
            {RouteClass.INGEST},
        ),
        # Unreadable or ambiguous: a query, and GraphQL refuses it on its own terms.
        ("mutation {", None, {RouteClass.QUERY}),
        (f"query A {{ usersOverview {{ activeUsers }} }} mutation B {TRACK_EVENT[9:]}", None, {RouteClass.QUERY}),
    ],
)
def test_the_route_classes_of_a_graphql_operation(query: str, operation_name: str | None, classes: set) -> None:
    assert operation_route_classes(query, operation_name) == classes


def all_rest_routes() -> list[APIRoute]:
    """Every route of every module of serve_app/routes (their routers carry the full paths)."""
    modules = [importlib.import_module(f"serve_app.routes.{m.name}") for m in pkgutil.iter_modules(routes.__path__)]
    return [r for m in modules for r in getattr(m, "router", APIRouter()).routes if isinstance(r, APIRoute)]


def test_every_rest_route_has_its_route_class() -> None:
    ingest_routes = {
        ("POST", "/api/v1/analytics/events"),
        ("POST", "/api/v1/analytics/events/batch"),
        ("POST", "/api/v1/analytics/track/content-view"),
        ("POST", "/api/v1/analytics/track/search"),
        ("POST", "/api/v1/analytics/track/user-action"),
        ("PUT", "/api/v1/analytics/content-metadata/{content_id}"),
    }
    # A person's data: erasure is admin work, the access request's export is an export; so are batch jobs.
    admin_routes = {
        ("DELETE", "/api/v1/analytics/users/{user_id}/data"),
        ("GET", "/api/v1/analytics/users/{user_id}/data/erasure/{job_id}"),
        ("GET", "/api/v1/analytics/jobs"),
        ("POST", "/api/v1/analytics/jobs/aggregate"),
        ("GET", "/api/v1/analytics/jobs/{run_id}"),
    }
    export_routes = {
        ("GET", "/api/v1/analytics/users/{user_id}/data"),
        ("POST", "/api/v1/analytics/exports"),
        ("GET", "/api/v1/analytics/exports"),
        ("GET", "/api/v1/analytics/exports/{export_id}"),
        ("GET", "/api/v1/analytics/exports/{export_id}/download"),
    }
    classes: dict[tuple[str, str], RouteClass] = {}
    for route in all_rest_routes():
        for allow in (d.call for d in route.dependant.dependencies if isinstance(d.call, Allow)):
            for method in route.methods:
                classes[(method, route.path)] = allow.route_class_at(route.path)
    assert len(classes) > 50
    for (method, path), route_class in classes.items():
        if (method, path) in ingest_routes:
            assert route_class == RouteClass.INGEST, path
        elif path.startswith("/api/v1/admin/") or (method, path) in admin_routes:
            assert route_class == RouteClass.ADMIN, path
        elif (method, path) in export_routes:
            assert route_class == RouteClass.EXPORT, path
        else:
            assert route_class == RouteClass.QUERY, (method, path)
    assert ingest_routes | admin_routes | export_routes <= set(classes)
    assert sum(path.startswith("/api/v1/admin/") for _, path in classes) >= 4


def test_the_openapi_document_lists_429_with_retry_after() -> None:
    document = create_app(Settings(environment="test")).openapi()
    batch = document["paths"]["/api/v1/analytics/events/batch"]["post"]["responses"]["429"]
    assert set(batch["headers"]) == {"Retry-After"}
    assert "rate limit" in batch["description"]
    assert "429" in document["paths"]["/api/v1/analytics/users"]["get"]["responses"]
    # /metrics takes any key and is not rate limited.
    assert "429" not in document["paths"]["/metrics"]["get"]["responses"]
