"""A ClickHouse database built by the service's own migrations (in this process's chDB directory),
holding a few known events: the BI files' SQL runs against it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.events import ClickHouseEvents
from tests.deploy.known_data import known_events


@pytest.fixture(scope="module")
def schema(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    """The service's tables (every migration applied), holding ``known_events``."""
    store = ClickHouseEvents.open(None, chdb_path=chdb_dir, database=f"bi_{secrets.token_hex(4)}", retention_days=730)
    store.insert(known_events(), dedup_token="bi-known-events")
    try:
        yield store
    finally:
        store.close()
