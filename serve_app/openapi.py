"""What the OpenAPI document says about errors: one error body schema, and the statuses a route may answer.

Every error answer has the body ``{"error": <code>, "message": <text>, "details": <optional>}``
(core/errors.py); routes list the statuses they can return with ``responses=error_responses(...)``.
``openapi_document`` builds the app's document and removes what FastAPI adds on its own but the
service never answers (its 422 "HTTPValidationError": parameter errors are 400s here), and marks
the routes that document a 401 as needing the bearer API key.

Routes that take a JSON body read it themselves (size limit first, then each field checked with an
error naming it), so FastAPI cannot see the body's model: ``json_body`` documents it from the same
model (or typed dict) the route validates with, under components/schemas.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

_SCHEMA_REF = "#/components/schemas/{model}"
# Body schemas by component name, registered by the routes' json_body(...) as their modules load.
_REQUEST_BODIES: dict[str, Any] = {}


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: str = Field(description="a stable code: invalid_request, unauthenticated, forbidden, not_found, ...")
    message: str = Field(description="what is wrong, naming the field or limit")
    details: Any = Field(default=None, description="the field(s) at fault, or the limit that was reached")


class BatchEventError(BaseModel):
    index: int = Field(description="the event's position in the batch")
    field: str
    code: str = Field(
        description="too_large, too_deep, too_many_keys, unknown_field, missing_field, invalid_value, not_an_object, "
        "timestamp_out_of_range"
    )
    message: str


class BatchResult(BaseModel):
    """The answer to a batch: 200 when at least one event was stored, 422 when none could be."""

    model_config = ConfigDict(extra="forbid")

    accepted: int
    rejected: int
    duplicates: int
    dropped: int = Field(description="events the consent policy left unstored (docs/security.md#consent)")
    errors: list[BatchEventError]
    generated_ids: dict[str, str] = Field(description="batch index -> the id given to an event sent without one")
    batch_id: str


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(description="ready or not_ready")
    checks: dict[str, bool] = Field(description="each backing store and whether it answered")


_DESCRIPTIONS = {
    400: "Invalid request: a parameter or body field is wrong (details names it)",
    401: "Missing or invalid API key",
    403: "The key's role may not perform this operation",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Well-formed but refused: validation failed, or a query went over its budget",
    429: "The key is over the rate limit of this kind of route (the message names it); retry after Retry-After seconds",
    503: "A backing store is unavailable or the service is overloaded; retry after Retry-After seconds",
}

_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds until the key may send again", "schema": {"type": "string"}}},
}

# Every authenticated route can answer these (429: every route with a permission is rate limited).
COMMON = (400, 401, 403, 429, 503)

BEARER_SCHEME = "apiKey"


def error_responses(*statuses: int, common: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given statuses (plus COMMON), each with the error body schema."""
    wanted = sorted({*statuses, *(COMMON if common else ())})
    responses: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        responses[status] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            responses[status]["headers"] = _HEADERS[status]
    return responses


def json_body(name: str, shape: Any, description: str) -> dict[str, Any]:
    """``openapi_extra=`` for a route that reads its JSON body itself: the body is ``shape`` (a pydantic
    model, typed dict or type, or a JSON schema as a dict), documented as the component schema ``name``."""
    _REQUEST_BODIES[name] = shape
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"$ref": _SCHEMA_REF.format(model=name)}}},
        }
    }


def _add_request_bodies(document: dict[str, Any]) -> None:
    """The body schemas the document's routes refer to, with the models they are built of."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    text = json.dumps(document["paths"])
    for name, shape in _REQUEST_BODIES.items():
        if f'"{_SCHEMA_REF.format(model=name)}"' not in text:
            continue
        schema = (
            dict(shape)
            if isinstance(shape, dict)
            else TypeAdapter(shape).json_schema(ref_template=_SCHEMA_REF, mode="validation")
        )
        for nested, definition in schema.pop("$defs", {}).items():
            # Two models of one name would make one reference mean two shapes.
            if schemas.setdefault(nested, definition) != definition:
                raise ValueError(f"two different schemas are named {nested!r} in the OpenAPI document")
        schemas[name] = schema


def _drop_default_validation_error(operation: dict[str, Any]) -> None:
    """FastAPI documents a 422 with its own body on every route with parameters; the service answers
    those errors with a 400 in the error body (serve_app/http.py), so that 422 is not true here."""
    response = operation.get("responses", {}).get("422")
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    if schema.get("$ref", "").endswith("/HTTPValidationError"):
        del operation["responses"]["422"]


def _requires_bearer_key(operation: dict[str, Any]) -> None:
    """A route that can answer 401 needs a key: say so, so clients and the docs page send one."""
    if "401" in operation.get("responses", {}):
        operation["security"] = [{BEARER_SCHEME: []}]


def _drop_unreferenced(document: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove the named component schemas (in order) once nothing refers to them any more."""
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        others = {key: value for key, value in schemas.items() if key != name}
        if f'#/components/schemas/{name}"' not in json.dumps([document["paths"], others]):
            schemas.pop(name, None)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document as the service really answers (``app.openapi = ...``)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                _drop_default_validation_error(operation)
                _requires_bearer_key(operation)
        _drop_unreferenced(document, ("HTTPValidationError", "ValidationError"))
        _add_request_bodies(document)
        components = document.setdefault("components", {})
        components["securitySchemes"] = {
            BEARER_SCHEME: {"type": "http", "scheme": "bearer", "description": "an API key: Bearer ak_..."}
        }
        app.openapi_schema = document
    return app.openapi_schema
