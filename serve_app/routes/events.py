"""Event collection and raw event queries: /api/v1/analytics/events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from core.errors import NotFound
from core.models import EventIn
from semantic.content_scope import require_applicable
from semantic.ingestion import IngestResult
from semantic.raw_events import DEFAULT_PAGE_SIZE, RawEventQuery
from serve_app.deps import EventIngester, RawEventQuerier, RawEventReader, ServicesDep, services_of
from serve_app.http import json_response, read_json
from serve_app.openapi import BatchResult, error_responses, json_body
from serve_app.periods import IsoDateTime
from serve_app.services import Services

router = APIRouter(prefix="/api/v1/analytics", tags=["events"])

# A single event: 201 stored, 200 when its id was already stored (nothing is stored twice).
SINGLE_EVENT_RESPONSES = {
    200: {"description": "A duplicate: an event with this id is already stored"},
    **error_responses(413, 422),
}
BATCH_RESPONSES = {
    200: {"model": BatchResult, "description": "At least one event stored; errors lists the refused ones"},
    **error_responses(413),
    422: {"model": BatchResult, "description": "No event of the batch could be stored; errors lists why"},
}


@with_config(ConfigDict(extra="forbid"))
class EventBatchIn(TypedDict):
    """A batch of events; each is checked on its own, and the valid ones are stored whatever the others are."""

    events: Annotated[list[EventIn], Field(min_length=1)]


async def ingest_single(services: Services, raw: Any, route: str) -> Response:
    event_id, duplicate = await services.ingest.ingest_one(raw, route)
    return json_response({"id": event_id, "duplicate": duplicate}, status_code=200 if duplicate else 201)


def batch_response(result: IngestResult) -> Response:
    # 422 only when nothing in the batch could be stored; a partly good batch is a 200.
    status = 422 if result.accepted == 0 and result.errors else 200
    return json_response(result.to_dict(), status_code=status)


@router.post(
    "/events",
    status_code=201,
    summary="Track a single event",
    responses=SINGLE_EVENT_RESPONSES,
    openapi_extra=json_body("EventIn", EventIn, "One event; only event_type is required (docs/ingest.md)"),
)
async def track_event(request: Request, _: EventIngester) -> Response:
    services = services_of(request)
    raw = await read_json(request, max_bytes=services.settings.max_batch_bytes)
    return await ingest_single(services, raw, "event")


@router.post(
    "/events/batch",
    summary="Track many events; valid ones are stored even when others are rejected",
    responses=BATCH_RESPONSES,
    openapi_extra=json_body("EventBatchIn", EventBatchIn, "Up to the batch limit of events (docs/ingest.md)"),
)
async def track_batch(request: Request, _: EventIngester) -> Response:
    services = services_of(request)
    body = await read_json(request, max_bytes=services.settings.max_batch_bytes)
    raw_events = services.ingest.check_batch_shape(body)
    return batch_response(await services.ingest.ingest_batch(raw_events, "batch"))


@router.get("/events", summary="Query raw events (admin)", responses=error_responses())
async def list_events(
    services: ServicesDep,
    _: RawEventQuerier,
    event_type: str | None = None,
    event_category: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    content_id: str | None = None,
    start: IsoDateTime | None = None,
    end: IsoDateTime | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Response:
    require_applicable("raw events")
    query = RawEventQuery.parse(
        event_type=event_type,
        event_category=event_category,
        user_id=user_id,
        session_id=session_id,
        content_id=content_id,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
    )
    page = await services.events.list(query.filters, query.limit, query.cursor)
    return json_response({"events": page.events, "next_cursor": page.next_cursor})


@router.get("/events/{event_id}", summary="Get one event (admin)", responses=error_responses(404))
async def get_event(event_id: str, services: ServicesDep, _: RawEventReader) -> Response:
    require_applicable("raw events")
    event = await services.events.get(event_id)
    if event is None:
        raise NotFound(f"event {event_id!r} does not exist")
    return json_response(event)
