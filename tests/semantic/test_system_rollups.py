"""Migration 017 on real chDB: the system rollups answer exactly as raw events do.

The views spell the rows of storage/system_rows.py; every metric of every system family, by its
dimensions and the hour, is the same from its rollup and from raw events; the public metrics that a
system family defines identically (catalog.SYSTEM_EQUIVALENTS) are the same from both families; and a
database made before 017 is filled from its events once, takes later events once, survives the
migration cut short, and ends with the schema of a new one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from string import Template
from typing import Any

import pytest

from semantic.catalog import FAMILIES, SYSTEM_EQUIVALENTS, TIME_DIMENSIONS
from semantic.compiler import MetricQuery, run_query
from semantic.periods import Period
from semantic.public_catalog import METRICS
from semantic.system import SystemAnalyticsService
from storage import clickhouse
from storage.events import ClickHouseEvents
from storage.system_rows import ROW_SHAPES
from tests.semantic.conftest import InProcessStore, create_statements, open_store, release_before
from tests.semantic.system_events import close, dataset, table

MIGRATION = "017_system_rollups.sql"
SYSTEM_FAMILIES = ("system_requests", "system_errors", "system_resources", "system_health", "system_statements")
ROLLUP_TABLES = ("system_requests_hourly", "system_errors_hourly", "system_resources_hourly", "system_health_hourly")
EVENTS = dataset()
MARCH = Period(date(2025, 3, 1), date(2025, 3, 31))


def _normalized(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", sql))


def test_views_and_backfills_spell_the_rows_of_system_rows() -> None:
    (sql,) = [sql for _, name, sql in clickhouse.migration_files() if name == MIGRATION]
    text = _normalized(sql)
    for shape in ROW_SHAPES:
        assert _normalized(shape.source("events_rollup_feed")) in text, shape.event_type
        assert _normalized(shape.source("events")) in text, shape.event_type


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"system_rollups_{secrets.token_hex(4)}")
    third = len(EVENTS) // 3
    for index, start in enumerate(range(0, len(EVENTS), third)):
        events.insert(table(EVENTS[start : start + third], f"r{index}"), f"system-rollups-{index}")
    yield InProcessStore(events)
    events.close()


def _same_rows(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(v) for k, v in sorted(row.items()) if isinstance(v, str | int) and not isinstance(v, bool))

    assert len(a) == len(b) and a
    for left, right in zip(sorted(a, key=key), sorted(b, key=key), strict=True):
        assert left.keys() == right.keys()
        for name in left:
            x, y = left[name], right[name]
            if isinstance(x, list):
                assert all(close(float(p), float(q)) or (p != p and q != q) for p, q in zip(x, y, strict=True)), name
            elif isinstance(x, float) or isinstance(y, float):
                assert close(x, y), (name, x, y)
            else:
                assert x == y, (name, x, y)


@pytest.mark.parametrize("family", SYSTEM_FAMILIES)
@pytest.mark.parametrize("tz", ["UTC", "Asia/Riyadh"])
async def test_every_metric_from_the_rollup_equals_raw_events(store: InProcessStore, family: str, tz: str) -> None:
    metrics = tuple(FAMILIES[family].metrics)
    dimensions = (*FAMILIES[family].dimensions, "hour")
    period = Period(date(2025, 3, 1), date(2025, 3, 31), tz)
    rolled = await run_query(store, MetricQuery(family, metrics, period, dimensions))
    raw = await run_query(store, MetricQuery(family, metrics, period, dimensions, route="raw"))
    assert rolled.source != "events" and raw.source == "events"
    _same_rows(rolled.rows, raw.rows)


@pytest.mark.parametrize(
    ("family", "metrics", "dimensions"), SYSTEM_EQUIVALENTS, ids=lambda v: v if isinstance(v, str) else ""
)
async def test_public_metrics_equal_their_system_family(
    store: InProcessStore, family: str, metrics: dict[str, str], dimensions: dict[str, str]
) -> None:
    assert set(metrics) <= set(METRICS) and not set(dimensions) & set(TIME_DIMENSIONS)
    for grouping in ((), tuple(dimensions), ("day",)):
        public = await run_query(store, MetricQuery("events", tuple(metrics), MARCH, grouping, skip_empty=True))
        own = await run_query(
            store,
            MetricQuery(
                family,
                tuple(metrics.values()),
                MARCH,
                tuple(dimensions.get(d, d) for d in grouping),
                skip_empty=True,
            ),
        )
        assert own.source != "events"
        renamed = [
            {**{d: row[dimensions.get(d, d)] for d in grouping}, **{m: row[name] for m, name in metrics.items()}}
            for row in own.rows
        ]
        _same_rows(public.rows, renamed)


# --- upgrades ------------------------------------------------------------------------------------


@pytest.fixture
def open_old(chdb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ClickHouseEvents]:
    return release_before(MIGRATION, chdb_dir, monkeypatch)


async def _answers(store: ClickHouseEvents) -> dict[str, Any]:
    system = SystemAnalyticsService(InProcessStore(store))
    answers = {
        "health": await system.health(MARCH),
        "errors": await system.errors(MARCH, limit=100),
        "services": await system.services(MARCH, limit=1000),
        "endpoints": await system.endpoints(MARCH, limit=1000),
    }
    return {
        name: answer.model_dump(exclude={"hours": {"__all__": {"calculated_at"}}}) for name, answer in answers.items()
    }


def _same(a: Any, b: Any, where: str = "") -> None:
    """Equal answers; sums of floats to 1e-9 (merged in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{index}]")
    elif isinstance(a, float):
        assert close(a, b), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _rollup_rows(store: ClickHouseEvents) -> dict[str, int]:
    return {name: int(store.query(f"SELECT count() FROM {name}").rows[0][0]) for name in ROLLUP_TABLES}


async def test_upgrade_fills_the_rollups_once_and_takes_later_events_once(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    # Every other event before the upgrade, the others after: each half has events of every kind.
    before, after = EVENTS[::2], EVENTS[1::2]
    upgraded_name, fresh_name = f"sys_up_{secrets.token_hex(4)}", f"sys_new_{secrets.token_hex(4)}"
    old = open_old(upgraded_name)
    old.insert(table(before, "u"), "before")
    assert not old.query("EXISTS TABLE system_requests_hourly").rows[0][0]
    old.close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)
    fresh.insert(table(before, "u"), "before")
    assert all(_rollup_rows(upgraded).values())
    _same(await _answers(upgraded), await _answers(fresh))

    for store in (upgraded, fresh):
        store.insert(table(after, "v"), "after")
    _same(await _answers(upgraded), await _answers(fresh))
    reader = InProcessStore(upgraded)
    for family in SYSTEM_FAMILIES:
        metrics = tuple(FAMILIES[family].metrics)
        rolled = await run_query(reader, MetricQuery(family, metrics, MARCH, ("service",)))
        raw = await run_query(reader, MetricQuery(family, metrics, MARCH, ("service",), route="raw"))
        _same_rows(rolled.rows, raw.rows)
    upgraded.close()
    fresh.close()


async def test_a_migration_cut_short_after_its_inserts_counts_nothing_twice(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    database = f"sys_cut_{secrets.token_hex(4)}"
    old = open_old(database)
    old.insert(table(EVENTS, "w"), "before")
    # The process died after the backfill inserts, before the last view and the record of the migration.
    (sql,) = [sql for _, name, sql in clickhouse.migration_files() if name == MIGRATION]
    statements = clickhouse._statements(Template(sql).substitute(retention_days=3650))
    for statement in statements[:-1]:
        old.client.command(statement)
    old.close()

    store = open_store(chdb_dir, database)
    reader = InProcessStore(store)
    for family in SYSTEM_FAMILIES:
        metrics = tuple(FAMILIES[family].metrics)
        rolled = await run_query(reader, MetricQuery(family, metrics, MARCH, ("service", "hour")))
        raw = await run_query(reader, MetricQuery(family, metrics, MARCH, ("service", "hour"), route="raw"))
        _same_rows(rolled.rows, raw.rows)
    store.close()


def test_a_new_and_an_upgraded_database_have_the_same_tables(
    chdb_dir: Path, open_old: Callable[[str], ClickHouseEvents]
) -> None:
    upgraded_name, fresh_name = f"sys_up_{secrets.token_hex(4)}", f"sys_new_{secrets.token_hex(4)}"
    old_store = open_old(upgraded_name)
    old_store.close()
    upgraded, fresh = open_store(chdb_dir, upgraded_name), open_store(chdb_dir, fresh_name)
    schemas = create_statements(upgraded, upgraded_name), create_statements(fresh, fresh_name)
    for name in ROLLUP_TABLES:
        assert schemas[0][name] == schemas[1][name]
        assert schemas[0][f"{name}_mv"] == schemas[1][f"{name}_mv"]
        assert "events_rollup_feed" in schemas[0][f"{name}_mv"]
    upgraded.close()
    fresh.close()
