"""The operations benchmark times every system, database and import route, one class each: every request
it sends is one its route accepts, distinct where the route pages or names what it answers about, and
every floor runs on a store holding the benchmark's workload."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import pytest
from fastapi.dependencies.utils import get_flat_params, request_params_to_args
from fastapi.params import Path as PathParam
from fastapi.params import Query
from fastapi.routing import APIRoute
from starlette.routing import Match

from bench import bench_operations, benchmarks_doc
from bench.bench_operations import OPERATION_CLASSES, OperationsContext
from bench.bench_queries import SIZES, QueryClass
from bench.workload import SERVICES, Workload
from serve_app.routes import database, imports, system
from storage.events import ClickHouseEvents

ROUTES = [
    r for router in (system.router, imports.router, database.router) for r in router.routes if isinstance(r, APIRoute)
]
# Query parameters that only page or cut an answer: a route with one of them gets distinct requests.
PAGING = {"limit", "offset", "examples"}
END = datetime(2026, 12, 1, tzinfo=UTC)
CONTEXT = OperationsContext(
    services=(*SERVICES, "analytics"),
    jobs=tuple(f"job-{k}" for k in range(bench_operations.MAX_JOBS)),
    start=END - timedelta(days=30),
    end=END,
)
LONGEST_RUN = max(size["requests"] for size in SIZES.values())


def _requests(qc: QueryClass[OperationsContext], n: int) -> list[str]:
    """The paths (with their queries) of a class's first ``n`` requests."""
    if qc.requests is not None:
        made = [qc.requests(CONTEXT, i) for i in range(n)]
        assert all(method == "GET" and body is None for method, _, body in made)
        return [path for _, path, _ in made]
    assert qc.rest is not None
    return [qc.rest(CONTEXT)] * n


def _route(path: str) -> tuple[APIRoute, dict[str, Any]]:
    """The route the service would answer ``GET path`` with (the first that matches), and its path values."""
    for route in ROUTES:
        match, scope = route.matches({"type": "http", "path": path, "method": "GET"})
        if match is Match.FULL:
            return route, scope["path_params"]
    raise AssertionError(f"no system, database or import route answers GET {path}")


def _parameters(route: APIRoute, kind: type) -> list[Any]:
    return [f for f in get_flat_params(route.dependant) if isinstance(f.field_info, kind)]


def test_one_class_per_route_and_one_client() -> None:
    routes = [_route(urlsplit(_requests(qc, 1)[0]).path)[0].path for qc in OPERATION_CLASSES]
    assert sorted(routes) == sorted(r.path for r in ROUTES)
    assert all(qc.concurrency == (1,) and qc.sql is not None for qc in OPERATION_CLASSES)


def test_the_docs_figures_cover_every_class() -> None:
    grouped = [*benchmarks_doc.SYSTEM_ROUTES, *benchmarks_doc.IMPORT_ROUTES, "imports.optimization"]
    assert sorted(grouped) == sorted(qc.name for qc in OPERATION_CLASSES)


@pytest.mark.parametrize("query_class", OPERATION_CLASSES, ids=lambda qc: qc.name)
def test_every_request_is_one_its_route_accepts(query_class: QueryClass[OperationsContext]) -> None:
    for sent in _requests(query_class, LONGEST_RUN):
        url = urlsplit(sent)
        route, path_values = _route(unquote(url.path))
        query = dict(parse_qsl(url.query))
        accepted = {f.alias for f in _parameters(route, Query)}
        # FastAPI passes over a parameter it does not know: a misspelt one would go unnoticed.
        assert set(query) <= accepted, (sent, set(query) - accepted)
        for fields, values in ((_parameters(route, Query), query), (_parameters(route, PathParam), path_values)):
            _, errors = request_params_to_args(fields, values)
            assert errors == [], (sent, errors)
        # Every request asks about the workload's days.
        if "start_date" in accepted:
            assert query["start_date"] == "2026-11-01" and query["end_date"] == "2026-11-30"


@pytest.mark.parametrize("query_class", OPERATION_CLASSES, ids=lambda qc: qc.name)
def test_requests_differ_where_the_route_pages_or_names_its_subject(
    query_class: QueryClass[OperationsContext],
) -> None:
    route, path_values = _route(unquote(urlsplit(_requests(query_class, 1)[0]).path))
    varies = bool(path_values) or bool(PAGING & {f.alias for f in _parameters(route, Query)})
    assert (query_class.requests is not None) == varies
    if varies:
        # A request comes again only once the route's options are used up (a limit has a maximum).
        options = len(set(_requests(query_class, 10 * LONGEST_RUN)))
        assert options >= SIZES["tiny"]["requests"]
        for size in SIZES.values():
            sent = _requests(query_class, size["requests"])
            assert len(set(sent)) == min(len(sent), options)


# --- the floors, on the tiny workload -------------------------------------------------------------


@pytest.fixture
def store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    events = ClickHouseEvents.open(
        None, chdb_path=chdb_dir, database=f"bench_ops_{secrets.token_hex(4)}", retention_days=3650
    )
    yield events
    events.close()


def test_the_context_and_every_floor_on_a_store_of_the_workload(store: ClickHouseEvents) -> None:
    tiny = SIZES["tiny"]
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    workload = Workload(events=tiny["events"], days=tiny["days"], seed=41, prefix="bo-test-", end=end)
    system_events: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    job_events: Counter[tuple[str, str]] = Counter()
    for table in workload.tables():
        store.insert_raw(table, secrets.token_hex(6))
        for event_type, properties in zip(
            table.column("event_type").to_pylist(), table.column("properties").to_pylist(), strict=True
        ):
            found = orjson.loads(properties)
            if event_type in ("api_request", "error_occurred", "resource_usage", "health_check"):
                system_events[found["service"]] += 1
                requests[found["service"]] += event_type == "api_request"
            elif event_type.startswith(("import_", "processing_")):
                job_events[found["job_id"], "import" if event_type.startswith("import_") else "processing"] += 1

    context = bench_operations.context_from(workload, lambda sql, params: store.query(sql, params).rows)
    assert list(context.services) == sorted(system_events, key=lambda s: (-system_events[s], s))
    per_job: Counter[str] = Counter()
    for (job, _), n in job_events.items():
        per_job[job] += n
    assert list(context.jobs) == sorted(per_job, key=lambda j: (-per_job[j], j))[: bench_operations.MAX_JOBS]
    assert (context.start, context.end) == (workload.start, end)

    answered = {}
    for qc in OPERATION_CLASSES:
        assert qc.sql is not None
        sql, make = qc.sql
        answered[qc.name] = store.query(sql, make(context))
    # No database_query events in the workload: those come from the service recording its own statements.
    assert answered["database.performance"].rows == []
    assert all(result.rows for name, result in answered.items() if name != "database.performance")

    health = {row[0]: row for row in answered["system.health"].rows}
    assert {service: row[1] for service, row in health.items()} == {s: requests[s] for s in system_events}
    # Every job of the workload started in the window: the first page lists them all, once each.
    assert 0 < len(job_events) <= 50
    assert sorted((row[0], row[1]) for row in answered["imports.jobs"].rows) == sorted(job_events)
    timeline = answered["imports.job"].rows
    assert len(timeline) == per_job[context.jobs[0]]
