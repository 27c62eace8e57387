"""Saved queries over both transports, on the real PostgreSQL: the GraphQL fields of
graphql_schema/saved_queries.py in a local schema built from its mixins, and the REST routes of
serve_app/routes/saved_queries.py in an app holding only that router (real keys, real authenticator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import strawberry
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from core.access import Principal, Role
from core.errors import AnalyticsError
from graphql_schema.context import GraphQLContext
from graphql_schema.saved_queries import SavedQueryMutations, SavedQueryQueries
from semantic.saved_queries import SavedKind, SavedQueryService
from serve_app.auth import Authenticator
from serve_app.http import error_response, request_validation_response
from serve_app.routes.saved_queries import MAX_BODY_BYTES, SavedQueryBody, SavedQueryList, SavedQueryRunBody, router
from storage.cache import InProcessCache
from storage.metadata import MetadataStore
from tests.graphql.fakes import FakeServices


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: str = Field(min_length=1)


class FunnelStandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: list[Step] = Field(min_length=2)
    window_days: int = Field(default=7, ge=1, le=90)


async def count_steps(definition: dict[str, Any], principal: Principal) -> FunnelStandIn:
    # A pydantic answer, as the real runners give: the route turns it into JSON.
    return FunnelStandIn.model_validate({**definition, "window_days": len(definition["steps"])})


KINDS = {
    "funnel": SavedKind.from_model(FunnelStandIn, run=count_steps),
    "paths": SavedKind(validate=lambda definition: {"start": str(definition.get("start", "entry"))}),
}
FUNNEL = {"steps": [{"event_type": "content_view"}, {"event_type": "content_play"}]}
STORED_FUNNEL = {**FUNNEL, "window_days": 7}


@pytest.fixture
async def metadata(migrated: MetadataStore) -> MetadataStore:
    # audit_log refuses TRUNCATE (append-only); the replica role of the test's superuser skips that trigger.
    await migrated.pool.execute(
        "SET session_replication_role = replica; "
        "TRUNCATE saved_queries, audit_log, api_keys; RESET session_replication_role"
    )
    return migrated


@pytest.fixture
def service(metadata: MetadataStore) -> SavedQueryService:
    return SavedQueryService.build(metadata, KINDS)


# ---- GraphQL ---------------------------------------------------------------------------------


@strawberry.type
class Query(SavedQueryQueries):
    pass


@strawberry.type
class Mutation(SavedQueryMutations):
    pass


schema = strawberry.Schema(query=Query, mutation=Mutation)


OWNER = Principal(key_id="key_owner", name="owner", role=Role.ANALYST)
ADMIN = Principal(key_id="key_admin", name="admin", role=Role.ADMIN)
VIEWER = Principal(key_id="key_viewer", name="viewer", role=Role.VIEWER)
STRANGER = Principal(key_id="key_stranger", name="stranger", role=Role.ANALYST)

FIELDS = "id name description kind definition ownerKeyId ownerName sharedWithRoles sharedWithKeys version createdAt"
CREATE = f"""mutation($query: SavedQueryInput!) {{ createSavedQuery(query: $query) {{ {FIELDS} }} }}"""
UPDATE = f"""mutation($id: String!, $changes: SavedQueryChangesInput!) {{
  updateSavedQuery(id: $id, changes: $changes) {{ {FIELDS} }} }}"""
DELETE = "mutation($id: String!, $version: Int) { deleteSavedQuery(id: $id, version: $version) { id name } }"
ONE = f"query($id: String!) {{ savedQuery(id: $id) {{ {FIELDS} }} }}"
LIST = """query($kind: String, $limit: Int! = 50, $offset: Int! = 0) {
  savedQueries(kind: $kind, limit: $limit, offset: $offset) { total limit offset items { id kind } } }"""


async def gql(
    service: SavedQueryService, principal: Principal | None, document: str, /, **variables: Any
) -> strawberry.types.ExecutionResult:
    context = GraphQLContext.build(principal, FakeServices.build())
    context.saved_queries = service
    return await schema.execute(document, variable_values=variables, context_value=context)


def data(result: strawberry.types.ExecutionResult) -> Any:
    assert result.errors is None, result.errors
    return result.data


def only_error(result: strawberry.types.ExecutionResult) -> dict[str, Any]:
    assert result.errors is not None and len(result.errors) == 1, result.errors
    return result.errors[0].formatted


async def gql_create(service: SavedQueryService, principal: Principal = OWNER, **fields: Any) -> dict[str, Any]:
    query = {"name": "Views to plays", "kind": "funnel", "definition": FUNNEL, **fields}
    return data(await gql(service, principal, CREATE, query=query))["createSavedQuery"]


def test_the_fields_and_their_arguments():
    sdl = schema.as_str()
    for line in (
        "savedQuery(id: String!): SavedQuery",
        "savedQueries(kind: String = null, limit: Int! = 50, offset: Int! = 0): SavedQueryPage!",
        "createSavedQuery(query: SavedQueryInput!): SavedQuery!",
        "updateSavedQuery(id: String!, changes: SavedQueryChangesInput!): SavedQuery!",
        "deleteSavedQuery(id: String!, version: Int = null): SavedQuery!",
        "definition: JSON!",
    ):
        assert line in sdl, line


async def test_graphql_create_read_list_update_delete(service, metadata):
    created = await gql_create(service, description="weekly", sharedWithRoles=["viewer"], sharedWithKeys=["key_friend"])
    assert {k: v for k, v in created.items() if k not in ("id", "createdAt")} == {
        "name": "Views to plays",
        "description": "weekly",
        "kind": "funnel",
        "definition": STORED_FUNNEL,
        "ownerKeyId": "key_owner",
        "ownerName": "owner",
        "sharedWithRoles": ["viewer"],
        "sharedWithKeys": ["key_friend"],
        "version": 1,
    }
    query_id = created["id"]
    assert data(await gql(service, VIEWER, ONE, id=query_id))["savedQuery"] == created
    paths = await gql_create(service, name="From search", kind="paths", definition={"start": "search"})

    page = data(await gql(service, OWNER, LIST))["savedQueries"]
    assert page == {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "items": [{"id": paths["id"], "kind": "paths"}, {"id": query_id, "kind": "funnel"}],
    }
    assert data(await gql(service, OWNER, LIST, kind="funnel", limit=1))["savedQueries"]["items"] == [
        {"id": query_id, "kind": "funnel"}
    ]
    assert data(await gql(service, OWNER, LIST, limit=1, offset=1))["savedQueries"]["items"] == [
        {"id": query_id, "kind": "funnel"}
    ]
    # Shared with viewers: the viewer sees the funnel only.
    assert data(await gql(service, VIEWER, LIST))["savedQueries"]["total"] == 1

    changes = {"version": 1, "name": "Renamed", "definition": {"steps": FUNNEL["steps"] * 2}}
    updated = data(await gql(service, OWNER, UPDATE, id=query_id, changes=changes))["updateSavedQuery"]
    assert (updated["name"], updated["version"], updated["definition"]) == (
        "Renamed",
        2,
        {"steps": FUNNEL["steps"] * 2, "window_days": 7},
    )
    assert updated["sharedWithRoles"] == ["viewer"] and updated["description"] == "weekly"

    deleted = data(await gql(service, OWNER, DELETE, id=query_id, version=2))["deleteSavedQuery"]
    assert deleted == {"id": query_id, "name": "Renamed"}
    assert data(await gql(service, OWNER, ONE, id=query_id))["savedQuery"] is None
    actions = [(e["action"], e["target"]) for e in await metadata.audit_entries()]
    assert actions == [
        ("saved_query.delete", query_id),
        ("saved_query.update", query_id),
        ("saved_query.create", paths["id"]),
        ("saved_query.create", query_id),
    ]


async def test_graphql_a_stranger_sees_null_and_gets_not_found(service):
    created = await gql_create(service, sharedWithRoles=["viewer"])
    assert data(await gql(service, STRANGER, ONE, id=created["id"]))["savedQuery"] is None
    assert data(await gql(service, STRANGER, LIST))["savedQueries"] == {
        "total": 0,
        "limit": 50,
        "offset": 0,
        "items": [],
    }
    error = only_error(await gql(service, STRANGER, UPDATE, id=created["id"], changes={"version": 1, "name": "x"}))
    assert error["message"] == f"saved query {created['id']!r} does not exist"
    assert error["extensions"] == {"code": "not_found", "status": 404, "details": {"field": "id"}}
    assert only_error(await gql(service, STRANGER, DELETE, id=created["id"]))["extensions"]["status"] == 404
    # The same answer for an id that does not exist at all.
    assert (
        only_error(await gql(service, OWNER, DELETE, id="sq_nope"))["message"] == "saved query 'sq_nope' does not exist"
    )


async def test_graphql_refusals(service):
    created = await gql_create(service, sharedWithRoles=["viewer"])
    forbidden = only_error(await gql(service, VIEWER, UPDATE, id=created["id"], changes={"version": 1, "name": "x"}))
    assert forbidden["extensions"] == {"code": "forbidden", "status": 403}

    stale = await gql(service, ADMIN, UPDATE, id=created["id"], changes={"version": 1, "description": "a"})
    assert data(stale)["updateSavedQuery"]["version"] == 2
    conflict = only_error(await gql(service, OWNER, UPDATE, id=created["id"], changes={"version": 1, "name": "b"}))
    assert conflict["extensions"] == {
        "code": "conflict",
        "status": 409,
        "details": {"field": "version", "current_version": 2},
    }
    taken = only_error(
        await gql(service, OWNER, CREATE, query={"name": "Views to plays", "kind": "paths", "definition": {}})
    )
    assert taken["extensions"] == {"code": "conflict", "status": 409, "details": {"field": "name"}}

    invalid = only_error(
        await gql(service, OWNER, CREATE, query={"name": "n", "kind": "funnel", "definition": {"steps": []}})
    )
    assert invalid["extensions"]["code"] == "validation_failed"
    assert [d["field"] for d in invalid["extensions"]["details"]] == ["definition.steps"]
    not_an_object = only_error(
        await gql(service, OWNER, CREATE, query={"name": "n", "kind": "funnel", "definition": [1]})
    )
    assert not_an_object["extensions"]["details"][0]["field"] == "definition"
    bad_role = only_error(
        await gql(
            service,
            OWNER,
            CREATE,
            query={"name": "n", "kind": "funnel", "definition": FUNNEL, "sharedWithRoles": ["everyone"]},
        )
    )
    assert bad_role["extensions"]["details"][0]["field"] == "shared_with_roles.0"


@pytest.mark.parametrize(
    ("principal", "code"),
    [(None, "unauthenticated"), (Principal(key_id="key_svc", name="svc", role=Role.SERVICE), "forbidden")],
)
async def test_graphql_fields_need_the_read_analytics_permission(service, principal, code):
    for document, variables in (
        (ONE, {"id": "sq_x"}),
        (LIST, {}),
        (CREATE, {"query": {"name": "n", "kind": "funnel", "definition": FUNNEL}}),
        (DELETE, {"id": "sq_x"}),
    ):
        assert only_error(await gql(service, principal, document, **variables))["extensions"]["code"] == code
    assert (await service.list(ADMIN)).total == 0


# ---- REST ------------------------------------------------------------------------------------


@dataclass
class RouteServices:
    """The part of serve_app.services.Services the saved-query routes use."""

    auth: Authenticator
    saved_queries: SavedQueryService


def saved_query_app(services: RouteServices) -> FastAPI:
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


@dataclass
class Caller:
    http: httpx.AsyncClient
    key_id: str


@pytest.fixture
async def callers(metadata, service) -> AsyncIterator[dict[Role | str, Caller]]:
    """One real API key per role, plus a second analyst (a stranger to the owner's queries)."""
    app = saved_query_app(RouteServices(Authenticator(metadata, InProcessCache(), cache_seconds=0), service))
    transport = httpx.ASGITransport(app=app)
    made: dict[Role | str, Caller] = {}
    for who, role in [*((r, r) for r in Role), ("stranger", Role.ANALYST)]:
        key, plain = await metadata.create_api_key(str(who), role)
        made[who] = Caller(
            httpx.AsyncClient(
                transport=transport, base_url="http://test", headers={"Authorization": f"Bearer {plain}"}
            ),
            key.id,
        )
    made["nobody"] = Caller(httpx.AsyncClient(transport=transport, base_url="http://test"), "")
    yield made
    for caller in made.values():
        await caller.http.aclose()


PATH = "/api/v1/analytics/saved-queries"


async def test_rest_crud_and_run(callers, metadata):
    owner = callers[Role.ANALYST]
    sent = {
        "name": "Views to plays",
        "kind": "funnel",
        "definition": FUNNEL,
        "shared_with_keys": [callers[Role.VIEWER].key_id],
    }
    response = await owner.http.post(PATH, json=sent)
    assert response.status_code == 201, response.text
    created = SavedQueryBody.model_validate(response.json())
    assert response.headers["location"] == f"{PATH}/{created.id}"
    assert (created.name, created.definition, created.owner_key_id, created.version) == (
        "Views to plays",
        STORED_FUNNEL,
        owner.key_id,
        1,
    )

    got = await callers[Role.VIEWER].http.get(f"{PATH}/{created.id}")
    assert got.status_code == 200 and got.json() == response.json()
    listed = SavedQueryList.model_validate((await owner.http.get(PATH, params={"kind": "funnel"})).json())
    assert ([s.id for s in listed.items], listed.total, listed.limit, listed.offset) == ([created.id], 1, 50, 0)

    put = await owner.http.put(f"{PATH}/{created.id}", json={"version": 1, "description": "weekly"})
    assert put.status_code == 200, put.text
    assert (put.json()["description"], put.json()["version"]) == ("weekly", 2)

    run = await callers[Role.VIEWER].http.post(f"{PATH}/{created.id}/run")
    assert run.status_code == 200, run.text
    assert SavedQueryRunBody.model_validate(run.json()).model_dump() == {
        "id": created.id,
        "kind": "funnel",
        "version": 2,
        "result": {**FUNNEL, "window_days": len(FUNNEL["steps"])},
    }

    stale_delete = await owner.http.delete(f"{PATH}/{created.id}", params={"version": 1})
    assert stale_delete.status_code == 409
    deleted = await owner.http.delete(f"{PATH}/{created.id}", params={"version": 2})
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await owner.http.get(f"{PATH}/{created.id}")).status_code == 404
    actions = [(e["action"], e["actor_key_id"]) for e in await metadata.audit_entries()]
    assert actions == [
        ("saved_query.delete", owner.key_id),
        ("saved_query.update", owner.key_id),
        ("saved_query.create", owner.key_id),
    ]


async def test_rest_who_may_do_what(callers):
    owner = callers[Role.ANALYST]
    sent = {"name": "q", "kind": "funnel", "definition": FUNNEL, "shared_with_roles": ["content_manager"]}
    query_id = (await owner.http.post(PATH, json=sent)).json()["id"]
    one = f"{PATH}/{query_id}"

    readers = (owner, callers[Role.ADMIN], callers[Role.CONTENT_MANAGER])
    assert [(await c.http.get(one)).status_code for c in readers] == [200, 200, 200]
    for caller in (callers["stranger"], callers[Role.VIEWER]):
        for method, path in (("GET", one), ("PUT", one), ("DELETE", one), ("POST", f"{one}/run")):
            response = await caller.http.request(
                method, path, json={"version": 1, "name": "x"} if method == "PUT" else None
            )
            if caller is callers[Role.VIEWER] and method in ("PUT", "DELETE"):
                # A viewer may not change saved queries at all: refused before any lookup.
                assert response.status_code == 403, (method, response.text)
                continue
            assert response.status_code == 404, (method, response.text)
            assert response.json() == {
                "error": "not_found",
                "message": f"saved query {query_id!r} does not exist",
                "details": {"field": "id"},
            }
    shared = callers[Role.CONTENT_MANAGER]
    assert (await shared.http.put(one, json={"version": 1, "name": "mine"})).status_code == 403
    assert (await shared.http.delete(one)).status_code == 403
    admin_put = await callers[Role.ADMIN].http.put(one, json={"version": 1, "shared_with_roles": ["viewer"]})
    assert admin_put.status_code == 200 and admin_put.json()["owner_key_id"] == owner.key_id
    assert (await callers[Role.VIEWER].http.get(one)).status_code == 200
    assert (await shared.http.get(one)).status_code == 404

    service_key = await callers[Role.SERVICE].http.get(PATH)
    assert service_key.status_code == 403 and "may not read saved queries" in service_key.json()["message"]
    nobody = await callers["nobody"].http.post(PATH, json=sent)
    assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"


async def test_rest_errors_name_the_field(callers):
    owner = callers[Role.ANALYST]
    base = {"name": "q", "kind": "funnel", "definition": FUNNEL}
    assert (await owner.http.post(PATH, json=base)).status_code == 201

    taken = await owner.http.post(PATH, json=base)
    assert (taken.status_code, taken.json()["details"]) == (409, {"field": "name"})
    invalid = await owner.http.post(PATH, json={**base, "name": "r", "definition": {"steps": [{"event_type": ""}] * 2}})
    assert invalid.status_code == 422
    assert [d["field"] for d in invalid.json()["details"]] == [
        "definition.steps.0.event_type",
        "definition.steps.1.event_type",
    ]
    unknown_kind = await owner.http.post(PATH, json={**base, "kind": "cohort"})
    assert (unknown_kind.status_code, unknown_kind.json()["details"][0]["field"]) == (422, "kind")

    query_id = (await owner.http.get(PATH)).json()["items"][0]["id"]
    no_version = await owner.http.put(f"{PATH}/{query_id}", json={"name": "r"})
    assert (no_version.status_code, no_version.json()["details"][0]["field"]) == (422, "version")
    await owner.http.put(f"{PATH}/{query_id}", json={"version": 1, "name": "r"})
    conflict = await owner.http.put(f"{PATH}/{query_id}", json={"version": 1, "name": "s"})
    assert (conflict.status_code, conflict.json()["details"]) == (409, {"field": "version", "current_version": 2})

    paths = await owner.http.post(PATH, json={"name": "p", "kind": "paths", "definition": {}})
    cannot_run = await owner.http.post(f"{PATH}/{paths.json()['id']}/run")
    assert (cannot_run.status_code, cannot_run.json()["message"]) == (400, "kind 'paths' cannot be run yet")

    too_large = await owner.http.post(PATH, content=b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}')
    assert too_large.status_code == 413
    malformed = await owner.http.post(PATH, content=b"{not json")
    assert (malformed.status_code, malformed.json()["error"]) == (400, "invalid_request")
    nul_id = await owner.http.get(f"{PATH}/sq_%00")
    assert (nul_id.status_code, nul_id.json()["error"]) == (404, "not_found")
    huge_version = await owner.http.delete(f"{PATH}/{query_id}", params={"version": 2**40})
    assert (huge_version.status_code, huge_version.json()["details"][0]["field"]) == (400, "version")
    nul_name = await owner.http.post(PATH, json={**base, "name": "a\x00"})
    assert (nul_name.status_code, nul_name.json()["details"][0]["field"]) == (422, "name")
    unknown_filter = await owner.http.get(PATH, params={"kind": "cohort"})
    assert (unknown_filter.status_code, unknown_filter.json()["details"]) == (400, {"field": "kind"})
    bad_limit = await owner.http.get(PATH, params={"limit": 0})
    assert (bad_limit.status_code, bad_limit.json()["details"][0]["field"]) == (400, "limit")
