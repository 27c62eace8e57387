"""Retention between any two events (``POST /api/v1/analytics/retention``, GraphQL
``retentionAnalysis``): of the users who did a start event, how many came back to do a return event
one, two, ... days, weeks or months later. (GET /api/v1/analytics/users/retention is another
analysis: cohorts by first event ever, any event a return; semantic/retention.py.)

Definitions. Only users count (events with a user_id); days, weeks (Monday to Sunday) and months
are calendar buckets in the request's timezone. Both start and return events are read inside the
request's date range only.

- A user's cohort is the bucket of the user's first start event in the range.
- The user counts as returned at offset k >= 1 when the user did the return event in the k-th
  bucket after the cohort's; at offset 0, when the user did it in the cohort's own bucket after
  (strictly) that first start event. The start and return event may be the same event type.
- A cohort's cells run from offset 0 to ``periods``, but not past the range's last bucket, so a
  later cohort has fewer cells (a range of ``periods`` + 1 buckets gives the first cohort all).
- The overall curve at offset k: the users returned at k over the users of the cohorts that have
  a cell k (weighted by cohort size).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from core.errors import InvalidRequest
from semantic.analysis_request import AnalysisRequest, AnalysisWindow, EventSpec, as_of
from semantic.event_dimensions import parameter_binder
from semantic.freshness import Watermark
from semantic.periods import Granularity, Period
from semantic.results import PeriodInfo, bucket_label, period_buckets
from storage.events import EventStore

Bucket = Literal["day", "week", "month"]
MAX_PERIODS: dict[str, int] = {"day": 90, "week": 52, "month": 12}
DEFAULT_PERIODS: dict[str, int] = {"day": 14, "week": 8, "month": 6}
# Enough for 12 monthly offsets after a first month (13 calendar months).
MAX_RETENTION_RANGE_DAYS = 397

_BUCKET_OF = {
    "day": "toDate(timestamp, {tz:String})",
    "week": "toMonday(toDate(timestamp, {tz:String}))",
    "month": "toStartOfMonth(toDate(timestamp, {tz:String}))",
}
_OFFSET = {
    "day": "dateDiff('day', cohort, x.1)",
    "week": "intDiv(dateDiff('day', cohort, x.1), 7)",
    "month": "dateDiff('month', cohort, x.1)",
}


class RetentionRequest(AnalysisRequest):
    """The body of POST /api/v1/analytics/retention (GraphQL: RetentionAnalysisInput, camelCase).

    Without a date range: the last ``periods`` + 1 buckets up to today (today's bucket included).
    """

    max_range_days: ClassVar[int] = MAX_RETENTION_RANGE_DAYS

    start_event: EventSpec
    return_event: EventSpec
    bucket: Bucket = "week"
    # Offsets 1..periods after the cohort's bucket; default by bucket (DEFAULT_PERIODS).
    periods: int | None = Field(None, ge=1)

    def check(self) -> None:
        super().check()
        if self.periods is not None and self.periods > MAX_PERIODS[self.bucket]:
            raise InvalidRequest(
                f"periods: at most {MAX_PERIODS[self.bucket]} for bucket={self.bucket}",
                details={"field": "periods", "max": MAX_PERIODS[self.bucket]},
            )

    @property
    def offsets(self) -> int:
        return self.periods if self.periods is not None else DEFAULT_PERIODS[self.bucket]

    def granularity(self) -> Granularity:
        return self.bucket

    def default_start(self, end: date) -> date:
        first = _bucket_start(end, self.bucket)
        for _ in range(self.offsets):
            first = _bucket_start(first - timedelta(days=1), self.bucket)
        return first


def _bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return day


class RetentionCell(BaseModel):
    offset: int
    users: int
    rate: float


class RetentionCohort(BaseModel):
    # The first day of the cohort's bucket.
    cohort: str
    size: int
    cells: list[RetentionCell]


class RetentionCurvePoint(BaseModel):
    offset: int
    returned_users: int
    # Users of the cohorts that have this offset inside the range.
    eligible_users: int
    rate: float


class RetentionResult(BaseModel):
    period: PeriodInfo
    as_of: datetime | None
    bucket: str
    periods: int
    start_event: str
    return_event: str
    cohorts: list[RetentionCohort]
    curve: list[RetentionCurvePoint]


def retention_statement(request: RetentionRequest, period: Period) -> tuple[str, dict[str, Any]]:
    """(cohort, offset, users) rows; offset -1 is the cohort's size. Per user and bucket the first
    start and last return (so a user's state is bounded by the number of buckets), then per user the
    cohort and the offsets returned at."""
    params: dict[str, Any] = {"tz": request.timezone, "max_offset": request.offsets}
    bind = parameter_binder(params, "r")
    params["types"] = sorted({request.start_event.event_type, request.return_event.event_type})
    starts, returns = request.start_event.condition(bind), request.return_event.condition(bind)
    sql = f"""
        SELECT cohort, offset, count() AS users
        FROM (
            SELECT user_id, arraySort(groupArray((bucket, first_start, last_return))) AS buckets,
                   arrayFirst(x -> x.2 >= 0, buckets) AS first,
                   first.1 AS cohort,
                   arrayFilter(x -> x.3 >= 0 AND (x.1 > cohort OR x.3 > first.2), buckets) AS returned,
                   arrayConcat([-1], arrayMap(x -> toInt64({_OFFSET[request.bucket]}), returned)) AS offsets
            FROM (
                SELECT user_id, {_BUCKET_OF[request.bucket]} AS bucket,
                       if(countIf(is_start) > 0, minIf(ms, is_start), -1) AS first_start,
                       if(countIf(is_return) > 0, maxIf(ms, is_return), -1) AS last_return
                FROM (
                    SELECT user_id, timestamp, toUnixTimestamp64Milli(timestamp) AS ms,
                           {starts} AS is_start, {returns} AS is_return
                    FROM events
                    WHERE {AnalysisWindow.sql(period, params)} AND event_type IN {{types:Array(String)}}
                      AND user_id != ''
                )
                WHERE is_start OR is_return
                GROUP BY user_id, bucket
            )
            GROUP BY user_id
            HAVING countIf(first_start >= 0) > 0
        )
        ARRAY JOIN offsets AS offset
        WHERE offset <= {{max_offset:Int64}}
        GROUP BY cohort, offset"""
    return sql, params


async def run_retention(
    store: EventStore, request: RetentionRequest, watermark: Watermark | None = None
) -> RetentionResult:
    """The retention of a resolved request (``RetentionRequest.resolved``); a pure function of its inputs."""
    period = request.period()
    sql, params = retention_statement(request, period)
    result = await store.query(sql, params)
    counts: dict[str, dict[int, int]] = {}
    for cohort, offset, users in result.rows:
        counts.setdefault(bucket_label(cohort, period), {})[int(offset)] = int(users)
    labels = period_buckets(period)
    cohorts = []
    for index, label in enumerate(labels):
        found = counts.get(label)
        if not found:
            continue
        size = found[-1]
        span = min(request.offsets, len(labels) - 1 - index)
        cells = [RetentionCell(offset=k, users=found.get(k, 0), rate=found.get(k, 0) / size) for k in range(span + 1)]
        cohorts.append(RetentionCohort(cohort=label, size=size, cells=cells))
    curve = []
    for k in range(min(request.offsets, len(labels) - 1) + 1):
        having = [c for c in cohorts if len(c.cells) > k]
        returned = sum(c.cells[k].users for c in having)
        eligible = sum(c.size for c in having)
        curve.append(
            RetentionCurvePoint(
                offset=k,
                returned_users=returned,
                eligible_users=eligible,
                rate=returned / eligible if eligible else 0.0,
            )
        )
    return RetentionResult(
        period=PeriodInfo.of(period),
        as_of=as_of(watermark),
        bucket=request.bucket,
        periods=request.offsets,
        start_event=request.start_event.event_type,
        return_event=request.return_event.event_type,
        cohorts=cohorts,
        curve=curve,
    )
