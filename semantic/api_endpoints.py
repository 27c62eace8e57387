"""GET /api/endpoints: each endpoint of each service (service, endpoint, method) over the window:
requests, successes (status 100-399), client errors (400-499), server errors (500 and above), the 5xx
share, the average and p50/p95/p99 response times (quantileTiming), the status code distribution and
when it was last called. Sorted by ``sort`` (largest first, then by service, endpoint and method) and
paged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel

from core.errors import InvalidRequest
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, run_query
from semantic.periods import Period
from semantic.results import PeriodInfo
from semantic.system_queries import number_or_none, only_service, ratio, require_known_service, utc
from storage.events import EventStore

MAX_LIMIT = 1000
EndpointSort = Literal["requests", "server_error_requests", "error_rate", "average_ms", "p95_ms", "p99_ms"]
SORTS: tuple[str, ...] = get_args(EndpointSort)
_METRICS = (
    "requests",
    "successful_requests",
    "client_error_requests",
    "server_error_requests",
    "timed_requests",
    "response_time_ms",
    "response_time_quantiles",
    "status_codes",
    "last_seen",
)


class EndpointStats(BaseModel):
    service: str
    endpoint: str
    method: str
    requests: int
    successful_requests: int
    client_error_requests: int
    server_error_requests: int
    error_rate: float
    average_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    # Requests by HTTP status ("0" = not given).
    status_codes: dict[str, int]
    last_seen: datetime | None


class ApiEndpoints(PinnedAnswer):
    period: PeriodInfo
    service: str | None
    sort: str
    total: int
    limit: int
    offset: int
    endpoints: list[EndpointStats]
    source: str


def _stats(row: dict[str, Any]) -> EndpointStats:
    requests, failed, timed = int(row["requests"]), int(row["server_error_requests"]), int(row["timed_requests"])
    quantiles = [number_or_none(v) for v in row["response_time_quantiles"]] if timed else [None, None, None]
    return EndpointStats(
        service=row["service"],
        endpoint=row["endpoint"],
        method=row["method"],
        requests=requests,
        successful_requests=int(row["successful_requests"]),
        client_error_requests=int(row["client_error_requests"]),
        server_error_requests=failed,
        error_rate=ratio(failed, requests),
        average_ms=float(row["response_time_ms"]) / timed if timed else None,
        p50_ms=quantiles[0],
        p95_ms=quantiles[1],
        p99_ms=quantiles[2],
        status_codes={str(code): int(n) for code, n in sorted(row["status_codes"].items())},
        last_seen=utc(row["last_seen"]),
    )


async def api_endpoints(
    store: EventStore,
    period: Period,
    *,
    service: str | None = None,
    sort: str = "requests",
    limit: int = 50,
    offset: int = 0,
) -> ApiEndpoints:
    if sort not in SORTS:
        raise InvalidRequest(f"sort must be one of {', '.join(SORTS)}", details={"field": "sort"})
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    if offset < 0:
        raise InvalidRequest("offset must be 0 or more", details={"field": "offset"})
    result = await run_query(
        store,
        MetricQuery("system_requests", _METRICS, period, ("service", "endpoint", "method"), only_service(service)),
    )
    if service is not None and not result.rows:
        await require_known_service(store, service)
    stats = [_stats(row) for row in result.rows]
    # Endpoints without the figure (no timed requests) sort last.
    stats.sort(key=lambda s: (s.service, s.endpoint, s.method))
    stats.sort(key=lambda s: (getattr(s, sort) is None, -(getattr(s, sort) or 0)))
    return ApiEndpoints(
        period=PeriodInfo.of(period),
        service=service,
        sort=sort,
        total=len(stats),
        limit=limit,
        offset=offset,
        endpoints=stats[offset : offset + limit],
        source=result.source,
    )
