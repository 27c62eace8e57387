"""System analytics: /api/v1/analytics/system/..., /services, /services/{service_name} and
/api/endpoints (docs/system.md).

For admins and analysts. Every answer comes through the result cache (semantic/system_reads.py, shared
with GraphQL), says its ``as_of`` and X-Cache hit or miss. A ``service`` no system event ever named is
a 404 naming it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from semantic.api_endpoints import MAX_LIMIT as MAX_ENDPOINTS
from semantic.api_endpoints import ApiEndpoints, EndpointSort
from semantic.service_hours import MAX_LIMIT as MAX_HOURS
from semantic.service_hours import ServiceHours
from semantic.system_errors import MAX_LIMIT as MAX_ERROR_GROUPS
from semantic.system_errors import SystemErrors
from semantic.system_health import SystemHealth
from semantic.system_performance import SystemPerformance
from semantic.system_reads import SystemReads
from semantic.system_usage import SystemUsage
from serve_app.deps import ServicesDep, SystemAnalyticsReader
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics", tags=["system analytics"])

ServiceFilter = Annotated[
    str | None, Query(min_length=1, max_length=200, description="only this service (properties.service)")
]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get(
    "/system/health",
    summary="Each service's status, availability, error rates, p95 response time and last seen; the overall status",
    responses={200: {"model": SystemHealth}, **error_responses(422)},
)
async def system_health(services: ServicesDep, principal: SystemAnalyticsReader, period: PeriodDep) -> Response:
    return cached_response(await SystemReads.of(services, principal).health(period))


@router.get(
    "/system/performance",
    summary="Throughput and average, p50, p95 and p99 response times over time, by service",
    responses={200: {"model": SystemPerformance}, **error_responses(404, 422)},
)
async def system_performance(
    services: ServicesDep, principal: SystemAnalyticsReader, period: PeriodDep, service: ServiceFilter = None
) -> Response:
    return cached_response(await SystemReads.of(services, principal).performance(period, service=service))


@router.get(
    "/system/errors",
    summary="Errors by service, endpoint and type against the previous period, over time, and the top messages",
    responses={200: {"model": SystemErrors}, **error_responses(404, 422)},
)
async def system_errors(
    services: ServicesDep,
    principal: SystemAnalyticsReader,
    period: PeriodDep,
    service: ServiceFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ERROR_GROUPS, description="rows of each list")] = 10,
) -> Response:
    return cached_response(await SystemReads.of(services, principal).errors(period, service=service, limit=limit))


@router.get(
    "/system/usage",
    summary="Requests, active users, resource utilization, capacity forecasts and infrastructure cost by service",
    responses={200: {"model": SystemUsage}, **error_responses(404, 422)},
)
async def system_usage(
    services: ServicesDep, principal: SystemAnalyticsReader, period: PeriodDep, service: ServiceFilter = None
) -> Response:
    return cached_response(await SystemReads.of(services, principal).usage(period, service=service))


@router.get(
    "/services",
    summary="SystemAnalytics of every service, per hour of the window",
    responses={200: {"model": ServiceHours}, **error_responses(422)},
)
async def all_services(
    services: ServicesDep,
    principal: SystemAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=MAX_HOURS, description="service-hours per page")] = 24,
    offset: Offset = 0,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    answer = await SystemReads.of(services, principal).services(
        period, service=None, limit=limit, offset=offset, order=order
    )
    return cached_response(answer)


@router.get(
    "/services/{service_name}",
    summary="SystemAnalytics of one service, per hour of the window",
    responses={200: {"model": ServiceHours}, **error_responses(404, 422)},
)
async def one_service(
    services: ServicesDep,
    principal: SystemAnalyticsReader,
    period: PeriodDep,
    service_name: Annotated[str, Path(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=MAX_HOURS, description="hours per page")] = 24,
    offset: Offset = 0,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    answer = await SystemReads.of(services, principal).services(
        period, service=service_name, limit=limit, offset=offset, order=order
    )
    return cached_response(answer)


@router.get(
    "/api/endpoints",
    summary="Per endpoint: requests, errors, response time quantiles, status code distribution",
    responses={200: {"model": ApiEndpoints}, **error_responses(404, 422)},
)
async def endpoints(
    services: ServicesDep,
    principal: SystemAnalyticsReader,
    period: PeriodDep,
    service: ServiceFilter = None,
    sort: EndpointSort = "requests",
    limit: Annotated[int, Query(ge=1, le=MAX_ENDPOINTS)] = 50,
    offset: Offset = 0,
) -> Response:
    answer = await SystemReads.of(services, principal).endpoints(
        period, service=service, sort=sort, limit=limit, offset=offset
    )
    return cached_response(answer)
