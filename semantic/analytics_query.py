"""``analyticsQuery`` / ``POST /api/v1/analytics/query``: any catalog metrics by up to five dimensions,
filtered, over a date range, optionally against a comparison period, ordered and paged.

Both transports parse the same request (``AnalyticsQueryRequest.parse``), resolve it
(``AnalyticsQueryService.resolve``: relative ranges become dates, the only use of the clock) and
run it (``AnalyticsQueryService.run``: a pure function of the resolved request, the caller's role
and the data watermark, so a result cache can key on those).

Where it is answered: by the content, search or users family when each asked metric and dimension
has the same definition there and that family can use one of its rollups (``EQUIVALENCES``), else
by the ``events`` family over raw events. Either way the rows are the same; a row appears for each
combination of dimension values with at least one metric (derived ones aside) that is not 0 or null.

For a principal with a content scope, every statement counts only the events naming in-scope content
(semantic/content_scope.py): metrics of events that name no content (searches, requests) are then 0.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.access import Role
from core.errors import InvalidRequest
from semantic.catalog import EVENTS, FAMILIES, SYSTEM_EQUIVALENTS
from semantic.compiler import Filter, MetricQuery, compile_query
from semantic.content_scope import current_scope
from semantic.event_dimensions import DimensionFilter
from semantic.freshness import Watermark
from semantic.periods import Granularity, Period, resolve_period
from semantic.public_catalog import (
    DIMENSIONS,
    METRICS,
    TIME_DIMENSION_NAMES,
    ValueType,
    require_allowed,
    unknown_dimension,
    unknown_metric,
)
from semantic.request_errors import validate_body
from semantic.result_cache import request_fingerprint
from semantic.results import PeriodInfo, bucket_label
from storage.events import EventStore

MAX_METRICS = 20
MAX_DIMENSIONS = 5
MAX_FILTERS = 20
MAX_ORDER_BY = 10
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
DEFAULT_RANGE_DAYS = 30
MAX_CURSOR_LENGTH = 512
RelativeRange = Literal["last_7_days", "last_30_days", "last_week", "last_month", "month_to_date", "today", "yesterday"]
CompareTo = Literal["previous_period", "previous_year"]


# --- the request -----------------------------------------------------------------------------------


def _known_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(unknown_metric(name))
    return name


def _known_dimension(name: str) -> str:
    if name not in DIMENSIONS:
        raise ValueError(unknown_dimension(name))
    return name


MetricName = Annotated[str, AfterValidator(_known_metric)]
DimensionName = Annotated[str, AfterValidator(_known_dimension)]


class DateRange(BaseModel):
    """Calendar days in the request's timezone, both included; or one relative range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_date: date | None = None
    end_date: date | None = None
    relative: RelativeRange | None = None

    @model_validator(mode="after")
    def _dates_or_relative(self) -> DateRange:
        dates = (self.start_date, self.end_date)
        if self.relative is not None and any(d is not None for d in dates):
            raise ValueError("give either relative or start_date and end_date, not both")
        if self.relative is None and None in dates:
            raise ValueError("give both start_date and end_date, or relative")
        return self


class OrderBy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(max_length=64)
    direction: Literal["asc", "desc"] = "asc"


class AnalyticsQueryRequest(BaseModel):
    """The request body of POST /api/v1/analytics/query (GraphQL: AnalyticsQueryInput, camelCase)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metrics: list[MetricName] = Field(min_length=1, max_length=MAX_METRICS)
    dimensions: list[DimensionName] = Field(default_factory=list, max_length=MAX_DIMENSIONS)
    filters: list[DimensionFilter] = Field(default_factory=list, max_length=MAX_FILTERS)
    # Default: the last 30 days up to today.
    date_range: DateRange | None = None
    # The size of the ``bucket`` dimension.
    granularity: Granularity = "day"
    timezone: str = Field("UTC", max_length=64)
    compare_to: CompareTo | None = None
    order_by: list[OrderBy] = Field(default_factory=list, max_length=MAX_ORDER_BY)
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)

    @classmethod
    def parse(cls, body: Any) -> AnalyticsQueryRequest:
        """The request, or InvalidRequest naming the first bad field (``metrics[2]``, ``filters[0].op``)."""
        try:
            request = validate_body(cls, body, what="the query")
        except OverflowError as exc:
            # A number too large for an integer dimension (e.g. "inf") escapes the filter's own check.
            raise InvalidRequest(
                "a filter value is not a finite number", details={"field": _overflowing_filter(body)}
            ) from exc
        request.check()
        return request

    def check(self) -> None:
        """What one field cannot say alone: repeated names, order_by naming what is not asked for."""
        for field, names in (("metrics", self.metrics), ("dimensions", self.dimensions)):
            for index, name in enumerate(names):
                if name in names[:index]:
                    raise InvalidRequest(
                        f"{field}[{index}]: {name!r} is asked twice", details={"field": f"{field}[{index}]"}
                    )
        selected = {*self.metrics, *self.dimensions}
        seen: set[str] = set()
        for index, order in enumerate(self.order_by):
            field = f"order_by[{index}].field"
            if order.field not in selected:
                raise InvalidRequest(
                    f"{field}: {order.field!r} is not one of the query's metrics or dimensions "
                    f"({', '.join(sorted(selected))})",
                    details={"field": field},
                )
            if order.field in seen:
                raise InvalidRequest(f"{field}: {order.field!r} is ordered by twice", details={"field": field})
            seen.add(order.field)
        check_timezone(self.timezone)

    @property
    def resolved(self) -> bool:
        return self.date_range is not None and self.date_range.relative is None


def _overflowing_filter(body: Mapping[str, Any]) -> str:
    filters = body.get("filters")
    for index, flt in enumerate(filters if isinstance(filters, list) else []):
        try:
            DimensionFilter.model_validate(flt)
        except OverflowError:
            return f"filters[{index}]"
        except ValidationError:
            continue
    return "filters"


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> ZoneInfo:
    """The zone, or InvalidRequest naming ``timezone``: only the IANA names the tz database lists
    (ClickHouse knows each of them)."""
    if name not in _zone_names():
        raise InvalidRequest(
            f"timezone {name!r} is not an IANA time zone name (e.g. 'UTC', 'Europe/Berlin', 'Asia/Riyadh')",
            details={"field": "timezone"},
        )
    return ZoneInfo(name)


# --- relative ranges and comparison periods ---------------------------------------------------------


def relative_dates(relative: RelativeRange, today: date) -> tuple[date, date]:
    """The first and last day (both included) of a relative range, for ``today`` in the request's zone."""
    if relative == "today":
        return today, today
    if relative == "yesterday":
        day = today - timedelta(days=1)
        return day, day
    if relative == "last_7_days":
        return today - timedelta(days=6), today
    if relative == "last_30_days":
        return today - timedelta(days=29), today
    if relative == "last_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if relative == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return today.replace(day=1), today  # month_to_date


def _year_before(day: date) -> date:
    # 29 February has no day a year before: the 28th stands in.
    return day.replace(year=day.year - 1, day=28) if (day.month, day.day) == (2, 29) else day.replace(year=day.year - 1)


def comparison_period(period: Period, compare_to: CompareTo) -> Period:
    if compare_to == "previous_period":
        return period.previous()
    return period.shifted(_year_before(period.start_date), _year_before(period.end_date))


# --- where a query is answered -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Equivalence:
    """Public metrics and dimensions a family defines identically (public name -> the family's)."""

    family: str
    metrics: dict[str, str]
    dimensions: dict[str, str]

    def answers(self, metrics: Sequence[str], dimensions: Sequence[str], filtered: Sequence[str]) -> bool:
        return (
            all(m in self.metrics for m in metrics)
            and all(d in self.dimensions or d in TIME_DIMENSION_NAMES for d in dimensions)
            and all(d in self.dimensions for d in filtered)
        )

    def dimension(self, name: str) -> str:
        return self.dimensions.get(name, name)


EVENTS_FAMILY = Equivalence("events", {m: m for m in EVENTS.metrics}, {d: d for d in EVENTS.dimensions})
# Each pair has the same expression over the same events (semantic/catalog.py); the parity tests in
# tests/semantic/test_analytics_query.py compare the answers of both.
EQUIVALENCES: tuple[Equivalence, ...] = (
    Equivalence(
        "content",
        metrics={
            "views": "views",
            "unique_viewers": "unique_views",
            "playback_sessions": "playback_sessions",
            "completed_sessions": "completed_sessions",
            "completion_rate": "completion_rate",
            "likes": "likes",
            "shares": "shares",
            "bookmarks": "bookmarks",
            "comments": "comments",
        },
        dimensions={name: name for name in ("content_id", "category", "content_type", "language", "author")},
    ),
    Equivalence(
        "search",
        metrics={
            "searches": "searches",
            "zero_result_searches": "zero_result_searches",
            "zero_result_rate": "zero_result_rate",
            "search_clicks": "clicks",
            "search_ctr": "ctr",
        },
        dimensions={"search_query": "query"},
    ),
    Equivalence("users", metrics={"users": "users"}, dimensions={"user_id": "user_id"}),
    *(Equivalence(family, metrics, dimensions) for family, metrics, dimensions in SYSTEM_EQUIVALENTS),
)


@dataclass(frozen=True, slots=True)
class Plan:
    """One statement to run: the family's query and how its columns map back to public names."""

    equivalence: Equivalence
    query: MetricQuery

    def public_row(self, row: dict[str, Any], metrics: Sequence[str], dimensions: Sequence[str]) -> dict[str, Any]:
        eq = self.equivalence
        return {
            **{d: row[eq.dimension(d)] for d in dimensions},
            **{m: row[eq.metrics[m]] for m in metrics},
        }


def as_filter(flt: DimensionFilter) -> Filter:
    return Filter(flt.dimension, tuple(flt.values), op=flt.op)


def plan(
    metrics: Sequence[str],
    dimensions: Sequence[str],
    filters: Sequence[Filter],
    period: Period,
    *,
    order_by: Sequence[tuple[str, bool]] = (),
    limit: int | None = None,
    offset: int = 0,
    route: Literal["auto", "raw"] = "auto",
) -> Plan:
    """The family that answers (names are public ones): the first equivalent family whose rollup can
    answer, else events. ``route="raw"`` always reads events (the parity tests compare the two)."""
    filtered = [f.dimension for f in filters]
    candidates = [e for e in EQUIVALENCES if e.answers(metrics, dimensions, filtered)] if route == "auto" else []
    if not current_scope().unrestricted:
        # A content scope keeps the events naming in-scope content: only families whose rows name content
        # can say which those are (the events family always can).
        candidates = [e for e in candidates if FAMILIES[e.family].content_column is not None]
    for equivalence in [*candidates, EVENTS_FAMILY]:
        query = MetricQuery(
            equivalence.family,
            tuple(equivalence.metrics[m] for m in metrics),
            period,
            tuple(equivalence.dimension(d) for d in dimensions),
            tuple(Filter(equivalence.dimension(f.dimension), f.values, op=f.effective_op) for f in filters),
            order_by=tuple(
                (equivalence.metrics.get(name) or equivalence.dimension(name), desc) for name, desc in order_by
            ),
            limit=limit,
            offset=offset,
            skip_empty=True,
        )
        if equivalence is EVENTS_FAMILY or compile_query(query).source != "events":
            return Plan(equivalence, query)
    raise AssertionError("the events family answers every query")


# --- cursors -----------------------------------------------------------------------------------------

# Cursors are signed so an edited cursor, or one from another query, is refused. The key need not be
# secret: a cursor only selects an offset into a query the caller may run anyway.
DEFAULT_CURSOR_KEY = b"analytics-query-cursor/v1"


class CursorCodec:
    def __init__(self, key: bytes = DEFAULT_CURSOR_KEY) -> None:
        self._key = key

    def encode(self, request: AnalyticsQueryRequest, offset: int) -> str:
        payload = orjson.dumps({"o": offset, "q": _fingerprint(request)})
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, request: AnalyticsQueryRequest) -> int:
        """The offset the request's cursor points at (0 without one)."""
        if request.cursor is None:
            return 0
        try:
            text, signature = request.cursor.split(".")
            payload = _unb64(text)
            if not hmac.compare_digest(_unb64(signature), self._sign(payload)):
                raise ValueError("bad signature")
            data = orjson.loads(payload)
            offset = data["o"]
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError("bad offset")
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise InvalidRequest(
                "cursor is not one this service issued; pass next_cursor of the previous page unchanged",
                details={"field": "cursor"},
            ) from exc
        if data.get("q") != _fingerprint(request):
            raise InvalidRequest(
                "cursor belongs to another query: page with the same metrics, dimensions, filters, dates and order",
                details={"field": "cursor"},
            )
        return offset

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]


def _fingerprint(request: AnalyticsQueryRequest) -> str:
    data = request.model_dump(mode="json", exclude={"cursor", "limit"})
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the result --------------------------------------------------------------------------------------


class ResultColumn(BaseModel):
    name: str
    type: ValueType
    unit: str | None
    kind: Literal["dimension", "metric"]


class AnalyticsQueryResult(BaseModel):
    columns: list[ResultColumn]
    # One object per row: dimension and metric values by name, and with compare_to, ``compare``:
    # metric -> {value, change, change_percent} in the comparison period.
    rows: list[dict[str, Any]]
    # Each metric over the whole result (every page), computed over all its events (not summed rows).
    totals: dict[str, Any]
    compare_totals: dict[str, Any] | None = None
    # The table that answered the rows: a rollup, or "events".
    source: str
    as_of: datetime | None
    next_cursor: str | None
    period: PeriodInfo
    compare_period: PeriodInfo | None = None


def _change(current: Any, previous: Any) -> dict[str, Any]:
    if current is None or previous is None:
        return {"value": previous, "change": None, "change_percent": None}
    return {
        "value": previous,
        "change": round(current - previous, 6),
        "change_percent": round(100 * (current - previous) / previous, 2) if previous else None,
    }


def _empty_value(metric: str) -> Any:
    return None if EVENTS.metrics[metric].nullable else 0


class _TimeAxis:
    """Time dimension values as the API shows them, and as positions in their period: the n-th
    hour, day, week or month of the period is compared with the n-th of the comparison period."""

    def __init__(self, period: Period) -> None:
        self.period = period

    def label(self, name: str, value: Any) -> Any:
        if name in ("hour_of_day", "weekday"):
            return int(value)
        return bucket_label(value, self.period)

    def position(self, name: str, value: Any) -> Any:
        if name in ("hour_of_day", "weekday"):
            return int(value)
        if isinstance(value, int):  # an hour, as epoch seconds
            return (value - int(self.period.start.timestamp())) // 3600
        start = self.period.start_date
        unit = self.period.granularity if name == "bucket" else name
        if unit == "week":
            return (value - (start - timedelta(days=start.weekday()))).days // 7
        if unit == "month":
            return (value.year - start.year) * 12 + value.month - start.month
        return (value - start).days


# --- the service ---------------------------------------------------------------------------------------


class AnalyticsQueryService:
    """What both transports call: ``run(resolve(request), role, watermark)``."""

    def __init__(
        self,
        store: EventStore,
        *,
        default_range_days: int = DEFAULT_RANGE_DAYS,
        max_range_days: int = 366,
        cursor_key: bytes = DEFAULT_CURSOR_KEY,
        route: Literal["auto", "raw"] = "auto",
    ) -> None:
        """``route="raw"`` answers every query from raw events (the parity tests compare it with "auto")."""
        self.store = store
        self.route: Literal["auto", "raw"] = route
        self.default_range_days = default_range_days
        self.max_range_days = max_range_days
        self.cursors = CursorCodec(cursor_key)

    def resolve(self, request: AnalyticsQueryRequest, *, today: date | None = None) -> AnalyticsQueryRequest:
        """The request with concrete dates (relative ranges and the default range resolved for ``today``
        in the request's timezone, by default the current day there), checked against the range limits."""
        request.check()
        zone = check_timezone(request.timezone)
        today = today or datetime.now(UTC).astimezone(zone).date()
        given = request.date_range
        if given is None:
            start, end = today - timedelta(days=self.default_range_days - 1), today
        elif given.relative is not None:
            start, end = relative_dates(given.relative, today)
        else:
            assert given.start_date is not None and given.end_date is not None
            start, end = given.start_date, given.end_date
        resolved = request.model_copy(update={"date_range": DateRange(start_date=start, end_date=end)})
        self.period(resolved)
        return resolved

    def period(self, request: AnalyticsQueryRequest) -> Period:
        assert request.date_range is not None
        try:
            return resolve_period(
                request.date_range.start_date,
                request.date_range.end_date,
                granularity=request.granularity,
                timezone=request.timezone,
                default_days=self.default_range_days,
                max_days=self.max_range_days,
            )
        except InvalidRequest as exc:
            field = exc.details.get("field") if isinstance(exc.details, dict) else None
            if field in ("start_date", "end_date"):
                exc.details = {**exc.details, "field": f"date_range.{field}"}
            raise

    def check_role(self, request: AnalyticsQueryRequest, role: Role) -> None:
        for index, name in enumerate(request.metrics):
            require_allowed(METRICS[name], role, f"metrics[{index}]")
        for index, name in enumerate(request.dimensions):
            require_allowed(DIMENSIONS[name], role, f"dimensions[{index}]")
        for index, flt in enumerate(request.filters):
            require_allowed(DIMENSIONS[flt.dimension], role, f"filters[{index}].dimension")

    async def run(
        self, request: AnalyticsQueryRequest, role: Role, watermark: Watermark | None = None
    ) -> AnalyticsQueryResult:
        """Answer a resolved request (see ``resolve``) for a caller with ``role``."""
        if not request.resolved:
            raise ValueError("resolve the request first: run() answers concrete dates only")
        self.check_role(request, role)
        request.check()
        period = self.period(request)
        offset = self.cursors.decode(request)
        metrics, dimensions = list(request.metrics), list(request.dimensions)
        order = [(o.field, o.direction == "desc") for o in request.order_by]
        # Every dimension breaks ties, so the order is total and pages neither skip nor repeat rows.
        order += [(d, False) for d in dimensions if d not in {name for name, _ in order}]
        filters = [as_filter(f) for f in request.filters]
        main = self._plan(metrics, dimensions, filters, period, order_by=order, limit=request.limit + 1, offset=offset)
        totals = self._plan(metrics, [], filters, period)
        if dimensions or offset:
            rows, total = await asyncio.gather(self._rows(main, metrics, dimensions), self._rows(totals, metrics, []))
        else:
            # Without dimensions the one row is the totals: one statement, not the same one twice.
            rows = await self._rows(main, metrics, dimensions)
            total = rows[:1] or await self._rows(totals, metrics, [])
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        axis = _TimeAxis(period)
        result = AnalyticsQueryResult(
            columns=self._columns(request),
            rows=[self._shown(row, axis) for row in rows],
            totals=total[0] if total else {m: _empty_value(m) for m in metrics},
            source=compile_query(main.query).source,
            as_of=watermark.as_of if watermark is not None else None,
            next_cursor=self.cursors.encode(request, offset + request.limit) if more else None,
            period=PeriodInfo.of(period),
        )
        if request.compare_to is not None:
            await self._compare(request, result, rows, axis)
        return result

    def _plan(
        self,
        metrics: Sequence[str],
        dimensions: Sequence[str],
        filters: Sequence[Filter],
        period: Period,
        **page: Any,
    ) -> Plan:
        return plan(metrics, dimensions, filters, period, route=self.route, **page)

    async def _rows(self, step: Plan, metrics: Sequence[str], dimensions: Sequence[str]) -> list[dict[str, Any]]:
        compiled = compile_query(step.query)
        answer = await self.store.query(compiled.sql, compiled.parameters)
        return [
            step.public_row(dict(zip(compiled.columns, row, strict=True)), metrics, dimensions) for row in answer.rows
        ]

    def _shown(self, row: dict[str, Any], axis: _TimeAxis) -> dict[str, Any]:
        return {name: axis.label(name, value) if name in TIME_DIMENSION_NAMES else value for name, value in row.items()}

    def _columns(self, request: AnalyticsQueryRequest) -> list[ResultColumn]:
        columns = []
        for name in request.dimensions:
            entry = DIMENSIONS[name]
            hourly = name == "bucket" and request.granularity == "hour"
            shown: ValueType = "datetime" if hourly else entry.type
            columns.append(ResultColumn(name=name, type=shown, unit=None, kind="dimension"))
        for name in request.metrics:
            entry = METRICS[name]
            columns.append(ResultColumn(name=name, type=entry.type, unit=entry.unit, kind="metric"))
        return columns

    async def _compare(
        self, request: AnalyticsQueryRequest, result: AnalyticsQueryResult, rows: list[dict[str, Any]], axis: _TimeAxis
    ) -> None:
        """Adds the comparison period's values to each row (matched on the same dimension values, time
        dimensions by position) and to the totals."""
        assert request.compare_to is not None
        metrics, dimensions = list(request.metrics), list(request.dimensions)
        before = comparison_period(axis.period, request.compare_to)
        filters = [as_filter(f) for f in request.filters]
        # Only the groups on this page: each non-time dimension is limited to the page's values.
        narrowed = [
            *filters,
            *(
                Filter(d, tuple(sorted({row[d] for row in rows}, key=str)))
                for d in dimensions
                if d not in TIME_DIMENSION_NAMES
            ),
        ]
        if dimensions:
            earlier_rows, earlier_total = await asyncio.gather(
                self._rows(self._plan(metrics, dimensions, narrowed, before), metrics, dimensions)
                if rows
                else _no_rows(),
                self._rows(self._plan(metrics, [], filters, before), metrics, []),
            )
        else:
            # Without dimensions the earlier row is the earlier totals.
            earlier_total = await self._rows(self._plan(metrics, [], filters, before), metrics, [])
            earlier_rows = earlier_total if rows else []
        earlier_axis = _TimeAxis(before)
        found = {_key(row, dimensions, earlier_axis): row for row in earlier_rows}
        for shown, row in zip(result.rows, rows, strict=True):
            match = found.get(_key(row, dimensions, axis), {})
            shown["compare"] = {m: _change(row[m], match.get(m, _empty_value(m))) for m in metrics}
        previous_total = earlier_total[0] if earlier_total else {m: _empty_value(m) for m in metrics}
        result.compare_totals = {m: _change(result.totals[m], previous_total[m]) for m in metrics}
        result.compare_period = PeriodInfo.of(before)


async def _no_rows() -> list[dict[str, Any]]:
    return []


def _key(row: dict[str, Any], dimensions: list[str], axis: _TimeAxis) -> tuple[Any, ...]:
    return tuple(axis.position(d, row[d]) if d in TIME_DIMENSION_NAMES else row[d] for d in dimensions)


# --- repeated bodies -------------------------------------------------------------------------------------


class RecentQueries:
    """Request bodies seen lately, parsed, resolved and checked for a role, with their fingerprint: a body
    asked again (a dashboard refreshing its widgets) skips all of that and goes straight to the cache.

    An entry holds until the next midnight in the request's timezone, when a relative range (or the
    default range) would resolve to other dates. Bodies that fail to parse are never kept.
    """

    def __init__(self, service: AnalyticsQueryService, *, max_entries: int = 4096, max_body_bytes: int = 16384) -> None:
        self._service = service
        self._max_entries = max_entries
        self._max_body_bytes = max_body_bytes
        self._entries: dict[tuple[Role, bytes], tuple[AnalyticsQueryRequest, str, float]] = {}

    def get(self, body: bytes, role: Role, parse: Callable[[bytes], Any]) -> tuple[AnalyticsQueryRequest, str]:
        """The resolved request of ``body`` for ``role`` and its fingerprint (errors as the parser raises them)."""
        key = (role, body)
        entry = self._entries.get(key)
        now = time.time()
        if entry is not None and entry[2] > now:
            return entry[0], entry[1]
        request = self._service.resolve(AnalyticsQueryRequest.parse(parse(body)))
        self._service.check_role(request, role)
        fingerprint = request_fingerprint(request)
        if len(body) <= self._max_body_bytes:
            if len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            zone = ZoneInfo(request.timezone)
            tomorrow = datetime.now(zone).date() + timedelta(days=1)
            midnight = datetime.combine(tomorrow, datetime.min.time(), zone).timestamp()
            self._entries[key] = (request, fingerprint, midnight)
        return request, fingerprint
