"""Data exports: the body both transports send, the rules of who may export what, and the datasets as
streams of Arrow record batches (docs/exports.md).

What can be exported:

- ``events``: raw events of a date range (UTC days, both included, at most ``MAX_EVENT_EXPORT_DAYS``),
  optionally filtered by the raw event filters of ``GET /events``. Raw event access: the caller needs
  "query raw events" as well as "export data" (admin), and no content scope (raw events cannot be
  narrowed to content, as ``GET /events`` refuses a scoped principal too).
- ``query``: every row of an analyticsQuery body (semantic/analytics_query.py), all pages. The
  query's own checks apply: each metric and dimension the role may use, the content scope through its
  compiler, its range limit. ``date_range`` given beside the query replaces the query's own.
- ``saved_query``: a saved query of kind ``query`` the caller may read, exported as above.

The request checks everything and resolves relative dates, so the stored definition is concrete and the
export's task (pipelines/exports.py) computes the file for the owner's role and scope alone. Reading
and downloading an export is for its owner (and admins); anyone else gets 404, the answer for an id
that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from core.access import CAN_QUERY_RAW_EVENTS, CAN_RUN_ANALYTICAL_QUERIES, Principal
from core.errors import AnalyticsError, Conflict, Forbidden, InvalidRequest, NotFound
from semantic.analytics_query import (
    MAX_LIMIT,
    AnalyticsQueryRequest,
    AnalyticsQueryResult,
    AnalyticsQueryService,
    DateRange,
    RelativeRange,
    ResultColumn,
    check_timezone,
    relative_dates,
)
from semantic.content_scope import describe, require_applicable, using_scope
from semantic.freshness import Watermark
from semantic.periods import check_date
from semantic.reports import Launch
from semantic.request_errors import validate_body
from semantic.saved_queries import NoNul
from storage.events import EVENT_SCHEMA, EventStore
from storage.exports import COMPLETED, ExportRepository, NewExport, StoredExport, export_not_found
from storage.saved_queries import SavedQuery

EXPORTS_PREFIX = "/api/v1/analytics/exports"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000
# The longest range of raw events one export reads; a longer one is several exports.
MAX_EVENT_EXPORT_DAYS = 93
# Rows of one chunk: one statement's answer, encoded and handed to the file store before the next.
EVENT_CHUNK_ROWS = 20_000
QUERY_PAGE_ROWS = MAX_LIMIT
MAX_ID_LENGTH = 100

_T = TypeVar("_T")

# A saved query the caller may read (NotFound otherwise): SavedQueryService.get.
SavedQueryLookup = Callable[[str, Principal], Awaitable[SavedQuery]]


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"
    PARQUET = "parquet"

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]


_CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}

# Field metadata of a text column holding JSON (an event's properties): NDJSON embeds it as JSON.
JSON_TEXT = {b"content": b"json"}


# --- the body ------------------------------------------------------------------------------------------

FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=256), NoNul]


class EventFilters(BaseModel):
    """The raw event filters of ``GET /events`` (each an exact match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: FilterValue | None = None
    event_category: FilterValue | None = None
    user_id: FilterValue | None = None
    session_id: FilterValue | None = None
    content_id: FilterValue | None = None


class ExportDateRange(BaseModel):
    """UTC days, both included; or one relative range, resolved when the export is asked for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_date: date | None = None
    end_date: date | None = None
    relative: RelativeRange | None = None

    @model_validator(mode="after")
    def _dates_or_relative(self) -> ExportDateRange:
        dates = (self.start_date, self.end_date)
        if self.relative is not None and any(d is not None for d in dates):
            raise ValueError("give either relative or start_date and end_date, not both")
        if self.relative is None and None in dates:
            raise ValueError("give both start_date and end_date, or relative")
        return self

    def dates(self, today: date) -> tuple[date, date]:
        if self.relative is not None:
            return relative_dates(self.relative, today)
        assert self.start_date is not None and self.end_date is not None
        return self.start_date, self.end_date


class ExportCreate(BaseModel):
    """The body of ``POST /exports``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["events", "query", "saved_query"]
    format: ExportFormat
    date_range: ExportDateRange | None = None
    filters: EventFilters | None = None
    query: dict[str, Any] | None = None
    saved_query_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), NoNul] | None = None

    @classmethod
    def parse(cls, body: Any) -> ExportCreate:
        """The body, or InvalidRequest naming the first bad field (``date_range.end_date``, ``filters.x``)."""
        spec = validate_body(cls, body, what="the export")
        spec._check_dataset_fields()
        return spec

    def _check_dataset_fields(self) -> None:
        required, optional = _DATASET_FIELDS[self.dataset]
        for name in _DATASET_FIELD_NAMES:
            given = getattr(self, name) is not None
            if name == required and not given:
                raise InvalidRequest(f"{name}: dataset {self.dataset!r} needs {name}", details={"field": name})
            if given and name not in (required, *optional):
                raise InvalidRequest(
                    f"{name}: does not apply to dataset {self.dataset!r}{_MISPLACED_HINTS.get(name, '')}",
                    details={"field": name},
                )


# Each dataset's required field and the others it accepts.
_DATASET_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "events": ("date_range", ("filters",)),
    "query": ("query", ("date_range",)),
    "saved_query": ("saved_query_id", ("date_range",)),
}
_DATASET_FIELD_NAMES = ("date_range", "filters", "query", "saved_query_id")
_MISPLACED_HINTS = {
    "filters": "; a query's filters go in its own filters",
    "query": "; use dataset 'query'",
    "saved_query_id": "; use dataset 'saved_query'",
}


# --- the rules -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventsExport:
    """The concrete definition of a raw event export."""

    start_date: date
    end_date: date
    filters: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "date_range": {"start_date": self.start_date.isoformat(), "end_date": self.end_date.isoformat()},
            "filters": self.filters,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventsExport:
        return cls(
            start_date=date.fromisoformat(data["date_range"]["start_date"]),
            end_date=date.fromisoformat(data["date_range"]["end_date"]),
            filters=dict(data.get("filters") or {}),
        )


class ExportService:
    def __init__(
        self,
        exports: ExportRepository,
        *,
        launch: Launch,
        query: AnalyticsQueryService,
        saved_query: SavedQueryLookup,
    ) -> None:
        self.exports = exports
        self._launch = launch
        self._query = query
        self._saved_query = saved_query

    async def create(self, body: Any, principal: Principal, *, today: date | None = None) -> StoredExport:
        """Check the body for ``principal``, record the export and start its task; answers at once.
        ``today`` resolves relative ranges (default: the current day in UTC, or in a query's timezone)."""
        spec = ExportCreate.parse(body)
        if spec.dataset == "events":
            definition = self._events_definition(spec, principal, today).to_dict()
        elif spec.dataset == "query":
            assert spec.query is not None
            request = _inside("query", lambda: AnalyticsQueryRequest.parse(spec.query))
            definition = {"query": self._query_definition(request, spec, principal, "query", today)}
        else:
            definition = await self._saved_query_definition(spec, principal, today)
        export = await self.exports.create(
            principal, NewExport(dataset=spec.dataset, definition=definition, export_format=spec.format.value)
        )
        await self._launch(export.id)
        return export

    async def list_exports(
        self, principal: Principal, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> tuple[list[StoredExport], int]:
        return await self.exports.list_owned(principal, limit=limit, offset=offset)

    async def get(self, export_id: str, principal: Principal) -> StoredExport:
        # No stored id is longer or holds NUL (which PostgreSQL text cannot hold at all).
        known = len(export_id) <= MAX_ID_LENGTH and "\x00" not in export_id
        export = await self.exports.get(export_id) if known else None
        if export is None or not export.visible_to(principal):
            raise export_not_found(export_id)
        return export

    async def downloadable(self, export_id: str, principal: Principal) -> StoredExport:
        """The completed export whose file ``principal`` may download."""
        export = await self.get(export_id, principal)
        if export.status != COMPLETED:
            raise Conflict(
                f"export {export_id!r} has no file: it is {export.status}"
                + (f" ({export.error})" if export.error else "; poll its status until it is completed"),
                details={"field": "export_id", "status": export.status},
            )
        if export.dataset == "events":
            CAN_QUERY_RAW_EVENTS.check(principal)
        if not principal.scope.covers(export.owner_scope):
            raise Forbidden(
                f"export {export_id!r} was computed for {describe(export.owner_scope)}, which the caller's content "
                f"scope ({describe(principal.scope)}) does not cover",
                details={"field": "export_id"},
            )
        return export

    # --- the datasets' checks -----------------------------------------------------------------------

    def _events_definition(self, spec: ExportCreate, principal: Principal, today: date | None) -> EventsExport:
        CAN_QUERY_RAW_EVENTS.check(principal)
        require_applicable("raw events", principal.scope)
        assert spec.date_range is not None
        start, end = spec.date_range.dates(today or datetime.now(UTC).date())
        _check_span(start, end, MAX_EVENT_EXPORT_DAYS, "date_range")
        filters = spec.filters.model_dump(exclude_none=True) if spec.filters is not None else {}
        return EventsExport(start_date=start, end_date=end, filters=filters)

    def _query_definition(
        self,
        request: AnalyticsQueryRequest,
        spec: ExportCreate,
        principal: Principal,
        field: str,
        today: date | None,
    ) -> dict[str, Any]:
        """The resolved query (every row of it is exported), checked for the principal's role."""
        CAN_RUN_ANALYTICAL_QUERIES.check(principal)
        if request.cursor is not None:
            raise InvalidRequest(
                f"{field}.cursor: an export writes every page of the query; leave the cursor out",
                details={"field": f"{field}.cursor"},
            )
        if request.compare_to is not None:
            # A saved query's definition is named by its id.
            where = field if field == "saved_query_id" else f"{field}.compare_to"
            raise InvalidRequest(
                f"{where}: compare_to is not exported: an export writes the rows of one period; export the "
                "comparison period as an export of its own",
                details={"field": where},
            )
        if spec.date_range is not None:
            zone = _inside(field, lambda: check_timezone(request.timezone))
            start, end = spec.date_range.dates(today or datetime.now(zone).date())
            _check_span(start, end, self._query.max_range_days, "date_range")
            request = request.model_copy(update={"date_range": DateRange(start_date=start, end_date=end)})
        resolved = _inside(field, lambda: self._query.resolve(request, today=today))
        _inside(field, lambda: self._query.check_role(resolved, principal.role))
        return resolved.model_dump(mode="json", exclude={"cursor", "limit"}, exclude_none=True)

    async def _saved_query_definition(
        self, spec: ExportCreate, principal: Principal, today: date | None
    ) -> dict[str, Any]:
        assert spec.saved_query_id is not None
        try:
            saved = await self._saved_query(spec.saved_query_id, principal)
        except NotFound as exc:
            raise InvalidRequest(
                f"saved_query_id: saved query {spec.saved_query_id!r} does not exist or is not visible to the caller",
                details={"field": "saved_query_id"},
            ) from exc
        if saved.kind != "query":
            raise InvalidRequest(
                f"saved_query_id: saved query {saved.id!r} is of kind {saved.kind!r}; only kind 'query' is exported "
                "(a report shows the other kinds)",
                details={"field": "saved_query_id"},
            )
        request = _inside("saved_query_id", lambda: AnalyticsQueryRequest.parse(saved.definition))
        query = self._query_definition(request, spec, principal, "saved_query_id", today)
        return {"saved_query_id": saved.id, "saved_query_name": saved.name, "query": query}


def _check_span(start: date, end: date, max_days: int, field: str) -> None:
    check_date(start, f"{field}.start_date")
    check_date(end, f"{field}.end_date")
    if end < start:
        raise InvalidRequest(
            f"{field}.end_date: {end.isoformat()} is before start_date {start.isoformat()}",
            details={"field": f"{field}.end_date"},
        )
    days = (end - start).days + 1
    if days > max_days:
        raise InvalidRequest(
            f"{field}: {days} days; one export covers at most {max_days} days, so split the range into several",
            details={"field": field, "days": days, "max_days": max_days},
        )


def _inside(prefix: str, step: Callable[[], _T]) -> _T:
    """``step()``, its errors' field names put under ``prefix`` (``metrics[0]`` -> ``query.metrics[0]``).

    For ``saved_query_id`` the fault is in the stored definition, which the caller names by its id: the
    field is the id's, and the message says where in the definition."""
    try:
        return step()
    except AnalyticsError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        field = details.get("field")
        if not isinstance(field, str):
            raise
        if prefix == "saved_query_id":
            exc.message = f"{prefix}: the saved query's definition is refused: {exc.message}"
            exc.details = {**details, "field": prefix, "definition_field": field}
            raise
        inner = prefix if field in ("", "(body)") else f"{prefix}.{field}"
        if exc.message.startswith(f"{field}:"):
            exc.message = f"{inner}{exc.message[len(field) :]}"
        exc.details = {**details, "field": inner}
        if isinstance(details.get("errors"), list):
            exc.details["errors"] = [
                {**e, "field": f"{prefix}.{e['field']}"} if isinstance(e, dict) and "field" in e else e
                for e in details["errors"]
            ]
        raise


def file_name(export: StoredExport) -> str:
    """``events-2026-03-02-2026-03-02.parquet``, ``query-….csv``, ``<saved query name>-….ndjson``."""
    if export.dataset == "events":
        dates, stem = export.definition["date_range"], "events"
    elif export.dataset == "query":
        dates, stem = export.definition["query"]["date_range"], "query"
    else:
        dates = export.definition["query"]["date_range"]
        stem = _slug(export.definition.get("saved_query_name", "")) or "saved-query"
    return f"{stem}-{dates['start_date']}-{dates['end_date']}.{export.export_format}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:80]


def export_to_dict(export: StoredExport) -> dict[str, Any]:
    """An export as the API answers it."""
    return {
        "id": export.id,
        "dataset": export.dataset,
        "format": export.export_format,
        "definition": export.definition,
        "status": export.status,
        "owner_key_id": export.owner_key_id,
        "attempts": export.attempts,
        "created_at": export.created_at.isoformat(),
        "started_at": _iso(export.started_at),
        "finished_at": _iso(export.finished_at),
        "as_of": _iso(export.as_of),
        "row_count": export.row_count,
        "error": export.error,
        "file_name": export.file_name,
        "content_type": export.content_type,
        "file_size": export.file_size,
        "sha256": export.sha256,
        "download_url": f"{EXPORTS_PREFIX}/{export.id}/download" if export.status == COMPLETED else None,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- the datasets as record batches --------------------------------------------------------------------


@dataclass(slots=True)
class ExportSource:
    """What an export writes: its columns, and its rows as record batches read one chunk at a time."""

    schema: pa.Schema
    batches: AsyncIterator[pa.RecordBatch]


# The columns of a raw event export, as GET /events shows them: optional text is null when empty, and
# properties is JSON text.
EVENT_EXPORT_SCHEMA = pa.schema(
    [
        field.with_metadata(JSON_TEXT) if field.name == "properties" else field.with_nullable(True)
        for field in EVENT_SCHEMA
    ]
)
_REQUIRED_TEXT = frozenset({"id", "event_type", "event_category", "properties"})
_OPTIONAL_TEXT = tuple(
    f.name for f in EVENT_EXPORT_SCHEMA if pa.types.is_string(f.type) and f.name not in _REQUIRED_TEXT
)
_FILTER_COLUMNS = tuple(EventFilters.model_fields)


def events_chunk_statement(
    export: EventsExport, day: date, *, through_seq: int, after: tuple[int, str] | None, rows: int
) -> tuple[str, dict[str, Any]]:
    """One chunk of a raw event export: up to ``rows`` events of one UTC ``day`` ordered by (timestamp, id),
    after the position ``after`` (epoch ms, id) of the previous chunk, stored by insert ``through_seq``."""
    start = datetime.combine(day, time.min, UTC)
    params: dict[str, Any] = {
        "start": int(start.timestamp() * 1000),
        "end": int((start + timedelta(days=1)).timestamp() * 1000),
        "through": through_seq,
        "rows": rows,
    }
    where = [
        "timestamp >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')",
        "timestamp < fromUnixTimestamp64Milli({end:Int64}, 'UTC')",
        # Pinned to the watermark: events stored while the export runs are not in it.
        "stored_seq <= {through:UInt64}",
    ]
    for name in _FILTER_COLUMNS:
        value = export.filters.get(name)
        if value is not None:
            where.append(f"{name} = {{f_{name}:String}}")
            params[f"f_{name}"] = value
    if after is not None:
        where.append("(timestamp, id) > (fromUnixTimestamp64Milli({after_ts:Int64}, 'UTC'), {after_id:String})")
        params.update(after_ts=after[0], after_id=after[1])
    sql = (
        f"SELECT {', '.join(EVENT_SCHEMA.names)} FROM events WHERE {' AND '.join(where)} "
        "ORDER BY timestamp, id LIMIT {rows:UInt32}"
    )
    return sql, params


def _as_exported(table: pa.Table) -> pa.RecordBatch:
    columns = []
    for field in EVENT_EXPORT_SCHEMA:
        column = table.column(field.name).combine_chunks()
        if field.name in _OPTIONAL_TEXT:
            column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        columns.append(column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=EVENT_EXPORT_SCHEMA)


def event_source(
    store: EventStore, export: EventsExport, watermark: Watermark, *, chunk_rows: int = EVENT_CHUNK_ROWS
) -> ExportSource:
    """The raw events of ``export`` stored by the watermark's insert, day by day, ``chunk_rows`` at a time."""

    async def batches() -> AsyncIterator[pa.RecordBatch]:
        day = export.start_date
        while day <= export.end_date:
            after: tuple[int, str] | None = None
            while True:
                sql, params = events_chunk_statement(
                    export, day, through_seq=watermark.stored_seq, after=after, rows=chunk_rows
                )
                table = await store.query_arrow(sql, params)
                if table.num_rows:
                    # The position as stored (epoch ms), never through a float.
                    last_ms = table.column("timestamp").cast(pa.int64())[-1].as_py()
                    after = (int(last_ms), str(table.column("id")[-1].as_py()))
                    yield _as_exported(table)
                if table.num_rows < chunk_rows:
                    break
            day += timedelta(days=1)

    return ExportSource(EVENT_EXPORT_SCHEMA, batches())


_ARROW_TYPES: dict[str, pa.DataType] = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "string": pa.string(),
    "date": pa.date32(),
}


def query_schema(columns: list[ResultColumn], timezone: str) -> pa.Schema:
    """The columns of a query's rows: dimensions then metrics, typed as the catalog says."""
    return pa.schema(
        [(c.name, pa.timestamp("s", tz=timezone) if c.type == "datetime" else _ARROW_TYPES[c.type]) for c in columns]
    )


def _typed(value: Any, kind: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_timestamp(kind):
        return datetime.fromisoformat(str(value))
    if pa.types.is_date(kind):
        return date.fromisoformat(str(value)[:10])
    if pa.types.is_integer(kind):
        return int(value)
    if pa.types.is_floating(kind):
        return float(value)
    return str(value)


def query_batch(result: AnalyticsQueryResult, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [
        pa.array([_typed(row.get(field.name), field.type) for row in result.rows], field.type) for field in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


async def query_source(
    service: AnalyticsQueryService,
    definition: dict[str, Any],
    owner: Principal,
    watermark: Watermark,
    *,
    page_rows: int = QUERY_PAGE_ROWS,
) -> ExportSource:
    """Every row of a stored query definition for ``owner`` at ``watermark``, one page per batch (the pages
    of ``POST /query``, followed by their cursors)."""
    request = AnalyticsQueryRequest.model_validate({**definition, "limit": page_rows})

    async def page(cursor: str | None) -> AnalyticsQueryResult:
        # The owner's scope for this statement only: nothing else in the task is answered for it.
        with using_scope(owner.scope):
            return await service.run(request.model_copy(update={"cursor": cursor}), owner.role, watermark)

    first = await page(None)
    schema = query_schema(first.columns, request.timezone)

    async def batches() -> AsyncIterator[pa.RecordBatch]:
        result = first
        while True:
            yield query_batch(result, schema)
            if result.next_cursor is None:
                return
            result = await page(result.next_cursor)

    return ExportSource(schema, batches())
