"""The window parameters every analytics route takes, resolved into a semantic Period."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query
from pydantic import BeforeValidator

from core.errors import InvalidRequest
from semantic.periods import Period, check_date, days_before, parse_zone
from serve_app.deps import ServicesDep

_WINDOW_DAYS = {"1d": 1, "7d": 7, "14d": 14, "28d": 28, "30d": 30, "90d": 90}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    # Without this a number ("0", "1700000000") would be read as a Unix time: a date nobody meant.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO date, YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?")


def _iso_datetime(value: object) -> object:
    if isinstance(value, str) and not _ISO_DATETIME.fullmatch(value):
        raise ValueError("must be an ISO date-time, e.g. 2026-11-30T12:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


async def analytics_period(
    services: ServicesDep,
    start_date: Annotated[IsoDate | None, Query(description="first day of the range (ISO date, included)")] = None,
    end_date: Annotated[
        IsoDate | None, Query(description="last day of the range (ISO date, included); default today")
    ] = None,
    granularity: Annotated[Literal["hour", "day", "week", "month"], Query(description="series bucket size")] = "day",
    timezone: Annotated[str, Query(max_length=64, description="IANA time zone the dates and buckets are in")] = "UTC",
    window: Annotated[
        str | None, Query(description="shorthand for the last N days up to today: 1d, 7d, 14d, 28d, 30d or 90d")
    ] = None,
) -> Period:
    analytics = services.analytics
    if window is not None:
        if window not in _WINDOW_DAYS:
            raise InvalidRequest(f"window must be one of {', '.join(_WINDOW_DAYS)}", details={"field": "window"})
        if start_date is not None:
            raise InvalidRequest("give either window or start_date, not both", details={"field": "window"})
        # Checked before the window is counted back from it (a date near year 1 cannot be).
        today = check_date(end_date, "end_date") if end_date else datetime.now(parse_zone(timezone)).date()
        start_date, end_date = days_before(today, _WINDOW_DAYS[window]), today
    return analytics.period(start_date, end_date, granularity, timezone)


PeriodDep = Annotated[Period, Depends(analytics_period)]
