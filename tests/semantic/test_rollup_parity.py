"""Rollups and raw events give the same numbers, on 100k+ generated events (and on backfilled rollups).

Each query is compiled twice: once routed by the compiler (it must pick the rollup named in the
test), once forced onto raw events; the rows must be identical.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from string import Template
from typing import Any

import pytest

from semantic.catalog import FAMILIES
from semantic.compiler import Filter, MetricQuery, compile_query, run_query
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period, period_label
from semantic.playback import content_watch_seconds
from semantic.retention import RetentionService
from semantic.search import SearchAnalyticsService
from semantic.segments import SegmentRules, SegmentService
from semantic.sessions import length_distribution, session_stats
from semantic.user_events import read_user_numbers
from semantic.users import UserAnalyticsService
from storage import clickhouse
from storage.events import EVENT_COLUMNS, ClickHouseEvents
from tests.semantic.conftest import InProcessStore
from tests.semantic.generator import generate

START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 45
N_EVENTS = 110_000


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = ClickHouseEvents.open(
        None, chdb_path=chdb_dir, database=f"parity_{secrets.token_hex(4)}", retention_days=3650
    )
    table = generate(N_EVENTS, start=START, days=DAYS, seed=11)
    # Two inserts, so rollups hold several parts with the same keys (merged only at query time).
    half = N_EVENTS // 2
    events.insert(table.slice(0, half), "parity-1")
    events.insert(table.slice(half), "parity-2")
    yield InProcessStore(events)
    events.close()


@pytest.fixture(scope="module")
def backfilled(chdb_dir: Path) -> Iterator[InProcessStore]:
    """Events stored before the rollup migrations ran: the migrations' backfill must fill the rollups."""
    client = clickhouse.connect(None, chdb_path=chdb_dir, database=f"backfill_{secrets.token_hex(4)}")
    for version, _, sql in clickhouse.migration_files():
        if version == 1:
            for statement in clickhouse._statements(Template(sql).substitute({"retention_days": 3650})):
                client.command(statement)
    # Stored as an earlier version did: no stored_seq, so the rollup feed never sends them again.
    client.insert_arrow("events", generate(20_000, start=START, days=DAYS, seed=5, prefix="b").select(EVENT_COLUMNS))
    clickhouse.apply_migrations(client, template={"retention_days": 3650})
    events = ClickHouseEvents(client)
    # After the backfill, new events reach the rollups through the materialized views.
    events.insert(generate(5_000, start=START, days=DAYS, seed=6, prefix="n"), "after-backfill")
    yield InProcessStore(events)
    events.close()


def _sorted(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(sorted(row.items())) for row in rows)


async def _same(store: InProcessStore, query: MetricQuery, expected_source: str) -> list[dict[str, Any]]:
    routed = await run_query(store, query)
    raw = await run_query(store, MetricQuery(**{**query.__dict__, "route": "raw"}))
    assert routed.source == expected_source, compile_query(query).sql
    assert raw.source == "events"
    assert _sorted(routed.rows) == _sorted(raw.rows)
    return routed.rows


def _period(
    tz: str = "UTC", granularity: str = "day", start: date = date(2025, 3, 20), end: date = date(2025, 4, 10)
) -> Period:
    return Period(start, end, tz, granularity)  # type: ignore[arg-type]


CONTENT_METRICS = tuple(FAMILIES["content"].metrics)


@pytest.mark.parametrize(
    ("tz", "granularity", "source"),
    [
        ("UTC", "day", "content_totals_daily"),
        ("UTC", "week", "content_totals_daily"),
        ("UTC", "month", "content_totals_daily"),
        ("UTC", "hour", "content_hourly"),
        ("Asia/Riyadh", "day", "content_hourly"),
        ("America/New_York", "week", "content_hourly"),
        ("Asia/Kolkata", "day", "events"),
    ],
)
async def test_content_series_match_raw(store: InProcessStore, tz: str, granularity: str, source: str) -> None:
    end = date(2025, 3, 26) if granularity == "hour" else date(2025, 4, 10)
    rows = await _same(
        store, MetricQuery("content", CONTENT_METRICS, _period(tz, granularity, end=end), ("bucket",)), source
    )
    assert sum(r["views"] for r in rows) > 5_000
    assert all(0 <= r["completion_rate"] <= 1 for r in rows)


@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh"])
async def test_content_per_item_with_previous_period_match_raw(store: InProcessStore, tz: str) -> None:
    rows = await _same(
        store,
        MetricQuery("content", CONTENT_METRICS, _period(tz), ("content_id", "period"), with_previous=True),
        "content_daily" if tz == "UTC" else "content_hourly",
    )
    assert {r["period"] for r in rows} == {"current", "previous"}
    assert len(rows) > 400
    # Search and recommendation events that name their content only in properties are counted.
    assert sum(r["search_impressions"] for r in rows) > 1000


@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh"])
async def test_grouping_sets_equal_the_separate_groupings(store: InProcessStore, tz: str) -> None:
    """The content report asks period totals and days in one pass; each set must equal its own query."""
    period = _period(tz)
    both = await _same(
        store,
        MetricQuery(
            "content",
            CONTENT_METRICS,
            period,
            ("content_id", "period", "bucket"),
            with_previous=True,
            grouping_sets=(("content_id", "period"), ("content_id", "bucket")),
        ),
        "content_daily" if tz == "UTC" else "content_hourly",
    )
    for index, dimensions in enumerate((("content_id", "period"), ("content_id", "bucket"))):
        alone = await run_query(store, MetricQuery("content", CONTENT_METRICS, period, dimensions, with_previous=True))
        in_set = [
            {k: v for k, v in row.items() if k in dimensions or k in CONTENT_METRICS}
            for row in both
            if row["grouping_set"] == index
        ]
        assert len(in_set) > 100
        assert _sorted(in_set) == _sorted(alone.rows)


async def test_filters_top_lists_and_time_of_day_match_raw(store: InProcessStore) -> None:
    ids = ("gc1", "gc2", "gc3", "gc250")
    await _same(
        store,
        MetricQuery("content", CONTENT_METRICS, _period(), ("content_id",), (Filter("content_id", ids),)),
        "content_daily",
    )
    await _same(
        store,
        MetricQuery(
            "content",
            ("views", "engagement_rate"),
            _period(),
            ("content_id",),
            order_by=(("engagement_rate", True), ("content_id", False)),
            limit=15,
            at_least=(("views", 5),),
        ),
        "content_daily",
    )
    await _same(
        store,
        MetricQuery("content", ("views", "unique_views"), _period("Asia/Riyadh"), ("hour_of_day",)),
        "content_hourly",
    )
    await _same(store, MetricQuery("content", ("views",), _period("Asia/Riyadh"), ("weekday",)), "content_hourly")


async def test_category_filter_and_breakdown_by_metadata_match_raw(store: InProcessStore) -> None:
    rows = await _same(
        store, MetricQuery("content", ("views", "completion_rate"), _period(), ("category",)), "content_daily"
    )
    assert {r["category"] for r in rows} >= {"news", "sports", "kids", "documentary"}
    await _same(
        store,
        MetricQuery("content", ("views",), _period(), ("content_id",), (Filter("category", ("news",)),)),
        "content_daily",
    )


@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh"])
async def test_breakdowns_match_raw(store: InProcessStore, tz: str) -> None:
    rows = await _same(
        store,
        MetricQuery("breakdown", ("views", "unique_views"), _period(tz), ("dimension", "value"), with_previous=False),
        "content_breakdown_daily" if tz == "UTC" else "events",
    )
    assert {r["dimension"] for r in rows} == {
        "traffic_source",
        "country",
        "region",
        "device_type",
        "browser",
        "referrer_host",
    }
    await _same(
        store,
        MetricQuery(
            "breakdown",
            ("views",),
            _period(tz),
            ("content_id", "dimension", "value"),
            (Filter("content_id", ("gc7", "gc8")), Filter("value", ("",), exclude=True)),
            order_by=(("views", True), ("value", False)),
            limit_by=(3, ("content_id", "dimension")),
        ),
        "content_breakdown_daily" if tz == "UTC" else "events",
    )


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
async def test_user_activity_matches_raw(store: InProcessStore, granularity: str) -> None:
    metrics = tuple(FAMILIES["users"].metrics)
    rows = await _same(
        store, MetricQuery("users", metrics, _period(granularity=granularity), ("bucket",)), "user_daily"
    )
    assert sum(r["users"] for r in rows) > 1000
    await _same(store, MetricQuery("users", metrics, _period(), ("user_id",)), "user_daily")
    await _same(store, MetricQuery("users", ("first_seen",), None, ("user_id",)), "user_daily")


async def test_search_matches_raw(store: InProcessStore) -> None:
    metrics = tuple(FAMILIES["search"].metrics)
    rows = await _same(store, MetricQuery("search", metrics, _period(), ("query",)), "search_daily")
    # " Football " and "football" are one query.
    assert "football" in {r["query"] for r in rows} and " Football " not in {r["query"] for r in rows}
    assert any(r["zero_result_searches"] for r in rows)
    await _same(store, MetricQuery("search", ("clicks",), _period(), ("click_position",)), "search_daily")
    await _same(store, MetricQuery("search", metrics, _period(), ("period",), with_previous=True), "search_daily")


async def _same_conversion(store: InProcessStore, periods: list[Period], minutes: int) -> list[tuple[int, int]]:
    search = SearchAnalyticsService(store, ContentMetadataStore(store), conversion_minutes=minutes)
    routed = await search.conversion(periods)
    assert routed == await search.conversion(periods, route="raw")
    return routed


@pytest.mark.parametrize("tz", ["UTC", "Asia/Kolkata", "America/New_York"])
@pytest.mark.parametrize("minutes", [30, 1440])
async def test_search_conversion_matches_raw(store: InProcessStore, tz: str, minutes: int) -> None:
    counts = await _same_conversion(store, [_period(tz), _period(tz).previous()], minutes)
    assert counts[0][0] > 1000 and 0 < counts[0][1] < counts[0][0]


async def _same_views_by_hour_and_place(store: InProcessStore, period: Period) -> int:
    """content_daily's views by UTC hour and place in the period equal the raw events'."""
    params = {"from": period.start.date(), "to": period.end.date()}
    result = await store.query(
        "SELECT content_id, sumMap(hour_views), sumMap(country_views), sumMap(region_views) FROM content_daily "
        "WHERE day >= {from:Date} AND day < {to:Date} GROUP BY content_id",
        params,
    )
    from_rollup = {
        row[0]: {"hours": {int(h): v for h, v in row[1].items() if v}, "country": row[2], "region": row[3]}
        for row in result.rows
    }
    hours = await run_query(
        store, MetricQuery("content", ("views",), period, ("content_id", "hour_of_day"), route="raw")
    )
    places = await run_query(
        store,
        MetricQuery(
            "breakdown",
            ("views",),
            period,
            ("content_id", "dimension", "value"),
            (Filter("dimension", ("country", "region")),),
            route="raw",
        ),
    )
    from_events: dict[str, dict[str, dict[Any, int]]] = {}
    for row in hours.rows:
        if row["views"]:
            from_events.setdefault(row["content_id"], {"hours": {}, "country": {}, "region": {}})["hours"][
                int(row["hour_of_day"])
            ] = row["views"]
    for row in places.rows:
        from_events.setdefault(row["content_id"], {"hours": {}, "country": {}, "region": {}})[row["dimension"]][
            row["value"]
        ] = row["views"]
    assert {c: v for c, v in from_rollup.items() if v["hours"]} == from_events
    return sum(sum(v["hours"].values()) for v in from_events.values())


async def test_content_daily_views_by_hour_and_place_match_raw(store: InProcessStore) -> None:
    assert await _same_views_by_hour_and_place(store, _period()) > 5_000


async def test_sessions_match_raw(store: InProcessStore) -> None:
    periods = [_period("Asia/Kolkata"), _period("Asia/Kolkata").previous()]
    assert await session_stats(store, periods) == await session_stats(store, periods, source="events")
    assert (await session_stats(store, periods))[0].sessions > 1000
    assert await length_distribution(store, periods) == await length_distribution(store, periods, source="events")


async def test_user_analytics_from_events_by_user_match_raw(store: InProcessStore) -> None:
    users = UserAnalyticsService(store)
    for user_id in ("gu1", "gu17", "gu2999"):
        for tz in ("UTC", "Asia/Kolkata"):
            copy = await users.report(user_id, _period(tz), source="events_by_user")
            raw = await users.report(user_id, _period(tz), source="events")
            ignore = {"calculated_at", "last_updated"}
            assert copy.analytics.model_dump(exclude=ignore) == raw.analytics.model_dump(exclude=ignore)
            assert copy.analytics.content_views > 0


async def test_user_numbers_made_in_python_match_sql_aggregates(store: InProcessStore) -> None:
    """UserAnalytics counts one user's events in Python; the same numbers in SQL over raw events."""
    users = [
        row[0]
        for row in (
            await store.query("SELECT DISTINCT user_id FROM events WHERE user_id != '' ORDER BY user_id LIMIT 25")
        ).rows
    ]
    seen = {"views": 0, "sessions": 0, "bounces": 0, "return_visits": 0}
    for tz in ("UTC", "Asia/Kolkata"):
        periods = [_period(tz), _period(tz).previous()]
        for user_id in users:
            numbers = await read_user_numbers(store, user_id, periods, source="events")
            assert numbers is not None
            params: dict[str, Any] = {"user": user_id, "tz": tz}
            label = period_label("timestamp", periods, params)
            counts = await store.query(
                f"""SELECT lbl, countIf(event_type = 'content_view'),
                       uniqExactIf(content_id, event_type = 'content_view' AND content_id != ''),
                       uniqExact(toDate(timestamp, {{tz:String}})), countIf(event_type = 'content_complete')
                FROM (SELECT *, {label} AS lbl FROM events WHERE user_id = {{user:String}})
                WHERE lbl != '' GROUP BY lbl""",
                params,
            )
            started = period_label("s_started", periods, params)
            sessions = await store.query(
                f"""SELECT {started} AS lbl, count(), sum(toInt64(dateDiff('millisecond', s_started, s_ended))),
                       countIf(s_events = 1), countIf(s_started > first_start)
                FROM (SELECT *, min(s_started) OVER () AS first_start FROM (
                    SELECT session_id, min(timestamp) AS s_started, max(timestamp) AS s_ended, count() AS s_events
                    FROM events WHERE user_id = {{user:String}} AND session_id != '' GROUP BY session_id))
                WHERE lbl != '' GROUP BY lbl""",
                params,
            )
            expected = {
                int(lbl): (views, unique, days, completes) for lbl, views, unique, days, completes in counts.rows
            }
            got = {
                i: (p.counts["views"], len(p.content_viewed), len(p.active_days), p.counts["completions"])
                for i, p in enumerate(numbers.periods)
                if p.counts["views"] or p.active_days
            }
            assert got == expected, (user_id, tz)
            expected_sessions = {int(row[0]): tuple(int(v) for v in row[1:]) for row in sessions.rows}
            got_sessions = {
                i: (p.sessions, p.session_ms, p.bounces, p.return_visits)
                for i, p in enumerate(numbers.periods)
                if p.sessions
            }
            assert got_sessions == expected_sessions, (user_id, tz)
            for p in numbers.periods:
                seen["views"] += p.counts["views"]
                seen["sessions"] += p.sessions
                seen["bounces"] += p.bounces
                seen["return_visits"] += p.return_visits
    assert all(seen.values()), seen


async def _same_watch_time(store: InProcessStore, tz: str) -> dict[tuple[str, int], float]:
    played = await store.query(
        "SELECT content_id FROM events WHERE event_type = 'content_play' "
        "GROUP BY content_id ORDER BY count() DESC, content_id LIMIT 60"
    )
    ids = [row[0] for row in played.rows]
    periods = [_period(tz), _period(tz).previous()]
    routed = await content_watch_seconds(store, ids, periods)
    raw = await content_watch_seconds(store, ids, periods, route="raw")
    assert routed == raw
    return routed


@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh", "America/New_York", "Asia/Kolkata"])
async def test_watch_time_from_playback_hourly_matches_raw(store: InProcessStore, tz: str) -> None:
    watch = await _same_watch_time(store, tz)
    assert len(watch) > 60 and sum(watch.values()) > 10_000
    assert {index for _, index in watch} == {0, 1}


async def test_segments_and_cohorts_match_raw(store: InProcessStore) -> None:
    segments = SegmentService(store, SegmentRules())
    routed = await segments.segments(_period(), route="auto")
    raw = await segments.segments(_period(), route="raw")
    assert routed.source == "user_daily" and raw.source == "events"
    assert routed.model_dump(exclude={"source"}) == raw.model_dump(exclude={"source"})
    assert routed.total_users > 1000
    retention = RetentionService(store)
    week = _period(granularity="week")
    routed_cohorts = await retention.cohorts(week, route="auto")
    raw_cohorts = await retention.cohorts(week, route="raw")
    assert routed_cohorts.model_dump(exclude={"source"}) == raw_cohorts.model_dump(exclude={"source"})
    routed_retention = await retention.retention(_period(), route="auto")
    raw_retention = await retention.retention(_period(), route="raw")
    assert routed_retention.model_dump(exclude={"source"}) == raw_retention.model_dump(exclude={"source"})


async def test_site_wide_totals_with_the_previous_period_match_raw(store: InProcessStore) -> None:
    """A KPI against the period before: exact distinct viewers and sessions over both periods."""
    query = MetricQuery("content", CONTENT_METRICS, _period(), ("period",), with_previous=True)
    rows = await _same(store, query, "content_totals_daily")
    assert {r["period"] for r in rows} == {"current", "previous"}
    assert all(r["unique_views"] > 100 and 0 < r["completion_rate"] < 1 for r in rows)


async def test_backfilled_rollups_match_raw(backfilled: InProcessStore) -> None:
    rows = await _same(backfilled, MetricQuery("content", CONTENT_METRICS, _period(), ("content_id",)), "content_daily")
    # Contents of both batches: backfilled ("b") and arrived through the views ("n").
    assert {r["content_id"][0] for r in rows} == {"b", "n"}
    # The totals were backfilled from content_daily's states, then fed by their view.
    await _same(backfilled, MetricQuery("content", CONTENT_METRICS, _period(), ("bucket",)), "content_totals_daily")
    await _same(
        backfilled, MetricQuery("content", CONTENT_METRICS, _period("Asia/Riyadh"), ("bucket",)), "content_hourly"
    )
    await _same(
        backfilled,
        MetricQuery("breakdown", ("views", "unique_views"), _period(), ("dimension", "value")),
        "content_breakdown_daily",
    )
    await _same(
        backfilled, MetricQuery("users", tuple(FAMILIES["users"].metrics), _period(), ("user_id",)), "user_daily"
    )
    await _same(
        backfilled, MetricQuery("search", tuple(FAMILIES["search"].metrics), _period(), ("query",)), "search_daily"
    )
    assert sum((await _same_watch_time(backfilled, "UTC")).values()) > 1_000
    periods = [_period()]
    assert await session_stats(backfilled, periods) == await session_stats(backfilled, periods, source="events")
    users = UserAnalyticsService(backfilled)
    copy = await users.report("bu3", _period(), source="events_by_user")
    raw = await users.report("bu3", _period(), source="events")
    assert copy.analytics.model_dump(exclude={"calculated_at", "last_updated"}) == raw.analytics.model_dump(
        exclude={"calculated_at", "last_updated"}
    )
    assert await _same_views_by_hour_and_place(backfilled, _period()) > 1_000
    assert (await _same_conversion(backfilled, [_period(), _period().previous()], 30))[0][0] > 100
    metadata = await backfilled.query("SELECT count() FROM content_metadata WHERE category != ''")
    assert metadata.rows[0][0] > 100
