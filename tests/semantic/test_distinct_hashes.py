"""Migration 012 on real chDB: a database made through migration 011 (uniqExact states over String
keys) gets states over 64-bit hashes, keeps every answer, and counts later events exactly once; a
new database ends with the same schema."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from semantic.catalog import FAMILIES
from semantic.compiler import MetricQuery, run_query
from semantic.periods import Period
from storage import clickhouse
from storage.events import ClickHouseEvents
from storage.rollup_feed import FEED_TABLE
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.generator import generate

START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 30
HASHED_TABLES = ("content_hourly", "content_daily", "content_breakdown_daily", "search_daily")
STATE_COLUMNS = {"viewers", "playback_sessions", "completed_sessions", "searchers"}
LAST_BEFORE = 11
UTC_DAYS = Period(date(2025, 3, 1), date(2025, 3, 30))
# Not whole UTC days: answered from content_hourly.
RIYADH_DAYS = Period(date(2025, 3, 2), date(2025, 3, 29), "Asia/Riyadh")
# (query, the rollup that must answer it)
QUERIES = (
    (MetricQuery("content", tuple(FAMILIES["content"].metrics), UTC_DAYS, ("content_id",)), "content_daily"),
    (MetricQuery("content", tuple(FAMILIES["content"].metrics), UTC_DAYS, ("bucket",)), "content_totals_daily"),
    (MetricQuery("content", tuple(FAMILIES["content"].metrics), RIYADH_DAYS, ("bucket",)), "content_hourly"),
    (
        MetricQuery("content", ("views", "unique_views"), UTC_DAYS, ("period",), with_previous=True),
        "content_totals_daily",
    ),
    (
        MetricQuery("breakdown", ("views", "unique_views"), UTC_DAYS, ("content_id", "dimension", "value")),
        "content_breakdown_daily",
    ),
    (MetricQuery("breakdown", ("views", "unique_views"), UTC_DAYS, ("dimension", "value")), "content_breakdown_daily"),
    (MetricQuery("search", tuple(FAMILIES["search"].metrics), UTC_DAYS, ("query",)), "search_daily"),
    (MetricQuery("search", ("searches", "searchers"), UTC_DAYS, ("period",), with_previous=True), "search_daily"),
)


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before("012_distinct_hashes.sql", chdb_dir, monkeypatch)


def _events(seed: int, n: int, ids: str) -> pa.Table:
    """Events of the same 400 users and 40 contents whatever the seed (ids start with ``ids``)."""
    table = generate(n, start=START, days=DAYS, seed=seed, prefix="h", contents=40, users=400)
    return table.set_column(0, "id", pc.binary_join_element_wise(ids, table.column("id"), ""))


def _state_types(store: ClickHouseEvents) -> set[str]:
    rows = store.query(
        "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table IN {t:Array(String)} AND type LIKE 'AggregateFunction%'",
        {"t": list(HASHED_TABLES)},
    ).rows
    assert {(table, name) for table, name, _ in rows} == {
        *((table, name) for table in ("content_hourly", "content_daily") for name in STATE_COLUMNS - {"searchers"}),
        ("content_breakdown_daily", "viewers"),
        ("search_daily", "searchers"),
    }
    return {kind for _, _, kind in rows}


async def _answers(store: ClickHouseEvents) -> list[list[tuple[Any, ...]]]:
    """Every query's rows from its rollup, checked against raw events (which always count each once).
    A database from before migration 022 has no site-wide totals: those queries are answered raw there."""
    reader = InProcessStore(store)
    has_totals = bool(store.query("EXISTS TABLE content_totals_daily").rows[0][0])
    out = []
    for query, rollup in QUERIES:
        raw = await run_query(reader, MetricQuery(**{**query.__dict__, "route": "raw"}))
        routed = raw if rollup == "content_totals_daily" and not has_totals else await run_query(reader, query)
        assert (routed.source, raw.source) == (rollup if routed is not raw else "events", "events")
        rows = sorted(tuple(sorted(row.items())) for row in routed.rows)
        assert rows == sorted(tuple(sorted(row.items())) for row in raw.rows), query
        out.append(rows)
    return out


def _rollup_sums(store: ClickHouseEvents) -> tuple[int, ...]:
    """Views in content_hourly, content_daily and content_breakdown_daily, and searches in search_daily."""
    return tuple(
        int(store.query(sql).rows[0][0])
        for sql in (
            "SELECT sum(views) FROM content_hourly",
            "SELECT sum(views) FROM content_daily",
            "SELECT sum(views) FROM content_breakdown_daily WHERE dimension = 'country'",
            "SELECT sum(searches) FROM search_daily",
        )
    )


def _expected_sums(*tables: pa.Table) -> tuple[int, ...]:
    """The same, counted in the generated events (views all name a content in the generator)."""
    events = pa.concat_tables(tables)
    kinds = events.column("event_type").to_pylist()
    views, searches = kinds.count("content_view"), kinds.count("search_query")
    return views, views, views, searches


async def test_upgrade_keeps_every_answer_and_counts_later_events_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"hashes_{secrets.token_hex(4)}"
    old = open_old(database)
    before = [_events(1, 15_000, "a"), _events(2, 15_000, "b")]
    for i, table in enumerate(before):
        old.insert(table, f"before-{i}")
    assert _state_types(old) == {"AggregateFunction(uniqExact, String)"}
    answers = await _answers(old)
    old.close()

    store = open_store(chdb_dir, database)
    assert _state_types(store) == {"AggregateFunction(uniqExact, UInt64)"}
    assert await _answers(store) == answers
    assert _rollup_sums(store) == _expected_sums(*before)

    # Same viewers, sessions, contents and queries as before, and new ones: counted once, through the feed.
    after = _events(3, 10_000, "c")
    store.insert(after, "after")
    assert await _answers(store) != answers
    assert _rollup_sums(store) == _expected_sums(*before, after)
    store.close()


async def test_an_insert_not_yet_fed_before_the_upgrade_is_counted_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"hashes_{secrets.token_hex(4)}"
    old = open_old(database)
    fed, unfed = _events(4, 8_000, "f"), _events(5, 8_000, "u")
    old.insert(fed, "fed")
    old.insert_raw(unfed, "unfed")  # acknowledged, then the writer stopped before feeding it
    old.close()

    store = open_store(chdb_dir, database)
    assert _state_types(store) == {"AggregateFunction(uniqExact, UInt64)"}
    await _answers(store)
    assert _rollup_sums(store) == _expected_sums(fed, unfed)
    store.close()


def test_a_new_and_an_upgraded_database_have_the_same_schema(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    upgraded_name, fresh_name = f"hashes_{secrets.token_hex(4)}", f"hashes_{secrets.token_hex(4)}"
    old = open_old(upgraded_name)
    old.insert(_events(6, 2_000, "s"), "old")
    # As an earlier release left it: a rollup view still reading events (storage/rollup_feed.py).
    ddl = old.query("SHOW CREATE TABLE content_daily_mv").rows[0][0]
    old.client.command("DROP VIEW content_daily_mv")
    old.client.command(ddl.replace(f"{upgraded_name}.{FEED_TABLE}", f"{upgraded_name}.events"))
    old.close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)

    schema = create_statements(upgraded, upgraded_name)
    assert schema == create_statements(fresh, fresh_name)
    assert set(HASHED_TABLES) | {f"{t}_mv" for t in HASHED_TABLES} <= set(schema)
    for table in HASHED_TABLES:
        assert "AggregateFunction(uniqExact, UInt64)" in schema[table]
        assert "String)" not in schema[table].split("uniqExact", 1)[1]
        assert f"FROM DB.{FEED_TABLE}" in schema[f"{table}_mv"] and "cityHash64" in schema[f"{table}_mv"]
    (feeds,) = upgraded.query(
        "SELECT dependencies_table FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
        {"n": FEED_TABLE},
    ).rows[0]
    assert {f"{t}_mv" for t in HASHED_TABLES} <= set(feeds)
    applied = "SELECT version, name FROM schema_migrations ORDER BY version"
    assert upgraded.query(applied).rows == fresh.query(applied).rows
    upgraded.close()
    fresh.close()


def test_raw_distinct_counts_hash_like_the_rollup_states() -> None:
    """Raw and rollup agree only while both count the same 64-bit hashes (a collision counts once)."""
    merged = {
        (family.name, metric.name): metric
        for family in FAMILIES.values()
        for metric in family.metrics.values()
        if metric.rollup and metric.rollup.startswith("uniqExactMerge(")
    }
    assert set(merged) == {
        ("content", "unique_views"),
        ("content", "playback_sessions"),
        ("content", "completed_sessions"),
        ("breakdown", "unique_views"),
        ("search", "searchers"),
        ("system_requests", "users"),
    }
    for metric in merged.values():
        assert metric.raw.startswith(("uniqExact(cityHash64(", "uniqExactIf(cityHash64(")), metric.raw
        assert "64-bit hashes" in metric.description
    sql = clickhouse.migration_files()[LAST_BEFORE][2]
    assert sql.count("uniqExactState") == sql.count("uniqExactStateIf(cityHash64(") + sql.count(
        "uniqExactState(cityHash64("
    )
