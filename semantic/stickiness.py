"""Stickiness (``POST /api/v1/analytics/stickiness``, GraphQL ``stickiness``): how many days users
do an event within a week or a month.

Definitions. Only users count (events with a user_id); a day is a calendar day in the request's
timezone, and a window a calendar week (Monday to Sunday) or month. Only events inside the request's
date range count, so the first and last windows may be cut short: ``days`` is how many of their days
lie inside the range.

- A user is active on a day when the user did the event (type and filters) that day.
- Per window: ``distribution[k]`` is the number of users active on exactly k of its days (k = 1 ..
  ``days``); ``active_users`` their total; ``average_active_days`` = active user-days / active
  users; ``ratio`` = average daily active users / active users of the window
  (= average_active_days / days: DAU/WAU for weeks, DAU/MAU for months).
- Over the whole range: ``active_users`` (distinct), ``average_daily_active_users`` (active
  user-days / days of the range), ``ratio`` = the one over the other.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from semantic.analysis_request import AnalysisRequest, AnalysisWindow, EventSpec, as_of
from semantic.event_dimensions import parameter_binder
from semantic.freshness import Watermark
from semantic.periods import Granularity, Period
from semantic.results import PeriodInfo
from storage.events import EventStore

Window = Literal["week", "month"]
_WINDOW_OF = {"week": "toMonday(day)", "month": "toStartOfMonth(day)"}
# A day's bit in its window's mask of active days.
_DAY_BIT = {"week": "toDayOfWeek(day) - 1", "month": "toDayOfMonth(day) - 1"}


class StickinessRequest(AnalysisRequest):
    """The body of POST /api/v1/analytics/stickiness (GraphQL: StickinessInput, camelCase)."""

    event: EventSpec
    window: Window = "week"

    def granularity(self) -> Granularity:
        return self.window


class ActiveDays(BaseModel):
    days: int
    users: int
    share: float


class StickinessWindow(BaseModel):
    # The first day of the week or month.
    window: str
    # Days of the window inside the range.
    days: int
    active_users: int
    distribution: list[ActiveDays]
    average_active_days: float
    ratio: float


class StickinessResult(BaseModel):
    period: PeriodInfo
    as_of: datetime | None
    event_type: str
    window: str
    windows: list[StickinessWindow]
    active_users: int
    average_daily_active_users: float
    ratio: float


def stickiness_statement(request: StickinessRequest, period: Period) -> tuple[str, dict[str, Any]]:
    """(is_total, window, active days, users, user-days, distinct users) rows: per window and number of
    active days; the grouping set () is the whole range."""
    params: dict[str, Any] = {"tz": request.timezone}
    bind = parameter_binder(params, "s")
    sql = f"""
        SELECT grouping(window, active_days) = 3 AS is_total, window, active_days,
               count() AS users, sum(active_days) AS user_days, uniqExact(user_id) AS distinct_users
        FROM (
            SELECT user_id, {_WINDOW_OF[request.window]} AS window,
                   bitCount(groupBitOr(bitShiftLeft(toUInt64(1), {_DAY_BIT[request.window]}))) AS active_days
            FROM (
                SELECT user_id, toDate(timestamp, {{tz:String}}) AS day
                FROM events
                WHERE {AnalysisWindow.sql(period, params)} AND {request.event.condition(bind)} AND user_id != ''
            )
            GROUP BY user_id, window
        )
        GROUP BY GROUPING SETS ((window, active_days), ())"""
    return sql, params


def _windows(period: Period, window: str) -> list[tuple[date, int]]:
    """Each window touching the period: its first day and how many of its days lie in the period."""
    out: dict[date, int] = {}
    for day in period.dates():
        first = day - timedelta(days=day.weekday()) if window == "week" else day.replace(day=1)
        out[first] = out.get(first, 0) + 1
    return list(out.items())


async def run_stickiness(
    store: EventStore, request: StickinessRequest, watermark: Watermark | None = None
) -> StickinessResult:
    """The stickiness of a resolved request (``StickinessRequest.resolved``); a pure function of its inputs."""
    period = request.period()
    sql, params = stickiness_statement(request, period)
    result = await store.query(sql, params)
    counts: dict[date, dict[int, int]] = {}
    distinct = user_days = 0
    for is_total, window, active_days, users, days_total, distinct_users in result.rows:
        if is_total:
            distinct, user_days = int(distinct_users), int(days_total)
        else:
            counts.setdefault(window, {})[int(active_days)] = int(users)
    windows = []
    for first, days in _windows(period, request.window):
        found = counts.get(first, {})
        active = sum(found.values())
        active_days = sum(k * n for k, n in found.items())
        average = active_days / active if active else 0.0
        windows.append(
            StickinessWindow(
                window=first.isoformat(),
                days=days,
                active_users=active,
                distribution=[
                    ActiveDays(days=k, users=found.get(k, 0), share=found.get(k, 0) / active if active else 0.0)
                    for k in range(1, days + 1)
                ],
                average_active_days=average,
                ratio=average / days,
            )
        )
    daily = user_days / period.days
    return StickinessResult(
        period=PeriodInfo.of(period),
        as_of=as_of(watermark),
        event_type=request.event.event_type,
        window=request.window,
        windows=windows,
        active_users=distinct,
        average_daily_active_users=daily,
        ratio=daily / distinct if distinct else 0.0,
    )
