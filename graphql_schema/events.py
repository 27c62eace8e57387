"""Event types, the tracking mutations and the raw event queries."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.errors import FieldError
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors, to_camel
from graphql_schema.permissions import IngestEvents, QueryRawEvents, ReadRawEvents
from semantic.content_scope import require_applicable
from semantic.raw_events import DEFAULT_PAGE_SIZE, RawEventQuery


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

    def to_query(self, limit: int, cursor: str | None) -> RawEventQuery:
        """Checked as REST checks its query parameters (semantic/raw_events.py)."""
        return RawEventQuery.parse(**dataclasses.asdict(self), limit=limit, cursor=cursor)


@strawberry.type
class EventError:
    index: int | None
    field: str
    code: str
    message: str

    @classmethod
    def from_domain(cls, error: FieldError) -> EventError:
        # Field names as GraphQL spells them (eventType, not event_type).
        return cls(index=error.index, field=to_camel(error.field), code=error.code, message=error.message)


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
    @strawberry.field(description="One stored event by id (admin)", permission_classes=[ReadRawEvents])
    @maps_errors
    async def event(self, info: Info[GraphQLContext, None], id: str) -> Event | None:
        require_applicable("raw events")
        row = await info.context.events.get(id)
        return Event.from_domain(row) if row else None

    @strawberry.field(
        description="Stored events, newest first, with cursor pagination (admin)", permission_classes=[QueryRawEvents]
    )
    @maps_errors
    async def events(
        self,
        info: Info[GraphQLContext, None],
        filter: EventFilterInput | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> EventPage:
        require_applicable("raw events")
        query = (filter or EventFilterInput()).to_query(limit, cursor)
        page = await info.context.events.list(query.filters, query.limit, query.cursor)
        return EventPage(events=[Event.from_domain(e) for e in page.events], next_cursor=page.next_cursor)


@strawberry.type
class EventMutations:
    @strawberry.mutation(
        description="Track one event; returns its id (generated when not given)", permission_classes=[IngestEvents]
    )
    @maps_errors
    async def track_event(self, info: Info[GraphQLContext, None], event: EventInput) -> TrackResult:
        event_id, duplicate = await info.context.ingest.ingest_one(event.to_raw(), "graphql_event")
        return TrackResult(id=event_id, duplicate=duplicate)

    @strawberry.mutation(
        description="Track many events; valid ones are stored even when others are rejected",
        permission_classes=[IngestEvents],
    )
    @maps_errors
    async def track_events(self, info: Info[GraphQLContext, None], events: list[EventInput]) -> BatchResult:
        raw = info.context.ingest.check_batch_shape({"events": [e.to_raw() for e in events]})
        result = await info.context.ingest.ingest_batch(raw, "graphql_batch")
        return BatchResult(
            accepted=result.accepted,
            rejected=result.rejected,
            duplicates=result.duplicates,
            batch_id=result.batch_id,
            errors=[EventError.from_domain(e) for e in result.errors],
            generated_ids={str(k): v for k, v in result.generated_ids.items()},
        )
