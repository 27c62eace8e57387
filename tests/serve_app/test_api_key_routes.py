"""The API key routes over HTTP (serve_app/routes/keys.py) on the real PostgreSQL: create with an expiry
and a scope, list, rotate with and without a grace period, revoke; bad bodies are 422 naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from core.access import Role
from core.errors import AnalyticsError
from core.settings import Settings
from serve_app.auth import Authenticator
from serve_app.http import error_response, request_validation_response
from serve_app.routes.keys import router
from storage.cache import InProcessCache
from storage.metadata import MetadataStore

PATH = "/api/v1/admin/api-keys"


@dataclass
class KeyServices:
    """The part of serve_app.services.Services the key routes use."""

    settings: Settings
    metadata: MetadataStore
    auth: Authenticator


def keys_app(services: KeyServices) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(AnalyticsError)
    async def _domain_error(_: Request, exc: AnalyticsError) -> Any:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _parameter_error(_: Request, exc: RequestValidationError) -> Any:
        return request_validation_response(exc)

    app.include_router(router)
    app.state.services = services
    return app


@pytest.fixture(scope="module")
def dsn(make_database: Callable[[], str]) -> str:
    return make_database()


@pytest.fixture
async def metadata(dsn: str) -> AsyncIterator[MetadataStore]:
    store = await MetadataStore.connect(dsn)
    await store.migrate()
    await store.pool.execute("DELETE FROM api_keys")
    yield store
    await store.close()


@pytest.fixture
async def services(metadata: MetadataStore) -> KeyServices:
    # A long cache: what stops a rotated or revoked secret is the routes clearing it.
    settings = Settings(environment="test", api_key_rotation_grace_seconds=3600)
    return KeyServices(settings, metadata, Authenticator(metadata, InProcessCache(), cache_seconds=3600))


@pytest.fixture
async def http(services: KeyServices) -> AsyncIterator[Callable[[str | None], httpx.AsyncClient]]:
    transport = httpx.ASGITransport(app=keys_app(services))
    clients: list[httpx.AsyncClient] = []

    def client(key: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        made = httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)
        clients.append(made)
        return made

    yield client
    for made in clients:
        await made.aclose()


@pytest.fixture
async def admin(metadata: MetadataStore, http: Callable[[str | None], httpx.AsyncClient]) -> httpx.AsyncClient:
    _, plain = await metadata.create_api_key("admin", Role.ADMIN)
    return http(plain)


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()


async def test_create_with_expiry_and_scope_then_list(admin: httpx.AsyncClient, http) -> None:
    expires = in_an_hour()
    body = {"name": "news bot", "role": "viewer", "expires_at": expires, "scope": {"categories": ["news"]}}
    response = await admin.post(PATH, json=body)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["expires_at"] == expires and made["status"] == "active"
    assert made["scope"] == {"categories": ["news"], "content_ids": []}
    assert made["key"].startswith("ak_") and made["key_prefix"] == made["key"][:8]
    listed = {k["id"]: k for k in (await admin.get(PATH)).json()["keys"]}
    shown = listed[made["id"]]
    assert "key" not in shown and all(made["key"] not in str(v) for v in shown.values())
    assert {k: shown[k] for k in ("expires_at", "scope", "rotated_at", "previous_secret_in_grace")} == {
        "expires_at": expires,
        "scope": {"categories": ["news"], "content_ids": []},
        "rotated_at": None,
        "previous_secret_in_grace": False,
    }


async def test_an_expiry_without_an_offset_is_utc(admin: httpx.AsyncClient) -> None:
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0, tzinfo=None)
    response = await admin.post(PATH, json={"name": "n", "role": "viewer", "expires_at": naive.isoformat()})
    assert response.status_code == 201
    assert response.json()["expires_at"] == naive.replace(tzinfo=UTC).isoformat()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "n", "role": "viewer", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "n", "role": "viewer", "scope": {"categories": "news"}}, "scope.categories"),
        ({"name": "n", "role": "viewer", "scope": {"content_ids": [""]}}, "scope.content_ids.0"),
        ({"name": "n", "role": "viewer", "scope": {"content_ids": [7]}}, "scope.content_ids.0"),
        ({"name": "n", "role": "viewer", "scope": {"content_ids": ["c"] * 1001}}, "scope.content_ids"),
        ({"name": "n", "role": "viewer", "scope": {"categories": ["x" * 257]}}, "scope.categories.0"),
        ({"name": "n", "role": "viewer", "scope": {"tags": ["a"]}}, "scope.tags"),
        ({"name": "n", "role": "viewer", "scope": []}, "scope"),
        ({"name": "n", "role": "root"}, "role"),
    ],
)
async def test_bad_create_bodies_are_422_naming_the_field(admin: httpx.AsyncClient, body, field) -> None:
    response = await admin.post(PATH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field
    assert response.json()["message"].startswith(f"{field}: ")


async def test_past_expiry_message(admin: httpx.AsyncClient) -> None:
    response = await admin.post(PATH, json={"name": "n", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"})
    assert response.json()["message"] == "expires_at: must be in the future"


async def test_rotate_with_the_default_grace_then_revoke(admin: httpx.AsyncClient, http) -> None:
    made = (await admin.post(PATH, json={"name": "svc", "role": "service"})).json()
    old = http(made["key"])
    # The old secret is in use (and cached) before the rotation.
    assert (await old.get(PATH)).status_code == 403
    response = await admin.post(f"{PATH}/{made['id']}/rotate")
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["id"] == made["id"] and rotated["key"] != made["key"]
    assert rotated["previous_secret_in_grace"] is True and rotated["rotated_at"] is not None
    until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    new = http(rotated["key"])
    # Both secrets authenticate during the grace period (403: a service key may not manage keys).
    assert (await old.get(PATH)).status_code == (await new.get(PATH)).status_code == 403
    listed = {k["id"]: k for k in (await admin.get(PATH)).json()["keys"]}[made["id"]]
    assert listed["previous_secret_in_grace"] is True and listed["key_prefix"] == rotated["key"][:8]
    assert (await admin.delete(f"{PATH}/{made['id']}")).status_code == 200
    for client in (old, new):
        refused = await client.get(PATH)
        assert (refused.status_code, refused.json()["message"]) == (401, "API key is not valid or has been revoked")


async def test_rotate_with_no_grace_stops_the_old_secret_at_once(admin: httpx.AsyncClient, http) -> None:
    made = (await admin.post(PATH, json={"name": "ops", "role": "admin"})).json()
    old = http(made["key"])
    assert (await old.get(PATH)).status_code == 200
    rotated = await admin.post(f"{PATH}/{made['id']}/rotate", json={"grace_seconds": 0})
    assert rotated.status_code == 200 and rotated.json()["previous_secret_in_grace"] is False
    assert (await old.get(PATH)).status_code == 401
    assert (await http(rotated.json()["key"]).get(PATH)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace_seconds": -1}, "grace_seconds"),
        ({"grace_seconds": 30 * 86_400 + 1}, "grace_seconds"),
        ({"grace_seconds": "60"}, "grace_seconds"),
        ({"grace_seconds": True}, "grace_seconds"),
        ({"grace": 60}, "grace"),
        ([], "(body)"),
    ],
)
async def test_bad_rotate_bodies_are_422_naming_the_field(admin: httpx.AsyncClient, body, field) -> None:
    made = (await admin.post(PATH, json={"name": "svc", "role": "service"})).json()
    response = await admin.post(f"{PATH}/{made['id']}/rotate", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == field
    # Nothing changed: the key still has its first secret only.
    listed = {k["id"]: k for k in (await admin.get(PATH)).json()["keys"]}[made["id"]]
    assert listed["rotated_at"] is None


async def test_rotating_an_unknown_or_revoked_key(admin: httpx.AsyncClient) -> None:
    missing = await admin.post(f"{PATH}/key_missing/rotate")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    made = (await admin.post(PATH, json={"name": "gone", "role": "viewer"})).json()
    await admin.delete(f"{PATH}/{made['id']}")
    revoked = await admin.post(f"{PATH}/{made['id']}/rotate", json={})
    assert (revoked.status_code, revoked.json()["error"]) == (409, "conflict")


async def test_only_admins_manage_keys(metadata: MetadataStore, http) -> None:
    _, analyst = await metadata.create_api_key("analyst", Role.ANALYST)
    response = await http(analyst).post(f"{PATH}/key_x/rotate")
    assert response.status_code == 403
    assert (await http(None).post(f"{PATH}/key_x/rotate")).status_code == 401
