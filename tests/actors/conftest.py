"""An event store settings fixture for the tests that open ``EventStoreActor`` in this process."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings


@pytest.fixture
def settings(chdb_dir: Path) -> dict[str, Any]:
    """Settings for a store of its own: a fresh database in this process's chDB directory, an
    empty write-ahead log, and a flush interval long enough that nothing is flushed within a
    test unless a reader asks."""
    # data_dir/chdb must be this process's one chDB directory; the log goes to data_dir/wal.
    data_dir = chdb_dir.parent
    for old in (data_dir / "wal").glob("*"):
        old.unlink()
    return Settings(
        environment="test",
        data_dir=data_dir,
        clickhouse_database=f"store_{secrets.token_hex(4)}",
        store_flush_interval_ms=10_000,
    ).model_dump(mode="json")
