"""The Superset bundle of the daily aggregates in PostgreSQL (deploy/superset/analytics_postgres/): its
datasets' tables and columns (with their types) are those the metadata migrations build, and every
metric runs on the real PostgreSQL over rows written by the aggregate store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from storage.aggregates import RECORD_COLUMNS, SEARCH_RECORD_COLUMNS, SYSTEM_RECORD_COLUMNS, AggregateStore
from storage.metadata import MetadataStore
from tests.deploy.promql import ROOT

BUNDLE = ROOT / "deploy" / "superset" / "analytics_postgres"
DATASETS = sorted((BUNDLE / "datasets").glob("*/*.yaml"))


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def test_the_bundle_names_its_database_and_every_aggregate_table() -> None:
    metadata = _yaml(BUNDLE / "metadata.yaml")
    assert metadata["type"] == "SqlaTable" and metadata["version"] == "1.0.0"
    (database_file,) = sorted((BUNDLE / "databases").glob("*.yaml"))
    database = _yaml(database_file)
    assert database["sqlalchemy_uri"].startswith("postgresql://") and database["allow_dml"] is False
    assert {path.parent.name for path in DATASETS} == {database["database_name"].replace(" ", "_")}
    datasets = [_yaml(path) for path in DATASETS]
    assert {d["table_name"] for d in datasets} == {
        "content_analytics_daily",
        "content_rankings_daily",
        "search_analytics_daily",
        "system_analytics_hourly",
    }
    assert all(d["database_uuid"] == database["uuid"] for d in datasets)
    assert len({d["uuid"] for d in datasets}) == len(datasets)


async def test_columns_are_the_tables_and_every_metric_runs(migrated: MetadataStore) -> None:
    pool = migrated.pool
    await pool.execute(
        "TRUNCATE content_analytics_daily, content_rankings_daily, search_analytics_daily, system_analytics_hourly, "
        "aggregation_runs"
    )
    store = AggregateStore(pool)
    day = date(2026, 3, 1)
    run = await store.start_run(day, engine="ray", trigger="cli", requested_by="test")
    record: dict[str, Any] = {c: 0 for c in RECORD_COLUMNS}
    record.update(
        day=day,
        content_id="c1",
        category="news",
        total_views=5,
        unique_views=3,
        completion_rate=0.5,
        top_countries={"DE": 5},
        top_regions={},
        hourly_distribution={"9": 5},
        performance_score=40.0,
        calculated_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    ranked = [{"day": day, "category": "", "rank": 1, "content_id": "c1", "performance_score": 40.0, "total_views": 5}]
    search: dict[str, Any] = {c: 0 for c in SEARCH_RECORD_COLUMNS}
    search.update(
        day=day,
        searches=4,
        zero_result_searches=1,
        clicks=2,
        click_positions={"1": 2},
        average_click_position=1.0,
        searches_with_session=4,
        converted_searches=1,
        calculated_at=record["calculated_at"],
    )
    hour: dict[str, Any] = {c: 0 for c in SYSTEM_RECORD_COLUMNS}
    hour.update(
        day=day,
        hour=9,
        service_name="checkout",
        request_count=10,
        error_count=1,
        cache_hits=3,
        cache_misses=1,
        endpoint_stats={"GET /cart": {"request_count": 10}},
        status_code_distribution={"200": 9, "500": 1},
        calculated_at=record["calculated_at"],
    )
    await store.replace_day(run.id, day, [record], ranked, search, [hour], as_of=None, partitions=1)
    types = {
        "BIGINT": "bigint",
        "INT": "integer",
        "TEXT": "text",
        "DATE": "date",
        "DOUBLE PRECISION": "double precision",
        "JSONB": "jsonb",
        "TIMESTAMPTZ": "timestamp with time zone",
    }
    for dataset in (_yaml(path) for path in DATASETS):
        table = dataset["table_name"]
        rows = await pool.fetch(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1", table
        )
        actual = {r["column_name"]: r["data_type"] for r in rows}
        assert {c["column_name"]: types[c["type"]] for c in dataset["columns"]} == actual, table
        assert dataset["main_dttm_col"] in actual
        for metric in dataset["metrics"]:
            value = await pool.fetchval(f"SELECT {metric['expression']} FROM {table}")  # noqa: S608 - committed SQL
            assert value is not None, (table, metric["metric_name"])
    assert await pool.fetchval("SELECT SUM(total_views) FROM content_analytics_daily") == 5
    zero_rate = "SELECT SUM(zero_result_searches)::float / SUM(searches) FROM search_analytics_daily"
    assert await pool.fetchval(zero_rate) == 0.25
    error_rate = "SELECT SUM(error_count)::float / SUM(request_count) FROM system_analytics_hourly"
    assert await pool.fetchval(error_rate) == 0.1
