"""Fixtures for the analytics layer against embedded chDB in the test process.

chDB allows one data directory per process: ``chdb_dir`` (tests/conftest.py) is shared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from storage import clickhouse
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


def open_store(chdb_dir: Path, database: str) -> ClickHouseEvents:
    return ClickHouseEvents.open(None, chdb_path=chdb_dir, database=database, retention_days=3650)


def create_statements(store: ClickHouseEvents, database: str) -> dict[str, str]:
    """SHOW CREATE TABLE of every table and view in ``store`` with its database written as DB, so a
    new and an upgraded database compare equal."""
    names = [row[0] for row in store.query("SHOW TABLES").rows if row[0] != "schema_migrations"]
    return {
        name: store.query(f"SHOW CREATE TABLE {clickhouse.identifier(name)}").rows[0][0].replace(f"{database}.", "DB.")
        for name in names
    }


def release_before(
    migration: str, chdb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], ClickHouseEvents]:
    """Opens a database as the release before ``migration`` did: only the migrations before it."""
    every = clickhouse.migration_files()
    (version,) = [v for v, name, _ in every if name == migration]

    def open_old(database: str) -> ClickHouseEvents:
        with monkeypatch.context() as patch:
            patch.setattr(clickhouse, "migration_files", lambda: [m for m in every if m[0] < version])
            return open_store(chdb_dir, database)

    return open_old
