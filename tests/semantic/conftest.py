"""Fixtures for the analytics layer against embedded chDB in the test process.

chDB allows one data directory per process: ``chdb_dir`` (tests/conftest.py) is shared.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from storage.events import ClickHouseEvents, QueryResult


class InProcessStore:
    """The EventStore read interface over a ClickHouseEvents in this process (no actor)."""

    def __init__(self, events: ClickHouseEvents) -> None:
        self.events = events

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return self.events.query(sql, parameters)

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        return self.events.query_arrow(sql, parameters)

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        self.events.insert_table(table, rows)
