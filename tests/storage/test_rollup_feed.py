"""The rollup feed on real chDB: acknowledged inserts reach the rollups later, exactly once,
also when the writer dies before, during or after a feed step."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from storage import clickhouse
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from storage.rollup_feed import CLAIMS_TABLE, FEED_TABLE, InsertMemory, RollupFeed, rewire_views
from tests.support import stored_events

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def _events(prefix: str, n: int) -> pa.Table:
    return stored_events(prefix, n, START)


def _open(chdb_dir: Path, database: str) -> ClickHouseEvents:
    return ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=730)


def _counts(store: ClickHouseEvents) -> tuple[int, int, int]:
    """(raw events, rows in the by-user copy, views in the hourly content rollup)."""
    raw = store.query("SELECT count() FROM events").rows[0][0]
    by_user = store.query("SELECT count() FROM events_by_user").rows[0][0]
    hourly = store.query("SELECT sum(views) FROM content_hourly").rows[0][0]
    return raw, by_user, hourly


@pytest.fixture
def database() -> str:
    return f"feed_{secrets.token_hex(4)}"


def test_raw_insert_reaches_rollups_only_when_fed(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    first = store.insert_raw(_events("a", 40), "a")
    second = store.insert_raw(_events("b", 20), "b")
    assert (first, second) == (1, 2)
    assert _counts(store) == (60, 0, 0)
    assert store.rollups.feed_through(second) == 60
    assert _counts(store) == (60, 60, 60)
    # Fed ranges are never fed again.
    assert store.rollups.feed_through(second) == 0
    assert _counts(store) == (60, 60, 60)
    # The synchronous insert stores and feeds in one call.
    store.insert(_events("c", 5), "c")
    assert _counts(store) == (65, 65, 65)


def test_writer_dying_after_a_feed_step_does_not_feed_twice(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    store.insert(_events("a", 30), "a")
    store.close()
    # The new writer re-runs the latest claim: every target already has its token.
    reopened = _open(chdb_dir, database)
    assert _counts(reopened) == (30, 30, 30)
    assert reopened.stored_seq == 1
    reopened.insert(_events("b", 10), "b")
    assert _counts(reopened) == (40, 40, 40)


def test_writer_dying_before_the_feed_is_caught_up_on_open(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    store.insert(_events("a", 10), "a")
    store.insert_raw(_events("b", 25), "b")  # acknowledged, then the writer died
    store.close()
    reopened = _open(chdb_dir, database)
    assert _counts(reopened) == (35, 35, 35)
    # Its next insert gets a seq after everything stored.
    assert reopened.stored_seq == 2
    reopened.insert(_events("c", 1), "c")
    assert _counts(reopened) == (36, 36, 36)


def test_writer_dying_between_claim_and_feed_is_fed_on_open(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    seq = store.insert_raw(_events("a", 12), "a")
    store.client.command(
        f"INSERT INTO {CLAIMS_TABLE} (first_seq, last_seq, token) VALUES ({seq}, {seq}, 'rollup-unfinished')"
    )
    store.close()
    assert _counts(_open(chdb_dir, database)) == (12, 12, 12)


class _DiesAfterFeeding(RollupFeed):
    """Feeds the claim, then fails as if the process died before recording it."""

    failures = 1

    def _feed(self, claim):  # type: ignore[no-untyped-def]
        rows = super()._feed(claim)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("lost the connection after the insert")
        return rows


def test_failed_feed_step_is_retried_with_the_same_claim(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    seq = store.insert_raw(_events("a", 50), "a")
    feed = _DiesAfterFeeding(store.client, tuple(EVENT_SCHEMA.names), fed_through=store.rollups.fed_through)
    with pytest.raises(ConnectionError):
        feed.feed_through(seq)
    assert _counts(store) == (50, 50, 50)  # it did land
    feed.feed_through(seq)  # the retry carries the same token: skipped everywhere
    assert _counts(store) == (50, 50, 50)
    assert feed.fed_through == seq
    assert store.query(f"SELECT count() FROM {CLAIMS_TABLE} FINAL").rows[0][0] == 1


def test_views_of_an_earlier_schema_are_pointed_at_the_feed(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    store.insert(_events("a", 8), "a")
    # An earlier schema's view reading events directly, as the first releases created them.
    ddl = store.query(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'events_by_user_mv'"
    ).rows[0][0]
    store.client.command("DROP VIEW events_by_user_mv")
    store.client.command(ddl.replace(f"{database}.{FEED_TABLE}", f"{database}.events"))
    assert "events_by_user_mv" in _dependents(store, "events")
    store.close()

    reopened = _open(chdb_dir, database)
    assert "events_by_user_mv" in _dependents(reopened, FEED_TABLE)
    assert _dependents(reopened, "events") == ["realtime_minutes_mv"]
    reopened.insert(_events("b", 4), "b")
    assert _counts(reopened) == (12, 12, 12)
    assert rewire_views(reopened.client) == []


def _dependents(store: ClickHouseEvents, table: str) -> list[str]:
    return sorted(
        store.query(
            "SELECT dependencies_table FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
            {"t": table},
        ).rows[0][0]
    )


def test_feed_table_keeps_nothing(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    store.insert(_events("a", 5), "a")
    assert store.query(f"SELECT count() FROM {FEED_TABLE}").rows[0][0] == 0
    assert clickhouse.identifier(FEED_TABLE) == FEED_TABLE


class _DiesBeforeMarkingDone(RollupFeed):
    """Feeds the claim, then dies before recording that it is done."""

    def _mark(self, claim, *, done):  # type: ignore[no-untyped-def]
        if done:
            raise ConnectionError("died before marking the claim done")
        super()._mark(claim, done=done)


def test_a_claim_rerun_after_its_parts_were_merged_feeds_nothing_twice(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    seqs = [store.insert_raw(_events(f"p{i}-", 30), f"p{i}") for i in range(6)]  # six parts
    feed = _DiesBeforeMarkingDone(store.client, tuple(EVENT_SCHEMA.names), fed_through=store.rollups.fed_through)
    with pytest.raises(ConnectionError):
        feed.feed_through(seqs[-1])
    assert _counts(store) == (180, 180, 180)
    # The claim's rows now sit in one part: the re-run reads them in another layout.
    store.client.command("OPTIMIZE TABLE events FINAL")
    store.close()
    assert _counts(_open(chdb_dir, database)) == (180, 180, 180)


class _RecordsClaims(RollupFeed):
    """Remembers every claim it marks done (the claims table keeps only the latest after merges)."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.done: list[tuple[int, int]] = []

    def _mark(self, claim, *, done):  # type: ignore[no-untyped-def]
        super()._mark(claim, done=done)
        if done:
            self.done.append((claim.first_seq, claim.last_seq))


def test_claims_stop_at_a_million_rows(chdb_dir: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("storage.rollup_feed.MAX_ROWS_PER_CLAIM", 25)
    store = _open(chdb_dir, database)
    last = [store.insert_raw(_events(f"q{i}-", 10), f"q{i}") for i in range(5)][-1]
    feed = _RecordsClaims(store.client, tuple(EVENT_SCHEMA.names), fed_through=store.rollups.fed_through)
    feed.feed_through(last)
    # 10 + 10 fit, a third would not: claims of two inserts, the last one alone.
    assert feed.done == [(1, 2), (3, 4), (5, 5)]
    assert _counts(store) == (50, 50, 50)


def _remembering(
    store: ClickHouseEvents, memory: InsertMemory, feed_class: type[RollupFeed] = RollupFeed
) -> RollupFeed:
    return feed_class(store.client, tuple(EVENT_SCHEMA.names), fed_through=store.rollups.fed_through, memory=memory)


def test_a_claim_fed_from_memory_is_recognized_when_read_back(chdb_dir: Path, database: str) -> None:
    """The writer's tables make the block the SELECT makes: a restart that re-runs the claim from
    events (memory is gone) finds it fed everywhere."""
    store = _open(chdb_dir, database)
    memory = InsertMemory()
    # Rows not in id order, across three inserts: the block is sorted by id either way.
    tables = [_events(f"m{i}-", 30).take(list(range(29, -1, -1))) for i in range(3)]
    for i, table in enumerate(tables):
        memory.add(store.insert_raw(table, f"m{i}"), table)
    feed = _remembering(store, memory, _DiesBeforeMarkingDone)
    with pytest.raises(ConnectionError):
        feed.feed_through(3)
    assert feed.fed_from_memory == 90
    assert _counts(store) == (90, 90, 90)
    store.close()
    reopened = _open(chdb_dir, database)
    assert reopened.rollups.fed_from_memory == 0  # recovered from events
    assert _counts(reopened) == (90, 90, 90)


def test_memory_unlike_the_stored_rows_is_not_fed(chdb_dir: Path, database: str) -> None:
    """An insert ClickHouse deduplicated (a retry of the same rows) holds no rows in events: the
    claim is read back, and its rows are counted once."""
    store = _open(chdb_dir, database)
    memory = InsertMemory()
    table = _events("d", 20)
    for _ in range(2):
        memory.add(store.insert_raw(table, "same-token"), table)
    feed = _remembering(store, memory)
    assert feed.feed_through(2) == 20
    assert feed.fed_from_memory == 0
    assert _counts(store) == (20, 20, 20)
    assert memory.rows == 0  # forgotten once fed


def test_inserts_dropped_from_memory_are_read_back(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    memory = InsertMemory(max_rows=25)
    for i in range(3):
        table = _events(f"x{i}-", 10)
        memory.add(store.insert_raw(table, f"x{i}"), table)
    assert memory.rows == 20  # the oldest insert was dropped
    feed = _remembering(store, memory)
    assert feed.feed_through(3) == 30
    assert feed.fed_from_memory == 0
    assert _counts(store) == (30, 30, 30)
    # The next claim is all in memory again.
    table = _events("y", 10)
    memory.add(store.insert_raw(table, "y"), table)
    assert feed.feed_through(4) == 10 and feed.fed_from_memory == 10
    assert _counts(store) == (40, 40, 40)


def test_the_feed_sends_the_columns_its_table_has(chdb_dir: Path, database: str) -> None:
    store = _open(chdb_dir, database)
    feed_columns = {
        row[0]
        for row in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
            {"t": FEED_TABLE},
        ).rows
    }
    # The long strings no view reads are left out; what the views read is there.
    assert {"user_agent", "referrer", "ip_address"}.isdisjoint(feed_columns)
    assert {"properties", "session_id", "traffic_source", "region"} <= feed_columns
    store.insert(_events("a", 10), "a")
    assert _counts(store) == (10, 10, 10)
    # A later view that reads a column the feed left out adds it back, and gets its values.
    store.client.command("ALTER TABLE events_rollup_feed ADD COLUMN user_agent String")
    store.client.command(
        "CREATE TABLE agents (user_agent String, n UInt64) ENGINE = SummingMergeTree ORDER BY user_agent"
    )
    store.client.command(
        "CREATE MATERIALIZED VIEW agents_mv TO agents AS "
        "SELECT user_agent, count() AS n FROM events_rollup_feed GROUP BY user_agent"
    )
    store.rollups.read_feed_columns()
    events = _events("b", 7)
    agents = pa.array([f"agent-{i % 3}" for i in range(7)], pa.string())
    events = events.set_column(events.schema.get_field_index("user_agent"), "user_agent", agents)
    store.insert(events, "b")
    stored = store.query("SELECT user_agent, sum(n) FROM agents GROUP BY user_agent").rows
    expected: dict[str, int] = {}
    for agent in events.column("user_agent").to_pylist():
        expected[agent] = expected.get(agent, 0) + 1
    assert dict(stored) == expected == {"agent-0": 3, "agent-1": 2, "agent-2": 2}
