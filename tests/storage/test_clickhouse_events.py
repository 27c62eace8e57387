"""storage/clickhouse.py and storage/events.py against embedded chDB.

All tests share the session's one chDB directory (``chdb_dir``); each uses its own database.
"""

import base64
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from core.errors import InvalidRequest
from storage import clickhouse
from storage.events import EVENT_SCHEMA, ClickHouseEvents, EventFilter, decode_cursor, encode_cursor, events_table
from storage.id_index import hash_ids

# Recent enough to stay inside every retention used here; whole milliseconds, as stored.
BASE = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)


def _row(event_id: str, timestamp: datetime = BASE, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: "" for name in EVENT_SCHEMA.names}
    row.update(
        id=event_id,
        event_type="content_view",
        event_category="content",
        timestamp=timestamp,
        processed_at=BASE + timedelta(days=1),
        properties="{}",
    )
    row.update(fields)
    return row


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def _open(chdb_dir: Path, database: str, retention_days: int = 730) -> ClickHouseEvents:
    return ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=retention_days)


def _ddl(store: ClickHouseEvents) -> str:
    return store.client.query(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    ).result_rows[0][0]


@pytest.fixture
def database(unique: str) -> str:
    return f"t_{unique}"


@pytest.fixture
def store(chdb_dir: Path, database: str) -> Iterator[ClickHouseEvents]:
    events = _open(chdb_dir, database)
    yield events
    events.close()


# --- migrations and retention ------------------------------------------------------------


def _migrations() -> list[tuple[int, str]]:
    return [(version, name) for version, name, _ in clickhouse.migration_files()]


def test_migration_files_are_numbered_in_order():
    found = _migrations()
    assert found[0] == (1, "001_events.sql")
    versions = [version for version, _ in found]
    # Versions identify applied migrations, so no two files may share one.
    assert versions == sorted(set(versions))
    assert [name[:3] for _, name in found] == [f"{version:03d}" for version, _ in found]
    assert "${retention_days}" in clickhouse.migration_files()[0][2]


def test_migrations_applied_once(chdb_dir, database, store):
    applied = "SELECT version, name FROM schema_migrations ORDER BY version"
    assert store.client.query(applied).result_rows == _migrations()
    assert clickhouse.apply_migrations(store.client, template={"retention_days": 730}) == []
    again = _open(chdb_dir, database)
    try:
        assert again.client.query(applied).result_rows == _migrations()
        assert again.client.query("SELECT count() FROM schema_migrations").result_rows == [(len(_migrations()),)]
    finally:
        again.close()


def test_apply_migrations_on_a_fresh_database_returns_the_names(chdb_dir, unique):
    client = clickhouse.connect(None, chdb_path=chdb_dir, database=f"m_{unique}")
    try:
        names = [name for _, name in _migrations()]
        assert clickhouse.apply_migrations(client, template={"retention_days": 9}) == names
        assert clickhouse.apply_migrations(client, template={"retention_days": 9}) == []
        assert client.query("SELECT count() FROM schema_migrations").result_rows == [(len(names),)]
    finally:
        client.close()


def test_connect_refuses_bad_identifiers_and_missing_dir(chdb_dir):
    with pytest.raises(ValueError, match="invalid ClickHouse identifier"):
        clickhouse.connect(None, chdb_path=chdb_dir, database="x; DROP TABLE events")
    with pytest.raises(ValueError, match="needs a data directory"):
        clickhouse.connect(None, chdb_path=None, database="t_x")


def test_settings_clause_reaches_the_engine_verbatim(store):
    odd = "it's a \\ token"
    clause = clickhouse.settings_clause({"insert_deduplication_token": odd, "max_threads": 3})
    rows = store.query(
        f"SELECT getSetting('insert_deduplication_token'), toUInt64(getSetting('max_threads')) {clause}"
    ).rows
    assert rows == [(odd, 3)]
    with pytest.raises(ValueError, match="invalid ClickHouse identifier"):
        clickhouse.settings_clause({"max_threads = 1, readonly": 1})


def test_retention_is_the_table_ttl(filter_store):
    assert "TTL toDateTime(timestamp) + toIntervalDay(730)" in _ddl(filter_store)


def test_reopen_with_other_retention_alters_the_ttl(chdb_dir, database, store):
    store.insert(
        _table([_row("old", BASE - timedelta(days=100)), _row("new", BASE)]),
        "tok",
    )
    assert store.count(EventFilter()) == 2

    same = _open(chdb_dir, database, retention_days=730)
    same.close()
    mutations = "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND table = 'events'"
    assert store.client.query(mutations).result_rows == [(0,)]

    shorter = _open(chdb_dir, database, retention_days=30)
    try:
        ddl = _ddl(shorter)
        assert "toIntervalDay(30)" in ddl
        assert "toIntervalDay(730)" not in ddl
        assert shorter.client.query(mutations).result_rows == [(1,)]
        # The TTL is materialized: the 100-day-old row goes, the recent one stays.
        deadline = time.monotonic() + 10
        while shorter.count(EventFilter()) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert shorter.stored_ids(["old", "new"]) == {"new"}
        # No migration was applied again by the re-opens.
        count = "SELECT count() FROM schema_migrations"
        assert shorter.client.query(count).result_rows == [(len(_migrations()),)]
    finally:
        shorter.close()


# --- insert, count, dedup -----------------------------------------------------------------

FILTER_ROWS = [
    _row("f1", BASE, user_id="u1", session_id="s1", content_id="c1"),
    _row("f2", BASE + timedelta(minutes=1), user_id="u1", session_id="s1", content_id="c2"),
    _row("f3", BASE + timedelta(minutes=2), event_type="content_play", user_id="u2", session_id="s2", content_id="c1"),
    _row(
        "f4",
        BASE + timedelta(minutes=3),
        event_type="search_query",
        event_category="search",
        user_id="u2",
        session_id="s3",
    ),
    _row("f5", BASE + timedelta(minutes=4), event_type="user_login", event_category="user", user_id="u3"),
    _row("f6", BASE + timedelta(minutes=5), event_type="search_query", event_category="search", session_id="s3"),
]


@pytest.fixture(scope="module")
def filter_store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    """Read-only: shared by the filter tests."""
    events = _open(chdb_dir, f"t_filters_{secrets.token_hex(6)}")
    events.insert(_table(FILTER_ROWS), "filters")
    yield events
    events.close()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (EventFilter(), 6),
        (EventFilter(event_type="search_query"), 2),
        (EventFilter(event_type="content_play"), 1),
        (EventFilter(event_type="nothing"), 0),
        (EventFilter(event_category="content"), 3),
        (EventFilter(event_category="user"), 1),
        (EventFilter(user_id="u1"), 2),
        (EventFilter(user_id="u2"), 2),
        (EventFilter(session_id="s3"), 2),
        (EventFilter(session_id="s1"), 2),
        (EventFilter(content_id="c1"), 2),
        (EventFilter(content_id="c2"), 1),
        # Half-open [start, end).
        (EventFilter(start=BASE + timedelta(minutes=1)), 5),
        (EventFilter(end=BASE + timedelta(minutes=1)), 1),
        (EventFilter(start=BASE + timedelta(minutes=1), end=BASE + timedelta(minutes=3)), 2),
        (EventFilter(start=BASE + timedelta(minutes=1, milliseconds=1)), 4),
        (EventFilter(end=BASE + timedelta(minutes=5, milliseconds=1)), 6),
        (EventFilter(end=BASE + timedelta(minutes=5)), 5),
        (EventFilter(start=BASE, end=BASE), 0),
        # A naive datetime is read as UTC.
        (EventFilter(start=(BASE + timedelta(minutes=4)).replace(tzinfo=None)), 2),
        # Filters combine with AND.
        (EventFilter(event_type="search_query", session_id="s3", user_id="u2"), 1),
        (EventFilter(event_category="content", content_id="c1", start=BASE + timedelta(seconds=1)), 1),
    ],
)
def test_count_with_filters(filter_store, filters, expected):
    assert filter_store.count(filters) == expected


def test_empty_string_filter_matches_unset_columns(filter_store):
    # Unset optional text is stored as ''.
    assert filter_store.count(EventFilter(content_id="")) == 3


def test_same_dedup_token_is_stored_once(store):
    batch = _table([_row(f"d{i}") for i in range(5)])
    store.insert(batch, "token-1")
    store.insert(batch, "token-1")
    assert store.count(EventFilter()) == 5
    # Without the same token a repeat is not merged away: plain MergeTree keeps it visible.
    store.insert(batch, "token-2")
    assert store.count(EventFilter()) == 10


def test_insert_ignores_extra_columns_and_uses_schema_order(store):
    table = _table([_row("x1", user_id="u9")])
    reordered = table.select(list(reversed(table.column_names))).append_column("extra", pa.array(["?"]))
    store.insert(reordered, "reordered")
    got = store.get("x1")
    assert (got["id"], got["user_id"], got["event_type"]) == ("x1", "u9", "content_view")


def test_stored_ids_and_all_id_hashes(store):
    assert store.all_id_hashes().dtype == np.uint64
    assert store.all_id_hashes().tolist() == []
    assert store.stored_ids([]) == set()

    ids = ["s-1", "s-2", "s-3", "événement-4"]
    store.insert(_table([_row(i) for i in ids]), "ids")
    assert store.stored_ids(["s-1", "missing", "s-3", "événement-4", "s-1"]) == {"s-1", "s-3", "événement-4"}
    assert store.stored_ids(["nope"]) == set()

    hashes = store.all_id_hashes()
    assert hashes.dtype == np.uint64
    assert sorted(hashes.tolist()) == sorted(hash_ids(ids).tolist())


# --- get ----------------------------------------------------------------------------------


def test_get_maps_rows_back(store):
    ts = BASE + timedelta(milliseconds=123)
    store.insert(
        _table(
            [
                _row(
                    "g1",
                    ts,
                    user_id="u1",
                    country="DE",
                    properties=orjson.dumps({"duration": 12.5, "tags": ["a", "b"], "nested": {"n": 1}}).decode(),
                    browser="Firefox",
                ),
                _row("g2", properties=""),
            ]
        ),
        "get",
    )
    event = store.get("g1")
    assert event["id"] == "g1"
    assert event["event_type"] == "content_view" and event["event_category"] == "content"
    assert event["timestamp"] == ts
    assert event["timestamp"].utcoffset() == timedelta(0)
    assert event["processed_at"] == BASE + timedelta(days=1)
    assert event["processed_at"].utcoffset() == timedelta(0)
    assert event["properties"] == {"duration": 12.5, "tags": ["a", "b"], "nested": {"n": 1}}
    assert (event["user_id"], event["country"], event["browser"]) == ("u1", "DE", "Firefox")
    unset = {
        "session_id",
        "content_id",
        "resource_type",
        "resource_id",
        "ip_address",
        "user_agent",
        "referrer",
        "region",
        "city",
        "batch_id",
        "device_type",
        "os",
        "traffic_source",
        "referrer_host",
    }
    assert {k: event[k] for k in unset} == dict.fromkeys(unset)
    assert set(event) == set(EVENT_SCHEMA.names)

    # Empty properties text reads as an empty object.
    assert store.get("g2")["properties"] == {}
    assert store.get("missing") is None


# --- list and cursors ---------------------------------------------------------------------


def _pagination_rows() -> list[dict[str, Any]]:
    rows = []
    for n in range(25):
        # Groups of three share a timestamp, so the id breaks the tie.
        ts = BASE + timedelta(seconds=n // 3)
        rows.append(_row(f"p{n:02d}", ts, user_id="even" if n % 2 == 0 else "odd"))
    return rows


@pytest.fixture(scope="module")
def pages_store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    """Read-only: shared by the pagination tests."""
    events = _open(chdb_dir, f"t_pages_{secrets.token_hex(6)}")
    events.insert(_table(_pagination_rows()), "pages")
    yield events
    events.close()


def _walk(store: ClickHouseEvents, filters: EventFilter, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = store.list(filters, limit, cursor)
        pages.append([e["id"] for e in page.events])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 100, "pagination does not end"


def test_list_pages_newest_first_every_row_once(pages_store):
    rows = _pagination_rows()
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["timestamp"], r["id"]), reverse=True)]
    assert expected[:4] == ["p24", "p23", "p22", "p21"]

    pages = _walk(pages_store, EventFilter(), 7)
    # The second page ends inside the group p11/p10/p09 that shares one timestamp.
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert pages[1][-1] == "p11"
    assert [i for p in pages for i in p] == expected


def test_list_page_boundary_inside_a_timestamp_group(pages_store):
    rows = _pagination_rows()
    # Limit 2 cuts through every group of three rows with the same timestamp.
    pages = _walk(pages_store, EventFilter(), 2)
    assert [len(p) for p in pages] == [2] * 12 + [1]
    assert [i for p in pages for i in p] == [r["id"] for r in reversed(rows)]


def test_list_with_filter_paginates_the_filtered_rows(pages_store):
    pages = _walk(pages_store, EventFilter(user_id="even"), 5)
    assert [len(p) for p in pages] == [5, 5, 3]
    assert [i for p in pages for i in p] == [f"p{n:02d}" for n in range(24, -1, -2)]


def test_list_exact_fit_has_no_next_cursor(store):
    store.insert(_table([_row(f"e{n}", BASE + timedelta(seconds=n)) for n in range(7)]), "exact")
    page = store.list(EventFilter(), 7, None)
    assert [e["id"] for e in page.events] == [f"e{n}" for n in range(6, -1, -1)]
    assert page.next_cursor is None
    assert page.events[0]["timestamp"] == BASE + timedelta(seconds=6)


def test_list_empty(store):
    page = store.list(EventFilter(), 10, None)
    assert page.events == [] and page.next_cursor is None


def test_next_cursor_points_at_the_last_row(store):
    store.insert(_table([_row(f"c{n}", BASE + timedelta(milliseconds=n)) for n in range(3)]), "cursor")
    page = store.list(EventFilter(), 2, None)
    assert [e["id"] for e in page.events] == ["c2", "c1"]
    assert decode_cursor(page.next_cursor) == (int((BASE + timedelta(milliseconds=1)).timestamp() * 1000), "c1")


def test_cursor_round_trip():
    ts = datetime(2026, 5, 4, 3, 2, 1, 987000, tzinfo=UTC)
    cursor = encode_cursor(ts, "evt-ü")
    assert "=" not in cursor
    assert decode_cursor(cursor) == (1777863721987, "evt-ü")


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "é",
        "AAAA",
        _b64({"a": 1}),
        _b64([1, 2, 3]),
        _b64(["1", "x"]),
        _b64([1.5, "x"]),
        _b64([1, 2]),
        _b64(7),
        _b64(None),
        base64.urlsafe_b64encode(b"[1, 'x']").decode(),
    ],
)
def test_decode_cursor_refuses_garbage(cursor):
    with pytest.raises(InvalidRequest) as exc:
        decode_cursor(cursor)
    assert exc.value.details == {"field": "cursor"}
    assert exc.value.message == "cursor is not one this service issued"


def test_list_with_garbage_cursor_is_invalid_request(pages_store):
    with pytest.raises(InvalidRequest):
        pages_store.list(EventFilter(), 5, "not-a-cursor")


def test_decode_cursor_refuses_boolean_millis():
    with pytest.raises(InvalidRequest):
        decode_cursor(_b64([True, "x"]))


def test_ping(pages_store):
    assert pages_store.ping() is True


def test_reopen_with_other_retention_alters_every_table_with_a_retention_ttl(chdb_dir, unique):
    store = _open(chdb_dir, f"t_{unique}", retention_days=400)
    ttl_tables = (
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND create_table_query LIKE '%toIntervalDay(%'"
    )
    before = dict(store.client.query(ttl_tables).result_rows)
    store.close()
    assert "events" in before
    assert all("toIntervalDay(400)" in ddl for ddl in before.values())
    reopened = _open(chdb_dir, f"t_{unique}", retention_days=90)
    try:
        after = dict(reopened.client.query(ttl_tables).result_rows)
        assert set(after) == set(before)
        for name, ddl in after.items():
            assert "toIntervalDay(90)" in ddl, name
            assert "toIntervalDay(400)" not in ddl, name
    finally:
        reopened.close()


def test_events_table_repeats_a_request_wide_value_in_each_of_its_rows():
    def part(prefix: str, n: int, at: datetime, batch: str, *, as_lists: bool) -> dict[str, Any]:
        columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
        columns["id"] = [f"{prefix}{i}" for i in range(n)]
        columns["timestamp"] = [at + timedelta(seconds=i) for i in range(n)]
        columns["properties"] = ["{}"] * n
        columns["processed_at"] = [at] * n if as_lists else at
        columns["batch_id"] = [batch] * n if as_lists else batch
        return columns

    t1, t2, t3 = (datetime(2026, 5, 1, h, tzinfo=UTC) for h in (1, 2, 3))
    table = events_table(
        [
            part("a", 2, t1, "b1", as_lists=False),
            part("b", 3, t2, "b2", as_lists=True),
            part("c", 1, t3, "b3", as_lists=False),
        ]
    )
    assert table.schema == EVENT_SCHEMA
    assert table.column("id").to_pylist() == ["a0", "a1", "b0", "b1", "b2", "c0"]
    assert table.column("processed_at").to_pylist() == [t1, t1, t2, t2, t2, t3]
    assert table.column("batch_id").to_pylist() == ["b1", "b1", "b2", "b2", "b2", "b3"]
    alone = events_table([part("a", 2, t1, "b1", as_lists=False)])
    assert alone.equals(events_table([part("a", 2, t1, "b1", as_lists=True)]))
