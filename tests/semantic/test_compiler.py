"""The compiler and the period rules, without a database: routing, parameters, validation."""

from __future__ import annotations

from datetime import date

import pytest

from core.errors import InvalidRequest
from semantic.compiler import Filter, MetricQuery, UnknownName, compile_query
from semantic.periods import Period, resolve_period


def period(tz: str = "UTC", granularity: str = "day") -> Period:
    return Period(date(2025, 3, 1), date(2025, 3, 31), tz, granularity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tz", "granularity", "dimensions", "source"),
    [
        ("UTC", "day", ("bucket",), "content_daily"),
        ("UTC", "month", ("bucket",), "content_daily"),
        ("UTC", "hour", ("bucket",), "content_hourly"),
        ("UTC", "day", ("hour_of_day",), "content_hourly"),
        ("Europe/London", "day", ("bucket",), "content_hourly"),  # UTC in winter, +1 after 30 March: not UTC days
        ("Asia/Riyadh", "week", ("content_id",), "content_hourly"),
        ("Asia/Kathmandu", "day", ("content_id",), "events"),  # +5:45
    ],
)
def test_routing(tz: str, granularity: str, dimensions: tuple[str, ...], source: str) -> None:
    assert (
        compile_query(MetricQuery("content", ("views", "completion_rate"), period(tz, granularity), dimensions)).source
        == source
    )


def test_values_are_bound_never_spliced() -> None:
    hostile = "x') OR 1=1 --"
    compiled = compile_query(
        MetricQuery(
            "content",
            ("views",),
            period(),
            ("content_id",),
            (Filter("content_id", (hostile,)), Filter("category", (hostile,))),
        )
    )
    assert hostile not in compiled.sql
    assert [hostile] in compiled.parameters.values()
    raw = compile_query(
        MetricQuery("content", ("views",), period(), ("content_id",), (Filter("content_id", (hostile,)),), route="raw")
    )
    assert hostile not in raw.sql and raw.source == "events"


def test_unknown_names_are_refused() -> None:
    with pytest.raises(UnknownName):
        compile_query(MetricQuery("content", ("views; DROP TABLE events",), period()))
    with pytest.raises(UnknownName):
        compile_query(MetricQuery("content", ("views",), period(), ("title",)))
    with pytest.raises(UnknownName):
        compile_query(MetricQuery("content", ("views",), None, ("bucket",)))


def test_period_defaults_and_limits() -> None:
    p = resolve_period(None, None, default_days=30, max_days=366, today=date(2025, 3, 31))
    assert (p.start_date, p.end_date, p.days) == (date(2025, 3, 2), date(2025, 3, 31), 30)
    assert p.previous() == Period(date(2025, 1, 31), date(2025, 3, 1), "UTC", "day")
    with pytest.raises(InvalidRequest) as inverted:
        resolve_period(date(2025, 3, 2), date(2025, 3, 1), default_days=30, max_days=366)
    assert inverted.value.details == {"field": "end_date"}
    with pytest.raises(InvalidRequest) as oversized:
        resolve_period(date(2024, 1, 1), date(2025, 3, 1), default_days=30, max_days=366)
    assert oversized.value.details["field"] == "start_date"
    with pytest.raises(InvalidRequest) as zone:
        resolve_period(None, None, timezone="../../etc/passwd", default_days=30, max_days=366)
    assert zone.value.details == {"field": "timezone"}
