"""What the erasure tests share: the event store's erasure and read methods over a ClickHouseEvents in this
process (no actor), and the erasure service on a real PostgreSQL and Redis around it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from core.settings import Settings
from semantic.erasure import LiveReset
from semantic.privacy import Privacy
from storage import clickhouse
from storage.events import EVENT_SCHEMA, ClickHouseEvents, EventFilter, EventPage, QueryResult, WriteReceipt
from storage.metadata import MetadataStore


class LocalStore:
    """``PrivacyStore`` over a ClickHouseEvents in this process: every insert is fed to the rollups at once
    (``ClickHouseEvents.insert``), so the erasure needs no write thread to wait for."""

    def __init__(self, events: ClickHouseEvents) -> None:
        self.events = events

    async def write(self, rows: Any) -> WriteReceipt:
        raise AssertionError("these tests load events directly")

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return self.events.get(event_id)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        return self.events.list(filters, limit, cursor)

    async def count(self, filters: EventFilter) -> int:
        return self.events.count(filters)

    async def ping(self) -> bool:
        return self.events.ping()

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return self.events.query(sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return self.events.query_arrow(sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        self.events.insert_table(table, rows)

    async def user_data_plan(self, user_ids: list[str]) -> dict[str, Any]:
        return self.events.user_data_plan(user_ids)

    async def erase_user_data(self, user_ids: list[str], plan: dict[str, Any]) -> dict[str, Any]:
        return self.events.erase_user_data(user_ids, plan, fed_through=self.events.rollups.fed_through)

    async def user_data_remaining(self, user_ids: list[str]) -> dict[str, int]:
        return self.events.user_data_remaining(user_ids)


def privacy_settings(redis_url: str | None) -> Settings:
    # Replicas of these tests reload the list at once: the job's wait for them stays short.
    return Settings(environment="test", redis_url=redis_url, suppression_refresh_seconds=0.05)


def local_privacy(
    metadata: MetadataStore, store: LocalStore, settings: Settings, *, live: LiveReset | None = None
) -> Privacy:
    return Privacy.build(metadata.pool, store, metadata, settings, live=live)


class CountingLive:
    """The live counters' part: counts how often they were told to re-read ClickHouse."""

    def __init__(self) -> None:
        self.resyncs = 0

    async def __call__(self) -> int:
        self.resyncs += 1
        return 1


# ---- a store with two users' activity, and the same without one of them ---------------------------

ERASED, KEPT = "u-erased", "u-kept"


def event(n: int, at: datetime, event_type: str, **fields: Any) -> dict[str, Any]:
    properties = fields.pop("properties", {})
    return {
        "id": f"e-{n:04d}",
        "event_type": event_type,
        "event_category": event_type.split("_")[0],
        "timestamp": at,
        "processed_at": at,
        "properties": orjson.dumps(properties).decode(),
        **fields,
    }


def activity(now: datetime) -> list[dict[str, Any]]:
    """Two users and an anonymous visitor over three days: the erased user shares content, days, a search
    query and (before they logged in) a session with the others."""
    rows: list[dict[str, Any]] = []
    for day in range(3):
        base = (now - timedelta(days=day)).replace(hour=10, minute=0, second=0, microsecond=0)
        for user, session in ((ERASED, f"s-erased-{day}"), (KEPT, f"s-kept-{day}"), ("", f"s-anon-{day}")):
            who = {"user_id": user, "session_id": session}
            at = base + timedelta(minutes=len(rows) % 50)
            rows += [
                event(len(rows), at, "content_view", content_id="c-1", country="SA", device_type="mobile", **who),
                event(len(rows) + 1, at, "content_play", content_id="c-1", **who),
                event(len(rows) + 2, at, "content_complete", content_id="c-1", **who),
                event(len(rows) + 3, at, "content_view", content_id=f"c-{day + 2}", traffic_source="search", **who),
                event(len(rows) + 4, at, "search_query", properties={"query": "news", "results_count": 3}, **who),
                event(len(rows) + 5, at, "search_result_click", properties={"query": "news", "position": 1}, **who),
                event(len(rows) + 6, at, "page_view", **who),
                event(
                    len(rows) + 7,
                    at,
                    "api_request",
                    user_id=user,
                    properties={"service": "api", "endpoint": "/x", "method": "GET", "status": 200, "duration_ms": 5},
                ),
            ]
        # Before logging in, the erased user browsed anonymously in the session they then used.
        rows.append(event(len(rows), base, "page_view", session_id=f"s-erased-{day}"))
    return rows


def table_of(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pydict(
        {name: [row.get(name, "") for row in rows] for name in EVENT_SCHEMA.names}, schema=EVENT_SCHEMA
    )


def open_store(chdb_dir: Path, rows: list[dict[str, Any]]) -> ClickHouseEvents:
    store = ClickHouseEvents.open(
        None, chdb_path=chdb_dir, database=f"erase_{secrets.token_hex(4)}", retention_days=3650
    )
    store.insert(table_of(rows), secrets.token_hex(8))
    return store


def contents(store: ClickHouseEvents, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` with its states finalized (sorted arrays), parts merged: comparable across
    databases whatever the blocks they were inserted in."""
    columns = store.client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "ORDER BY position",
        parameters={"t": table},
    ).result_rows
    engine = store.client.query(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows[0][0]
    shown = []
    for name, kind in columns:
        value = f"finalizeAggregation({name})" if kind.startswith("AggregateFunction") else name
        if "Array" in kind or kind.startswith("AggregateFunction(groupUniqArray"):
            value = f"arraySort({value})"
        shown.append(f"toString({value})")
    final = " FINAL" if engine != "MergeTree" else ""
    rows = store.client.query(f"SELECT {', '.join(shown)} FROM {clickhouse.identifier(table)}{final}").result_rows
    return sorted(rows)
