"""GET /system/health: each service's status, availability, error rates, p95 response time and when it
was last seen, and the platform's overall status.

A service's status is the worse of two ratings, each taken where it exists:
- its latest health check in the window: ``down``, ``degraded`` or ``up`` (other texts rate nothing);
- its current error rate, the share of its requests answered 5xx in the latest hour of the window in
  which it had requests: at least ``down_error_rate`` is down, at least ``degraded_error_rate`` is
  degraded, below is up.
A service with neither is ``unknown``. The overall status is the worst status of the rated services
(down, then degraded, then up), ``unknown`` when no service is rated. ``reasons`` say which rating
made a service degraded or down.

Availability is the share of the window's health checks that were not down (checks of any other text
left out); the window's error rate is its 5xx share over the whole window.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, compile_query, run_query
from semantic.periods import Period
from semantic.results import PeriodInfo
from semantic.system_queries import local_hour, number_or_none, ratio, utc
from storage.events import EventStore

STATUSES = ("up", "degraded", "down")
_RANK = {"unknown": -1, "up": 0, "degraded": 1, "down": 2}


class ServiceHealth(BaseModel):
    service: str
    status: str
    reasons: list[str]
    requests: int
    server_error_requests: int
    error_rate: float
    # The 5xx share in the latest hour with requests, and that hour (its start in the period's zone).
    current_error_rate: float | None
    current_hour: datetime | None
    response_time_p95_ms: float | None
    health_checks: int
    availability: float | None
    latest_check_status: str | None
    latest_check_at: datetime | None
    errors: int
    last_seen: datetime | None


class SystemHealth(PinnedAnswer):
    period: PeriodInfo
    status: str
    services: list[ServiceHealth]
    degraded_error_rate: float
    down_error_rate: float
    source: str


def rate_error(rate: float, degraded: float, down: float) -> str:
    if rate >= down:
        return "down"
    if rate >= degraded:
        return "degraded"
    return "up"


def overall_status(statuses: list[str]) -> str:
    rated = [s for s in statuses if s != "unknown"]
    return max(rated, key=_RANK.__getitem__) if rated else "unknown"


async def _latest_hours(store: EventStore, period: Period) -> dict[str, tuple[int, int, int]]:
    """service -> (its latest hour with requests, that hour's requests, its 5xx requests)."""
    inner = compile_query(
        MetricQuery("system_requests", ("requests", "server_error_requests"), period, ("service", "hour")),
        prefix="h",
    )
    result = await store.query(
        f"""SELECT d_service, max(d_hour), argMax(m_requests, d_hour), argMax(m_server_error_requests, d_hour)
        FROM ({inner.sql}) GROUP BY d_service""",
        inner.parameters,
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in result.rows}


async def system_health(
    store: EventStore, period: Period, *, degraded_error_rate: float, down_error_rate: float
) -> SystemHealth:
    by_service = ("service",)
    requests, latest, checks, errors, resources = await asyncio.gather(
        run_query(
            store,
            MetricQuery(
                "system_requests",
                ("requests", "server_error_requests", "response_time_p95", "last_seen"),
                period,
                by_service,
            ),
        ),
        _latest_hours(store, period),
        run_query(
            store,
            MetricQuery(
                "system_health",
                ("checks", "up_checks", "degraded_checks", "down_checks", "latest_status", "last_check"),
                period,
                by_service,
            ),
        ),
        run_query(store, MetricQuery("system_errors", ("errors", "last_seen"), period, by_service)),
        run_query(store, MetricQuery("system_resources", ("last_seen",), period, by_service)),
    )
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, rows in (("requests", requests), ("checks", checks), ("errors", errors), ("resources", resources)):
        for row in rows.rows:
            found.setdefault(row["service"], {})[kind] = row
    services = [
        _service_health(name, parts, latest.get(name), period, degraded_error_rate, down_error_rate)
        for name, parts in sorted(found.items())
    ]
    return SystemHealth(
        period=PeriodInfo.of(period),
        status=overall_status([s.status for s in services]),
        services=services,
        degraded_error_rate=degraded_error_rate,
        down_error_rate=down_error_rate,
        source=requests.source,
    )


def _service_health(
    name: str,
    parts: dict[str, dict[str, Any]],
    latest: tuple[int, int, int] | None,
    period: Period,
    degraded: float,
    down: float,
) -> ServiceHealth:
    request_row = parts.get("requests", {})
    check_row = parts.get("checks", {})
    requests = int(request_row.get("requests", 0))
    server_errors = int(request_row.get("server_error_requests", 0))
    ratings: list[tuple[str, str]] = []

    latest_status = check_row.get("latest_status") or None
    latest_check_at = utc(check_row.get("last_check"))
    if latest_status in STATUSES:
        ratings.append((latest_status, f"latest health check ({latest_check_at:%Y-%m-%dT%H:%M:%SZ}): {latest_status}"))

    current_rate: float | None = None
    current_hour: datetime | None = None
    if latest is not None and latest[1] > 0:
        hour, hour_requests, hour_errors = latest
        current_rate = hour_errors / hour_requests
        current_hour = local_hour(hour, period.zone)
        rated = rate_error(current_rate, degraded, down)
        threshold = down if rated == "down" else degraded
        ratings.append(
            (
                rated,
                f"5xx share {current_rate:.4f} in the hour from {current_hour.isoformat()} is at least {threshold:g}",
            )
        )

    status = overall_status([rating for rating, _ in ratings])
    up_checks, degraded_checks, down_checks = (int(check_row.get(f"{s}_checks", 0)) for s in STATUSES)
    rated_checks = up_checks + degraded_checks + down_checks
    seen = [
        utc(parts.get(kind, {}).get(column))
        for kind, column in (
            ("requests", "last_seen"),
            ("checks", "last_check"),
            ("errors", "last_seen"),
            ("resources", "last_seen"),
        )
    ]
    moments = [moment for moment in seen if moment is not None]
    return ServiceHealth(
        service=name,
        status=status,
        reasons=[reason for rating, reason in ratings if rating != "up"],
        requests=requests,
        server_error_requests=server_errors,
        error_rate=ratio(server_errors, requests),
        current_error_rate=current_rate,
        current_hour=current_hour,
        response_time_p95_ms=number_or_none(request_row.get("response_time_p95")),
        health_checks=int(check_row.get("checks", 0)),
        availability=(up_checks + degraded_checks) / rated_checks if rated_checks else None,
        latest_check_status=latest_status,
        latest_check_at=latest_check_at,
        errors=int(parts.get("errors", {}).get("errors", 0)),
        last_seen=max(moments) if moments else None,
    )
