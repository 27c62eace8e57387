"""The Superset import bundle (deploy/superset/analytics_clickhouse/): the layout and fields of
Superset's dataset import format, a ClickHouse connection through clickhouse-connect's SQLAlchemy
dialect, and datasets whose tables, columns (with their types) and time columns are those the service's
ClickHouse migrations build; every metric runs there and the main ones answer known figures."""

from __future__ import annotations

import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from core.settings import Settings
from storage.events import ClickHouseEvents
from tests.deploy.known_data import known_events, tables
from tests.deploy.promql import ROOT

BUNDLE = ROOT / "deploy" / "superset" / "analytics_clickhouse"
DATASETS = sorted((BUNDLE / "datasets").glob("*/*.yaml"))
MAIN_ROLLUPS = {"content_hourly", "content_daily", "content_breakdown_daily", "user_daily", "search_daily"}

DATASET_FIELDS = {
    "table_name",
    "main_dttm_col",
    "description",
    "schema",
    "sql",
    "uuid",
    "metrics",
    "columns",
    "version",
    "database_uuid",
}
COLUMN_FIELDS = {"column_name", "is_dttm", "is_active", "type", "groupby", "filterable", "expression"}
METRIC_FIELDS = {"metric_name", "verbose_name", "metric_type", "expression", "d3format"}


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def _database() -> dict[str, Any]:
    (path,) = sorted((BUNDLE / "databases").glob("*.yaml"))
    return _yaml(path)


def test_the_bundle_has_the_layout_superset_imports(tmp_path: Path) -> None:
    metadata = _yaml(BUNDLE / "metadata.yaml")
    assert metadata["version"] == "1.0.0" and metadata["type"] == "SqlaTable" and metadata["timestamp"]
    database = _database()
    # Datasets sit in a folder named after their database, as Superset exports them.
    assert {path.parent.name for path in DATASETS} == {database["database_name"].replace(" ", "_")}
    # Zipped with its folder at the top, as `superset import-datasources` and the UI take it.
    archive = tmp_path / "analytics_clickhouse.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(BUNDLE.rglob("*.yaml")):
            bundle.write(path, path.relative_to(BUNDLE.parent))
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
    assert "analytics_clickhouse/metadata.yaml" in names
    assert all(name.startswith("analytics_clickhouse/") for name in names)


def test_the_database_connects_through_clickhouse_connect() -> None:
    database = _database()
    uri = urlparse(database["sqlalchemy_uri"])
    # clickhouse-connect's SQLAlchemy dialect, which Superset's ClickHouse engine spec uses.
    assert uri.scheme == "clickhousedb"
    assert uri.hostname and uri.port
    assert uri.path.lstrip("/") == Settings().clickhouse_database
    # No password in the file: it is entered in Superset after the import.
    assert uri.password is None
    assert database["allow_dml"] is False and database["expose_in_sqllab"] is True
    assert str(uuid.UUID(database["uuid"])) == database["uuid"]
    assert database["version"] == "1.0.0"


@pytest.mark.parametrize("path", DATASETS, ids=lambda p: p.stem)
def test_each_dataset_has_the_import_fields(path: Path) -> None:
    dataset = _yaml(path)
    assert set(dataset) >= DATASET_FIELDS, DATASET_FIELDS - set(dataset)
    assert path.stem == dataset["table_name"]
    assert dataset["database_uuid"] == _database()["uuid"]
    assert dataset["schema"] == Settings().clickhouse_database
    assert dataset["sql"] is None  # a physical dataset: the table itself
    assert dataset["version"] == "1.0.0"
    assert dataset["metrics"] and dataset["columns"]
    for column in dataset["columns"]:
        assert set(column) >= COLUMN_FIELDS, (column["column_name"], COLUMN_FIELDS - set(column))
        assert column["expression"] is None
    for metric in dataset["metrics"]:
        assert set(metric) >= METRIC_FIELDS, (metric["metric_name"], METRIC_FIELDS - set(metric))
    assert len({c["column_name"] for c in dataset["columns"]}) == len(dataset["columns"])
    assert len({m["metric_name"] for m in dataset["metrics"]}) == len(dataset["metrics"])
    dttm = [c["column_name"] for c in dataset["columns"] if c["is_dttm"]]
    assert dttm == ([dataset["main_dttm_col"]] if dataset["main_dttm_col"] else [])


def test_dataset_uuids_are_distinct_and_the_main_rollups_are_there() -> None:
    datasets = [_yaml(path) for path in DATASETS]
    uuids = [d["uuid"] for d in datasets] + [_database()["uuid"]]
    assert len(set(uuids)) == len(uuids)
    assert all(str(uuid.UUID(u)) == u for u in uuids)
    assert {d["table_name"] for d in datasets} >= MAIN_ROLLUPS


def _columns(store: ClickHouseEvents, table: str) -> dict[str, str]:
    rows = store.client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
        parameters={"t": table},
    ).result_rows
    return {name: column_type for name, column_type in rows}


def test_each_dataset_is_a_table_of_the_migrations_with_its_columns(schema: ClickHouseEvents) -> None:
    known = tables(schema)
    for path in DATASETS:
        dataset = _yaml(path)
        table = dataset["table_name"]
        assert known.get(table) not in (None, "MaterializedView", "Null"), (table, known.get(table))
        actual = _columns(schema, table)
        listed = {c["column_name"]: c["type"] for c in dataset["columns"]}
        # Every column as the migrations make it (name and type), and none left out.
        assert listed == actual, (table, set(listed) ^ set(actual))
        for column in dataset["columns"]:
            # Aggregate states are read through a metric (…Merge); grouping on one is refused.
            if column["type"].startswith("AggregateFunction"):
                assert not column["groupby"] and not column["filterable"], (table, column["column_name"])


def test_every_metric_runs_on_its_table(schema: ClickHouseEvents) -> None:
    for path in DATASETS:
        dataset = _yaml(path)
        for metric in dataset["metrics"]:
            sql = f"SELECT {metric['expression']} FROM {dataset['table_name']}"
            try:
                schema.client.query(sql)
            except Exception as error:  # noqa: BLE001 - name the metric whose expression failed
                raise AssertionError(f"{path.name}: {metric['metric_name']}: {error}") from error


def _metric(table: str, name: str, schema: ClickHouseEvents) -> Any:
    (expression,) = [
        m["expression"]
        for m in _yaml(BUNDLE / "datasets" / DATASETS[0].parent.name / f"{table}.yaml")["metrics"]
        if m["metric_name"] == name
    ]
    return schema.client.query(f"SELECT {expression} FROM {table}").result_rows[0][0]


def test_the_main_metrics_answer_the_known_figures(schema: ClickHouseEvents) -> None:
    events = known_events().to_pylist()
    views = [e for e in events if e["event_type"] == "content_view"]
    assert _metric("content_daily", "views", schema) == len(views)
    assert _metric("content_hourly", "views", schema) == len(views)
    assert _metric("content_daily", "viewers", schema) == len({e["user_id"] for e in views})
    assert _metric("user_daily", "active_users", schema) == len({e["user_id"] for e in events})
    assert _metric("user_daily", "events", schema) == len(events)
    assert _metric("search_daily", "searches", schema) == 4
    assert _metric("search_daily", "zero_result_searches", schema) == 1
    # No result clicks among the known events: a rate of 0, not a division by zero.
    assert _metric("search_daily", "click_through_rate", schema) == 0
    assert _metric("content_daily", "completion_rate", schema) == 0
