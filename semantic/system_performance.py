"""GET /system/performance: throughput, 5xx share, and the average, p50, p95 and p99 response times,
over the window and per bucket of its granularity, for the platform and for each service.

One statement: the requests family by bucket and service in four groupings (all, per service, per
bucket, per bucket and service). Throughput is requests per second of the time a bucket covers inside
the window; response times are of the requests that report ``duration_ms``, their quantiles
quantileTiming's (docs/metrics.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from semantic.answers import PinnedAnswer
from semantic.catalog import RESPONSE_TIME_LEVELS
from semantic.compiler import MetricQuery, run_query
from semantic.periods import Period, local_midnight
from semantic.results import PeriodInfo, bucket_label, period_buckets
from semantic.system_queries import number_or_none, only_service, ratio, require_known_service
from storage.events import EventStore

_METRICS = ("requests", "server_error_requests", "timed_requests", "response_time_ms", "response_time_quantiles")
_ALL, _PER_SERVICE, _PER_BUCKET, _PER_BUCKET_AND_SERVICE = range(4)


class PerformanceFigures(BaseModel):
    requests: int
    throughput_per_second: float
    server_error_requests: int
    error_rate: float
    average_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class PerformancePoint(PerformanceFigures):
    bucket: str


class ServicePerformance(BaseModel):
    service: str
    totals: PerformanceFigures
    series: list[PerformancePoint]


class SystemPerformance(PinnedAnswer):
    period: PeriodInfo
    service: str | None
    totals: PerformanceFigures
    series: list[PerformancePoint]
    services: list[ServicePerformance]
    source: str


def bucket_seconds(period: Period) -> dict[str, float]:
    """Each bucket's label -> the seconds of it that lie inside the period."""
    zone = period.zone
    if period.granularity == "hour":
        start, end = int(period.start.timestamp()), int(period.end.timestamp())
        return {bucket_label(moment, period): 3600.0 for moment in range(start, end, 3600)}
    spans: dict[str, float] = {}
    for day in period.dates():
        # A local day is 23, 24 or 25 hours long.
        length = (local_midnight(day + timedelta(days=1), zone) - local_midnight(day, zone)).total_seconds()
        label = period_buckets(period.shifted(day, day))[0]
        spans[label] = spans.get(label, 0.0) + length
    return spans


def _figures(row: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    row = row or {}
    requests = int(row.get("requests", 0))
    server_errors = int(row.get("server_error_requests", 0))
    timed = int(row.get("timed_requests", 0))
    levels: list[Any] = list(row.get("response_time_quantiles") or []) if timed else []
    quantiles = [number_or_none(v) for v in levels] or [None] * len(RESPONSE_TIME_LEVELS)
    return {
        "requests": requests,
        "throughput_per_second": requests / seconds if seconds else 0.0,
        "server_error_requests": server_errors,
        "error_rate": ratio(server_errors, requests),
        "average_ms": float(row.get("response_time_ms", 0.0)) / timed if timed else None,
        "p50_ms": quantiles[0],
        "p95_ms": quantiles[1],
        "p99_ms": quantiles[2],
    }


async def system_performance(store: EventStore, period: Period, *, service: str | None = None) -> SystemPerformance:
    result = await run_query(
        store,
        MetricQuery(
            "system_requests",
            _METRICS,
            period,
            ("bucket", "service"),
            only_service(service),
            grouping_sets=((), ("service",), ("bucket",), ("bucket", "service")),
        ),
    )
    totals: dict[str, Any] | None = None
    per_service: dict[str, dict[str, Any]] = {}
    per_bucket: dict[str, dict[str, Any]] = {}
    per_bucket_service: dict[tuple[str, str], dict[str, Any]] = {}
    for row in result.rows:
        grouping = row["grouping_set"]
        if grouping == _ALL:
            totals = row
        elif grouping == _PER_SERVICE:
            per_service[row["service"]] = row
        elif grouping == _PER_BUCKET:
            per_bucket[bucket_label(row["bucket"], period)] = row
        else:
            per_bucket_service[(row["service"], bucket_label(row["bucket"], period))] = row
    if service is not None and not per_service:
        await require_known_service(store, service)
    spans = bucket_seconds(period)
    window_seconds = (period.end - period.start).total_seconds()

    def series(rows: dict[str, dict[str, Any]]) -> list[PerformancePoint]:
        return [PerformancePoint(bucket=label, **_figures(rows.get(label), spans[label])) for label in spans]

    return SystemPerformance(
        period=PeriodInfo.of(period),
        service=service,
        totals=PerformanceFigures(**_figures(totals, window_seconds)),
        series=series(per_bucket),
        services=[
            ServicePerformance(
                service=name,
                totals=PerformanceFigures(**_figures(row, window_seconds)),
                series=series({label: r for (s, label), r in per_bucket_service.items() if s == name}),
            )
            for name, row in sorted(per_service.items())
        ],
        source=result.source,
    )
