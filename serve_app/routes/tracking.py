"""Convenience tracking routes: a typed body turned into a regular event, stored the same way."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import FieldError, ValidationFailed
from core.models import EVENT_IN
from core.taxonomy import CONTENT_VIEW, CUSTOM_EVENT_TYPE_PATTERN, SEARCH_QUERY
from serve_app.deps import EventIngester, services_of
from serve_app.http import read_json
from serve_app.openapi import json_body
from serve_app.routes.events import SINGLE_EVENT_RESPONSES, ingest_single

router = APIRouter(prefix="/api/v1/analytics/track", tags=["tracking"])


def _event_body(description: str, fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A tracking body's schema: an event's fields (the route sets event_type) and the route's own."""
    event = EVENT_IN.json_schema(mode="validation")
    properties = {name: schema for name, schema in event["properties"].items() if name != "event_type"}
    return {
        "type": "object",
        "description": description,
        "properties": {**properties, **fields},
        "required": required,
        "additionalProperties": False,
    }


_TEXT = {"type": "string", "minLength": 1}
_NUMBER = {"type": "number"}
CONTENT_VIEW_BODY = _event_body(
    "A content view; duration_seconds, position and source go into properties",
    {"content_id": {**_TEXT, "maxLength": 256}, "duration_seconds": _NUMBER, "position": _NUMBER, "source": _TEXT},
    ["content_id"],
)
SEARCH_BODY = _event_body(
    "A search; query, results_count, filters and page go into properties",
    {
        "query": {**_TEXT, "maxLength": 1024},
        "results_count": {"type": "integer", "minimum": 0},
        "filters": {"type": "object"},
        "page": {"type": "integer"},
    },
    ["query"],
)
USER_ACTION_BODY = _event_body(
    "A user action: the action is the event type",
    {
        "action": {"type": "string", "pattern": CUSTOM_EVENT_TYPE_PATTERN.pattern},
        "user_id": {**_TEXT, "maxLength": 256},
    },
    ["action", "user_id"],
)


def _body_object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationFailed([FieldError(field="(body)", message="must be a JSON object", code="not_an_object")])
    return dict(raw)


def _required_text(body: dict[str, Any], name: str, max_length: int) -> str:
    value = body.get(name)
    if value is None:
        raise ValidationFailed([FieldError(field=name, message="is required", code="missing_field")])
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        message = f"must be a non-empty string of at most {max_length} characters"
        raise ValidationFailed([FieldError(field=name, message=message)])
    return value.strip()


def _move_to_properties(body: dict[str, Any], names: tuple[str, ...]) -> None:
    properties = body.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ValidationFailed([FieldError(field="properties", message="must be a JSON object", code="not_an_object")])
    for name in names:
        if name in body:
            properties[name] = body.pop(name)
    body["properties"] = properties


@router.post(
    "/content-view",
    status_code=201,
    summary="Track a content view",
    responses=SINGLE_EVENT_RESPONSES,
    openapi_extra=json_body("ContentViewIn", CONTENT_VIEW_BODY, "The view"),
)
async def track_content_view(request: Request, _: EventIngester) -> Response:
    services = services_of(request)
    body = _body_object(await read_json(request, max_bytes=services.settings.max_event_bytes))
    _required_text(body, "content_id", 256)
    _move_to_properties(body, ("duration_seconds", "position", "source"))
    return await ingest_single(services, {**body, "event_type": CONTENT_VIEW}, "content_view")


@router.post(
    "/search",
    status_code=201,
    summary="Track a search query",
    responses=SINGLE_EVENT_RESPONSES,
    openapi_extra=json_body("SearchIn", SEARCH_BODY, "The search"),
)
async def track_search(request: Request, _: EventIngester) -> Response:
    services = services_of(request)
    body = _body_object(await read_json(request, max_bytes=services.settings.max_event_bytes))
    _required_text(body, "query", 1024)
    count = body.get("results_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise ValidationFailed([FieldError(field="results_count", message="must be a whole number >= 0")])
    _move_to_properties(body, ("query", "results_count", "filters", "page"))
    return await ingest_single(services, {**body, "event_type": SEARCH_QUERY}, "search")


@router.post(
    "/user-action",
    status_code=201,
    summary="Track a user action",
    responses=SINGLE_EVENT_RESPONSES,
    openapi_extra=json_body("UserActionIn", USER_ACTION_BODY, "The action"),
)
async def track_user_action(request: Request, _: EventIngester) -> Response:
    services = services_of(request)
    body = _body_object(await read_json(request, max_bytes=services.settings.max_event_bytes))
    action = _required_text(body, "action", 64)
    if not CUSTOM_EVENT_TYPE_PATTERN.match(action):
        message = "must be an event type in lower snake case, e.g. 'user_login' or 'content_like'"
        raise ValidationFailed([FieldError(field="action", message=message)])
    _required_text(body, "user_id", 256)
    body.pop("action")
    return await ingest_single(services, {**body, "event_type": action}, "user_action")
