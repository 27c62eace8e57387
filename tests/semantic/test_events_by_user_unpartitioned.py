"""Migration 013 on real chDB: events_by_user loses its monthly partitions, keeps every row and
every user answer, takes later events once, and a migration cut short after swapping the tables
finishes on the next start."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from string import Template

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from semantic.periods import Period
from semantic.users import UserAnalyticsService
from storage import clickhouse
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.generator import generate

START = datetime(2025, 3, 1, tzinfo=UTC)
# Three calendar months, so the old table has three partitions.
DAYS = 75
MIGRATION = "013_events_by_user_unpartitioned.sql"
WHOLE_RANGE = Period(date(2025, 3, 1), date(2025, 5, 14))
APRIL = Period(date(2025, 4, 1), date(2025, 4, 30), "America/New_York")
ROWS = (
    "SELECT count(), sum(cityHash64(user_id, id, timestamp, event_type, session_id, content_id, duration_seconds)) "
    "FROM events_by_user"
)


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


def _events(seed: int, n: int, ids: str) -> pa.Table:
    table = generate(n, start=START, days=DAYS, seed=seed, prefix="p", contents=30, users=60)
    return table.set_column(0, "id", pc.binary_join_element_wise(ids, table.column("id"), ""))


def _partition_key(store: ClickHouseEvents) -> str:
    return store.query(
        "SELECT partition_key FROM system.tables WHERE database = currentDatabase() AND name = 'events_by_user'"
    ).rows[0][0]


def _users(store: ClickHouseEvents) -> list[str]:
    return [row[0] for row in store.query("SELECT DISTINCT user_id FROM events_by_user ORDER BY user_id LIMIT 5").rows]


async def _reports(store: ClickHouseEvents, users: list[str]) -> list[dict[str, object]]:
    service = UserAnalyticsService(InProcessStore(store))
    out = []
    for user in users:
        for period in (WHOLE_RANGE, APRIL):
            report = (await service.report(user, period)).model_dump(mode="json")
            for volatile in ("calculated_at", "last_updated"):
                report["analytics"].pop(volatile)
            out.append(report)
    return out


async def test_upgrade_drops_the_partitions_and_keeps_every_row_and_answer(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"by_user_{secrets.token_hex(4)}"
    old = open_old(database)
    before = _events(1, 12_000, "a")
    old.insert(before, "before")
    assert _partition_key(old) == "toYYYYMM(timestamp)"
    parts = old.query(
        "SELECT uniqExact(partition) FROM system.parts "
        "WHERE active AND database = currentDatabase() AND table = 'events_by_user'"
    )
    assert parts.rows[0][0] == 3
    rows, users = old.query(ROWS).rows[0], _users(old)
    reports = await _reports(old, users)
    old.close()

    store = open_store(chdb_dir, database)
    assert _partition_key(store) == ""
    assert store.query(ROWS).rows[0] == rows
    assert await _reports(store, users) == reports
    # Later events reach the new table through the view, once each.
    after = _events(2, 4_000, "b")
    store.insert(after, "after")
    with_user = int(
        pc.sum(pc.not_equal(pc.fill_null(pa.concat_tables([before, after]).column("user_id"), ""), "")).as_py()
    )
    assert store.query("SELECT count() FROM events_by_user").rows[0][0] == with_user
    assert await _reports(store, users) != reports
    store.close()


async def test_a_migration_cut_short_after_the_swap_finishes_on_the_next_start(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"by_user_{secrets.token_hex(4)}"
    old = open_old(database)
    old.insert(_events(3, 6_000, "c"), "before")
    rows, users = old.query(ROWS).rows[0], _users(old)
    reports = await _reports(old, users)
    # The process died right after EXCHANGE TABLES: no view, the old table under the new name.
    (sql,) = [sql for _, name, sql in clickhouse.migration_files() if name == MIGRATION]
    statements = clickhouse._statements(Template(sql).substitute(retention_days=3650))
    swap = next(i for i, s in enumerate(statements) if s.startswith("EXCHANGE TABLES"))
    for statement in statements[: swap + 1]:
        old.client.command(statement)
    old.close()

    store = open_store(chdb_dir, database)
    assert _partition_key(store) == ""
    assert store.query(ROWS).rows[0] == rows
    assert await _reports(store, users) == reports
    assert not store.query("EXISTS TABLE events_by_user_unpartitioned").rows[0][0]
    store.insert(_events(4, 2_000, "d"), "after")
    assert store.query(ROWS).rows[0][0] > rows[0]
    store.close()


def test_a_new_and_an_upgraded_database_have_the_same_events_by_user(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    upgraded_name, fresh_name = f"by_user_{secrets.token_hex(4)}", f"by_user_{secrets.token_hex(4)}"
    old = open_old(upgraded_name)
    old.insert(_events(5, 1_000, "e"), "old")
    old.close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)
    schemas = create_statements(upgraded, upgraded_name), create_statements(fresh, fresh_name)
    for name in ("events_by_user", "events_by_user_mv"):
        assert schemas[0][name] == schemas[1][name]
        assert "PARTITION BY" not in schemas[0][name]
    upgraded.close()
    fresh.close()
