"""What every analysis request (funnels, event retention, paths, stickiness) shares: the date range
and timezone, the parse step whose errors name the field, the role check of the dimensions it
filters on, and an event with filters.

For a principal with a content scope, an event takes part in an analysis only when it names in-scope
content (``EventSpec.condition``; paths apply the same rule to their steps): funnels, retention and
stickiness then count what people did with that content, and event types that name no content
(search_query, page_view) have no events for them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.access import Role
from core.errors import InvalidRequest
from core.taxonomy import CUSTOM_EVENT_TYPE_PATTERN
from semantic.analytics_query import DateRange, check_timezone, relative_dates
from semantic.content_scope import current_scope, scope_condition
from semantic.event_dimensions import (
    EVENT_DIMENSIONS,
    Bind,
    DimensionFilter,
    filters_sql,
)
from semantic.freshness import Watermark
from semantic.periods import Granularity, Period, resolve_period, utc_text
from semantic.public_catalog import DIMENSIONS, require_allowed
from semantic.request_errors import validate_body
from storage.event_keys import CONTENT_KEY

DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 366
MAX_FILTERS_PER_EVENT = 20


def event_type_name(name: str) -> str:
    """``name`` if it can name an event type (core/taxonomy.py's rule), else ValueError."""
    if not CUSTOM_EVENT_TYPE_PATTERN.match(name):
        raise ValueError(
            f"{name[:80]!r} is not an event type: lower snake case, starting with a letter, 2-64 characters"
        )
    return name


EventTypeName = Annotated[str, AfterValidator(event_type_name)]


class EventSpec(BaseModel):
    """An event type and filters on the dimensions of its rows (semantic/event_dimensions.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: EventTypeName
    filters: list[DimensionFilter] = Field(default_factory=list, max_length=MAX_FILTERS_PER_EVENT)

    def condition(self, bind: Bind) -> str:
        """A predicate over one row of ``events``: the type and every filter (values bound); under a
        content scope, only events naming in-scope content (semantic/content_scope.py)."""
        sql = f"(event_type = {{{bind(self.event_type)}:String}} AND {filters_sql(self.filters, bind)}"
        scope = current_scope()
        if not scope.unrestricted:
            sql += f" AND {scope_condition(CONTENT_KEY, bind, scope)}"
        return sql + ")"


class AnalysisRequest(BaseModel):
    """The fields every analysis takes: which days (calendar days in ``timezone``, both included)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Default: the last DEFAULT_RANGE_DAYS days up to today (each analysis may say otherwise).
    date_range: DateRange | None = None
    timezone: str = Field("UTC", max_length=64)

    # The longest range one request may cover.
    max_range_days: ClassVar[int] = MAX_RANGE_DAYS

    @classmethod
    def parse(cls, body: Any) -> Self:
        """The request, or InvalidRequest naming the first bad field (``steps[1].event_type``)."""
        request = validate_body(cls, body)
        request.check()
        return request

    def check(self) -> None:
        """What one field cannot say alone (subclasses add theirs)."""
        check_timezone(self.timezone)

    def default_start(self, end: date) -> date:
        return end - timedelta(days=DEFAULT_RANGE_DAYS - 1)

    def granularity(self) -> Granularity:
        """The period's granularity as answers report it."""
        return "day"

    def resolved(self, *, today: date | None = None) -> Self:
        """The request with concrete dates (a relative range or the default resolved for ``today`` in
        the request's timezone, by default the current day there): what a result cache keys on."""
        self.check()
        today = today or datetime.now(UTC).astimezone(check_timezone(self.timezone)).date()
        given = self.date_range
        if given is None:
            start, end = self.default_start(today), today
        elif given.relative is not None:
            start, end = relative_dates(given.relative, today)
        else:
            assert given.start_date is not None and given.end_date is not None
            start, end = given.start_date, given.end_date
        resolved = self.model_copy(update={"date_range": DateRange(start_date=start, end_date=end)})
        resolved.period()
        return resolved

    def dimensions_used(self) -> list[tuple[str, str]]:
        """(field, dimension) of every filter and breakdown of the request, e.g.
        ("steps[0].filters[1].dimension", "country")."""
        used: list[tuple[str, str]] = []

        def walk(value: Any, path: str) -> None:
            # A filter, or a breakdown by one dimension (a model with a dimension name).
            dimension = getattr(value, "dimension", None)
            if isinstance(value, BaseModel) and isinstance(dimension, str) and dimension in DIMENSIONS:
                used.append((f"{path}.dimension", dimension))
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    walk(getattr(value, name), f"{path}.{name}" if path else name)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, f"{path}[{index}]")

        walk(self, "")
        return used

    def check_role(self, role: Role) -> None:
        """Forbidden (403) naming the field when a filter or breakdown uses a dimension the role may not
        (the analytics catalog's rule: user_id and session_id are for admin and analyst)."""
        for field, name in self.dimensions_used():
            require_allowed(DIMENSIONS[name], role, field)

    def period(self) -> Period:
        """The period of a resolved request, or InvalidRequest naming ``date_range.<field>``."""
        given = self.date_range
        if given is None or given.relative is not None:
            raise ValueError("resolve the request first: the analyses answer concrete dates only")
        try:
            return resolve_period(
                given.start_date,
                given.end_date,
                granularity=self.granularity(),
                timezone=self.timezone,
                default_days=DEFAULT_RANGE_DAYS,
                max_days=self.max_range_days,
            )
        except InvalidRequest as exc:
            field = exc.details.get("field") if isinstance(exc.details, dict) else None
            if field in ("start_date", "end_date"):
                exc.details = {**exc.details, "field": f"date_range.{field}"}
            raise


def known_dimension(name: str) -> str:
    if name not in EVENT_DIMENSIONS:
        raise ValueError(f"unknown dimension {name[:80]!r}; GET /api/v1/analytics/catalog lists the dimensions")
    return name


DimensionName = Annotated[str, AfterValidator(known_dimension)]


class AnalysisWindow:
    """The SQL bounds of a period over ``events.timestamp`` (parameters bound into ``params``)."""

    @staticmethod
    def sql(period: Period, params: dict[str, Any]) -> str:
        params["range_start"], params["range_end"] = utc_text(period.start), utc_text(period.end)
        return "timestamp >= {range_start:DateTime64(3, 'UTC')} AND timestamp < {range_end:DateTime64(3, 'UTC')}"


def as_of(watermark: Watermark | None) -> datetime | None:
    return watermark.as_of if watermark is not None else None
