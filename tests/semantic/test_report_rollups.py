"""Migration 016 on real chDB: content_daily's views by hour and place, and session_searches.

Search conversion from session_searches against hand-built sessions whose answers are worked out
here (views after midnight and across a month's end, the window's edges, searches without a
session); an upgraded database keeps every content report and search answer, takes later events
once, survives a migration cut short, and ends with the schema of a new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from semantic.compiler import Filter, MetricQuery, run_query
from semantic.content import TOP_LOCATIONS, ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.periods import Period
from semantic.search import SearchAnalyticsService
from storage import clickhouse
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.generator import generate

MIGRATION = "016_report_rollups.sql"
START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 45
MARCH = Period(date(2025, 3, 1), date(2025, 3, 31))
APRIL = Period(date(2025, 4, 1), date(2025, 4, 14))
MAPS = (
    "SELECT content_id, sumMap(hour_views), sumMap(country_views), sumMap(region_views) FROM content_daily "
    "GROUP BY content_id ORDER BY content_id"
)


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    event_type: str
    at: datetime
    session_id: str = ""
    user_id: str = "u1"


def _at(day: date, clock: str) -> datetime:
    hours, minutes, seconds = (float(part) for part in clock.split(":"))
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _table(events: list[Event]) -> pa.Table:
    n = len(events)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[e.id for e in events],
        event_type=[e.event_type for e in events],
        event_category=[e.event_type.split("_")[0] for e in events],
        timestamp=[e.at for e in events],
        user_id=[e.user_id for e in events],
        session_id=[e.session_id for e in events],
        content_id=["c1" if e.event_type == "content_view" else "" for e in events],
        properties=["{}"] * n,
        processed_at=[datetime(2025, 6, 1, tzinfo=UTC)] * n,
    )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


def _sessions() -> list[Event]:
    """Searches and views whose conversion within 30 and 90 minutes is known."""
    mar30, mar31, apr1 = date(2025, 3, 30), date(2025, 3, 31), date(2025, 4, 1)
    events: list[Event] = []

    def add(kind: str, day: date, clock: str, session: str) -> None:
        events.append(Event(f"e{len(events)}", kind, _at(day, clock), session))

    # s1: a view 20 minutes after the search, past midnight and into April.
    add("search_query", mar31, "23:50:00", "s1")
    add("content_view", apr1, "00:10:00", "s1")
    # s2: the view 40 minutes after: converts within 90 minutes only.
    add("search_query", mar30, "23:50:00", "s2")
    add("content_view", mar31, "00:30:00", "s2")
    # s3: a view exactly at the search does not convert; one exactly 30 minutes later does.
    add("search_query", mar30, "10:00:00", "s3")
    add("content_view", mar30, "10:00:00", "s3")
    add("search_query", mar30, "12:00:00", "s3")
    add("content_view", mar30, "12:30:00", "s3")
    # s4: a view before the search and one 31 minutes after it.
    add("content_view", mar30, "08:00:00", "s4")
    add("search_query", mar30, "08:10:00", "s4")
    add("content_view", mar30, "08:41:00", "s4")
    # s5: two searches one view converts both; a search whose view is a day later converts never.
    add("search_query", mar30, "15:00:00", "s5")
    add("search_query", mar30, "15:05:00", "s5")
    add("content_view", mar30, "15:20:00", "s5")
    add("search_query", mar30, "18:00:00", "s5")
    add("content_view", mar31, "18:00:01", "s5")
    # A view of another session converts nothing; searches without a session are not counted.
    add("search_query", apr1, "09:00:00", "s6")
    add("content_view", apr1, "09:05:00", "s7")
    add("search_query", apr1, "09:00:00", "")
    add("content_view", apr1, "09:01:00", "")
    # A view in April of a session that searched in March, 30 minutes after its search.
    add("search_query", mar31, "23:40:00.001", "s8")
    add("content_view", apr1, "00:10:00.001", "s8")
    return events


def _expected_conversion(events: list[Event], periods: list[Period], minutes: int) -> list[tuple[int, int]]:
    window = timedelta(minutes=minutes)
    out = []
    for period in periods:
        searches = [e for e in events if e.event_type == "search_query" and e.session_id]
        searches = [e for e in searches if period.start <= e.at < period.end]
        converted = [
            s
            for s in searches
            if any(
                v.event_type == "content_view" and v.session_id == s.session_id and s.at < v.at <= s.at + window
                for v in events
            )
        ]
        out.append((len(searches), len(converted)))
    return out


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


@pytest.mark.parametrize("minutes", [30, 90, 1440])
async def test_conversion_of_hand_built_sessions(chdb_dir: Path, minutes: int) -> None:
    store = open_store(chdb_dir, f"conversion_{secrets.token_hex(4)}")
    events = _sessions()
    # The sessions arrive in two inserts, each holding part of some sessions.
    store.insert(_table(events[::2]), "odd")
    store.insert(_table(events[1::2]), "even")
    search = SearchAnalyticsService(
        InProcessStore(store), ContentMetadataStore(InProcessStore(store)), conversion_minutes=minutes
    )
    for periods in (
        [Period(date(2025, 3, 31), date(2025, 4, 1)), Period(date(2025, 3, 29), date(2025, 3, 30))],
        [Period(date(2025, 3, 30), date(2025, 3, 31), "Asia/Kolkata")],
        [Period(date(2025, 4, 1), date(2025, 4, 1), "America/New_York")],
    ):
        expected = _expected_conversion(events, periods, minutes)
        assert await search.conversion(periods) == expected
        assert await search.conversion(periods, route="raw") == expected
    converted = _expected_conversion(events, [Period(date(2025, 3, 30), date(2025, 4, 1))], minutes)[0]
    assert converted == {30: (10, 5), 90: (10, 7), 1440: (10, 8)}[minutes]
    store.close()


def _events(seed: int, n: int, ids: str) -> pa.Table:
    table = generate(n, start=START, days=DAYS, seed=seed, prefix="r", contents=30, users=40)
    return table.set_column(0, "id", pc.binary_join_element_wise(ids, table.column("id"), ""))


async def _places_by_catalog(store: ClickHouseEvents, period: Period) -> dict[str, Any]:
    """Views by hour of day and top places per content, as the catalog counts them from raw events."""
    reader = InProcessStore(store)
    hours = await run_query(
        reader, MetricQuery("content", ("views",), period, ("content_id", "hour_of_day"), route="raw")
    )
    places = await run_query(
        reader,
        MetricQuery(
            "breakdown",
            ("views",),
            period,
            ("content_id", "dimension", "value"),
            (Filter("dimension", ("country", "region")), Filter("value", ("",), exclude=True)),
            order_by=(("views", True), ("value", False)),
            limit_by=(TOP_LOCATIONS, ("content_id", "dimension")),
            route="raw",
        ),
    )
    out: dict[str, Any] = {}
    for row in hours.rows:
        if row["views"]:
            out.setdefault(row["content_id"], {}).setdefault("hours", {})[int(row["hour_of_day"])] = row["views"]
    for row in places.rows:
        out.setdefault(row["content_id"], {}).setdefault(row["dimension"], []).append((row["value"], row["views"]))
    return out


async def _places_in_reports(store: ClickHouseEvents, period: Period, ids: list[str]) -> dict[str, Any]:
    reader = InProcessStore(store)
    service = ContentAnalyticsService(reader, ContentMetadataStore(reader))
    out: dict[str, Any] = {}
    for content_id in ids:
        report = await service.report(content_id, period)
        assert report.source == "content_daily"
        analytics = report.analytics
        found: dict[str, Any] = {"hours": {h: v for h, v in analytics.hourly_distribution.items() if v}}
        found["country"] = list(analytics.top_countries.items())
        found["region"] = list(analytics.top_regions.items())
        out[content_id] = {key: value for key, value in found.items() if value}
    return out


async def _search_answers(store: ClickHouseEvents) -> list[dict[str, Any]]:
    reader = InProcessStore(store)
    search = SearchAnalyticsService(reader, ContentMetadataStore(reader))
    return [(await search.overview(period)).model_dump() for period in (MARCH, APRIL)]


async def test_upgrade_keeps_the_answers_and_takes_later_events_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"report_{secrets.token_hex(4)}"
    old = open_old(database)
    old.insert(_events(1, 8_000, "a"), "before-1")
    old.insert(_events(2, 8_000, "b"), "before-2")
    assert not old.query("EXISTS TABLE session_searches").rows[0][0]
    expected = await _places_by_catalog(old, MARCH)
    ids = sorted(expected)[:12]
    old.close()

    store = open_store(chdb_dir, database)
    assert await _places_in_reports(store, MARCH, ids) == {i: expected[i] for i in ids}
    answers = await _search_answers(store)
    reader = InProcessStore(store)
    search = SearchAnalyticsService(reader, ContentMetadataStore(reader))
    periods = [MARCH, MARCH.previous(), APRIL]
    assert await search.conversion(periods) == await search.conversion(periods, route="raw")
    assert answers[0]["converted_searches"] > 20

    # Later events reach both through their views, once each.
    store.insert(_events(3, 6_000, "c"), "after")
    later = await _places_by_catalog(store, MARCH)
    assert later != expected
    assert await _places_in_reports(store, MARCH, ids) == {i: later[i] for i in ids if i in later}
    assert await search.conversion(periods) == await search.conversion(periods, route="raw")
    assert await _search_answers(store) != answers
    store.close()


async def test_a_migration_cut_short_after_its_inserts_counts_nothing_twice(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"report_{secrets.token_hex(4)}"
    old = open_old(database)
    old.insert(_events(4, 6_000, "d"), "before")
    expected = await _places_by_catalog(old, MARCH)
    # The process died after the backfill inserts, before the views and the record of the migration.
    (sql,) = [sql for _, name, sql in clickhouse.migration_files() if name == MIGRATION]
    statements = clickhouse._statements(Template(sql).substitute(retention_days=3650))
    last_insert = max(i for i, s in enumerate(statements) if s.startswith("INSERT INTO session_searches"))
    for statement in statements[: last_insert + 1]:
        old.client.command(statement)
    old.close()

    store = open_store(chdb_dir, database)
    ids = sorted(expected)
    assert await _places_in_reports(store, MARCH, ids) == expected
    reader = InProcessStore(store)
    search = SearchAnalyticsService(reader, ContentMetadataStore(reader))
    assert await search.conversion([MARCH]) == await search.conversion([MARCH], route="raw")
    store.close()


def test_a_new_and_an_upgraded_database_have_the_same_tables(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    upgraded_name, fresh_name = f"report_{secrets.token_hex(4)}", f"report_{secrets.token_hex(4)}"
    old = open_old(upgraded_name)
    old.insert(_events(5, 1_000, "e"), "old")
    old.close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)
    schemas = create_statements(upgraded, upgraded_name), create_statements(fresh, fresh_name)
    for name in ("content_daily", "content_daily_mv", "session_searches", "session_searches_mv"):
        assert schemas[0][name] == schemas[1][name]
    assert "hour_views" in schemas[0]["content_daily_mv"]
    assert upgraded.query(MAPS).rows and not fresh.query(MAPS).rows
    upgraded.close()
    fresh.close()
