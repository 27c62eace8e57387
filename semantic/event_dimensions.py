"""Dimensions of one raw event row, and filters over them: the vocabulary funnels, retention, paths,
stickiness and the general events family of the catalog share.

Each dimension is a ClickHouse expression over the columns of ``events`` (text from this module
only); filter values are always bound parameters. Content metadata dimensions (category, content
type, language, author) are looked up in the ``content_metadata`` view by the event's content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import InvalidRequest
from semantic.filter_sql import Bind, FilterOp, condition, metadata_condition
from storage.event_keys import CONTENT_KEY, QUERY_KEY
from storage.system_rows import HEALTH_CHECK_ROW

DimensionType = Literal["string", "integer"]


@dataclass(frozen=True, slots=True)
class EventDimension:
    name: str
    description: str
    # An expression over one row of ``events``.
    sql: str
    type: DimensionType = "string"
    # Looked up in content_metadata by the event's content (filters use an IN subquery).
    metadata_field: str | None = None


def _property(name: str) -> str:
    return f"JSONExtractString(properties, '{name}')"


def _column(name: str, description: str) -> EventDimension:
    return EventDimension(name, description, name)


_DIMENSIONS: tuple[EventDimension, ...] = (
    _column("event_type", "the event's type (docs/ingest.md lists them)"),
    _column("event_category", "the event's category: content, search, user, system, import, recommendation, custom"),
    EventDimension("content_id", "the content (content_id, else properties.content_id)", CONTENT_KEY),
    _column("user_id", "the user ('' for anonymous events)"),
    _column("session_id", "the session ('' for events without one)"),
    _column("country", "ISO country code from the IP address or the event ('' = not known)"),
    _column("region", "region from the IP address or the event ('' = not known)"),
    _column("city", "city given with the event ('' = not known)"),
    _column("device_type", "desktop, mobile, tablet, tv, bot or other, from the user agent"),
    _column("browser", "browser family from the user agent"),
    _column("os", "operating system family from the user agent"),
    _column("traffic_source", "direct, search, social, referral, internal, email, campaign"),
    _column("referrer_host", "host of the referrer ('' = none)"),
    _column("resource_type", "the resource type the event names"),
    EventDimension("service", "properties.service: the platform service that reported it", _property("service")),
    EventDimension(
        "endpoint", "properties.endpoint: the API endpoint of an api_request or error", _property("endpoint")
    ),
    EventDimension("method", "properties.method: the HTTP method of an api_request", _property("method")),
    EventDimension(
        "status",
        "properties.status: the HTTP status of an api_request (0 = not given)",
        "toInt64(JSONExtractInt(properties, 'status'))",
        type="integer",
    ),
    EventDimension("error_type", "properties.error_type of an error_occurred", _property("error_type")),
    EventDimension("severity", "properties.severity of an error_occurred", _property("severity")),
    EventDimension(
        "import_source",
        "the source of an import or processing job: properties.source, for a processing_* event without one"
        " properties.kind",
        "if(JSONExtractString(properties, 'source') = '' AND startsWith(event_type, 'processing_'), "
        "JSONExtractString(properties, 'kind'), JSONExtractString(properties, 'source'))",
    ),
    EventDimension(
        "job_kind",
        "import (import_* events) or processing (processing_* events): the kind of job an event belongs to;"
        " '' for other events",
        "multiIf(startsWith(event_type, 'import_'), 'import', startsWith(event_type, 'processing_'), 'processing', '')",
    ),
    EventDimension(
        "import_stage", "properties.stage: the stage an import_stage_completed or a failure names", _property("stage")
    ),
    EventDimension(
        "failure_reason",
        "properties.failure_reason of an import_failed or processing_failed event",
        _property("failure_reason"),
    ),
    EventDimension(
        "instance", "properties.instance: the instance of a service that sent a resource_usage", _property("instance")
    ),
    EventDimension(
        "health_status",
        "properties.status of a health_check, lower-cased: up, degraded or down ('' for other events)",
        HEALTH_CHECK_ROW.on_event_row("check_status", "''"),
    ),
    EventDimension("search_query", "the search query text, trimmed and lower-cased", QUERY_KEY),
    *(
        EventDimension(
            field,
            f"the content's {field.replace('_', ' ')} from content metadata ('' = not known)",
            f"meta_{field}",
            metadata_field=field,
        )
        for field in ("category", "content_type", "language", "author")
    ),
)

EVENT_DIMENSIONS: dict[str, EventDimension] = {d.name: d for d in _DIMENSIONS}
METADATA_JOIN = (
    "LEFT JOIN (SELECT content_id AS meta_content_id, category AS meta_category, "
    "content_type AS meta_content_type, language AS meta_language, author AS meta_author "
    "FROM content_metadata) AS meta ON meta.meta_content_id = {content}"
)

_MAX_FILTER_VALUES = 1000
_MAX_VALUE_LENGTH = 1024


class DimensionFilter(BaseModel):
    """``{"dimension": "country", "op": "in", "values": ["DE", "FR"]}``; ``value`` for one value."""

    model_config = ConfigDict(extra="forbid")

    dimension: str
    op: FilterOp = "in"
    values: list[str | int | float] = Field(default_factory=list, max_length=_MAX_FILTER_VALUES)
    value: str | int | float | None = None

    @field_validator("dimension")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in EVENT_DIMENSIONS:
            raise ValueError(f"unknown dimension {name!r}; GET /api/v1/analytics/catalog lists the dimensions")
        return name

    @model_validator(mode="after")
    def _one_or_many(self) -> DimensionFilter:
        if self.value is not None:
            if self.values:
                raise ValueError("give either value or values, not both")
            self.values = [self.value]
            self.value = None
        if not self.values:
            raise ValueError("a filter needs at least one value")
        if any(isinstance(v, str) and len(v) > _MAX_VALUE_LENGTH for v in self.values):
            raise ValueError(f"filter values are at most {_MAX_VALUE_LENGTH} characters")
        if self.op in ("eq", "neq", "contains", "gt", "gte", "lt", "lte") and len(self.values) != 1:
            raise ValueError(f"op {self.op!r} takes exactly one value")
        numeric = self.op in ("gt", "gte", "lt", "lte") or EVENT_DIMENSIONS[self.dimension].type == "integer"
        if numeric:
            try:
                self.values = [
                    int(float(v)) if EVENT_DIMENSIONS[self.dimension].type == "integer" else float(v)
                    for v in self.values
                ]
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"{self.dimension} {self.op} needs numbers") from exc
        else:
            self.values = [str(v) for v in self.values]
        return self


def filter_sql(flt: DimensionFilter, bind: Bind, *, content: str = CONTENT_KEY) -> str:
    """One filter as a predicate over a raw events row. ``bind(value)`` returns a parameter name.

    Metadata dimensions become ``<content> IN (SELECT content_id FROM content_metadata WHERE ...)``,
    so a filter never needs the join. Content without metadata has '' there (as the grouped dimension
    shows): when '' passes the filter (``neq``, ``not_in``), the rows kept are those whose content is
    NOT among the ones the filter refuses, so events without metadata stay in.
    """
    dimension = EVENT_DIMENSIONS[flt.dimension]
    if dimension.metadata_field is not None:
        return metadata_condition(content, dimension.metadata_field, flt.op, flt.values, bind)
    return condition(dimension.sql, flt.op, flt.values, "Int64" if dimension.type == "integer" else "String", bind)


def filters_sql(filters: Sequence[DimensionFilter], bind: Bind, *, content: str = CONTENT_KEY) -> str:
    """Every filter ANDed (``1`` when there are none)."""
    return " AND ".join(f"({filter_sql(f, bind, content=content)})" for f in filters) or "1"


def parameter_binder(params: dict[str, Any], prefix: str) -> Bind:
    """A ``bind`` that stores each value in ``params`` under ``<prefix><n>``."""

    def bind(value: Any) -> str:
        name = f"{prefix}{len(params)}"
        params[name] = value
        return name

    return bind


def require_dimension(name: str, field: str) -> EventDimension:
    try:
        return EVENT_DIMENSIONS[name]
    except KeyError:
        raise InvalidRequest(
            f"unknown dimension {name!r}; GET /api/v1/analytics/catalog lists the dimensions",
            details={"field": field},
        ) from None
