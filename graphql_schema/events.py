"""Event types, the tracking mutations and the raw event queries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.access import INGEST, READ_RAW_EVENTS, require
from core.errors import InvalidRequest
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors, to_camel
from storage.events import MAX_PAGE_SIZE, EventFilter


@strawberry.type(description="A stored analytics event, with the fields enrichment derived at ingest")
class Event:
    id: str
    event_type: str
    event_category: str
    timestamp: datetime
    user_id: str | None
    session_id: str | None
    content_id: str | None
    resource_type: str | None
    resource_id: str | None
    ip_address: str | None
    user_agent: str | None
    referrer: str | None
    country: str | None
    region: str | None
    city: str | None
    properties: JSON
    processed_at: datetime | None
    batch_id: str | None
    device_type: str | None
    browser: str | None
    os: str | None
    traffic_source: str | None
    referrer_host: str | None

    @classmethod
    def from_domain(cls, row: dict[str, Any]) -> Event:
        return cls(**{name: row.get(name) for name in cls.__annotations__})


@strawberry.input(description="An event to track; unknown fields are refused, custom data goes in properties")
class EventInput:
    event_type: str
    id: str | None = strawberry.UNSET
    event_category: str | None = strawberry.UNSET
    timestamp: datetime | None = strawberry.UNSET
    user_id: str | None = strawberry.UNSET
    session_id: str | None = strawberry.UNSET
    content_id: str | None = strawberry.UNSET
    resource_type: str | None = strawberry.UNSET
    resource_id: str | None = strawberry.UNSET
    ip_address: str | None = strawberry.UNSET
    user_agent: str | None = strawberry.UNSET
    referrer: str | None = strawberry.UNSET
    country: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET
    city: str | None = strawberry.UNSET
    properties: JSON | None = strawberry.UNSET

    def to_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name in EventInput.__annotations__:
            value = getattr(self, name)
            if value is strawberry.UNSET or value is None:
                continue
            raw[name] = value.isoformat() if isinstance(value, datetime) else value
        return raw


@strawberry.input
class EventFilterInput:
    event_type: str | None = None
    event_category: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    content_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@strawberry.type
class EventError:
    index: int | None
    field: str
    code: str
    message: str


@strawberry.type
class TrackResult:
    id: str
    duplicate: bool


@strawberry.type
class BatchResult:
    accepted: int
    rejected: int
    duplicates: int
    batch_id: str
    errors: list[EventError]
    generated_ids: JSON


@strawberry.type
class EventPage:
    events: list[Event]
    next_cursor: str | None


@strawberry.type
class EventQueries:
    @strawberry.field(description="One stored event by id (admin)")
    @maps_errors
    async def event(self, info: Info[GraphQLContext, None], id: str) -> Event | None:
        require(info.context.principal, READ_RAW_EVENTS, "read raw events")
        row = await info.context.events.get(id)
        return Event.from_domain(row) if row else None

    @strawberry.field(description="Stored events, newest first, with cursor pagination (admin)")
    @maps_errors
    async def events(
        self,
        info: Info[GraphQLContext, None],
        filter: EventFilterInput | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> EventPage:
        require(info.context.principal, READ_RAW_EVENTS, "query raw events")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
        f = filter or EventFilterInput()
        if f.start is not None and f.end is not None and f.end <= f.start:
            raise InvalidRequest("'end' must be after 'start'", details={"field": "filter.end"})
        page = await info.context.events.list(
            EventFilter(
                event_type=f.event_type,
                event_category=f.event_category,
                user_id=f.user_id,
                session_id=f.session_id,
                content_id=f.content_id,
                start=f.start,
                end=f.end,
            ),
            limit,
            cursor,
        )
        return EventPage(events=[Event.from_domain(e) for e in page.events], next_cursor=page.next_cursor)


@strawberry.type
class EventMutations:
    @strawberry.mutation(description="Track one event; returns its id (generated when not given)")
    @maps_errors
    async def track_event(self, info: Info[GraphQLContext, None], event: EventInput) -> TrackResult:
        require(info.context.principal, INGEST, "ingest events")
        event_id, duplicate = await info.context.ingest.ingest_one(event.to_raw())
        return TrackResult(id=event_id, duplicate=duplicate)

    @strawberry.mutation(description="Track many events; valid ones are stored even when others are rejected")
    @maps_errors
    async def track_events(self, info: Info[GraphQLContext, None], events: list[EventInput]) -> BatchResult:
        require(info.context.principal, INGEST, "ingest events")
        raw = info.context.ingest.check_batch_shape({"events": [e.to_raw() for e in events]})
        result = await info.context.ingest.ingest_batch(raw)
        return BatchResult(
            accepted=result.accepted,
            rejected=result.rejected,
            duplicates=result.duplicates,
            batch_id=result.batch_id,
            errors=[EventError(index=e.index, field=to_camel(e.field), code=e.code, message=e.message) for e in result.errors],
            generated_ids={str(k): v for k, v in result.generated_ids.items()},
        )
