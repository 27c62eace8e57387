"""Capacity planning: a resource's utilization trend and when it is forecast to reach its threshold.

The trend is the ordinary least-squares line through the hourly average utilization (one point per hour
with samples, x in hours), fitted in ClickHouse (``simpleLinearRegression``). From it:
- ``over``: the line is at or above the threshold at the latest hour with samples;
- ``rising``: below it and going up: ``crosses_at`` is when the line reaches the threshold (left empty
  when that is more than ``HORIZON_DAYS`` away);
- ``steady``: below it and flat or going down;
- ``insufficient_data``: fewer than two hours with samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

HORIZON_DAYS = 3650


class CapacityForecast(BaseModel):
    resource: str
    threshold_percent: float
    # Hours with samples the line is fitted through.
    hours: int
    # The average of the latest hour with samples.
    latest_percent: float | None
    # The line's slope, and its value at the latest hour with samples.
    trend_percent_per_day: float | None
    trend_percent_now: float | None
    status: str
    crosses_at: datetime | None
    # The day of crosses_at in the period's time zone.
    crosses_on: date | None
    days_until: float | None


@dataclass(frozen=True, slots=True)
class HourlyTrend:
    """A resource's hourly averages as ClickHouse summarized them: how many hours have samples, the
    least-squares line through them (x = hours after ``origin``, epoch seconds), and the latest hour."""

    hours: int
    slope: float
    intercept: float
    origin: int
    latest_hour: int | None
    latest_percent: float | None


def forecast(resource: str, trend: HourlyTrend, threshold: float, zone: ZoneInfo) -> CapacityForecast:
    answer = CapacityForecast(
        resource=resource,
        threshold_percent=threshold,
        hours=trend.hours,
        latest_percent=trend.latest_percent,
        trend_percent_per_day=None,
        trend_percent_now=None,
        status="insufficient_data",
        crosses_at=None,
        crosses_on=None,
        days_until=None,
    )
    fitted = math.isfinite(trend.slope) and math.isfinite(trend.intercept)
    if trend.hours < 2 or trend.latest_hour is None or not fitted:
        return answer
    latest_x = (trend.latest_hour - trend.origin) / 3600
    now = trend.intercept + trend.slope * latest_x
    answer.trend_percent_per_day = trend.slope * 24
    answer.trend_percent_now = now
    if now >= threshold:
        answer.status = "over"
    elif trend.slope <= 0:
        answer.status = "steady"
    else:
        answer.status = "rising"
        hours_until = (threshold - now) / trend.slope
        if hours_until / 24 <= HORIZON_DAYS:
            answer.crosses_at = datetime.fromtimestamp(trend.latest_hour + hours_until * 3600, UTC)
            answer.crosses_on = answer.crosses_at.astimezone(zone).date()
            answer.days_until = hours_until / 24
    return answer
