"""GET /services and GET /services/{service_name}: the spec's SystemAnalytics (core/models.py), every
field, for each hour (``date``, ``hour`` in the period's time zone) in which a service sent requests or
resource samples or ran slow statements, in time order (then by service), a page at a time.

Fields (docs/system.md):
- request_count, success_count (status 100-399), error_count (status 500 and above),
  average_response_time (the mean duration_ms of the requests reporting one), status_code_distribution
  (requests by status, "0" = not given);
- cpu/memory/disk_usage_avg: the mean of the hour's samples of the service's instances (0 without any);
- endpoint_stats: per "METHOD endpoint" (the endpoint alone without a method): request_count,
  success_count, error_count, average_response_time and p95_response_time (quantileTiming);
- db_query_count and db_avg_query_time: the db_query_count and db_time_ms the requests report;
  db_slow_queries: the service's database_query events of at least ANALYTICS_SLOW_QUERY_MS
  (services that report their statements one by one, as this one does);
- cache_hits / cache_misses (requests with cache_hit true / false) and their rate;
- external_api_calls, external_api_errors and external_avg_response_time (external_time_ms per call).

Five statements: how many service-hours the window has, which are the page's, and the slow statements,
then the figures of the page's service-hours only, over its days (requests with their endpoints in
one, resources).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from core.errors import InvalidRequest
from core.models import SystemAnalytics
from semantic.answers import PinnedAnswer
from semantic.compiler import Filter, MetricQuery, compile_query, run_query
from semantic.periods import Period
from semantic.results import PeriodInfo
from semantic.system_queries import local_hour, number_or_none, only_service, ratio, require_known_service
from storage.events import EventStore

MAX_LIMIT = 1000
# Of a service-hour and of each of its endpoints.
_REQUEST_METRICS = (
    "requests",
    "successful_requests",
    "server_error_requests",
    "status_codes",
    "timed_requests",
    "response_time_ms",
    "db_queries",
    "db_time_ms",
    "cache_hits",
    "cache_misses",
    "external_calls",
    "external_errors",
    "external_time_ms",
    "response_time_p95",
)
_RESOURCE_METRICS = tuple(f"{r}_{figure}" for r in ("cpu", "memory", "disk") for figure in ("samples", "percent_total"))
_HOURLY = ("service", "hour")


class ServiceHours(PinnedAnswer):
    period: PeriodInfo
    # The one service asked for (None: every service).
    service: str | None
    # The services with an hour in the window.
    services: list[str]
    # Hours in the window (of every page).
    total: int
    limit: int
    offset: int
    order: str
    slow_query_ms: float
    hours: list[SystemAnalytics]
    source: str


def endpoint_key(method: str, endpoint: str) -> str:
    return f"{method} {endpoint}" if method else endpoint


def _slow_sql(period: Period, filters: tuple[Filter, ...]) -> tuple[str, dict[str, Any]]:
    """SQL of (d_service, d_hour, slow): each service-hour with statements and how many were slow."""
    durations = compile_query(
        MetricQuery("system_statements", ("statements",), period, (*_HOURLY, "duration_ms"), filters), prefix="s"
    )
    sql = f"""SELECT d_service, d_hour, sumIf(m_statements, d_duration_ms >= {{slow_ms:Float64}}) AS slow
        FROM ({durations.sql}) GROUP BY d_service, d_hour"""
    return sql, durations.parameters


def _keys_sql(period: Period, filters: tuple[Filter, ...]) -> tuple[str, dict[str, Any]]:
    """SQL of the window's service-hours (d_service, d_hour): with requests, resource samples or slow
    statements."""
    requests = compile_query(MetricQuery("system_requests", ("requests",), period, _HOURLY, filters), prefix="a")
    samples = compile_query(MetricQuery("system_resources", ("samples",), period, _HOURLY, filters), prefix="b")
    slow, slow_parameters = _slow_sql(period, filters)
    sql = f"""SELECT d_service, d_hour FROM ({requests.sql})
        UNION DISTINCT SELECT d_service, d_hour FROM ({samples.sql})
        UNION DISTINCT SELECT d_service, d_hour FROM ({slow}) WHERE slow > 0"""
    return sql, {**requests.parameters, **samples.parameters, **slow_parameters}


async def service_hours(
    store: EventStore,
    period: Period,
    *,
    service: str | None,
    limit: int,
    offset: int,
    order: Literal["asc", "desc"],
    slow_query_ms: float,
) -> ServiceHours:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    if offset < 0:
        raise InvalidRequest("offset must be 0 or more", details={"field": "offset"})
    filters = only_service(service)
    keys, parameters = _keys_sql(period, filters)
    parameters = {**parameters, "slow_ms": float(slow_query_ms), "limit": limit, "offset": offset}
    direction = "DESC" if order == "desc" else "ASC"
    slow_sql, slow_parameters = _slow_sql(period, filters)
    # Which service-hours there are and which are the page's, then the figures of the page's only.
    summary, page_rows, slow_rows = await asyncio.gather(
        store.query(f"SELECT count(), arraySort(groupUniqArray(d_service)) FROM ({keys})", parameters),
        store.query(
            f"""SELECT d_service, d_hour FROM ({keys})
            ORDER BY d_hour {direction}, d_service {direction}
            LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}""",
            parameters,
        ),
        store.query(f"{slow_sql} HAVING slow > 0", {**slow_parameters, "slow_ms": float(slow_query_ms)}),
    )
    total, names = int(summary.rows[0][0]), list(summary.rows[0][1])
    if service is not None and not total:
        await require_known_service(store, service)
    page = [(row[0], int(row[1])) for row in page_rows.rows]
    slow = {(row[0], int(row[1])): int(row[2]) for row in slow_rows.rows}
    figures, samples, source = await _page_figures(store, period, page)
    return ServiceHours(
        period=PeriodInfo.of(period),
        service=service,
        services=names,
        total=total,
        limit=limit,
        offset=offset,
        order=order,
        slow_query_ms=slow_query_ms,
        hours=[_hour(key, figures.get(key, ({}, {})), samples.get(key, {}), slow.get(key, 0), period) for key in page],
        source=source,
    )


async def _page_figures(
    store: EventStore, period: Period, page: list[tuple[str, int]]
) -> tuple[
    dict[tuple[str, int], tuple[dict[str, Any], dict[str, dict[str, Any]]]],
    dict[tuple[str, int], dict[str, Any]],
    str,
]:
    """The request figures (with those of each endpoint) and the resource figures of the page's
    service-hours: over the page's days only, its services and hours."""
    if not page:
        return {}, {}, compile_query(MetricQuery("system_requests", ("requests",), period)).source
    wanted = set(page)
    hours = [hour for _, hour in page]
    days = [local_hour(hour, period.zone).date() for hour in hours]
    page_period = period.shifted(min(days), max(days))
    filters = (
        Filter("service", tuple(sorted({name for name, _ in page}))),
        Filter("hour", (min(hours),), op="gte"),
        Filter("hour", (max(hours),), op="lte"),
    )
    per_endpoint = (*_HOURLY, "endpoint", "method")
    requests, resources = await asyncio.gather(
        run_query(
            store,
            MetricQuery(
                "system_requests",
                _REQUEST_METRICS,
                page_period,
                per_endpoint,
                filters,
                grouping_sets=(_HOURLY, per_endpoint),
            ),
        ),
        run_query(store, MetricQuery("system_resources", _RESOURCE_METRICS, page_period, _HOURLY, filters)),
    )
    figures: dict[tuple[str, int], tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {}
    for row in requests.rows:
        key = (row["service"], int(row["hour"]))
        if key not in wanted:
            continue
        totals, endpoints = figures.setdefault(key, ({}, {}))
        if row["grouping_set"] == 0:
            totals.update(row)
            continue
        timed = int(row["timed_requests"])
        endpoints[endpoint_key(row["method"], row["endpoint"])] = {
            "endpoint": row["endpoint"],
            "method": row["method"],
            "request_count": int(row["requests"]),
            "success_count": int(row["successful_requests"]),
            "error_count": int(row["server_error_requests"]),
            "average_response_time": float(row["response_time_ms"]) / timed if timed else 0.0,
            "p95_response_time": number_or_none(row["response_time_p95"]),
        }
    samples = {(row["service"], int(row["hour"])): row for row in resources.rows}
    return figures, samples, requests.source


def _hour(
    key: tuple[str, int],
    figures: tuple[dict[str, Any], dict[str, dict[str, Any]]],
    resource: dict[str, Any],
    slow_queries: int,
    period: Period,
) -> SystemAnalytics:
    name, hour = key
    start = local_hour(hour, period.zone)
    request, endpoint_stats = figures
    timed = int(request.get("timed_requests", 0))
    db_queries = int(request.get("db_queries", 0))
    hits, misses = int(request.get("cache_hits", 0)), int(request.get("cache_misses", 0))
    external_calls = int(request.get("external_calls", 0))

    def usage(resource_name: str) -> float:
        samples = int(resource.get(f"{resource_name}_samples", 0))
        return float(resource.get(f"{resource_name}_percent_total", 0.0)) / samples if samples else 0.0

    return SystemAnalytics(
        service_name=name,
        date=start.date(),
        hour=start.hour,
        request_count=int(request.get("requests", 0)),
        success_count=int(request.get("successful_requests", 0)),
        error_count=int(request.get("server_error_requests", 0)),
        average_response_time=float(request.get("response_time_ms", 0.0)) / timed if timed else 0.0,
        cpu_usage_avg=usage("cpu"),
        memory_usage_avg=usage("memory"),
        disk_usage_avg=usage("disk"),
        endpoint_stats=dict(sorted(endpoint_stats.items())),
        status_code_distribution={str(code): int(n) for code, n in sorted((request.get("status_codes") or {}).items())},
        db_query_count=db_queries,
        db_avg_query_time=ratio(float(request.get("db_time_ms", 0.0)), db_queries),
        db_slow_queries=slow_queries,
        cache_hits=hits,
        cache_misses=misses,
        cache_hit_rate=ratio(hits, hits + misses),
        external_api_calls=external_calls,
        external_api_errors=int(request.get("external_errors", 0)),
        external_avg_response_time=ratio(float(request.get("external_time_ms", 0.0)), external_calls),
    )
