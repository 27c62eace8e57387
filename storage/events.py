"""The event store: the ``EventStore`` interface callers use, and its ClickHouse implementation.

``ClickHouseEvents`` is synchronous (clickhouse-connect is) and serves chDB and a server
with the same SQL. Callers use the async ``EventStore`` interface; in embedded mode it is
backed by the one actor that owns chDB.

Analytics reads (``query``, ``query_arrow``) run under the instance's query budget, if it has one
(storage/query_budget.py); its other statements (inserts, migrations, the rollup feed, id checks)
never do.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np
import orjson
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from core.errors import InvalidRequest
from storage import clickhouse, user_data_tables
from storage.id_index import hash_ids
from storage.query_budget import QueryBudget, refusal
from storage.rollup_feed import RollupFeed, rewire_views
from storage.table_retention import RetentionPolicy, ensure_retention

log = logging.getLogger("analytics.events")
_T = TypeVar("_T")

# Column order of an insert batch; id_hash is computed by ClickHouse.
EVENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("event_type", pa.string()),
        ("event_category", pa.string()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("content_id", pa.string()),
        ("resource_type", pa.string()),
        ("resource_id", pa.string()),
        ("ip_address", pa.string()),
        ("user_agent", pa.string()),
        ("referrer", pa.string()),
        ("country", pa.string()),
        ("region", pa.string()),
        ("city", pa.string()),
        ("properties", pa.string()),
        ("processed_at", pa.timestamp("ms", tz="UTC")),
        ("batch_id", pa.string()),
        ("device_type", pa.string()),
        ("browser", pa.string()),
        ("os", pa.string()),
        ("traffic_source", pa.string()),
        ("referrer_host", pa.string()),
    ]
)
EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)
# Optional text columns are stored as '' and returned as None.
_OPTIONAL_TEXT = frozenset(EVENT_COLUMNS) - {
    "id",
    "event_type",
    "event_category",
    "timestamp",
    "processed_at",
    "properties",
}
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class EventFilter:
    event_type: str | None = None
    event_category: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    content_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(slots=True)
class EventPage:
    events: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(slots=True)
class QueryResult:
    """Rows of a read query, with their column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(slots=True)
class WriteReceipt:
    """What one write did: how many rows were inserted and which ids were stored already."""

    inserted: int = 0
    duplicate_ids: list[str] = field(default_factory=list)


# Validated events as columns named as EVENT_COLUMNS, not yet an Arrow table: a writer that gathers
# several requests builds one table for all of them, because building a table has a fixed cost that
# dominates for single events. A column given as one value, not a list, holds that value in every row
# (a request's processed_at and batch_id): a repeated scalar costs nothing to convert, a list of
# datetimes costs per row.
EventColumns = dict[str, Any]


def column_rows(columns: EventColumns) -> int:
    return len(columns["id"])


def events_table(parts: list[EventColumns]) -> pa.Table:
    """One Arrow table of the rows of ``parts``, in order."""
    arrays = []
    for column in EVENT_SCHEMA:
        values = [part[column.name] for part in parts]
        if all(isinstance(v, list) for v in values):
            merged = values[0] if len(values) == 1 else [value for part in values for value in part]
            arrays.append(pa.array(merged, column.type))
        else:
            pieces = [
                pa.array(v, column.type)
                if isinstance(v, list)
                else pa.repeat(pa.scalar(v, column.type), column_rows(part))
                for v, part in zip(values, parts, strict=True)
            ]
            arrays.append(pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


class EventStore(Protocol):
    async def write(self, rows: EventColumns) -> WriteReceipt: ...
    async def get(self, event_id: str) -> dict[str, Any] | None: ...
    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage: ...
    async def count(self, filters: EventFilter) -> int: ...
    async def ping(self) -> bool: ...
    # Parameterized read SQL compiled by semantic/ from a fixed catalog ({name:Type} placeholders).
    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...
    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table: ...
    # Bulk insert into a service-owned table other than events (dimension tables, aggregates).
    async def insert_table(self, table: str, rows: pa.Table) -> None: ...


def encode_cursor(timestamp: datetime, event_id: str) -> str:
    raw = orjson.dumps([int(timestamp.timestamp() * 1000), event_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        millis, event_id = orjson.loads(base64.urlsafe_b64decode(padded))
        if isinstance(millis, bool) or not isinstance(millis, int) or not isinstance(event_id, str):
            raise ValueError
        return millis, event_id
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidRequest("cursor is not one this service issued", details={"field": "cursor"}) from exc


class ClickHouseEvents:
    """Synchronous access to the events table: one instance per process that owns a client."""

    def __init__(self, client: Client, *, budget: QueryBudget | None = None) -> None:
        self.client = client
        # The limits of every analytics read (``query``, ``query_arrow``); None: ClickHouse's own.
        self.budget = budget
        self._embedded = client.uri.startswith("chdb:")
        # The last insert's stored_seq (set by open(); only the writer's instance uses it).
        self.stored_seq = 0
        self.rollups = RollupFeed(client, EVENT_COLUMNS)

    @classmethod
    def open(
        cls,
        dsn: str | None,
        *,
        chdb_path: Path | None,
        database: str,
        retention_days: int,
        rollup_retention_days: int | None = None,
        minute_retention_days: int | None = None,
    ) -> ClickHouseEvents:
        """Connect, migrate, bring every table's retention to the settings (storage/table_retention.py;
        rollups and minutes keep ``retention_days`` unless given their own), and finish feeding the
        rollups where a previous writer stopped."""
        retention = RetentionPolicy.of(retention_days, rollup_retention_days, minute_retention_days)
        store = cls(clickhouse.connect(dsn, chdb_path=chdb_path, database=database))
        # Caught up before migrating too: a new rollup's backfill then covers exactly what the
        # feed will not send it again.
        store._catch_up_rollups()
        clickhouse.apply_migrations(store.client, template=retention.template())
        rewire_views(store.client)
        store.rollups.read_feed_columns()
        ensure_retention(store.client, retention)
        store._catch_up_rollups()
        return store

    def _catch_up_rollups(self) -> None:
        if not self.client.query("EXISTS TABLE rollup_feed_claims").result_rows[0][0]:
            return
        self.rollups.recover()
        highest_stored = int(self.client.query("SELECT max(stored_seq) FROM events").result_rows[0][0])
        self.rollups.feed_through(highest_stored)
        # Fed through covers every claim ever made (the latest one was just finished).
        self.stored_seq = max(highest_stored, self.rollups.fed_through)

    def insert(self, batch: pa.Table, dedup_token: str) -> None:
        """Store ``batch`` and bring the rollups up to it before returning (bulk loads, tests)."""
        seq = self.insert_raw(batch, dedup_token)
        self.rollups.memory.add(seq, batch)
        self.rollups.feed_through(seq)

    def insert_raw(self, batch: pa.Table, dedup_token: str) -> int:
        """Store ``batch`` durably; the rollups get it later (storage/rollup_feed.py). Returns its stored_seq."""
        self.stored_seq += 1
        rows = batch.select(EVENT_COLUMNS).append_column(
            "stored_seq", pa.array(np.full(batch.num_rows, self.stored_seq, dtype=np.uint64))
        )
        # The token makes a retried insert of the same rows a no-op inside ClickHouse too.
        self.client.insert_arrow("events", rows, settings={"insert_deduplication_token": dedup_token})
        return self.stored_seq

    def stored_ids(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        rows = self.client.query(
            "SELECT DISTINCT id FROM events WHERE id_hash IN {h:Array(UInt64)} AND id IN {ids:Array(String)}",
            parameters={"h": [int(h) for h in hash_ids(ids)], "ids": ids},
        ).result_rows
        return {r[0] for r in rows}

    def all_id_hashes(self) -> np.ndarray:
        result = self.client.query_np("SELECT id_hash FROM events")
        return result.reshape(-1).astype(np.uint64) if result.size else np.empty(0, np.uint64)

    def get(self, event_id: str) -> dict[str, Any] | None:
        result = self.client.query(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id = {{id:String}} LIMIT 1",
            parameters={"id": event_id},
        )
        rows = _rows_to_events(result.column_names, result.result_rows)
        return rows[0] if rows else None

    def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        where, params = _where(filters)
        if cursor:
            millis, last_id = decode_cursor(cursor)
            where.append("(timestamp, id) < (fromUnixTimestamp64Milli({c_ts:Int64}, 'UTC'), {c_id:String})")
            params.update(c_ts=millis, c_id=last_id)
        sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
            f"{' WHERE ' + ' AND '.join(where) if where else ''}"
            " ORDER BY timestamp DESC, id DESC LIMIT {lim:UInt32}"
        )
        params["lim"] = limit + 1
        result = self.client.query(sql, parameters=params)
        events = _rows_to_events(result.column_names, result.result_rows)
        next_cursor = None
        if len(events) > limit:
            events = events[:limit]
            last = events[-1]
            next_cursor = encode_cursor(last["timestamp"], last["id"])
        return EventPage(events=events, next_cursor=next_cursor)

    def count(self, filters: EventFilter) -> int:
        where, params = _where(filters)
        sql = "SELECT count() FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        return int(self.client.query(sql, parameters=params).result_rows[0][0])

    def ping(self) -> bool:
        return self.client.query("SELECT 1").result_rows[0][0] == 1

    def query(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_threads: int | None = None,
        budget: QueryBudget | None = None,
    ) -> QueryResult:
        """An analytics read, under the budget. A limit it trips raises QueryBudgetExceeded or
        Overloaded (storage/query_budget.py). ``max_threads``: how many threads the statement may use
        on embedded chDB (a server keeps its own setting)."""
        result = self._read(self.client.query, sql, parameters, max_threads, budget)
        return QueryResult(
            columns=list(result.column_names), rows=cast(list[tuple[Any, ...]], list(result.result_rows))
        )

    def query_arrow(
        self,
        sql: str,
        parameters: dict[str, Any] | None = None,
        *,
        max_threads: int | None = None,
        budget: QueryBudget | None = None,
    ) -> pa.Table:
        """``query`` as an Arrow table."""
        return self._read(self.client.query_arrow, sql, parameters, max_threads, budget)

    def _read(
        self,
        run: Callable[..., _T],
        sql: str,
        parameters: dict[str, Any] | None,
        max_threads: int | None = None,
        override: QueryBudget | None = None,
    ) -> _T:
        """``override``: another budget than the store's for this statement (a batch job's)."""
        budget = override if override is not None and self.budget is not None else self.budget
        statement = budget.apply(sql) if budget is not None else sql
        if max_threads is not None and self._embedded:
            threads = f"max_threads = {max(1, int(max_threads))}"
            # Into the budget's clause, which ends the statement: ClickHouse takes at most two
            # SETTINGS clauses, and the statement may have one of its own.
            statement = f"{statement}, {threads}" if budget is not None else f"{statement}\nSETTINGS {threads}"
        try:
            return run(statement, parameters=parameters or {})
        except ClickHouseError as exc:
            self._take_failed_output()
            refused = refusal(exc, budget)
            if refused is not None:
                raise refused from exc
            raise

    def _take_failed_output(self) -> None:
        """After a failed statement on chDB: take what it wrote before failing.

        chDB hands the output a statement wrote before it failed (a limit tripped midway) to the next
        statement on the same connection, in front of that statement's own, which then fails to decode
        or, worse, answers with extra rows. A throwaway statement takes it; the next answers alone.
        """
        if not self._embedded:
            return
        for _ in range(3):
            try:
                if self.client.raw_query("SELECT 1", fmt="TabSeparated") == b"1\n":
                    return
            except ClickHouseError:
                break
        log.warning("the chDB connection still returns a failed statement's output; it may answer wrongly")

    def insert_table(self, table: str, rows: pa.Table) -> None:
        self.client.insert_arrow(clickhouse.identifier(table), rows)

    # A user's data, for erasure (storage/user_data_tables.py); the plan travels as a plain dict.
    def user_data_plan(self, user_ids: Sequence[str]) -> dict[str, Any]:
        return user_data_tables.plan(self.client, [*user_ids]).to_dict()

    def erase_user_data(self, user_ids: Sequence[str], plan: dict[str, Any], *, fed_through: int) -> dict[str, Any]:
        """Call with no insert or rollup feed running beside it (the event store's write thread)."""
        return user_data_tables.erase(
            self.client, [*user_ids], user_data_tables.ErasurePlan.from_dict(plan), fed_through=fed_through
        )

    def user_data_remaining(self, user_ids: Sequence[str]) -> dict[str, int]:
        return user_data_tables.remaining(self.client, [*user_ids])

    def close(self) -> None:
        self.client.close()


_FILTER_COLUMNS = ("event_type", "event_category", "user_id", "session_id", "content_id")


def _where(filters: EventFilter) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    for name in _FILTER_COLUMNS:
        value = getattr(filters, name)
        if value is not None:
            where.append(f"{name} = {{{name}:String}}")
            params[name] = value
    if filters.start is not None:
        where.append("timestamp >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')")
        params["start"] = _millis(filters.start)
    if filters.end is not None:
        where.append("timestamp < fromUnixTimestamp64Milli({end:Int64}, 'UTC')")
        params["end"] = _millis(filters.end)
    return where, params


def _millis(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def _rows_to_events(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        event = dict(zip(columns, row, strict=True))
        for name in _OPTIONAL_TEXT:
            if event[name] == "":
                event[name] = None
        event["properties"] = orjson.loads(event["properties"] or "{}")
        for name in ("timestamp", "processed_at"):
            value = event[name]
            if isinstance(value, datetime) and value.tzinfo is None:
                event[name] = value.replace(tzinfo=UTC)
        out.append(event)
    return out
