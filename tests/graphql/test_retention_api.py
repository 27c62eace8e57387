"""GET /api/v1/admin/retention over the REST app on real chDB (tests/storage/test_retention.py's activity,
under the query budget as in the event store): every table that keeps rows, with its TTL, the configured
retention of its class, its rows and its oldest row as the test reads them from the database; admins
only."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.access import Role
from core.settings import Settings
from storage.events import ClickHouseEvents
from storage.query_budget import QueryBudget
from storage.table_retention import KEPT_WITHOUT_TTL, TABLE_CLASSES, RetentionPolicy
from tests.graphql.conftest import rest_client
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore
from tests.storage.test_retention import aged_activity, open_with, storing_tables

PATH = "/api/v1/admin/retention"
SETTINGS = Settings(environment="test", retention_days=100, rollup_retention_days=300, minute_retention_days=20)
# Within every retention above: nothing is past its time.
AGES = (15, 2)
_TTL = re.compile(r"\bTTL (.+?) \+ toIntervalDay\((\d+)\)")


@pytest.fixture(scope="module")
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def store(chdb_dir: Path, now: datetime) -> Iterator[ClickHouseEvents]:
    policy = RetentionPolicy(events_days=100, rollup_days=300, minute_days=20)
    events = open_with(chdb_dir, f"ret_api_{secrets.token_hex(4)}", policy)
    events.insert(aged_activity(now, AGES), "api")
    events.budget = QueryBudget.from_settings(SETTINGS)
    yield events
    events.close()


@pytest.fixture
def services(store: ClickHouseEvents) -> FakeServices:
    return replace(FakeServices.build(), settings=SETTINGS, events=InProcessStore(store))  # type: ignore[arg-type]


def test_admins_see_every_table_with_its_retention_rows_and_oldest_row(
    services: FakeServices, store: ClickHouseEvents, now: datetime
) -> None:
    response = rest_client(services, Role.ADMIN).get(PATH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"] == {"events_days": 100, "rollup_days": 300, "minute_days": 20}
    tables = storing_tables(store.client)
    listed = {t["table"]: t for t in body["tables"]}
    assert [t["table"] for t in body["tables"]] == sorted(tables)

    oldest_event = (now - timedelta(days=max(AGES))).replace(hour=12, minute=0, second=0, microsecond=0)
    configured = {"events": 100, "rollups": 300, "minutes": 20}
    for name, (engine, ddl) in tables.items():
        entry = listed[name]
        assert entry["engine"] == engine
        assert entry["rows"] == store.client.query(f"SELECT count() FROM {name}").result_rows[0][0], name
        assert entry["expired_rows"] == 0, name
        assert entry["covered"] is True, name
        ttl = _TTL.search(ddl)
        if name in KEPT_WITHOUT_TTL:
            assert ttl is None and entry["ttl"] is None and entry["retention_days"] is None
            assert entry["reason"] and entry["retention_class"] is None and entry["oldest_row"] is None
            continue
        assert ttl is not None, name
        kind = TABLE_CLASSES[name]
        assert entry["retention_class"] == kind
        assert entry["ttl"] == f"{ttl.group(1)} + toIntervalDay({ttl.group(2)})"
        assert entry["retention_days"] == entry["configured_days"] == configured[kind], name
        assert entry["reason"] is None
        # The oldest activity is in every table; a rollup row starts at its hour or day (a job or a
        # session row is at its last event, minutes later; session_searches files a view under the day
        # before too).
        oldest = datetime.fromisoformat(entry["oldest_row"])
        (expected,) = store.client.query(f"SELECT min(toDateTime({ttl.group(1)}, 'UTC')) FROM {name}").result_rows[0]
        assert oldest == expected.replace(tzinfo=UTC), name
        assert oldest_event - timedelta(days=2) < oldest <= oldest_event + timedelta(hours=1), name


def test_a_table_without_retention_shows_as_not_covered(services: FakeServices, store: ClickHouseEvents) -> None:
    store.client.command(
        "CREATE TABLE IF NOT EXISTS unlisted_rows (at DateTime, id String) ENGINE = MergeTree ORDER BY at"
    )
    try:
        store.client.command("INSERT INTO unlisted_rows VALUES (now(), 'x')")
        entry = {t["table"]: t for t in rest_client(services, Role.ADMIN).get(PATH).json()["tables"]}["unlisted_rows"]
        assert entry["covered"] is False
        assert entry["rows"] == 1
        assert entry["ttl"] is None and entry["retention_class"] is None and entry["reason"] is None
    finally:
        store.client.command("DROP TABLE unlisted_rows SYNC")


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CONTENT_MANAGER, Role.VIEWER, Role.SERVICE])
def test_only_admins_read_it(services: FakeServices, role: Role) -> None:
    response = rest_client(services, role).get(PATH)
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert f"role '{role.value}'" in body["message"] and "allowed roles: admin" in body["message"]
    assert rest_client(services, None).get(PATH).status_code == 401
