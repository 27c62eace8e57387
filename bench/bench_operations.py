"""Operations benchmark: the system health, database performance and import monitoring routes
(docs/system.md, docs/imports.md) over HTTP, one request at a time, each beside the raw SQL a person
would write over the ``events`` table for the same answer (the floor).

    python -m bench.bench_operations --size small     # 300k events
    python -m bench.bench_operations --size full      # 10M events (written to operations_full.json)
    python -m bench.bench_operations --size full --classes system.health,imports.optimization

The targets are p95 over HTTP at concurrency 1 on the 10M-event store: every system route (and the
database performance route beside them) under 100 ms, every import route under 200 ms, the import
optimization under 500 ms. The run is bench/bench_queries.py's (``run_classes``): the same sizes and
workload, the same service, load generator, floors and result layout; only the classes differ.

Every request sends ``Cache-Control: no-cache``, so each answer is computed. A route that names what
it answers about (``/services/{service_name}``, ``/imports/{job_id}``) asks about another service or
job of the workload at each request; a route that pages or cuts its lists asks for another page,
length or order (round the ones it allows, when a run has more requests than that). The others are
asked the platform-wide answer each time (a ``service``, ``source`` or ``kind`` filter would only
shrink the work): the one a dashboard shows.

A floor is the dominant part of an answer, not all of it: where the route adds a second look (the
current hour's error rate of ``/system/health``, the resources of each service-hour, the slow stages
of the optimization), its floor leaves it out.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import ray

from bench.bench_queries import (
    SIZES,
    QueryClass,
    Request,
    run_classes,
    select_classes,
    window_dates,
    workload_end_of,
)
from bench.workload import Workload
from semantic.database_performance import MAX_STATEMENTS, STATEMENT_SORTS
from semantic.import_failures import MAX_EXAMPLES
from semantic.import_optimization import BASELINE_PERIODS
from semantic.system_errors import MAX_LIMIT as MAX_ERROR_GROUPS

NAME = "operations"
API = "/api/v1/analytics"
# Jobs asked about by /imports/{job_id}: enough for every request of the full size to name another.
MAX_JOBS = 500

SYSTEM_TYPES = "('api_request', 'error_occurred', 'resource_usage', 'health_check')"
JOB_TYPES = (
    "('import_started', 'import_stage_completed', 'import_completed', 'import_failed', "
    "'processing_started', 'processing_completed', 'processing_failed')"
)
_END_TYPES = "('import_completed', 'import_failed', 'processing_completed', 'processing_failed')"


@dataclass(frozen=True)
class OperationsContext:
    """What the workload's system and job events name, for the requests to ask about, and its window."""

    # Every service the workload's system events name, the busiest first.
    services: tuple[str, ...]
    # Import and processing jobs of the workload, those with the most events first (at most MAX_JOBS).
    jobs: tuple[str, ...]
    start: datetime
    end: datetime

    @property
    def dates(self) -> dict[str, str]:
        return window_dates(self.start, self.end)


Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def context_from(workload: Workload, rows: Rows) -> OperationsContext:
    """The services and jobs of ``workload`` in the store that ``rows(sql, parameters)`` reads."""
    services = rows(
        "SELECT JSONExtractString(properties, 'service') AS service, count() AS n FROM events "
        f"WHERE startsWith(id, {{p:String}}) AND event_type IN {SYSTEM_TYPES} "
        "GROUP BY service HAVING service != '' ORDER BY n DESC, service",
        {"p": workload.prefix},
    )
    jobs = rows(
        "SELECT JSONExtractString(properties, 'job_id') AS job, count() AS n FROM events "
        f"WHERE startsWith(id, {{p:String}}) AND event_type IN {JOB_TYPES} "
        "GROUP BY job HAVING job != '' ORDER BY n DESC, job LIMIT {n:UInt32}",
        {"p": workload.prefix, "n": MAX_JOBS},
    )
    return OperationsContext(
        services=tuple(row[0] for row in services),
        jobs=tuple(row[0] for row in jobs),
        start=workload.start,
        end=workload_end_of(workload),
    )


def _context(workload: Workload, actor: Any) -> OperationsContext:
    return context_from(workload, lambda sql, params: ray.get(actor.query.remote(sql, params)).rows)


# --- the floors: raw SQL over events ------------------------------------------------------------------


def window(c: OperationsContext) -> dict[str, datetime]:
    """The floors' window, the requests' days: from the first day's midnight (``s``) to the midnight
    after the last (``e``); ``p`` starts the period of the same length before it, ``b`` the baseline
    periods the optimization compares against."""
    dates = c.dates
    s = datetime.combine(datetime.fromisoformat(dates["start_date"]), time())
    e = datetime.combine(datetime.fromisoformat(dates["end_date"]), time()) + timedelta(days=1)
    return {"s": s, "e": e, "p": s - (e - s), "b": s - BASELINE_PERIODS * (e - s)}


_IN_WINDOW = "timestamp >= {s:DateTime64(3)} AND timestamp < {e:DateTime64(3)}"
# An api_request's properties as columns (named apart from the aggregates' aliases over them).
_REQUEST_COLUMNS = (
    "JSONExtractString(properties, 'service') AS service, JSONExtractString(properties, 'endpoint') AS endpoint, "
    "JSONExtractString(properties, 'method') AS method, JSONExtractInt(properties, 'status') AS status, "
    "JSONExtractFloat(properties, 'duration_ms') AS duration"
)

HEALTH_FLOOR = (
    "SELECT service, countIf(event_type = 'api_request') AS requests, "
    "countIf(event_type = 'api_request' AND status >= 500) AS server_error_requests, "
    "quantileTimingIf(0.95)(duration, event_type = 'api_request') AS response_time_p95, "
    "countIf(event_type = 'health_check') AS checks, "
    "countIf(event_type = 'health_check' AND check_status IN ('up', 'degraded')) AS available_checks, "
    "countIf(event_type = 'health_check' AND check_status = 'down') AS down_checks, "
    "argMaxIf(check_status, timestamp, event_type = 'health_check') AS latest_check, "
    "maxIf(timestamp, event_type = 'health_check') AS latest_check_at, "
    "countIf(event_type = 'error_occurred') AS errors, max(timestamp) AS last_seen "
    f"FROM (SELECT event_type, timestamp, {_REQUEST_COLUMNS}, "
    "lower(JSONExtractString(properties, 'status')) AS check_status "
    f"FROM events WHERE event_type IN {SYSTEM_TYPES} AND {_IN_WINDOW}) "
    "GROUP BY service ORDER BY service"
)
PERFORMANCE_FLOOR = (
    "SELECT service, toStartOfDay(timestamp) AS bucket, count() AS requests, "
    "countIf(status >= 500) AS server_error_requests, avg(duration) AS average_ms, "
    "quantilesTiming(0.5, 0.95, 0.99)(duration) AS quantiles "
    f"FROM (SELECT timestamp, {_REQUEST_COLUMNS} FROM events WHERE event_type = 'api_request' AND {_IN_WINDOW}) "
    "GROUP BY GROUPING SETS ((), (bucket), (service), (service, bucket))"
)
ERRORS_FLOOR = (
    "SELECT service, endpoint, error_type, message, countIf(timestamp >= {s:DateTime64(3)}) AS errors, "
    "countIf(timestamp < {s:DateTime64(3)}) AS previous_errors, max(timestamp) AS last_seen "
    "FROM (SELECT timestamp, JSONExtractString(properties, 'service') AS service, "
    "JSONExtractString(properties, 'endpoint') AS endpoint, JSONExtractString(properties, 'error_type') AS error_type, "
    "substringUTF8(JSONExtractString(properties, 'message'), 1, 500) AS message "
    "FROM events WHERE event_type = 'error_occurred' "
    "AND timestamp >= {p:DateTime64(3)} AND timestamp < {e:DateTime64(3)}) "
    "GROUP BY GROUPING SETS ((service), (service, endpoint), (error_type), (service, error_type, message)) "
    "ORDER BY errors DESC, previous_errors DESC"
)
USAGE_FLOOR = (
    "SELECT service, toStartOfHour(timestamp) AS hour, countIf(event_type = 'api_request') AS requests, "
    "uniqExactIf(user_id, event_type = 'api_request' AND user_id != '') AS active_users, "
    "avgIf(cpu, event_type = 'resource_usage') AS cpu_average, maxIf(cpu, event_type = 'resource_usage') AS cpu_peak, "
    "avgIf(memory, event_type = 'resource_usage') AS memory_average, "
    "maxIf(memory, event_type = 'resource_usage') AS memory_peak, "
    "avgIf(disk, event_type = 'resource_usage') AS disk_average, "
    "maxIf(disk, event_type = 'resource_usage') AS disk_peak, "
    "uniqExactIf(instance, event_type = 'resource_usage') AS instances "
    "FROM (SELECT event_type, timestamp, user_id, JSONExtractString(properties, 'service') AS service, "
    "JSONExtractString(properties, 'instance') AS instance, JSONExtractFloat(properties, 'cpu_percent') AS cpu, "
    "JSONExtractFloat(properties, 'memory_percent') AS memory, JSONExtractFloat(properties, 'disk_percent') AS disk "
    f"FROM events WHERE event_type IN ('api_request', 'resource_usage') AND {_IN_WINDOW}) "
    "GROUP BY GROUPING SETS ((service), (service, hour))"
)


def _service_hours_floor(one_service: bool) -> str:
    """The page's service-hours (ordered by hour, then service), then their figures and endpoints."""
    only = " AND JSONExtractString(properties, 'service') = {v:String}" if one_service else ""
    return (
        "SELECT service, hour, endpoint, method, count() AS requests, "
        "countIf(status >= 100 AND status < 400) AS successes, countIf(status >= 500) AS server_errors, "
        "avg(duration) AS average_ms, quantileTiming(0.95)(duration) AS p95_ms, "
        "sum(db_queries) AS db_query_count, sum(db_time) AS db_time_ms, "
        "countIf(cache = 'true') AS cache_hits, countIf(cache = 'false') AS cache_misses, "
        "sum(external) AS external_calls, sum(external_failed) AS external_errors, "
        "sum(external_time) AS external_time_ms, sumMap(map(status, toUInt64(1))) AS status_codes "
        f"FROM (SELECT toStartOfHour(timestamp) AS hour, {_REQUEST_COLUMNS}, "
        "JSONExtractInt(properties, 'db_query_count') AS db_queries, "
        "JSONExtractFloat(properties, 'db_time_ms') AS db_time, "
        "JSONExtractRaw(properties, 'cache_hit') AS cache, JSONExtractInt(properties, 'external_calls') AS external, "
        "JSONExtractInt(properties, 'external_errors') AS external_failed, "
        "JSONExtractFloat(properties, 'external_time_ms') AS external_time "
        f"FROM events WHERE event_type = 'api_request' AND {_IN_WINDOW}{only}) "
        "WHERE (service, hour) IN (SELECT service, hour FROM "
        "(SELECT JSONExtractString(properties, 'service') AS service, toStartOfHour(timestamp) AS hour FROM events "
        f"WHERE event_type IN ('api_request', 'resource_usage') AND {_IN_WINDOW}{only}) "
        "GROUP BY service, hour ORDER BY hour, service LIMIT {limit:UInt32} OFFSET {offset:UInt32}) "
        "GROUP BY GROUPING SETS ((service, hour), (service, hour, endpoint, method))"
    )


ENDPOINTS_FLOOR = (
    "SELECT service, endpoint, method, count() AS requests, countIf(status >= 100 AND status < 400) AS successes, "
    "countIf(status >= 400 AND status < 500) AS client_errors, countIf(status >= 500) AS server_errors, "
    "avg(duration) AS average_ms, quantilesTiming(0.5, 0.95, 0.99)(duration) AS quantiles, "
    "sumMap(map(status, toUInt64(1))) AS status_codes "
    f"FROM (SELECT {_REQUEST_COLUMNS} FROM events WHERE event_type = 'api_request' AND {_IN_WINDOW}) "
    "GROUP BY service, endpoint, method ORDER BY requests DESC, service, endpoint, method LIMIT {limit:UInt32}"
)
DATABASE_FLOOR = (
    "SELECT current, database, service, operation, fingerprint, count() AS statements, "
    "sum(duration) AS total_ms, avg(duration) AS average_ms, quantileExactInclusive(0.95)(duration) AS p95_ms, "
    "max(duration) AS max_ms, countIf(duration > 500) AS slow_statements, countIf(failed) AS failed_statements, "
    "sum(row_count) AS rows_reported "
    "FROM (SELECT timestamp >= {s:DateTime64(3)} AS current, JSONExtractString(properties, 'database') AS database, "
    "JSONExtractString(properties, 'service') AS service, JSONExtractString(properties, 'operation') AS operation, "
    "JSONExtractString(properties, 'fingerprint') AS fingerprint, "
    "JSONExtractFloat(properties, 'duration_ms') AS duration, "
    "JSONHas(properties, 'error') AS failed, JSONExtractInt(properties, 'rows') AS row_count "
    "FROM events WHERE event_type = 'database_query' "
    "AND timestamp >= {p:DateTime64(3)} AND timestamp < {e:DateTime64(3)}) "
    "GROUP BY GROUPING SETS ((current), (current, database), (current, database, service, operation, fingerprint)) "
    "ORDER BY p95_ms DESC"
)


def jobs_floor(since: str) -> str:
    """Every job started from the parameter ``since`` until ``e``, put together from its events
    (docs/imports.md#what-a-job-is): its source, start, status, duration and figures."""
    return (
        "SELECT job_id, kind, max(source) AS job_source, min(timestamp) AS started_at, "
        "max(timestamp) AS last_event_at, "
        f"argMaxIf(event_type, timestamp, event_type IN {_END_TYPES}) AS end_event, "
        f"maxIf(timestamp, event_type IN {_END_TYPES}) AS ended_at, "
        "multiIf(endsWith(end_event, '_failed'), 'failed', endsWith(end_event, '_completed'), 'completed', "
        "last_event_at < now64(3) - INTERVAL 60 MINUTE, 'stuck', 'running') AS status, "
        f"maxIf(duration, event_type IN {_END_TYPES}) AS duration_ms, "
        "max(total) AS records_total, max(processed) AS records_processed, max(failed) AS records_failed, "
        "max(duplicate) AS duplicates, max(invalid) AS invalid_rows, max(missing) AS missing_fields, "
        "max(transform) AS transform_errors, countIf(event_type = 'import_stage_completed') AS stages_completed, "
        "argMaxIf(reason, timestamp, endsWith(event_type, '_failed')) AS failure_reason, "
        "argMaxIf(stage, timestamp, endsWith(event_type, '_failed')) AS failed_stage "
        "FROM (SELECT event_type, timestamp, JSONExtractString(properties, 'job_id') AS job_id, "
        "if(startsWith(event_type, 'import_'), 'import', 'processing') AS kind, "
        "if(JSONHas(properties, 'source'), JSONExtractString(properties, 'source'), "
        "JSONExtractString(properties, 'kind')) AS source, "
        "JSONExtractFloat(properties, 'duration_ms') AS duration, "
        "JSONExtractInt(properties, 'records_total') AS total, "
        "JSONExtractInt(properties, 'records_processed') AS processed, "
        "JSONExtractInt(properties, 'records_failed') AS failed, "
        "JSONExtractInt(properties, 'duplicates') AS duplicate, "
        "JSONExtractInt(properties, 'invalid_rows') AS invalid, "
        "JSONExtractInt(properties, 'missing_fields') AS missing, "
        "JSONExtractInt(properties, 'transform_errors') AS transform, "
        "JSONExtractString(properties, 'failure_reason') AS reason, JSONExtractString(properties, 'stage') AS stage "
        f"FROM events WHERE event_type IN {JOB_TYPES}) "
        "GROUP BY job_id, kind "
        f"HAVING started_at >= {{{since}:DateTime64(3)}} AND started_at < {{e:DateTime64(3)}}"
    )


# Figures of a group of jobs: outcomes, records, durations of the finished, throughput of the completed.
_JOB_FIGURES = (
    "count() AS jobs, countIf(status = 'completed') AS completed, countIf(status = 'failed') AS failures, "
    "sum(records_processed) AS processed, sum(records_failed) AS failed_records, "
    "avgIf(duration_ms, status IN ('completed', 'failed')) AS average_ms, "
    "quantilesExactInclusiveIf(0.5, 0.95)(duration_ms, status IN ('completed', 'failed')) AS duration_quantiles, "
    "sumIf(records_processed, status = 'completed' AND duration_ms > 0) * 1000 "
    "/ nullIf(sumIf(duration_ms, status = 'completed' AND duration_ms > 0), 0) AS throughput"
)
IMPORT_JOBS_FLOOR = (
    f"SELECT * FROM ({jobs_floor('s')}) ORDER BY started_at DESC, job_id, kind LIMIT 50 OFFSET {{offset:UInt32}}"
)
IMPORT_JOB_FLOOR = (
    f"SELECT event_type, timestamp, properties FROM events WHERE event_type IN {JOB_TYPES} "
    "AND JSONExtractString(properties, 'job_id') = {j:String} ORDER BY timestamp, id"
)
IMPORT_SOURCES_FLOOR = (
    "SELECT kind, job_source, started_at >= {s:DateTime64(3)} AS current, toStartOfDay(started_at) AS bucket, "
    f"{_JOB_FIGURES} FROM ({jobs_floor('p')}) "
    "GROUP BY GROUPING SETS ((kind, job_source, current), (kind, job_source, bucket))"
)
IMPORT_QUALITY_FLOOR = (
    "SELECT job_source, started_at >= {s:DateTime64(3)} AS current, toStartOfDay(started_at) AS bucket, "
    "count() AS jobs, sum(records_total) AS total, sum(records_processed) AS processed, "
    "sum(records_failed) AS failed_records, sum(duplicates) AS n_duplicates, sum(invalid_rows) AS n_invalid_rows, "
    "sum(missing_fields) AS n_missing_fields, sum(transform_errors) AS n_transform_errors "
    f"FROM ({jobs_floor('p')}) GROUP BY GROUPING SETS ((current), (job_source, current), (bucket))"
)
IMPORT_TRENDS_FLOOR = (
    "SELECT started_at >= {s:DateTime64(3)} AS current, toStartOfDay(started_at) AS bucket, "
    f"{_JOB_FIGURES} FROM ({jobs_floor('p')}) GROUP BY GROUPING SETS ((current), (bucket))"
)
IMPORT_FAILURES_FLOOR = (
    "SELECT failure_reason, failed_stage, count() AS failures, sumMap(map(job_source, toUInt64(1))) AS by_source, "
    "min(ended_at) AS first_failed_at, max(ended_at) AS last_failed_at, "
    "arraySlice(arrayReverseSort(x -> x.2, groupArray((job_id, ended_at))), 1, 3) AS examples "
    f"FROM ({jobs_floor('s')}) WHERE status = 'failed' "
    "GROUP BY GROUPING SETS ((failure_reason, failed_stage), (failure_reason), (failed_stage)) ORDER BY failures DESC"
)
# Per source, the window against the baseline periods before it, and the jobs that overlapped an earlier one.
IMPORT_OPTIMIZATION_FLOOR = (
    "SELECT kind, job_source, started_at >= {s:DateTime64(3)} AS current, "
    "countIf(status IN ('completed', 'failed')) AS finished, countIf(status = 'failed') AS failures, "
    "countIf(status = 'stuck') AS stuck, countIf(overlaps) AS overlapping, "
    "sumIf(records_processed, status = 'completed' AND duration_ms > 0) * 1000 "
    "/ nullIf(sumIf(duration_ms, status = 'completed' AND duration_ms > 0), 0) AS throughput "
    "FROM (SELECT *, started_at < max(ran_until) OVER (PARTITION BY kind, job_source ORDER BY started_at "
    "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS overlaps "
    "FROM (SELECT *, if(end_event != '', ended_at, last_event_at) AS ran_until "
    f"FROM ({jobs_floor('b')}))) "
    "GROUP BY kind, job_source, current"
)


# --- the classes: one per route -----------------------------------------------------------------------

Floor = tuple[str, Callable[[OperationsContext], dict[str, Any]]]


def _path(route: str, **params: Any) -> str:
    return f"{API}{route}?{urlencode(params)}" if params else f"{API}{route}"


def _route(
    name: str,
    floor: Floor,
    *,
    rest: Callable[[OperationsContext], str] | None = None,
    requests: Callable[[OperationsContext, int], Request] | None = None,
) -> QueryClass[OperationsContext]:
    # The measure: one client, each answer timed alone.
    return QueryClass(name, rest=rest, requests=requests, sql=floor, concurrency=(1,))


def _get(route: str, **params: Any) -> Request:
    return ("GET", _path(route, **params), None)


def _one_service(c: OperationsContext, i: int) -> Request:
    # Past the first pass over the services, another page keeps the requests distinct.
    service = c.services[i % len(c.services)]
    return _get(f"/services/{quote(service, safe='')}", **c.dates, offset=i // len(c.services))


def _one_job(c: OperationsContext, i: int) -> Request:
    return _get(f"/imports/{quote(c.jobs[i % len(c.jobs)], safe='')}")


OPERATION_CLASSES: tuple[QueryClass[OperationsContext], ...] = (
    _route("system.health", (HEALTH_FLOOR, window), rest=lambda c: _path("/system/health", **c.dates)),
    _route("system.performance", (PERFORMANCE_FLOOR, window), rest=lambda c: _path("/system/performance", **c.dates)),
    # ``limit`` cuts each of its lists (at most 100 rows).
    _route(
        "system.errors",
        (ERRORS_FLOOR, window),
        requests=lambda c, i: _get("/system/errors", **c.dates, limit=1 + i % MAX_ERROR_GROUPS),
    ),
    _route("system.usage", (USAGE_FLOOR, window), rest=lambda c: _path("/system/usage", **c.dates)),
    _route(
        "services.all",
        (_service_hours_floor(one_service=False), lambda c: {**window(c), "limit": 24, "offset": 0}),
        requests=lambda c, i: _get("/services", **c.dates, offset=i),
    ),
    _route(
        "services.one",
        (_service_hours_floor(one_service=True), lambda c: {**window(c), "v": c.services[0], "limit": 24, "offset": 0}),
        requests=_one_service,
    ),
    # A longer page than there are endpoints: every answer lists them all.
    _route(
        "api.endpoints",
        (ENDPOINTS_FLOOR, lambda c: {**window(c), "limit": 50}),
        requests=lambda c, i: _get("/api/endpoints", **c.dates, limit=50 + i),
    ),
    # How many of the slowest statements, and by what they are slowest: the same statements are read.
    _route(
        "database.performance",
        (DATABASE_FLOOR, window),
        requests=lambda c, i: _get(
            "/database/performance",
            **c.dates,
            limit=1 + i % MAX_STATEMENTS,
            sort=STATEMENT_SORTS[i // MAX_STATEMENTS % len(STATEMENT_SORTS)],
        ),
    ),
    _route(
        "imports.jobs",
        (IMPORT_JOBS_FLOOR, lambda c: {**window(c), "offset": 0}),
        requests=lambda c, i: _get("/imports/jobs", **c.dates, offset=i),
    ),
    _route("imports.job", (IMPORT_JOB_FLOOR, lambda c: {"j": c.jobs[0]}), requests=_one_job),
    _route("imports.sources", (IMPORT_SOURCES_FLOOR, window), rest=lambda c: _path("/imports/sources", **c.dates)),
    _route("imports.quality", (IMPORT_QUALITY_FLOOR, window), rest=lambda c: _path("/imports/quality", **c.dates)),
    _route("imports.trends", (IMPORT_TRENDS_FLOOR, window), rest=lambda c: _path("/imports/trends", **c.dates)),
    # ``examples``: the latest failed jobs listed per group.
    _route(
        "imports.failures",
        (IMPORT_FAILURES_FLOOR, window),
        requests=lambda c, i: _get("/imports/failures", **c.dates, examples=i % (MAX_EXAMPLES + 1)),
    ),
    _route(
        "imports.optimization",
        (IMPORT_OPTIMIZATION_FLOOR, window),
        rest=lambda c: _path("/imports/optimization", **c.dates),
    ),
)


def run(
    size: str = "small",
    *,
    service: Any = None,
    results_dir: Path | None = None,
    workload_end: datetime | None = None,
    classes_wanted: list[str] | None = None,
) -> dict[str, Any]:
    """Run the operations benchmark; ``service`` is an already running service (e.g. the test session's).

    ``classes_wanted``: names of the classes to run (all when None).
    """
    return run_classes(
        size,
        select_classes(OPERATION_CLASSES, classes_wanted),
        _context,
        name=NAME,
        title="operations benchmark",
        id_prefix="bo",
        service=service,
        results_dir=results_dir,
        workload_end=workload_end,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_operations")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--classes", help="comma-separated classes to run (default: all)")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    run(args.size, results_dir=args.results_dir, classes_wanted=wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
