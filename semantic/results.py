"""Result pieces every analytics answer shares: the period it covers and how a number moved."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from semantic.periods import Period


class PeriodInfo(BaseModel):
    start_date: date
    end_date: date
    timezone: str
    granularity: str

    @classmethod
    def of(cls, period: Period) -> PeriodInfo:
        return cls(
            start_date=period.start_date,
            end_date=period.end_date,
            timezone=period.timezone,
            granularity=period.granularity,
        )


class MetricChange(BaseModel):
    """A number in the period and in the previous period of the same length."""

    current: float
    previous: float
    change: float
    # None when the previous value is 0 (no meaningful percentage).
    change_percent: float | None

    @classmethod
    def of(cls, current: float, previous: float) -> MetricChange:
        return cls(
            current=current,
            previous=previous,
            change=round(current - previous, 6),
            change_percent=round(100 * (current - previous) / previous, 2) if previous else None,
        )


def compare(current: dict[str, float], previous: dict[str, float]) -> dict[str, MetricChange]:
    return {name: MetricChange.of(float(current[name]), float(previous.get(name, 0))) for name in current}


def bucket_label(value: object, period: Period) -> str:
    """A time bucket as the API shows it: ISO date for day/week/month, ISO local date-time for hours."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value, ZoneInfo(period.timezone)).isoformat()
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def period_buckets(period: Period) -> list[str]:
    """Every bucket label of the period in order, so series have a value (maybe 0) for each."""
    if period.granularity == "hour":
        start = int(period.start.timestamp())
        end = int(period.end.timestamp())
        return [bucket_label(moment, period) for moment in range(start, end, 3600)]
    labels: list[str] = []
    for day in period.dates():
        if period.granularity == "week":
            day = date.fromordinal(day.toordinal() - day.weekday())
        elif period.granularity == "month":
            day = day.replace(day=1)
        label = day.isoformat()
        if not labels or labels[-1] != label:
            labels.append(label)
    return labels
