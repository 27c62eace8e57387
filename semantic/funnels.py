"""Funnels: how many actors go through ordered steps within a conversion window (``POST
/api/v1/analytics/funnels``, GraphQL ``funnel``).

Who is counted: an *actor* is the event's user_id, else its session_id (an anonymous visitor counts
by session; events with neither are left out). A user's events without a user_id count under their
session, apart from the user. Actors are told apart by a 64-bit hash of that id.

Counting rule. Only events inside the request's date range take part. An actor reaches step k when
there are events e1, ..., ek matching steps 1..k (event type and filters) with

- strictly increasing timestamps (an event in the same millisecond as the previous step's does not
  follow it; other events may come in between: the order is not strict);
- ek at most the conversion window after e1 (the window's end included);
- for every exclusion placed after step j < k, no exclusion event strictly between ej and ej+1. An
  event that matches any step is never an exclusion event.

Every possible start is tried, so an actor who failed once and converts later counts as converted.
Each actor counts once per step: step k's count is the number of actors reaching step k.

Times: for the median time from step k-1 to step k, each actor contributes the chain that reached the
actor's deepest step first (the earliest event completing it), taking for each earlier step the
latest event that can precede the next one; the chain's first-step event also gives the actor's
breakdown value. Only an actor's first ``MAX_EVENTS_PER_ACTOR`` matching events in the range are
looked at, so one bot cannot take the statement's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidRequest
from semantic.analysis_request import (
    MAX_RANGE_DAYS,
    AnalysisRequest,
    AnalysisWindow,
    DimensionName,
    EventSpec,
    as_of,
)
from semantic.event_dimensions import (
    EVENT_DIMENSIONS,
    parameter_binder,
)
from semantic.freshness import Watermark
from semantic.periods import Period
from semantic.results import PeriodInfo
from storage.event_keys import CONTENT_KEY
from storage.events import EventStore

# --- the funnel request ------------------------------------------------------------------------------

MIN_STEPS = 2
MAX_STEPS = 10
MAX_EXCLUSIONS = 5
MAX_EVENTS_PER_ACTOR = 2000
MAX_WINDOW_SECONDS = 90 * 86_400
DEFAULT_BREAKDOWN_LIMIT = 10
MAX_BREAKDOWN_LIMIT = 50
MAX_LABEL_LENGTH = 200
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}
# Exclusions after step k use mask bit EXCLUSION_BIT + k - 1 (steps use bits 0..9).
_EXCLUSION_BIT = 16
_MASK_BITS = 25
# Chain values carry the position of their event in the actor's array (at most MAX_EVENTS_PER_ACTOR).
_POSITION_BITS = 12
assert MAX_EVENTS_PER_ACTOR < 1 << _POSITION_BITS
# Events carry their milliseconds since the range start above the mask's bits, in a UInt64.
assert MAX_RANGE_DAYS * 86_400_000 < 1 << (64 - _MASK_BITS)


class FunnelStep(EventSpec):
    label: str | None = Field(None, max_length=MAX_LABEL_LENGTH)


class FunnelExclusion(EventSpec):
    """An event that, strictly between the chain's step ``after_step`` and the next step, ends it."""

    after_step: int = Field(ge=1, le=MAX_STEPS - 1)


class ConversionWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: int = Field(1, ge=1)
    unit: Literal["seconds", "minutes", "hours", "days"] = "days"

    @property
    def seconds(self) -> int:
        return self.value * _UNIT_SECONDS[self.unit]


class Breakdown(BaseModel):
    """Split the answer by one dimension: the ``limit`` values with the most actors entering the
    funnel, and every other value together."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dimension: DimensionName
    limit: int = Field(DEFAULT_BREAKDOWN_LIMIT, ge=1, le=MAX_BREAKDOWN_LIMIT)


class FunnelRequest(AnalysisRequest):
    """The body of POST /api/v1/analytics/funnels (GraphQL: FunnelInput, camelCase)."""

    steps: list[FunnelStep] = Field(min_length=MIN_STEPS, max_length=MAX_STEPS)
    conversion_window: ConversionWindow = ConversionWindow()
    exclusions: list[FunnelExclusion] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    breakdown: Breakdown | None = None

    def check(self) -> None:
        super().check()
        if self.conversion_window.seconds > MAX_WINDOW_SECONDS:
            raise InvalidRequest(
                f"conversion_window: at most {MAX_WINDOW_SECONDS // 86_400} days",
                details={"field": "conversion_window"},
            )
        for index, exclusion in enumerate(self.exclusions):
            if exclusion.after_step >= len(self.steps):
                field = f"exclusions[{index}].after_step"
                raise InvalidRequest(
                    f"{field}: an exclusion sits between two steps, so after_step is 1 to {len(self.steps) - 1}",
                    details={"field": field},
                )


# --- the answer --------------------------------------------------------------------------------------


class FunnelStepResult(BaseModel):
    step: int
    event_type: str
    label: str | None
    # Actors that reached this step.
    count: int
    conversion_from_first: float
    conversion_from_previous: float
    # Actors that reached the previous step and not this one (0 for the first step).
    drop_off: int
    # Median over the actors that reached this step of the time from their previous step (None for
    # the first step, and when nobody reached this one).
    median_seconds_from_previous: float | None


class FunnelGroup(BaseModel):
    # The dimension's value on the first-step event; None: every value beyond the top ones.
    value: str | None
    steps: list[FunnelStepResult]


class FunnelBreakdown(BaseModel):
    dimension: str
    groups: list[FunnelGroup]


class FunnelResult(BaseModel):
    period: PeriodInfo
    as_of: datetime | None
    counted_by: str
    conversion_window_seconds: int
    steps: list[FunnelStepResult]
    # Last step's count / first step's count.
    overall_conversion: float
    breakdown: FunnelBreakdown | None


COUNTED_BY = "user_id, else session_id"


# --- the statement -----------------------------------------------------------------------------------

# One actor per user, else per session.
ACTOR_KEY = "cityHash64(user_id, if(user_id = '', session_id, ''))"


def _strictly_before(array: str) -> str:
    """Per position, ``array``'s value at the last position of an earlier millisecond (-1 for the
    first millisecond): events of one millisecond never follow each other."""
    shifted = f"arrayShiftRight({array}, 1, toInt64(-1))"
    return f"arrayFill(x -> x != -2, arrayMap((v, s) -> if(s, v, -2), {shifted}, run_starts))"


def _latest(array: str) -> str:
    """Per position, the latest value >= 0 of ``array`` at or before it (-1 before any)."""
    return f"arrayFill(x -> x >= 0, {array})"


@dataclass(frozen=True, slots=True)
class FunnelStatement:
    sql: str
    parameters: dict[str, Any]


def _chain_layers(request: FunnelRequest) -> list[list[str]]:
    """Per actor, over the time-sorted arrays ``ts`` (ms since the range start) and ``m`` (masks):
    ``c<k>`` holds, per position, the first-step time of the latest-starting valid chain that reaches
    step k at that event, packed with the position (start << POSITION_BITS | position), or -1.

    A later start is never worse (it leaves more of the window), and the packed values only grow
    along the array, so step k+1 at an event extends the latest chain that reached step k in an
    earlier millisecond (``start<k>``, which also names that chain's step-k position) when it is
    within the window and no exclusion came after it reached step k.

    One SELECT list per step: each reads the previous one's columns, so no expression is copied into
    the next step's (ClickHouse substitutes an alias's expression wherever the alias is used)."""
    n = len(request.steps)
    window_ms = request.conversion_window.seconds * 1000
    layers = [
        [
            "arrayMap((t, p) -> t != p, ts, arrayShiftRight(ts, 1, toInt64(-1))) AS run_starts",
            f"arrayMap((mm, t, p) -> if(bitTest(mm, 0), bitOr(bitShiftLeft(t, {_POSITION_BITS}), p), -1), "
            "m, ts, arrayEnumerate(ts)) AS c1",
        ]
    ]
    excluded_after = {x.after_step for x in request.exclusions}
    for k in range(1, n):
        layer = [f"{_strictly_before(_latest(f'c{k}'))} AS start{k}"]
        reach = f"bitTest(mm, {k}) AND s >= 0 AND t - bitShiftRight(s, {_POSITION_BITS}) <= {window_ms}"
        extend = f"bitOr(bitShiftLeft(bitShiftRight(s, {_POSITION_BITS}), {_POSITION_BITS}), p)"
        if k in excluded_after:
            reached = _latest(f"arrayMap((c, t) -> if(c >= 0, t, -1), c{k}, ts)")
            excluded = _latest(f"arrayMap((mm, t) -> if(bitTest(mm, {_EXCLUSION_BIT + k - 1}), t, -1), m, ts)")
            layer.append(
                f"arrayMap((mm, t, s, p, r, x) -> if({reach} AND r >= x, {extend}, -1), "
                f"m, ts, start{k}, arrayEnumerate(ts), {_strictly_before(reached)}, {_strictly_before(excluded)}) "
                f"AS c{k + 1}"
            )
        else:
            layer.append(
                f"arrayMap((mm, t, s, p) -> if({reach}, {extend}, -1), m, ts, start{k}, arrayEnumerate(ts)) AS c{k + 1}"
            )
        layers.append(layer)
    # Scalars from here on are branch-free sums: ClickHouse evaluates if() branches lazily, first
    # copying the arrays a branch reads for the rows that take it.
    deeper = " + ".join(f"arrayExists(c -> c >= 0, c{k})" for k in range(2, n + 1))
    first_reach = " + ".join(f"(level = {k}) * arrayFirstIndex(c -> c >= 0, c{k})" for k in range(1, n + 1))
    layers.append([f"1 + {deeper} AS level", f"toUInt32({first_reach}) AS top"])
    # The chain: the first event completing the deepest step, then backwards through the positions
    # each step's chain came from (position 0 reads as 0: no such step).
    chain = [f"(level = {n}) * top AS i{n}"]
    for j in range(n - 1, 0, -1):
        came_from = f"toUInt32(bitAnd(start{j}[i{j + 1}], {(1 << _POSITION_BITS) - 1}))"
        chain.append(f"{came_from} + (level = {j}) * top AS i{j}")
    layers.append(chain)
    return layers


def funnel_statement(request: FunnelRequest, period: Period) -> FunnelStatement:
    """One statement over the events of the steps: per actor (time-sorted, capped) the deepest step
    and the chain's times (``_chain_arrays``), then counts and medians, per breakdown value."""
    params: dict[str, Any] = {
        "cap": MAX_EVENTS_PER_ACTOR,
        "range_start_ms": int(period.start.timestamp() * 1000),
        "types": sorted({s.event_type for s in request.steps} | {x.event_type for x in request.exclusions}),
    }
    bind = parameter_binder(params, "f")
    n = len(request.steps)
    step_mask = " + ".join(f"if({s.condition(bind)}, {1 << i}, 0)" for i, s in enumerate(request.steps))
    exclusions = " + ".join(
        f"if({x.condition(bind)}, {1 << (_EXCLUSION_BIT + x.after_step - 1)}, 0)" for x in request.exclusions
    )
    breakdown = request.breakdown
    dimension = EVENT_DIMENSIONS[breakdown.dimension] if breakdown is not None else None
    # One number per event, (ms since the range start) << MASK_BITS | mask, sorts by time cheaply;
    # with a breakdown the values sort along it.
    sorted_arrays = "arraySlice(arraySort(all_e), 1, {cap:UInt32}) AS e"
    value = ""
    if dimension is not None:
        # Metadata dimensions are looked up once per actor, from the first-step event's content.
        value = f", {CONTENT_KEY if dimension.metadata_field else f'toString({dimension.sql})'} AS event_value"
        sorted_arrays += (
            ", groupArray(event_value) AS all_v, "
            "arraySlice(arraySort((v, x) -> x, all_v, all_e), 1, {cap:UInt32}) AS bv"
        )
    rows = f"""
        SELECT {ACTOR_KEY} AS actor, {step_mask} AS sm, toUInt64(sm + if(sm = 0, {exclusions or "0"}, 0)) AS event_mask,
               bitOr(bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp) - {{range_start_ms:Int64}}), {_MASK_BITS}),
                     event_mask) AS event_e{value}
        FROM events
        WHERE {AnalysisWindow.sql(period, params)} AND event_type IN {{types:Array(String)}}
          AND (user_id != '' OR session_id != '')"""
    # Seconds from step j-1 to step j (meaningful where level >= j).
    shown = ["level", *(f"(ts[i{j}] - ts[i{j - 1}]) / 1000 AS d{j}" for j in range(2, n + 1))]
    if dimension is not None:
        # The chain's first-step event; of several in that millisecond, the greatest value.
        first_ms = "arrayWithConstant(length(ts), ts[i1])"
        first_values = f"arrayFilter((v, t, mm, f) -> t = f AND bitTest(mm, 0), bv, ts, m, {first_ms})"
        shown.append(f"arrayReduce('max', {first_values}) AS value")
    arrays = f"""
        SELECT {f"arrayMap(x -> toInt64(bitShiftRight(x, {_MASK_BITS})), e) AS ts"},
               {f"arrayMap(x -> bitAnd(x, {(1 << _MASK_BITS) - 1}), e) AS m"}{"" if dimension is None else ", bv"}
        FROM (
            SELECT actor, groupArray(event_e) AS all_e, {sorted_arrays}
            FROM ({rows}) WHERE event_mask != 0
            GROUP BY actor
            HAVING bitTest(groupBitOr(event_mask), 0)
        )"""
    for layer in _chain_layers(request):
        arrays = f"SELECT *, {', '.join(layer)} FROM ({arrays})"
    per_actor = f"SELECT {', '.join(shown)} FROM ({arrays})"
    deltas = [f"d{j}" for j in range(2, n + 1)]
    if dimension is not None and dimension.metadata_field:
        per_actor = f"""
        SELECT a.level AS level, {", ".join(f"a.{d} AS {d}" for d in deltas)}, meta.field AS value
        FROM ({per_actor}) AS a
        LEFT JOIN (SELECT content_id, {dimension.metadata_field} AS field FROM content_metadata) AS meta
          ON meta.content_id = a.value"""
    counts = ", ".join(f"countIf(level >= {k}) AS n{k}" for k in range(1, n + 1))
    if breakdown is None:
        medians = ", ".join(f"quantileExactInclusiveIf(0.5)(d{j}, level >= {j})" for j in range(2, n + 1))
        return FunnelStatement(f"SELECT 0, NULL, {counts}, {medians} FROM ({per_actor})", params)
    params["top"] = breakdown.limit
    states = ", ".join(f"quantileExactInclusiveIfState(0.5)(d{j}, level >= {j}) AS qd{j}" for j in range(2, n + 1))
    sums = ", ".join(f"sum(n{k})" for k in range(1, n + 1))
    merged = ", ".join(f"quantileExactInclusiveIfMerge(0.5)(q{d})" for d in deltas)
    # The values past the top ones become one group (grp NULL); the grouping set () is the total.
    sql = f"""
        SELECT grouping(grp) = 0 AS is_group, if(rank <= {{top:UInt32}}, value, NULL) AS grp, {sums}, {merged}
        FROM (
            SELECT value, {counts}, {states}, row_number() OVER (ORDER BY n1 DESC, value) AS rank
            FROM ({per_actor})
            GROUP BY value
        )
        GROUP BY GROUPING SETS ((grp), ())
        ORDER BY is_group, grp IS NULL, sum(n1) DESC, grp"""
    return FunnelStatement(sql, params)


def _steps(request: FunnelRequest, counts: Sequence[int], medians: Sequence[float | None]) -> list[FunnelStepResult]:
    out = []
    first = counts[0]
    for index, step in enumerate(request.steps):
        count = int(counts[index])
        previous = int(counts[index - 1]) if index else count
        median = medians[index - 1] if index else None
        out.append(
            FunnelStepResult(
                step=index + 1,
                event_type=step.event_type,
                label=step.label,
                count=count,
                conversion_from_first=count / first if first else 0.0,
                conversion_from_previous=count / previous if previous else 0.0,
                drop_off=previous - count,
                median_seconds_from_previous=_median(median) if count else None,
            )
        )
    return out


def _median(value: Any) -> float | None:
    if value is None or value != value:  # NaN: no values
        return None
    return float(value)


async def run_funnel(store: EventStore, request: FunnelRequest, watermark: Watermark | None = None) -> FunnelResult:
    """The funnel of a resolved request (``FunnelRequest.resolved``); a pure function of its inputs."""
    period = request.period()
    statement = funnel_statement(request, period)
    result = await store.query(statement.sql, statement.parameters)
    n = len(request.steps)
    total: tuple[Any, ...] | None = None
    groups: list[FunnelGroup] = []
    for row in result.rows:
        is_group, value, counts, medians = row[0], row[1], row[2 : 2 + n], row[2 + n :]
        if is_group:
            groups.append(FunnelGroup(value=value, steps=_steps(request, counts, medians)))
        else:
            total = (counts, medians)
    counts, medians = total if total is not None else ((0,) * n, (None,) * (n - 1))
    steps = _steps(request, counts, medians)
    return FunnelResult(
        period=PeriodInfo.of(period),
        as_of=as_of(watermark),
        counted_by=COUNTED_BY,
        conversion_window_seconds=request.conversion_window.seconds,
        steps=steps,
        overall_conversion=steps[-1].count / steps[0].count if steps[0].count else 0.0,
        breakdown=None
        if request.breakdown is None
        else FunnelBreakdown(dimension=request.breakdown.dimension, groups=groups),
    )
