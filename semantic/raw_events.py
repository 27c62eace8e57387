"""A raw event query (``GET /api/v1/analytics/events``, GraphQL ``events``): its filters, page size
and cursor, checked once for both transports with the same errors naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import InvalidRequest
from storage.events import MAX_PAGE_SIZE, EventFilter

DEFAULT_PAGE_SIZE = 100


class RawEventQuery(BaseModel):
    """``start`` <= timestamp < ``end``; newest first, ``limit`` per page, pages follow ``cursor``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: str | None = None
    event_category: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    content_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE
    cursor: str | None = None

    @classmethod
    def parse(cls, **values: Any) -> RawEventQuery:
        """The query, or InvalidRequest naming the first bad field (as the API reports parameter errors)."""
        try:
            query = cls(**values)
        except ValidationError as exc:
            details = [
                {"field": ".".join(str(part) for part in error["loc"]) or "(request)", "message": error["msg"]}
                for error in exc.errors()
            ]
            raise InvalidRequest(f"{details[0]['field']}: {details[0]['message']}", details=details) from exc
        if query.start is not None and query.end is not None and query.end <= query.start:
            raise InvalidRequest("'end' must be after 'start'", details={"field": "end"})
        return query

    @property
    def filters(self) -> EventFilter:
        # Every field but the page's is a filter (a field EventFilter lacks fails here, not silently).
        return EventFilter(**self.model_dump(exclude={"limit", "cursor"}))
