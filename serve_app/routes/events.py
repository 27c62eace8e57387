"""Event collection and raw event queries: /api/v1/analytics/events."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from core.access import INGEST, READ_RAW_EVENTS, require
from core.errors import InvalidRequest, NotFound, PayloadTooLarge, StoreUnavailable, ValidationFailed
from semantic.ingestion import IngestResult
from serve_app import metrics
from serve_app.deps import CurrentPrincipal, ServicesDep, ingest_caller
from serve_app.http import json_response, read_json
from storage.events import MAX_PAGE_SIZE, EventFilter

router = APIRouter(prefix="/api/v1/analytics", tags=["events"])


async def ingest_single(services: ServicesDep, raw: Any, route: str) -> Response:
    started = time.perf_counter()
    try:
        event_id, duplicate = await services.ingest.ingest_one(raw)
    except StoreUnavailable:
        metrics.STORE_ERRORS.labels(store="events").inc()
        raise
    except ValidationFailed as exc:
        metrics.record_rejections(exc.errors)
        raise
    except PayloadTooLarge:
        metrics.EVENTS_REJECTED.labels(reason="too_large").inc()
        raise
    metrics.INGEST_LATENCY.labels(route=route).observe(time.perf_counter() - started)
    metrics.EVENTS_ACCEPTED.inc()
    if duplicate:
        metrics.EVENTS_DUPLICATE.inc()
    return json_response({"id": event_id, "duplicate": duplicate}, status_code=200 if duplicate else 201)


def batch_response(result: IngestResult) -> Response:
    metrics.EVENTS_ACCEPTED.inc(result.accepted)
    metrics.EVENTS_DUPLICATE.inc(result.duplicates)
    metrics.record_rejections(result.errors)
    # 422 only when nothing in the batch could be stored; a partly good batch is a 200.
    status = 422 if result.accepted == 0 and result.errors else 200
    return json_response(result.to_dict(), status_code=status)


@router.post("/events", status_code=201, summary="Track a single event")
async def track_event(request: Request) -> Response:
    services, principal = await ingest_caller(request)
    require(principal, INGEST, "ingest events")
    raw = await read_json(request, max_bytes=services.settings.max_batch_bytes)
    return await ingest_single(services, raw, "event")


@router.post("/events/batch", summary="Track many events; valid ones are stored even when others are rejected")
async def track_batch(request: Request) -> Response:
    services, principal = await ingest_caller(request)
    require(principal, INGEST, "ingest events")
    started = time.perf_counter()
    body = await read_json(request, max_bytes=services.settings.max_batch_bytes)
    raw_events = services.ingest.check_batch_shape(body)
    try:
        result = await services.ingest.ingest_batch(raw_events)
    except StoreUnavailable:
        metrics.STORE_ERRORS.labels(store="events").inc()
        raise
    metrics.INGEST_LATENCY.labels(route="batch").observe(time.perf_counter() - started)
    return batch_response(result)


@router.get("/events", summary="Query raw events (admin)")
async def list_events(
    services: ServicesDep,
    principal: CurrentPrincipal,
    event_type: str | None = None,
    event_category: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    content_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
    cursor: str | None = None,
) -> Response:
    require(principal, READ_RAW_EVENTS, "query raw events")
    if start is not None and end is not None and end <= start:
        raise InvalidRequest("'end' must be after 'start'", details={"field": "end"})
    filters = EventFilter(
        event_type=event_type,
        event_category=event_category,
        user_id=user_id,
        session_id=session_id,
        content_id=content_id,
        start=start,
        end=end,
    )
    page = await services.events.list(filters, limit, cursor)
    return json_response({"events": page.events, "next_cursor": page.next_cursor})


@router.get("/events/{event_id}", summary="Get one event (admin)")
async def get_event(event_id: str, services: ServicesDep, principal: CurrentPrincipal) -> Response:
    require(principal, READ_RAW_EVENTS, "read raw events")
    event = await services.events.get(event_id)
    if event is None:
        raise NotFound(f"event {event_id!r} does not exist")
    return json_response(event)
