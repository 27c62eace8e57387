"""Security headers on every answer and strict CORS (serve_app/response_headers.py), through the REST app
over the in-process fakes: success, client errors, router errors and unexpected failures alike; HSTS only
over HTTPS; no-store on credentialed answers unless the route says otherwise; no CORS at all unless
origins are configured, and then exact origins, no credentials, and preflights that name a refusal."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.testclient import TestClient

from core.access import Role
from core.settings import Settings
from serve_app.factory import create_app
from tests.graphql.fakes import ROLE_KEYS, FakeServices

ADMIN = {"Authorization": f"Bearer {ROLE_KEYS[Role.ADMIN]}"}
ALLOWED_ORIGIN = "https://app.example"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _app(**settings: object) -> FastAPI:
    app = create_app(Settings(environment="test", **settings))  # type: ignore[arg-type]
    app.state.services = FakeServices.build()  # no lifespan: the fakes stand in for Services.start

    async def fails() -> Response:
        raise RuntimeError("an internal failure")

    async def caches_itself() -> Response:
        return Response(b"{}", media_type="application/json", headers={"Cache-Control": "max-age=60"})

    async def frames_itself() -> Response:
        return Response(b"{}", media_type="application/json", headers={"X-Frame-Options": "SAMEORIGIN"})

    app.add_api_route("/test/fails", fails)
    app.add_api_route("/test/caches-itself", caches_itself)
    app.add_api_route("/test/frames-itself", frames_itself)
    return app


# Not entered as a context manager: that would run the app's lifespan, which starts the real services.
@pytest.fixture
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


@pytest.fixture
def cors_client() -> TestClient:
    return TestClient(_app(cors_origins=f"{ALLOWED_ORIGIN},http://localhost:3000"), raise_server_exceptions=False)


def _cors_headers(response: object) -> dict[str, str]:
    headers = response.headers  # type: ignore[attr-defined]
    return {name: value for name, value in headers.items() if name.startswith("access-control-")}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("GET", "/healthz", {}, None, 200),
        ("GET", "/metrics", ADMIN, None, 200),
        ("GET", "/metrics", {}, None, 401),
        ("POST", "/api/v1/analytics/events", {**ADMIN, "Content-Type": "application/json"}, b"{", 400),
        ("GET", "/no/such/path", ADMIN, None, 404),
        ("DELETE", "/healthz", {}, None, 405),
        ("GET", "/test/fails", ADMIN, None, 500),
        ("POST", "/graphql", {**ADMIN, "Content-Type": "application/json"}, b'{"query": "{ __typename }"}', 200),
    ],
)
def test_every_answer_carries_the_security_headers(
    client: TestClient, method: str, path: str, headers: dict[str, str], body: bytes | None, status: int
) -> None:
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.headers)
    # Plain HTTP: a browser ignores HSTS there, and it would be a promise the server cannot keep.
    assert "strict-transport-security" not in response.headers
    assert _cors_headers(response) == {}


def test_hsts_only_over_https() -> None:
    app = _app(hsts_max_age_seconds=1234)
    https = TestClient(app, base_url="https://testserver")
    assert https.get("/healthz").headers["strict-transport-security"] == "max-age=1234"
    assert https.get("/metrics").headers["strict-transport-security"] == "max-age=1234"
    http = TestClient(app, base_url="http://testserver")
    assert "strict-transport-security" not in http.get("/healthz").headers


def test_credentialed_answers_are_not_stored_unless_the_route_says_otherwise(client: TestClient) -> None:
    assert client.get("/metrics", headers=ADMIN).headers.get_list("cache-control") == ["no-store"]
    # Refused credentials too: the answer still concerns the caller's key.
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).headers["cache-control"] == "no-store"
    # A public answer to a request without credentials is left to the route.
    assert "cache-control" not in client.get("/healthz").headers
    assert client.get("/test/caches-itself", headers=ADMIN).headers.get_list("cache-control") == ["max-age=60"]


def test_a_header_the_route_sets_itself_is_kept(client: TestClient) -> None:
    response = client.get("/test/frames-itself")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_without_configured_origins_there_is_no_cors_at_all(client: TestClient) -> None:
    simple = client.get("/metrics", headers={**ADMIN, "Origin": ALLOWED_ORIGIN})
    assert simple.status_code == 200 and _cors_headers(simple) == {}
    assert "origin" not in simple.headers.get("vary", "").lower()
    preflight = client.options(
        "/api/v1/analytics/events",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    # The app's own answer to a method its route does not take; nothing grants the browser anything.
    assert preflight.status_code == 405 and _cors_headers(preflight) == {}


def test_an_allowed_origin_is_named_back_without_credentials(cors_client: TestClient) -> None:
    response = cors_client.get("/metrics", headers={**ADMIN, "Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    cors = _cors_headers(response)
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-credentials" not in cors
    exposed = {h.strip().lower() for h in cors["access-control-expose-headers"].split(",")}
    assert {"x-cache", "retry-after", "location", "x-request-id"} <= exposed
    assert "Origin" in response.headers.get_list("vary")
    assert response.headers["x-content-type-options"] == "nosniff"
    # The second configured origin, exactly as a browser serializes it.
    other = cors_client.get("/healthz", headers={"Origin": "http://localhost:3000"})
    assert other.headers["access-control-allow-origin"] == "http://localhost:3000"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://app.example.evil", "http://app.example", "https://APP.example:443", "null"],
)
def test_any_other_origin_gets_no_cors_headers(cors_client: TestClient, origin: str) -> None:
    response = cors_client.get("/metrics", headers={**ADMIN, "Origin": origin})
    # Served as to any client without an Origin (CORS is the browser's check), granting the page nothing.
    assert response.status_code == 200
    assert _cors_headers(response) == {}
    assert "Origin" in response.headers.get_list("vary")


def test_a_preflight_from_an_allowed_origin_is_answered_here(cors_client: TestClient) -> None:
    response = cors_client.options(
        "/api/v1/analytics/events",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 204, response.text
    cors = _cors_headers(response)
    assert cors["access-control-allow-origin"] == ALLOWED_ORIGIN
    methods = {m.strip() for m in cors["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "DELETE"}
    allowed = {h.strip().lower() for h in cors["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "cache-control"} == allowed
    assert int(cors["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in cors
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("origin", "method", "headers", "named"),
    [
        ("https://evil.example", "POST", "content-type", "https://evil.example"),
        (ALLOWED_ORIGIN, "PATCH", "content-type", "PATCH"),
        (ALLOWED_ORIGIN, "POST", "content-type, x-forwarded-user", "x-forwarded-user"),
    ],
)
def test_a_refused_preflight_says_what_was_refused(
    cors_client: TestClient, origin: str, method: str, headers: str, named: str
) -> None:
    response = cors_client.options(
        "/api/v1/analytics/events",
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden" and named in body["message"]
    assert _cors_headers(response) == {}
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_options_request_that_is_no_preflight_reaches_the_app(cors_client: TestClient) -> None:
    response = cors_client.options("/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
