"""Retention on every ClickHouse table (storage/table_retention.py, migration 020): every table that stores
rows, as the database lists them, has the TTL of its class or is named as kept without one; the TTLs
follow the settings; rows past their time are gone after OPTIMIZE ... FINAL while the rest stay; and a
database upgraded to 020 equals a new one."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client

from storage import clickhouse
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from storage.table_retention import (
    KEPT_WITHOUT_TTL,
    TABLE_CLASSES,
    RetentionPolicy,
    ensure_retention,
)
from tests.semantic.conftest import create_statements, open_store, release_before

# Every day count differs, so a table given another class's retention shows.
SHORT = RetentionPolicy(events_days=100, rollup_days=300, minute_days=20)
LONG = RetentionPolicy(events_days=3650, rollup_days=3000, minute_days=1000)
# Activity this many days ago: each class's retention above falls between two of these ages.
AGES = (500, 200, 60, 2)

_STORES_NOTHING = ("Null", "View", "MaterializedView")
_TTL = re.compile(r"\bTTL (.+?) \+ toIntervalDay\((\d+)\)")


def activity(at: datetime, tag: str) -> list[dict[str, Any]]:
    """A few minutes of everything the service records, from ``at``: content, playback, search, pages,
    the platform's requests, errors, resources, health checks and statements, and an import job."""
    user, session, content = f"u-{tag}", f"s-{tag}", f"c-{tag}"
    viewer = {"user_id": user, "session_id": session}
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (
            "content_view",
            {
                **viewer,
                "content_id": content,
                "country": "SA",
                "region": "Riyadh",
                "device_type": "mobile",
                "traffic_source": "search",
            },
            {"duration_seconds": 30},
        ),
        ("content_play", {**viewer, "content_id": content}, {}),
        ("content_pause", {**viewer, "content_id": content}, {}),
        ("content_complete", {**viewer, "content_id": content}, {}),
        ("search_query", viewer, {"query": "news", "results_count": 3}),
        ("search_result_click", {**viewer, "content_id": content}, {"query": "news", "position": 1}),
        ("page_view", viewer, {}),
        ("api_request", {}, {"service": "api", "endpoint": "/x", "method": "GET", "status": 200, "duration_ms": 12}),
        (
            "error_occurred",
            {},
            {"service": "api", "endpoint": "/x", "error_type": "Timeout", "severity": "error", "message": "slow"},
        ),
        ("resource_usage", {}, {"service": "api", "instance": "i1", "cpu_percent": 50, "memory_percent": 40}),
        ("health_check", {}, {"service": "api", "status": "healthy", "latency_ms": 5}),
        (
            "database_query",
            {},
            {
                "service": "api",
                "database": "clickhouse",
                "operation": "SELECT",
                "fingerprint": "SELECT ?",
                "duration_ms": 3,
            },
        ),
        ("import_started", {}, {"job_id": f"job-{tag}", "source": "csv"}),
        ("import_completed", {}, {"job_id": f"job-{tag}", "records_total": 10, "duration_ms": 100}),
    ]
    return [
        {
            "id": f"{tag}-{i}",
            "event_type": event_type,
            "event_category": event_type.split("_")[0],
            "timestamp": at + timedelta(minutes=i),
            "processed_at": at + timedelta(minutes=i),
            "properties": orjson.dumps(properties).decode(),
            **columns,
        }
        for i, (event_type, columns, properties) in enumerate(rows)
    ]


def events_table(rows: list[dict[str, Any]]) -> pa.Table:
    columns = {name: [row.get(name, "") for row in rows] for name in EVENT_SCHEMA.names}
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


def aged_activity(now: datetime, ages: tuple[int, ...] = AGES) -> pa.Table:
    """``activity`` at noon UTC of each of the days ``ages`` before ``now``."""
    rows = []
    for age in ages:
        noon = (now - timedelta(days=age)).replace(hour=12, minute=0, second=0, microsecond=0)
        rows += activity(noon, f"age{age}")
    return events_table(rows)


def storing_tables(client: Client) -> dict[str, tuple[str, str]]:
    """(engine, DDL) of every table of the current database that keeps rows of its own."""
    rows = client.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    return {name: (engine, ddl) for name, engine, ddl in rows if engine not in _STORES_NOTHING}


def uncovered(client: Client, policy: RetentionPolicy) -> list[str]:
    """The tables that keep rows with neither the TTL their class asks for nor a reason to keep them."""
    problems = []
    for name, (_, ddl) in sorted(storing_tables(client).items()):
        if name in KEPT_WITHOUT_TTL:
            continue
        ttl = _TTL.search(ddl)
        if name not in TABLE_CLASSES or ttl is None or int(ttl.group(2)) != policy.days(TABLE_CLASSES[name]):
            problems.append(name)
    return problems


def optimize_all(client: Client) -> None:
    """Wait for pending mutations (a TTL change is one), then merge every table's parts (applying TTLs)."""
    deadline = time.monotonic() + 30
    pending = "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done"
    while client.query(pending).result_rows[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in storing_tables(client):
        client.command(f"OPTIMIZE TABLE {clickhouse.identifier(name)} FINAL")


def rows_by_time(client: Client, name: str) -> dict[int, int]:
    """Rows of a table per instant of its TTL's time expression (epoch seconds, UTC)."""
    _, ddl = storing_tables(client)[name]
    match = _TTL.search(ddl)
    assert match is not None, name
    rows = client.query(
        f"SELECT toUnixTimestamp(toDateTime({match.group(1)}, 'UTC')) AS at, count() FROM {name} GROUP BY at"
    ).result_rows
    return {int(at): int(n) for at, n in rows}


def open_with(chdb_dir: Path, database: str, policy: RetentionPolicy) -> ClickHouseEvents:
    store = ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=policy.events_days)
    ensure_retention(store.client, policy)
    return store


@pytest.fixture
def fresh(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_with(chdb_dir, f"ret_{secrets.token_hex(4)}", SHORT)
    yield store
    store.close()


def test_every_table_that_keeps_rows_has_the_retention_of_its_class(fresh: ClickHouseEvents) -> None:
    tables = storing_tables(fresh.client)
    assert uncovered(fresh.client, SHORT) == []
    # The lists name only tables the database has, and each table once.
    assert set(TABLE_CLASSES) | set(KEPT_WITHOUT_TTL) == set(tables)
    assert not set(TABLE_CLASSES) & set(KEPT_WITHOUT_TTL)
    # The tables the issue found without a TTL, and the minute table that took the events' days.
    for name, days in (
        ("content_hourly", 300),
        ("content_daily", 300),
        ("content_breakdown_daily", 300),
        ("search_daily", 300),
        ("import_jobs", 300),
        ("events", 100),
        ("realtime_minutes", 20),
    ):
        assert f"toIntervalDay({days})" in tables[name][1], name


def test_a_new_table_without_a_ttl_is_not_covered(fresh: ClickHouseEvents) -> None:
    fresh.client.command("CREATE TABLE later_rollup (hour DateTime, n UInt64) ENGINE = SummingMergeTree ORDER BY hour")
    fresh.client.command(
        "CREATE TABLE later_copy (at DateTime, id String) ENGINE = MergeTree ORDER BY at TTL at + INTERVAL 100 DAY"
    )
    # Without a TTL, and with one but no class: both must be added to the retention lists.
    assert uncovered(fresh.client, SHORT) == ["later_copy", "later_rollup"]


def test_the_ttls_follow_the_settings_from_one_start_to_the_next(fresh: ClickHouseEvents) -> None:
    assert ensure_retention(fresh.client, SHORT) == []
    longer_rollups = RetentionPolicy(events_days=100, rollup_days=400, minute_days=20)
    changed = ensure_retention(fresh.client, longer_rollups)
    assert sorted(changed) == sorted(n for n, kind in TABLE_CLASSES.items() if kind == "rollups")
    assert uncovered(fresh.client, longer_rollups) == []
    assert ensure_retention(fresh.client, longer_rollups) == []


def test_apply_migrations_keeps_everything_as_long_as_events_without_other_values(chdb_dir: Path) -> None:
    client = clickhouse.connect(None, chdb_path=chdb_dir, database=f"ret_{secrets.token_hex(4)}")
    try:
        clickhouse.apply_migrations(client, template={"retention_days": 77})
        assert uncovered(client, RetentionPolicy.of(77)) == []
    finally:
        client.close()


def test_rows_past_their_retention_are_gone_after_optimize_final(chdb_dir: Path) -> None:
    now = datetime.now(UTC)
    store = open_with(chdb_dir, f"ret_{secrets.token_hex(4)}", LONG)
    try:
        store.insert(aged_activity(now), "ages")
        optimize_all(store.client)
        before = {name: rows_by_time(store.client, name) for name in TABLE_CLASSES}

        ensure_retention(store.client, SHORT)
        optimize_all(store.client)

        for name, kind in TABLE_CLASSES.items():
            cutoff = (now - timedelta(days=SHORT.days(kind))).timestamp()
            kept = {at: n for at, n in before[name].items() if at > cutoff}
            # Every table had rows on both sides of its cutoff, so each side of the rule is exercised.
            assert kept and len(kept) < len(before[name]), (name, before[name])
            assert rows_by_time(store.client, name) == kept, name
    finally:
        store.close()


def test_a_database_upgraded_to_020_equals_a_new_one(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upgraded_name, fresh_name = f"ret_up_{secrets.token_hex(4)}", f"ret_new_{secrets.token_hex(4)}"
    old = release_before("020_retention.sql", chdb_dir, monkeypatch)(upgraded_name)
    old.insert(aged_activity(datetime.now(UTC)), "ages")
    optimize_all(old.client)
    # The live minute table leaves statements (database_query) out from migration 021 on.
    live = "SELECT count() FROM realtime_minutes WHERE event_type != 'database_query'"
    rows_before = {
        name: rows_by_time(old.client, name)
        for name in TABLE_CLASSES
        if name in _with_ttl(old.client) and name != "realtime_minutes"
    }
    counts_before = {**_counts(old.client), "realtime_minutes": int(old.client.query(live).result_rows[0][0])}
    assert "TTL" not in storing_tables(old.client)["content_hourly"][1]
    old.close()

    upgraded = open_store(chdb_dir, upgraded_name)
    ensure_retention(upgraded.client, LONG)
    fresh = open_store(chdb_dir, fresh_name)
    ensure_retention(fresh.client, LONG)
    try:
        assert create_statements(upgraded, upgraded_name) == create_statements(fresh, fresh_name)
        assert uncovered(upgraded.client, LONG) == []
        # Every age is within the long retention: the upgrade keeps every row.
        optimize_all(upgraded.client)
        # (Tables made after 020 hold only what their own backfill put there.)
        assert {name: n for name, n in _counts(upgraded.client).items() if name in counts_before} == counts_before
        for name, rows in rows_before.items():
            assert rows_by_time(upgraded.client, name) == rows, name
    finally:
        upgraded.close()
        fresh.close()


def _with_ttl(client: Client) -> set[str]:
    return {name for name, (_, ddl) in storing_tables(client).items() if _TTL.search(ddl)}


def _counts(client: Client) -> dict[str, int]:
    return {
        name: int(client.query(f"SELECT count() FROM {name}").result_rows[0][0])
        for name in storing_tables(client)
        if name != "schema_migrations"
    }


def test_the_event_store_applies_every_retention_setting_at_its_start(chdb_dir: Path) -> None:
    database = f"ret_{secrets.token_hex(4)}"
    first = ClickHouseEvents.open(
        None,
        chdb_path=chdb_dir,
        database=database,
        retention_days=100,
        rollup_retention_days=300,
        minute_retention_days=20,
    )
    assert uncovered(first.client, SHORT) == []
    first.close()
    again = ClickHouseEvents.open(
        None,
        chdb_path=chdb_dir,
        database=database,
        retention_days=3650,
        rollup_retention_days=3000,
        minute_retention_days=1000,
    )
    try:
        assert uncovered(again.client, LONG) == []
    finally:
        again.close()
