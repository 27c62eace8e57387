"""Paths (``POST /api/v1/analytics/paths``, GraphQL ``paths``): what sessions did after (or before)
an anchor step, up to ``depth`` steps away.

Steps are named as in semantic/journeys.py: a content_view is ``content:<content id>`` (its
content_id, else properties.content_id), a search_query ``search``, a page_view ``page``; any other
event type taking part is named by its type. ``entry`` stands before a session's first step and
``exit`` after its last, so they are not allowed as event types here.

Counting rules:

- Only events with a session_id, inside the date range, of the chosen event types (default: the
  page types content_view, search_query, page_view; the anchor's type is always added) and passing
  every filter take part. They are ordered by time (events of one millisecond in an order fixed by
  CRC-32 of the step name), and a step repeated back to back counts once (``content:A, content:A,
  search`` is ``content:A, search``).
- The anchor is a step name (``content:<id>``, ``search``, ``page``, an event type's name) or an
  event type (``content_view`` is any ``content:`` step). A session counts once, at its first anchor.
- Its path is the anchor and the ``depth`` steps after it (or before it), ending in ``exit`` (or
  starting at ``entry``) when the session has fewer.
- ``paths``: the most frequent paths, each with its sessions and share of all sessions with the
  anchor; ``by_depth``: per distance from the anchor, the most frequent steps there.

Only a session's first ``MAX_EVENTS_PER_SESSION`` events taking part are read, so one bot-like
session cannot take the statement's memory; an anchor past them does not count.

Under a content scope only steps on in-scope content take part (search and page steps name none).

Where the steps are read (``steps_source``): a request whose steps are all page types and whose
filters need no column beyond the session, the event type and the content reads ``session_steps``
(storage migration 015), a narrow copy of those steps sorted by session and time that holds every
event the rollup feed has passed on; any other request reads raw ``events``. Both give the same
answer for the same fed events: the same step names, order, ties and per-session cap
(tests/semantic/test_paths.py runs each case session_steps can answer on both).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from core.taxonomy import CONTENT_VIEW, PAGE_TYPES, PAGE_VIEW, SEARCH_QUERY
from semantic.analysis_request import (
    MAX_FILTERS_PER_EVENT,
    AnalysisRequest,
    AnalysisWindow,
    EventTypeName,
    as_of,
    event_type_name,
)
from semantic.content_scope import current_scope, scope_condition
from semantic.event_dimensions import EVENT_DIMENSIONS, DimensionFilter, filters_sql, parameter_binder
from semantic.freshness import Watermark
from semantic.periods import Period
from semantic.results import PeriodInfo
from storage.event_keys import CONTENT_KEY
from storage.events import EventStore

MAX_DEPTH = 5
MAX_LIMIT = 100
MAX_EVENT_TYPES = 30
MAX_EVENTS_PER_SESSION = 1000
MAX_ANCHOR_LENGTH = 1100
CONTENT_PREFIX = "content:"
ENTRY, EXIT = "entry", "exit"
_NAMED_STEPS = {SEARCH_QUERY: "search", PAGE_VIEW: "page"}
_STEP_TYPES = {"search": SEARCH_QUERY, "page": PAGE_VIEW}
# Where a statement reads the steps: the copy of the page types' steps sorted by session (storage
# migration 015), or raw events.
SESSION_STEPS, EVENTS = "session_steps", "events"
STEP_SOURCES = (SESSION_STEPS, EVENTS)
# Filters session_steps answers: on its own columns, and content metadata looked up by its content.
_SESSION_STEPS_COLUMNS = frozenset({"event_type", "session_id"})


def _step(content: str) -> str:
    """A step's name, from the event's type and ``content`` (an expression naming its content)."""
    return (
        f"multiIf(event_type = '{CONTENT_VIEW}', concat('{CONTENT_PREFIX}', {content}), "
        f"event_type = '{SEARCH_QUERY}', 'search', event_type = '{PAGE_VIEW}', 'page', toString(event_type))"
    )


# In raw events, the content from content_id here; events naming their content only in properties are
# read apart (``_NAMED_IN_PROPERTIES``), so the wide properties column is read only where content_id
# is empty, a narrow range of the table's sort order. session_steps has the content in content_key.
_STEP = _step("content_id")
_NAMED_IN_PROPERTIES = f"event_type = '{CONTENT_VIEW}' AND content_id = ''"
_STEP_FROM_PROPERTIES = f"concat('{CONTENT_PREFIX}', {CONTENT_KEY})"
# Sort key of an event: (ms since the range start) << 28 | 28 bits of CRC32(step): sorting numbers is
# cheap, and the steps of one millisecond come in an order fixed by a hash of their names.
_ORDER_BITS = 28


def _anchor(text: str) -> str:
    if text.startswith(CONTENT_PREFIX):
        if text == CONTENT_PREFIX:
            raise ValueError("content: needs a content id (content:<id>)")
        return text
    if text in _STEP_TYPES:
        return text
    if text in (ENTRY, EXIT):
        raise ValueError(f"{text!r} is not a step that can anchor a path")
    try:
        return event_type_name(text)
    except ValueError:
        raise ValueError(f"{text[:80]!r} is not an anchor: content:<id>, search, page or an event type") from None


def _not_reserved(name: str) -> str:
    if name in (ENTRY, EXIT):
        raise ValueError(f"{name!r} names the start or end of a session in paths, not an event type")
    return name


StepEventType = Annotated[EventTypeName, AfterValidator(_not_reserved)]


class PathsRequest(AnalysisRequest):
    """The body of POST /api/v1/analytics/paths (GraphQL: PathsInput, camelCase)."""

    anchor: Annotated[str, Field(max_length=MAX_ANCHOR_LENGTH), AfterValidator(_anchor)]
    direction: Literal["after", "before"] = "after"
    depth: int = Field(3, ge=1, le=MAX_DEPTH)
    limit: int = Field(10, ge=1, le=MAX_LIMIT)
    # Which events are steps; default: the page types.
    event_types: list[StepEventType] | None = Field(None, min_length=1, max_length=MAX_EVENT_TYPES)
    filters: list[DimensionFilter] = Field(default_factory=list, max_length=MAX_FILTERS_PER_EVENT)

    @property
    def anchor_type(self) -> str:
        if self.anchor.startswith(CONTENT_PREFIX):
            return CONTENT_VIEW
        return _STEP_TYPES.get(self.anchor, self.anchor)

    @property
    def step_types(self) -> list[str]:
        return sorted({*(self.event_types or PAGE_TYPES), self.anchor_type})


class PathStep(BaseModel):
    step: str
    sessions: int
    share: float


class DepthSteps(BaseModel):
    # Steps away from the anchor (1 = next, or previous for direction "before").
    depth: int
    steps: list[PathStep]


class PathCount(BaseModel):
    # In session order: the anchor first ("after") or last ("before").
    steps: list[str]
    sessions: int
    share: float


class PathsResult(BaseModel):
    period: PeriodInfo
    as_of: datetime | None
    anchor: str
    direction: str
    depth: int
    # Sessions that reached the anchor.
    sessions: int
    paths: list[PathCount]
    # Sessions whose path is not among ``paths``.
    other_paths: int
    by_depth: list[DepthSteps]


def steps_source(request: PathsRequest) -> str:
    """session_steps when it holds every event the request reads, else events: the steps are page
    types only (session_steps keeps no other), and every filter is on the event type, the session
    or content metadata (looked up by session_steps' content_key, the content as events name it)."""
    if not set(request.step_types) <= set(PAGE_TYPES):
        return EVENTS
    for flt in request.filters:
        if flt.dimension not in _SESSION_STEPS_COLUMNS and EVENT_DIMENSIONS[flt.dimension].metadata_field is None:
            return EVENTS
    return SESSION_STEPS


def _anchor_test(request: PathsRequest, params: dict[str, Any], step: str) -> str:
    """Whether the step name ``step`` is the anchor (an event type anchors each of its steps)."""
    if request.anchor == CONTENT_VIEW:
        return f"startsWith({step}, '{CONTENT_PREFIX}')"
    params["anchor"] = _NAMED_STEPS.get(request.anchor, request.anchor)
    return f"{step} = {{anchor:String}}"


def paths_statement(request: PathsRequest, period: Period, source: str | None = None) -> tuple[str, dict[str, Any]]:
    """(grouped, path, d1..d<depth>, sessions) rows, the top ``limit`` of each grouping set: the
    paths (``grouped`` = 2^depth - 1), the steps d away from the anchor (``d<d>`` set), the total
    (every bit of ``grouped`` set, as ClickHouse's grouping() numbers them).

    ``source``: where the steps are read (one of STEP_SOURCES; default ``steps_source``)."""
    chosen = steps_source(request)
    source = source or chosen
    if source not in STEP_SOURCES or (source == SESSION_STEPS and chosen != SESSION_STEPS):
        raise ValueError(f"the paths of this request cannot be read from {source!r}")
    params: dict[str, Any] = {
        "types": request.step_types,
        "cap": MAX_EVENTS_PER_SESSION,
        "depth": request.depth,
        "limit": request.limit,
    }
    bind = parameter_binder(params, "p")
    window = AnalysisWindow.sql(period, params)
    anchored = ""
    if request.anchor.startswith(CONTENT_PREFIX):
        # Only the sessions that viewed the content: found through the events table's sort key
        # (content first), for either source (a session of session_steps is in events too).
        params["anchor_content"] = request.anchor.removeprefix(CONTENT_PREFIX)
        anchored = (
            f" AND session_id IN (SELECT session_id FROM events WHERE {window}"
            f" AND event_type = '{CONTENT_VIEW}' AND content_id IN ({{anchor_content:String}}, '')"
            f" AND {CONTENT_KEY} = {{anchor_content:String}} AND session_id != '')"
        )
    params["range_start_ms"] = int(period.start.timestamp() * 1000)
    order_key = (
        f"bitOr(bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp) - {{range_start_ms:Int64}}), {_ORDER_BITS}), "
        f"bitAnd(CRC32(step), {(1 << _ORDER_BITS) - 1})) AS order_key"
    )
    scope = current_scope()
    if not scope.unrestricted:
        # Only steps on in-scope content (semantic/content_scope.py).
        anchored += f" AND {scope_condition('content_key' if source == SESSION_STEPS else CONTENT_KEY, bind, scope)}"
    if source == SESSION_STEPS:
        # Every row has a session, and the content is in content_key, so no second read for the
        # events naming it in properties.
        where = (
            f"{window} AND event_type IN {{types:Array(String)}} "
            f"AND {filters_sql(request.filters, bind, content='content_key')}{anchored}"
        )
        steps = f"SELECT session_id, {_step('content_key')} AS step, {order_key} FROM session_steps WHERE {where}"
    else:
        where = (
            f"{window} AND event_type IN {{types:Array(String)}} AND session_id != '' "
            f"AND {filters_sql(request.filters, bind)}{anchored}"
        )
        steps = f"""
                        SELECT session_id, {_STEP} AS step, {order_key} FROM events
                        WHERE {where} AND NOT ({_NAMED_IN_PROPERTIES})
                        UNION ALL
                        SELECT session_id, {_STEP_FROM_PROPERTIES} AS step, {order_key} FROM events
                        WHERE {where} AND {_NAMED_IN_PROPERTIES}"""
    if request.direction == "after":
        path = (
            "arrayConcat(arraySlice(steps, at, {depth:UInt32} + 1), "
            f"if(length(steps) - at < {{depth:UInt32}}, ['{EXIT}'], []))"
        )
        from_anchor = "path"
    else:
        path = (
            f"arrayConcat(if(at - 1 < {{depth:UInt32}}, ['{ENTRY}'], []), "
            "arraySlice(steps, greatest(1, toInt64(at) - {depth:UInt32}), least(toInt64(at), {depth:UInt32} + 1)))"
        )
        from_anchor = "arrayReverse(path)"
    depths = range(1, request.depth + 1)
    # One aggregation over the sessions' paths: the paths, the step at each distance, and the total.
    at_depth = ", ".join(f"{from_anchor}[{d + 1}] AS d{d}" for d in depths)
    keys = ", ".join(["path", *(f"d{d}" for d in depths)])
    sets = ", ".join(["(path)", *(f"(d{d})" for d in depths), "()"])
    # Sessions whose path ends before depth d group under '' at d: not a step, and not to take a place
    # among the top ones. (grouping() sets the bit of each key left out, path's the highest.)
    every = (1 << (request.depth + 1)) - 1
    present = "multiIf(" + ", ".join(f"grouped = {every ^ (1 << (request.depth - d))}, d{d} != ''" for d in depths)
    present += ", 1)"
    sql = f"""
        SELECT grouping({keys}) AS grouped, path, {", ".join(f"d{d}" for d in depths)}, count() AS sessions
        FROM (
            SELECT path, {at_depth}
            FROM (
                SELECT arrayFilter((x, p) -> x != p, all_steps, arrayShiftRight(all_steps, 1, '')) AS steps,
                       arrayFirstIndex(x -> {_anchor_test(request, params, "x")}, steps) AS at,
                       {path} AS path
                FROM (
                    SELECT cityHash64(session_id) AS session, groupArray(order_key) AS order_keys,
                           arraySort((x, k) -> k, groupArray(step), order_keys) AS sorted_steps,
                           arraySlice(sorted_steps, 1, {{cap:UInt32}}) AS all_steps
                    FROM ({steps})
                    GROUP BY session
                    HAVING countIf({_anchor_test(request, params, "step")}) > 0
                )
                WHERE at > 0
            )
        )
        GROUP BY GROUPING SETS ({sets})
        HAVING {present}
        ORDER BY grouped, sessions DESC, {keys}
        LIMIT {{limit:UInt32}} BY grouped"""
    return sql, params


async def run_paths(
    store: EventStore, request: PathsRequest, watermark: Watermark | None = None, *, source: str | None = None
) -> PathsResult:
    """The paths of a resolved request (``PathsRequest.resolved``); a pure function of its inputs.
    ``source``: as in ``paths_statement``."""
    period = request.period()
    sql, params = paths_statement(request, period, source)
    result = await store.query(sql, params)
    paths: list[PathCount] = []
    by_depth: dict[int, list[PathStep]] = {d: [] for d in range(1, request.depth + 1)}
    every = (1 << (request.depth + 1)) - 1
    total = next((int(row[-1]) for row in result.rows if row[0] == every), 0)

    def share(sessions: int) -> float:
        return sessions / total if total else 0.0

    for grouped, path, *steps, sessions in result.rows:
        if grouped == every:
            continue
        # The one key of the row's grouping set has its bit clear (path is the highest bit).
        position = request.depth - (every ^ grouped).bit_length() + 1
        if position == 0:
            paths.append(PathCount(steps=list(path), sessions=int(sessions), share=share(int(sessions))))
        elif steps[position - 1]:
            step = steps[position - 1]
            by_depth[position].append(PathStep(step=step, sessions=int(sessions), share=share(int(sessions))))
    return PathsResult(
        period=PeriodInfo.of(period),
        as_of=as_of(watermark),
        anchor=request.anchor,
        direction=request.direction,
        depth=request.depth,
        sessions=total,
        paths=paths,
        other_paths=total - sum(p.sessions for p in paths),
        by_depth=[DepthSteps(depth=d, steps=steps) for d, steps in by_depth.items()],
    )
