"""Saved query definitions: /api/v1/analytics/saved-queries (semantic/saved_queries.py holds the rules).

A saved query the caller may not see answers 404, as an id that does not exist does; one shared
with the caller but not owned by it answers 403 to a change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from semantic.saved_queries import (
    DEFAULT_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    MAX_VERSION,
    SavedQueryCreate,
    SavedQueryUpdate,
)
from serve_app.deps import SavedQueryManager, SavedQueryReader, ServicesDep
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body

PREFIX = "/api/v1/analytics/saved-queries"
# A definition is at most 32 KiB (MAX_DEFINITION_BYTES); the rest is the name, description and up to
# 100 shared key ids.
MAX_BODY_BYTES = 64 * 1024

router = APIRouter(prefix=PREFIX, tags=["saved queries"])


class SavedQueryBody(BaseModel):
    """A saved query as the routes answer it (storage.saved_queries.SavedQuery.to_dict)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    description: str
    kind: str = Field(description="query, funnel, retention, paths or stickiness")
    definition: dict[str, Any] = Field(description="the definition as the kind normalized it")
    owner_key_id: str
    owner_name: str
    shared_with_roles: list[str]
    shared_with_keys: list[str]
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="goes up by one with every change; send it back with PUT")


class SavedQueryList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[SavedQueryBody]
    total: int = Field(description="how many the caller may see with this kind filter, on all pages")
    limit: int
    offset: int


class SavedQueryRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    version: int = Field(description="the version of the definition that ran")
    result: Any = Field(description="the kind's answer, as its own route answers it")


def _answer(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


@router.post(
    "",
    status_code=201,
    summary="Save a query, funnel, retention, paths or stickiness definition; the caller's key owns it",
    responses={201: _answer(SavedQueryBody, "Saved; Location names it"), **error_responses(409, 413, 422)},
    openapi_extra=json_body("SavedQueryCreate", SavedQueryCreate, "The definition to save (docs/queries.md)"),
)
async def create_saved_query(request: Request, services: ServicesDep, principal: SavedQueryManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    saved = await services.saved_queries.create(body, principal)
    return json_response(saved.to_dict(), status_code=201, headers={"Location": f"{PREFIX}/{saved.id}"})


@router.get(
    "",
    summary="The saved queries the caller may see (owned, shared with its role or key; all for admins), newest first",
    responses={200: _answer(SavedQueryList, "One page of saved queries"), **error_responses()},
)
async def list_saved_queries(
    services: ServicesDep,
    principal: SavedQueryReader,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    page = await services.saved_queries.list(principal, kind=kind, limit=limit, offset=offset)
    return json_response(
        {"items": [s.to_dict() for s in page.items], "total": page.total, "limit": page.limit, "offset": page.offset}
    )


@router.get(
    "/{query_id}",
    summary="One saved query",
    responses={200: _answer(SavedQueryBody, "The saved query"), **error_responses(404)},
)
async def get_saved_query(query_id: str, services: ServicesDep, principal: SavedQueryReader) -> Response:
    return json_response((await services.saved_queries.get(query_id, principal)).to_dict())


@router.put(
    "/{query_id}",
    summary="Change a saved query's name, description, definition or sharing (owner or admin); send the version read",
    responses={200: _answer(SavedQueryBody, "The saved query as changed"), **error_responses(404, 409, 413, 422)},
    openapi_extra=json_body("SavedQueryUpdate", SavedQueryUpdate, "The fields to change and the version read"),
)
async def update_saved_query(
    query_id: str, request: Request, services: ServicesDep, principal: SavedQueryManager
) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    return json_response((await services.saved_queries.update(query_id, body, principal)).to_dict())


@router.delete(
    "/{query_id}",
    status_code=204,
    summary="Delete a saved query (owner or admin); with ?version=, only if it is still that version",
    responses=error_responses(404, 409),
)
async def delete_saved_query(
    query_id: str,
    services: ServicesDep,
    principal: SavedQueryManager,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    await services.saved_queries.delete(query_id, principal, version=version)
    return Response(status_code=204)


@router.post(
    "/{query_id}/run",
    summary="Run a saved query with its kind's runner and return the answer",
    responses={200: _answer(SavedQueryRunBody, "The kind's answer"), **error_responses(404, 422)},
)
async def run_saved_query(query_id: str, services: ServicesDep, principal: SavedQueryReader) -> Response:
    run = await services.saved_queries.run(query_id, principal)
    saved = run.saved_query
    return json_response(
        {"id": saved.id, "kind": saved.kind, "version": saved.version, "result": to_jsonable_python(run.result)}
    )
