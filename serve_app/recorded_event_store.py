"""The replica's event store with each ClickHouse statement it asks for recorded as one of the service's
own statements (semantic/self_telemetry.py).

Reads (analytics SQL, raw event pages and lookups, counts, pings) and table inserts are recorded, with
the SQL text the replica sends, or for the calls the store builds itself the shape of the statement it
runs. Event writes are not: ``write`` hands rows to the store's write-ahead log, and the store inserts
them later in batches of many requests (its own metrics count those inserts). So the telemetry flush,
which stores its events by ``write``, runs no recorded statement.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyarrow as pa
import ray

from actors.event_store import RemoteEventStore
from semantic.self_telemetry import CLICKHOUSE, Described, SelfTelemetry
from storage.events import EventFilter, EventPage, QueryResult

_FILTER_FIELDS = ("event_type", "event_category", "user_id", "session_id", "content_id")
_PING = Described("select", "SELECT ?")
_GET = Described("select", "SELECT … FROM events WHERE id = ? LIMIT ?")


@lru_cache(maxsize=128)
def _filtered(head: str, fields: tuple[str, ...], tail: str) -> Described:
    where = " AND ".join(fields)
    return Described("select", f"{head}{' WHERE ' + where if where else ''}{tail}")


def _conditions(filters: EventFilter, *, cursor: bool = False) -> tuple[str, ...]:
    conditions = [f"{name} = ?" for name in _FILTER_FIELDS if getattr(filters, name) is not None]
    if filters.start is not None:
        conditions.append("timestamp >= ?")
    if filters.end is not None:
        conditions.append("timestamp < ?")
    if cursor:
        conditions.append("(timestamp, id) < (?)")
    return tuple(conditions)


def _result_rows(result: QueryResult) -> int:
    return len(result.rows)


def _table_rows(table: pa.Table) -> int:
    return table.num_rows


def _page_rows(page: EventPage) -> int:
    return len(page.events)


def _found(event: dict[str, Any] | None) -> int:
    return 0 if event is None else 1


def _one(_: object) -> int:
    return 1


class RecordedEventStore(RemoteEventStore):
    def __init__(self, actor: ray.actor.ActorHandle, telemetry: SelfTelemetry) -> None:
        super().__init__(actor)
        self._telemetry = telemetry

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return await self._telemetry.timed(CLICKHOUSE, sql, super().query(sql, parameters), _result_rows)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return await self._telemetry.timed(CLICKHOUSE, sql, super().query_arrow(sql, parameters), _table_rows)

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return await self._telemetry.timed(CLICKHOUSE, _GET, super().get(event_id), _found)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        shape = _filtered(
            "SELECT … FROM events",
            _conditions(filters, cursor=cursor is not None),
            " ORDER BY timestamp DESC, id DESC LIMIT ?",
        )
        return await self._telemetry.timed(CLICKHOUSE, shape, super().list(filters, limit, cursor), _page_rows)

    async def count(self, filters: EventFilter) -> int:
        shape = _filtered("SELECT count() FROM events", _conditions(filters), "")
        return await self._telemetry.timed(CLICKHOUSE, shape, super().count(filters), _one)

    async def ping(self) -> bool:
        return await self._telemetry.timed(CLICKHOUSE, _PING, super().ping(), _one)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        shape = Described("insert", f"INSERT INTO {table} FORMAT Arrow")
        await self._telemetry.timed(CLICKHOUSE, shape, super().insert_table(table, rows), lambda _: rows.num_rows)


def event_store(actor: ray.actor.ActorHandle, telemetry: SelfTelemetry | None) -> RemoteEventStore:
    """The replica's event store: recorded when the service records its own telemetry."""
    return RemoteEventStore(actor) if telemetry is None else RecordedEventStore(actor, telemetry)
