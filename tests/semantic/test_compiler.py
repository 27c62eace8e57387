"""The compiler and the period rules, without a database: routing, parameters, validation."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from core.access import ContentScope
from core.errors import InvalidRequest
from semantic.compiler import Filter, MetricQuery, UnknownName, compile_query, passes_empty
from semantic.periods import Period, resolve_period


def period(tz: str = "UTC", granularity: str = "day") -> Period:
    return Period(date(2025, 3, 1), date(2025, 3, 31), tz, granularity)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tz", "granularity", "dimensions", "source"),
    [
        # Site-wide figures by UTC day: the totals rollup; by content: the per-content one.
        ("UTC", "day", ("bucket",), "content_totals_daily"),
        ("UTC", "month", ("bucket",), "content_totals_daily"),
        ("UTC", "day", ("content_id",), "content_daily"),
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


def test_the_totals_rollup_answers_only_unfiltered_site_wide_figures_under_an_unrestricted_scope() -> None:
    metrics = ("views", "unique_views", "completion_rate")
    assert compile_query(MetricQuery("content", metrics, period())).source == "content_totals_daily"
    # A filter, even on a time dimension, or a dimension of the content needs content rows.
    weekend = Filter("weekday", (6, 7))
    assert compile_query(MetricQuery("content", metrics, period(), (), (weekend,))).source == "content_daily"
    assert compile_query(MetricQuery("content", metrics, period(), ("category",))).source == "content_daily"
    # A key limited to some content reads the per-content rows, narrowed to them.
    limited = ContentScope(categories=frozenset({"news"}))
    compiled = compile_query(MetricQuery("content", metrics, period(), ("bucket",)), scope=limited)
    assert compiled.source == "content_daily"
    assert "content_metadata" in compiled.sql


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


# --- filter operators, new time dimensions, events family ------------------------------------------


@pytest.mark.parametrize(
    ("flt", "sql", "bound"),
    [
        (Filter("content_id", ("a", "b")), "content_id IN {?:Array(String)}", ["a", "b"]),
        (Filter("content_id", ("a",), exclude=True), "content_id NOT IN {?:Array(String)}", ["a"]),
        (Filter("content_id", ("a", "b"), op="not_in"), "content_id NOT IN {?:Array(String)}", ["a", "b"]),
        (Filter("content_id", ("a",), op="eq"), "content_id = {?:String}", "a"),
        (Filter("content_id", ("a",), op="neq"), "content_id != {?:String}", "a"),
        (
            Filter("content_id", ("A",), op="contains"),
            "positionCaseInsensitiveUTF8(toString(content_id), {?:String}) > 0",
            "A",
        ),
        (Filter("content_id", ("5",), op="gt"), "toFloat64OrZero(toString(content_id)) > {?:Float64}", 5.0),
        (Filter("content_id", ("5",), op="lte"), "toFloat64OrZero(toString(content_id)) <= {?:Float64}", 5.0),
    ],
)
def test_every_filter_op_is_a_bound_predicate(flt: Filter, sql: str, bound: Any) -> None:
    compiled = compile_query(MetricQuery("content", ("views",), period(), ("content_id",), (flt,)))
    assert compiled.source == "content_daily"
    assert sql in _shape(compiled.sql)
    assert bound in compiled.parameters.values()


def _shape(sql: str) -> str:
    """The SQL with parameter names left out ({p3:String} -> {?:String})."""
    return re.sub(r"\{p\d+:", "{?:", sql)


def test_integer_dimensions_bind_integers() -> None:
    compiled = compile_query(
        MetricQuery("events", ("api_requests",), period(), ("status",), (Filter("status", ("500",), op="gte"),))
    )
    assert "toInt64(JSONExtractInt(properties, 'status')) >= {?:Int64}" in _shape(compiled.sql)
    assert 500 in compiled.parameters.values()


def test_filters_refuse_wrong_arity() -> None:
    with pytest.raises(UnknownName):
        Filter("content_id", ("a", "b"), op="eq")
    with pytest.raises(UnknownName):
        Filter("content_id", ("a",), exclude=True, op="eq")


@pytest.mark.parametrize(
    ("flt", "passes"),
    [
        (Filter("x", ("", "a")), True),
        (Filter("x", ("a",)), False),
        (Filter("x", ("a",), op="not_in"), True),
        (Filter("x", ("",), op="not_in"), False),
        (Filter("x", ("",), op="eq"), True),
        (Filter("x", ("a",), op="neq"), True),
        (Filter("x", ("a",), op="contains"), False),
        (Filter("x", ("",), op="contains"), True),
        (Filter("x", (-1,), op="gt"), True),
        (Filter("x", (0,), op="gt"), False),
        (Filter("x", (0,), op="gte"), True),
        (Filter("x", (0,), op="lt"), False),
        (Filter("x", (1,), op="lt"), True),
        (Filter("x", (0,), op="lte"), True),
    ],
)
def test_passes_empty_agrees_with_clickhouse_on_empty_text(flt: Filter, passes: bool) -> None:
    """Content without metadata has '' for the field: metadata filters keep it exactly when '' passes."""
    assert passes_empty(flt) is passes


def test_metadata_filters_on_events_use_a_content_subquery() -> None:
    keep_empty = compile_query(
        MetricQuery("events", ("events",), period(), ("country",), (Filter("category", ("news",), op="neq"),))
    )
    assert "NOT IN (SELECT content_id FROM content_metadata WHERE NOT (category != {?:String}))" in _shape(
        keep_empty.sql
    )
    only_news = compile_query(MetricQuery("events", ("events",), period(), (), (Filter("category", ("news",)),)))
    assert ") IN (SELECT content_id FROM content_metadata WHERE category IN {?:Array(String)})" in _shape(only_news.sql)
    assert "LEFT JOIN" not in only_news.sql
    # Grouping by a metadata dimension joins it.
    assert "LEFT JOIN" in compile_query(MetricQuery("events", ("events",), period(), ("category",))).sql


@pytest.mark.parametrize(
    ("dimension", "source", "sql"),
    [
        ("hour", "content_hourly", "toUnixTimestamp(toStartOfHour(hour, {tz:String}))"),
        ("week", "content_totals_daily", "toMonday(day)"),
        ("month", "content_totals_daily", "toStartOfMonth(day)"),
    ],
)
def test_hour_week_and_month_dimensions(dimension: str, source: str, sql: str) -> None:
    compiled = compile_query(MetricQuery("content", ("views",), period(), (dimension,)))
    assert compiled.source == source
    assert f"{sql} AS d_{dimension}" in compiled.sql


def test_events_family_selects_only_what_the_query_reads() -> None:
    compiled = compile_query(MetricQuery("events", ("views",), period(), ("browser", "day")))
    inner = compiled.sql.split("FROM (SELECT ", 1)[1].split(" FROM events", 1)[0]
    assert inner == (
        "event_type AS e_event_type, "
        "if(content_id != '', content_id, JSONExtractString(properties, 'content_id')) AS e_content_id, "
        "browser AS e_browser, timestamp"
    )
    assert "event_type IN ('content_view')" in compiled.sql
    assert "!= ''" in compiled.sql.split(" FROM events", 1)[1]  # only events naming a content
    assert compiled.source == "events"
    # Without metrics that say which events they count, every event is read.
    every = compile_query(MetricQuery("events", ("events", "views"), period()))
    assert "event_type IN" not in every.sql and "SELECT *" not in every.sql


def test_skip_empty_keeps_groups_with_any_base_metric() -> None:
    compiled = compile_query(
        MetricQuery("events", ("completion_rate", "latency_p50"), period(), ("country",), skip_empty=True)
    )
    having = compiled.sql.split(" HAVING ", 1)[1]
    assert having.startswith("(") and having.endswith(")")
    assert set(having[1:-1].split(" OR ")) == {
        "m_completed_sessions != 0",
        "m_playback_sessions != 0",
        "isNotNull(m_latency_p50)",
    }
    # No groups, one row: nothing to leave out.
    assert "HAVING" not in compile_query(MetricQuery("events", ("views",), period(), skip_empty=True)).sql
