"""What each ClickHouse table keeps and for how long: the admin's retention listing
(GET /api/v1/admin/retention, docs/operations.md#retention).

Read from the database itself: each table's TTL as its DDL says now, the retention the settings ask
for its class (the event store brings the TTL to it at its next start), how many rows it holds, its
oldest row by the TTL's time column, and how many rows are past their time but not yet removed (a
TTL removes rows when ClickHouse next merges the table's parts).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from storage.clickhouse import identifier
from storage.events import EventStore
from storage.table_retention import (
    KEPT_WITHOUT_TTL,
    STORES_NOTHING,
    TABLE_CLASSES,
    TABLES_SQL,
    RetentionClass,
    RetentionPolicy,
    TableTtl,
    parse_ttl,
)


class RetentionSettings(BaseModel):
    events_days: int = Field(description="raw events and their per-event copies (ANALYTICS_RETENTION_DAYS)")
    rollup_days: int = Field(description="hourly and daily rollups (ANALYTICS_ROLLUP_RETENTION_DAYS)")
    minute_days: int = Field(description="per-minute aggregates of the live counters (ANALYTICS_MINUTE_RETENTION_DAYS)")


class RetainedTable(BaseModel):
    table: str
    engine: str
    retention_class: RetentionClass | None = Field(
        description="events, rollups or minutes; null for a table kept without a TTL"
    )
    ttl: str | None = Field(description="the table's retention TTL as ClickHouse prints it, null without one")
    retention_days: int | None = Field(description="days the table keeps now (from its TTL)")
    configured_days: int | None = Field(
        description="days the settings ask for the table's class; the event store applies them at its start"
    )
    rows: int
    oldest_row: datetime | None = Field(
        description="the oldest row by the TTL's time column; null when empty or without a TTL"
    )
    expired_rows: int = Field(description="rows past their retention, removed when ClickHouse next merges the table")
    covered: bool = Field(description="the table has the TTL of its class, or is one of the tables kept without a TTL")
    reason: str | None = Field(description="why the table keeps its rows without a TTL")


class RetentionReport(BaseModel):
    settings: RetentionSettings
    tables: list[RetainedTable]


async def retention_report(store: EventStore, policy: RetentionPolicy) -> RetentionReport:
    """Every table of the database that stores rows (views and Null tables keep none), by name."""
    described = await store.query(TABLES_SQL)
    stored = [(name, engine, parse_ttl(ddl)) for name, engine, ddl in described.rows if engine not in STORES_NOTHING]
    figures = await _figures(store, [(name, ttl) for name, _, ttl in stored])
    tables = []
    for name, engine, ttl in stored:
        rows, oldest_ms, expired = figures[name]
        kind = TABLE_CLASSES.get(name)
        configured = policy.days(kind) if kind is not None else None
        tables.append(
            RetainedTable(
                table=name,
                engine=engine,
                retention_class=kind,
                ttl=ttl.text if ttl else None,
                retention_days=ttl.days if ttl else None,
                configured_days=configured,
                rows=rows,
                oldest_row=datetime.fromtimestamp(oldest_ms / 1000, UTC) if ttl and rows else None,
                expired_rows=expired,
                covered=(kind is not None and ttl is not None) or name in KEPT_WITHOUT_TTL,
                reason=KEPT_WITHOUT_TTL.get(name),
            )
        )
    return RetentionReport(
        settings=RetentionSettings(
            events_days=policy.events_days, rollup_days=policy.rollup_days, minute_days=policy.minute_days
        ),
        tables=tables,
    )


async def _figures(store: EventStore, tables: list[tuple[str, TableTtl | None]]) -> dict[str, tuple[int, int, int]]:
    """(rows, oldest row in epoch ms, rows past the TTL) per table, in one statement."""
    if not tables:
        return {}
    parts = []
    for name, ttl in tables:
        table = identifier(name)
        if ttl is None:
            parts.append(
                f"SELECT '{table}' AS table, count() AS rows, toInt64(0) AS oldest_ms, toUInt64(0) AS expired"
                f" FROM {table}"
            )
            continue
        column = identifier(ttl.column)
        parts.append(
            f"SELECT '{table}' AS table, count() AS rows,"
            f" toUnixTimestamp64Milli(toDateTime64(min({column}), 3, 'UTC')) AS oldest_ms,"
            f" countIf({ttl.expression} + toIntervalDay({ttl.days}) <= now()) AS expired FROM {table}"
        )
    result = await store.query("\nUNION ALL\n".join(parts))
    return {name: (int(rows), int(oldest), int(expired)) for name, rows, oldest, expired in result.rows}
