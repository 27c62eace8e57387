"""storage/user_data_tables.py on chDB: every table is classified; after ``erase`` the user is in no table
that can tell, and every table touched holds exactly what a database that never saw the user holds
(the same events without theirs); a run repeated, or cut short after a slice was deleted, ends the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage import user_data_tables
from storage.events import ClickHouseEvents
from storage.table_retention import STORES_NOTHING
from storage.user_data_tables import PER_USER_TABLES, REBUILT_TABLES, WITHOUT_USER_DATA, ErasurePlan
from tests.semantic.erasure_support import ERASED, activity, contents, open_store


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return activity(datetime.now(UTC) - timedelta(hours=1))


@pytest.fixture(scope="module")
def without_user(chdb_dir: Path, rows: list[dict[str, Any]]) -> ClickHouseEvents:
    """The database that never saw the erased user."""
    return open_store(chdb_dir, [row for row in rows if row.get("user_id") != ERASED])


def test_every_table_is_classified(without_user: ClickHouseEvents) -> None:
    tables = without_user.client.query(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    storing = {name for name, engine in tables if engine not in STORES_NOTHING}
    classified = set(PER_USER_TABLES) | {spec.table for spec in REBUILT_TABLES} | set(WITHOUT_USER_DATA)
    assert storing - classified == set()
    assert classified - storing == set()


def test_tables_that_name_users_are_erased(without_user: ClickHouseEvents) -> None:
    """A table with a user_id column, or filled by a view that reads user_id, is deleted from or refilled."""
    erased = set(PER_USER_TABLES) | {spec.table for spec in REBUILT_TABLES}
    with_column = {
        row[0]
        for row in without_user.client.query(
            "SELECT DISTINCT c.table FROM system.columns AS c JOIN system.tables AS t "
            "ON t.database = c.database AND t.name = c.table "
            "WHERE c.database = currentDatabase() AND c.name = 'user_id' AND t.engine NOT IN {nothing:Array(String)}",
            parameters={"nothing": sorted(STORES_NOTHING)},
        ).result_rows
    }
    views = without_user.client.query(
        "SELECT as_select, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    ).result_rows
    database = without_user.client.query("SELECT currentDatabase()").result_rows[0][0]
    reading_users = {
        ddl.split(" TO ", 1)[1].split(" ", 1)[0].removeprefix(f"{database}.")
        for select, ddl in views
        if "user_id" in select
    }
    assert (with_column | reading_users) - {"events_rollup_feed"} <= erased


def test_erase_leaves_what_a_database_without_the_user_holds(
    chdb_dir: Path, rows: list[dict[str, Any]], without_user: ClickHouseEvents
) -> None:
    store = open_store(chdb_dir, rows)
    plan = ErasurePlan.from_dict(store.user_data_plan([ERASED]))
    assert plan.rows["events"] == sum(row.get("user_id") == ERASED for row in rows) == 24
    assert len(plan.days) == 3 and plan.sessions == ["s-erased-0", "s-erased-1", "s-erased-2"]
    assert store.user_data_remaining([ERASED])["realtime_minutes"] > 0
    touched = [table for table in (*PER_USER_TABLES, *(s.table for s in REBUILT_TABLES))]
    assert any(contents(store, t) != contents(without_user, t) for t in touched)

    done = store.erase_user_data([ERASED], plan.to_dict(), fed_through=store.rollups.fed_through)

    assert done["events"] == {"rows": 24}
    assert done["session_rollup"]["slices"] == 3
    assert set(store.user_data_remaining([ERASED]).values()) == {0}
    for table in touched:
        assert contents(store, table) == contents(without_user, table), table
    # The anonymous page view before the login is still there, in a session that names no user now.
    sessions = store.client.query(
        "SELECT session_id, max(user_id), sum(events) FROM session_rollup WHERE session_id = 's-erased-0' "
        "GROUP BY session_id"
    ).result_rows
    assert sessions == [("s-erased-0", "", 1)]

    # Once more, as a resumed job would: nothing changes.
    store.erase_user_data([ERASED], plan.to_dict(), fed_through=store.rollups.fed_through)
    for table in touched:
        assert contents(store, table) == contents(without_user, table), table


def test_a_run_cut_short_after_a_slice_was_deleted_is_finished_by_the_next(
    chdb_dir: Path, rows: list[dict[str, Any]], without_user: ClickHouseEvents
) -> None:
    store = open_store(chdb_dir, rows)
    plan = store.user_data_plan([ERASED])
    # What a run killed between deleting the first rollup's slices and refilling them leaves behind.
    first = REBUILT_TABLES[0]
    store.client.command(
        f"ALTER TABLE {first.table} DELETE WHERE {first.key} IN {{keys:Array(Date)}} SETTINGS mutations_sync = 2",
        parameters={"keys": plan["slices"][first.table]},
    )
    assert contents(store, first.table) != contents(without_user, first.table)

    store.erase_user_data([ERASED], plan, fed_through=store.rollups.fed_through)

    for table in (*PER_USER_TABLES, *(s.table for s in REBUILT_TABLES)):
        assert contents(store, table) == contents(without_user, table), table


def test_a_user_without_data_plans_nothing(without_user: ClickHouseEvents) -> None:
    plan = ErasurePlan.from_dict(without_user.user_data_plan([ERASED]))
    assert plan.days == [] and plan.sessions == [] and set(plan.rows.values()) == {0}
    assert all(not slices for slices in plan.slices.values())
    done = without_user.erase_user_data([ERASED], plan.to_dict(), fed_through=without_user.rollups.fed_through)
    assert set(done) == set(PER_USER_TABLES)


def test_refilling_needs_the_view_it_knows(without_user: ClickHouseEvents) -> None:
    database = without_user.client.query("SELECT currentDatabase()").result_rows[0][0]
    sql = user_data_tables._refill_sql(without_user.client, database, REBUILT_TABLES[0])
    assert sql.startswith("INSERT INTO content_hourly (content_id, hour, views, viewers")
    assert "user_id NOT IN {ids:Array(String)}" in sql and "stored_seq <= {fed:UInt64}" in sql
    minutes = next(spec for spec in REBUILT_TABLES if spec.table == "realtime_minutes")
    # The live minutes are written with the insert itself, not by the feed: every stored row counts.
    assert "stored_seq" not in user_data_tables._refill_sql(without_user.client, database, minutes)
