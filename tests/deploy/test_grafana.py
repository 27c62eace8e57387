"""The Grafana provisioning and dashboards (deploy/grafana/): the data source and dashboard provider
files have the structure Grafana reads, every panel and query points at a provisioned data source of
its type, the service dashboard covers what an operator watches, and every ClickHouse query runs, with
the plugin's macros filled in as Grafana would, on a database the service's own migrations built,
answering known figures for known events. (The PromQL expressions are checked against a real Prometheus
and the running service's /metrics in tests/e2e/test_prometheus.py.)"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings
from storage.events import ClickHouseEvents
from tests.deploy.known_data import BASE, known_events, tables
from tests.deploy.promql import DASHBOARDS, GRAFANA_DIR, load_dashboard, panels

PROVISIONING = GRAFANA_DIR / "provisioning"
PROMETHEUS_TYPE = "prometheus"
CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"


def _yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def _datasources() -> dict[str, dict[str, Any]]:
    return {source["uid"]: source for source in _yaml(PROVISIONING / "datasources" / "datasources.yml")["datasources"]}


# ---- provisioning ----------------------------------------------------------------------------------


def test_the_data_sources_are_provisioned_for_prometheus_and_clickhouse() -> None:
    document = _yaml(PROVISIONING / "datasources" / "datasources.yml")
    assert document["apiVersion"] == 1
    sources = document["datasources"]
    assert len({s["uid"] for s in sources}) == len({s["name"] for s in sources}) == len(sources)
    for source in sources:
        for field in ("name", "type", "uid", "access"):
            assert isinstance(source.get(field), str) and source[field], (source, field)
        assert source["access"] == "proxy"
    by_type = {s["type"]: s for s in sources}
    assert set(by_type) == {PROMETHEUS_TYPE, CLICKHOUSE_TYPE}

    prometheus = by_type[PROMETHEUS_TYPE]
    assert re.fullmatch(r"https?://[^/\s]+(/\S*)?", prometheus["url"]), prometheus["url"]

    # The ClickHouse plugin reads its connection from jsonData (it has no use for url).
    clickhouse = by_type[CLICKHOUSE_TYPE]
    connection = clickhouse["jsonData"]
    assert isinstance(connection["host"], str) and connection["host"]
    assert isinstance(connection["port"], int) and 0 < connection["port"] < 65536
    assert connection["protocol"] in {"http", "native"}
    assert connection["username"]
    # The service's database, as ANALYTICS_CLICKHOUSE_DATABASE names it by default.
    assert connection["defaultDatabase"] == Settings().clickhouse_database
    # The password comes from Grafana's environment, never from this file.
    assert re.fullmatch(r"\$\{?[A-Z][A-Z0-9_]*\}?", clickhouse["secureJsonData"]["password"])


def test_the_dashboard_provider_reads_a_directory() -> None:
    document = _yaml(PROVISIONING / "dashboards" / "dashboards.yml")
    assert document["apiVersion"] == 1
    providers = document["providers"]
    assert providers
    for provider in providers:
        assert provider["name"] and provider.get("type", "file") == "file"
        assert Path(provider["options"]["path"]).is_absolute()
    assert len(DASHBOARDS) >= 2


# ---- dashboards ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_each_dashboard_is_complete_and_uses_provisioned_sources(path: Path) -> None:
    dashboard = load_dashboard(path)
    assert isinstance(dashboard["uid"], str) and 0 < len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    sources = _datasources()
    found = panels(dashboard)
    assert found
    assert len({p["id"] for p in found}) == len(found)
    for panel in found:
        where = f"{path.name}: {panel.get('title')}"
        assert panel["title"] and panel["type"], where
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] in sources, where
        assert panel["datasource"]["type"] == sources[panel["datasource"]["uid"]]["type"], where
        targets = panel["targets"]
        assert targets, where
        assert len({t["refId"] for t in targets}) == len(targets), where
        for target in targets:
            source = sources[target["datasource"]["uid"]]
            assert target["datasource"]["type"] == source["type"], where
            if source["type"] == PROMETHEUS_TYPE:
                assert target["expr"].strip(), where
            else:
                assert target["editorType"] == "sql" and target["rawSql"].strip(), where
                assert target["queryType"] in {"timeseries", "table"}, where


def test_dashboard_uids_are_distinct() -> None:
    uids = [load_dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)


def _by_name() -> dict[str, dict[str, Any]]:
    return {path.stem: load_dashboard(path) for path in DASHBOARDS}


def test_the_service_dashboard_shows_what_an_operator_watches() -> None:
    dashboard = _by_name()["service"]
    expressions = " ".join(t["expr"] for p in panels(dashboard) for t in p["targets"])
    assert {t["datasource"]["type"] for p in panels(dashboard) for t in p["targets"]} == {PROMETHEUS_TYPE}
    for series in (
        "analytics_events_accepted_total",  # ingest rate
        "analytics_ingest_request_seconds_bucket",  # ingest latency
        "analytics_store_flush_lag_seconds",  # flush lag
        "analytics_events_rejected_total",  # errors
        "analytics_store_errors_total",
        'analytics_http_responses_total{status_class="5xx"}',  # 5xx rate
        "ray_serve_deployment_replica_healthy",  # replicas
    ):
        assert series in expressions, series


# ---- the business dashboard's SQL against the service's schema ---------------------------------------

# The dashboards' time range in this test: four days from BASE, which cut the known views short.
FROM = BASE
TO = BASE + timedelta(days=4) - timedelta(seconds=1)
# Grafana's panel interval for the test's time range (the plugin's $__timeInterval step).
INTERVAL_SECONDS = 3600

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")


def expand_macros(sql: str) -> str:
    """The plugin's macros (grafana-clickhouse-datasource v4) as it expands them for the time range
    FROM..TO. Any other variable fails: the test would not know what Grafana sends."""

    def expand(match: re.Match[str]) -> str:
        name, argument = match.group(1), (match.group(2) or "").strip()
        start, end = int(FROM.timestamp()), int(TO.timestamp())
        if name == "timeFilter":
            return f"{argument} >= toDateTime({start}) AND {argument} <= toDateTime({end})"
        if name == "dateFilter":
            return f"{argument} >= toDate('{FROM.date()}') AND {argument} <= toDate('{TO.date()}')"
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({argument}), INTERVAL {INTERVAL_SECONDS} second)"
        if name == "fromTime":
            return f"toDateTime({start})"
        if name == "toTime":
            return f"toDateTime({end})"
        raise AssertionError(f"macro ${match.group(0)} is not expanded by this test")

    expanded = _MACRO.sub(expand, sql)
    assert "$" not in expanded, expanded
    return expanded


_TABLE_REFERENCE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def _clickhouse_queries() -> list[tuple[str, str]]:
    return [
        (f"{path.name}: {panel['title']}", target["rawSql"])
        for path in DASHBOARDS
        for panel in panels(load_dashboard(path))
        for target in panel["targets"]
        if target["datasource"]["type"] == CLICKHOUSE_TYPE
    ]


def test_every_clickhouse_query_reads_tables_of_the_migrations(schema: ClickHouseEvents) -> None:
    known = tables(schema)
    queries = _clickhouse_queries()
    assert queries
    for where, sql in queries:
        named = {name for name in _TABLE_REFERENCE.findall(sql)}
        assert named, where
        for name in named:
            # A table or view that stores or computes rows: not a materialized view's trigger nor a Null feed.
            assert known.get(name) not in (None, "MaterializedView", "Null"), (where, name, known.get(name))


def _run(schema: ClickHouseEvents, sql: str) -> list[dict[str, Any]]:
    result = schema.client.query(expand_macros(sql))
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _panel_sql(title: str) -> str:
    (sql,) = [sql for where, sql in _clickhouse_queries() if where == f"business.json: {title}"]
    return sql


def test_every_clickhouse_query_runs(schema: ClickHouseEvents) -> None:
    for where, sql in _clickhouse_queries():
        try:
            _run(schema, sql)
        except Exception as error:  # noqa: BLE001 - name the panel whose query failed
            raise AssertionError(f"{where}: {error}") from error


def test_the_business_panels_answer_the_known_figures(schema: ClickHouseEvents) -> None:
    events = known_events().to_pylist()
    views = [e for e in events if e["event_type"] == "content_view"]
    in_range = [e for e in views if FROM <= e["timestamp"] <= TO]
    assert 0 < len(in_range) < len(views)  # the range cuts the events: the filters are checked too

    assert _run(schema, _panel_sql("Views")) == [{"views": len(in_range)}]
    assert _run(schema, _panel_sql("Viewers")) == [{"viewers": len({e["user_id"] for e in in_range})}]
    active = {e["user_id"] for e in events if FROM <= e["timestamp"] <= TO}
    assert _run(schema, _panel_sql("Active users")) == [{"active_users": len(active)}]
    assert _run(schema, _panel_sql("Searches")) == [{"searches": 4, "zero_result_searches": 1}]

    hourly = _run(schema, _panel_sql("Views per hour"))
    assert sum(row["views"] for row in hourly) == len(in_range)
    daily = _run(schema, _panel_sql("Active users per day"))
    by_day: dict[date, set[str]] = {}
    for e in events:
        if FROM <= e["timestamp"] <= TO:
            by_day.setdefault(e["timestamp"].date(), set()).add(e["user_id"])
    assert {row["time"].date(): row["active_users"] for row in daily} == {d: len(u) for d, u in by_day.items()}

    top = _run(schema, _panel_sql("Top content"))
    expected: dict[str, int] = {}
    for e in in_range:
        expected[e["content_id"]] = expected.get(e["content_id"], 0) + 1
    assert {row["content_id"]: row["views"] for row in top} == expected
    assert [row["views"] for row in top] == sorted((row["views"] for row in top), reverse=True)

    devices = {row["device"]: row["views"] for row in _run(schema, _panel_sql("Views by device"))}
    assert devices == {
        "desktop": sum(e["device_type"] == "desktop" for e in in_range),
        "mobile": sum(e["device_type"] == "mobile" for e in in_range),
        "tablet": 0,
    }
    sources = {row["source"]: row["views"] for row in _run(schema, _panel_sql("Views by traffic source"))}
    assert sources["search"] == sum(e["traffic_source"] == "search" for e in in_range)
    assert sources["direct"] == sum(e["traffic_source"] == "direct" for e in in_range)

    searches = _run(schema, _panel_sql("Top searches"))
    assert [(row["query"], row["searches"], row["zero_result_searches"]) for row in searches] == [
        ("ray", 3, 0),
        ("nothing", 1, 1),
    ]
