"""System analytics over GraphQL: the same answers as /api/v1/analytics/system/..., /services and
/api/endpoints (the same result cache entries, semantic/system_reads.py), for admins and analysts."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from core.models import SystemAnalytics
from graphql_schema.analytics_base import AnalyticsMap, AnalyticsRange, analytics_period
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadSystemAnalytics
from semantic import (
    api_endpoints,
    capacity_forecast,
    infrastructure_cost,
    service_hours,
    system_errors,
    system_health,
    system_performance,
    system_usage,
)
from semantic.system_reads import SystemReads


@strawberry.enum(description="Time order of the service-hours")
class ServiceHourOrder(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.enum(description="What endpoints are sorted by, largest first")
class EndpointSortField(Enum):
    REQUESTS = "requests"
    SERVER_ERROR_REQUESTS = "server_error_requests"
    ERROR_RATE = "error_rate"
    AVERAGE_MS = "average_ms"
    P95_MS = "p95_ms"
    P99_MS = "p99_ms"


def _reads(info: Info[GraphQLContext, None]) -> SystemReads:
    return SystemReads.of(info.context, info.context.principal)


# ---- health ---------------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=system_health.ServiceHealth, all_fields=True, name="ServiceHealth")
class ServiceHealth:
    status: str = strawberry.field(description="up, degraded, down or unknown")


@strawberry.experimental.pydantic.type(model=system_health.SystemHealth, all_fields=True, name="SystemHealth")
class SystemHealth:
    status: str = strawberry.field(description="the worst status of the rated services: up, degraded, down or unknown")


# ---- performance ----------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(
    model=system_performance.PerformanceFigures, all_fields=True, name="PerformanceFigures"
)
class PerformanceFigures:
    pass


@strawberry.experimental.pydantic.type(
    model=system_performance.PerformancePoint, all_fields=True, name="PerformancePoint"
)
class PerformancePoint:
    pass


@strawberry.experimental.pydantic.type(
    model=system_performance.ServicePerformance, all_fields=True, name="ServicePerformance"
)
class ServicePerformance:
    pass


@strawberry.experimental.pydantic.type(
    model=system_performance.SystemPerformance, all_fields=True, name="SystemPerformance"
)
class SystemPerformance:
    pass


# ---- errors ---------------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=system_errors.ServiceErrors, all_fields=True, name="ServiceErrors")
class ServiceErrors:
    pass


@strawberry.experimental.pydantic.type(model=system_errors.EndpointErrors, all_fields=True, name="EndpointErrors")
class EndpointErrors:
    pass


@strawberry.experimental.pydantic.type(model=system_errors.ErrorTypeErrors, all_fields=True, name="ErrorTypeErrors")
class ErrorTypeErrors:
    severities: AnalyticsMap


@strawberry.experimental.pydantic.type(model=system_errors.ErrorMessage, all_fields=True, name="SystemErrorMessage")
class SystemErrorMessage:
    pass


@strawberry.experimental.pydantic.type(model=system_errors.ErrorPoint, all_fields=True, name="SystemErrorPoint")
class SystemErrorPoint:
    pass


@strawberry.experimental.pydantic.type(model=system_errors.SystemErrors, all_fields=True, name="SystemErrors")
class SystemErrors:
    pass


# ---- usage ----------------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=system_usage.ResourceUse, all_fields=True, name="ResourceUse")
class ResourceUse:
    pass


@strawberry.experimental.pydantic.type(
    model=capacity_forecast.CapacityForecast, all_fields=True, name="CapacityForecast"
)
class CapacityForecast:
    status: str = strawberry.field(description="over, rising, steady or insufficient_data")


@strawberry.experimental.pydantic.type(model=infrastructure_cost.CostModel, all_fields=True, name="CostModel")
class CostModel:
    pass


@strawberry.experimental.pydantic.type(model=infrastructure_cost.ServiceCost, all_fields=True, name="ServiceCost")
class ServiceCost:
    pass


@strawberry.experimental.pydantic.type(model=system_usage.ServiceUsage, all_fields=True, name="ServiceUsage")
class ServiceUsage:
    pass


@strawberry.experimental.pydantic.type(model=system_usage.UsagePoint, all_fields=True, name="UsagePoint")
class UsagePoint:
    pass


@strawberry.experimental.pydantic.type(model=system_usage.SystemUsage, all_fields=True, name="SystemUsage")
class SystemUsage:
    capacity_thresholds: AnalyticsMap


# ---- services and endpoints -----------------------------------------------------------------------


@strawberry.experimental.pydantic.type(
    model=SystemAnalytics, all_fields=True, name="SystemAnalytics", description="The spec's SystemAnalytics"
)
class SystemAnalyticsType:
    endpoint_stats: AnalyticsMap
    status_code_distribution: AnalyticsMap


@strawberry.experimental.pydantic.type(model=service_hours.ServiceHours, all_fields=True, name="ServiceHours")
class ServiceHours:
    pass


@strawberry.experimental.pydantic.type(model=api_endpoints.EndpointStats, all_fields=True, name="EndpointStats")
class EndpointStats:
    status_codes: AnalyticsMap


@strawberry.experimental.pydantic.type(model=api_endpoints.ApiEndpoints, all_fields=True, name="ApiEndpoints")
class ApiEndpoints:
    pass


@strawberry.type
class SystemQueries:
    @strawberry.field(
        description="Each service's status, availability, error rates, p95 response time and last seen; "
        "the overall status",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def system_health(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None
    ) -> SystemHealth:
        answer = await _reads(info).health(analytics_period(info, range))
        return SystemHealth.from_pydantic(system_health.SystemHealth.model_validate(answer.json()))

    @strawberry.field(
        description="Throughput and average, p50, p95 and p99 response times over time, by service",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def system_performance(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, service: str | None = None
    ) -> SystemPerformance:
        answer = await _reads(info).performance(analytics_period(info, range), service=service)
        return SystemPerformance.from_pydantic(system_performance.SystemPerformance.model_validate(answer.json()))

    @strawberry.field(
        description="Errors by service, endpoint and type against the previous period, over time, and the top messages",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def system_errors(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        service: str | None = None,
        limit: int = 10,
    ) -> SystemErrors:
        answer = await _reads(info).errors(analytics_period(info, range), service=service, limit=limit)
        return SystemErrors.from_pydantic(system_errors.SystemErrors.model_validate(answer.json()))

    @strawberry.field(
        description="Requests, active users, resource utilization, capacity forecasts and infrastructure cost by "
        "service",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def system_usage(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, service: str | None = None
    ) -> SystemUsage:
        answer = await _reads(info).usage(analytics_period(info, range), service=service)
        return SystemUsage.from_pydantic(system_usage.SystemUsage.model_validate(answer.json()))

    @strawberry.field(
        description="SystemAnalytics of every service, per hour of the window", permission_classes=[ReadSystemAnalytics]
    )
    @maps_errors
    async def services(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        limit: int = 24,
        offset: int = 0,
        order: ServiceHourOrder = ServiceHourOrder.ASC,
    ) -> ServiceHours:
        answer = await _reads(info).services(
            analytics_period(info, range), service=None, limit=limit, offset=offset, order=order.value
        )
        return ServiceHours.from_pydantic(service_hours.ServiceHours.model_validate(answer.json()))

    @strawberry.field(
        description="SystemAnalytics of one service, per hour of the window", permission_classes=[ReadSystemAnalytics]
    )
    @maps_errors
    async def service(
        self,
        info: Info[GraphQLContext, None],
        service_name: str,
        range: AnalyticsRange | None = None,
        limit: int = 24,
        offset: int = 0,
        order: ServiceHourOrder = ServiceHourOrder.ASC,
    ) -> ServiceHours:
        answer = await _reads(info).services(
            analytics_period(info, range), service=service_name, limit=limit, offset=offset, order=order.value
        )
        return ServiceHours.from_pydantic(service_hours.ServiceHours.model_validate(answer.json()))

    @strawberry.field(
        description="Per endpoint: requests, errors, response time quantiles, status code distribution",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def api_endpoints(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        service: str | None = None,
        sort: EndpointSortField = EndpointSortField.REQUESTS,
        limit: int = 50,
        offset: int = 0,
    ) -> ApiEndpoints:
        answer = await _reads(info).endpoints(
            analytics_period(info, range), service=service, sort=sort.value, limit=limit, offset=offset
        )
        return ApiEndpoints.from_pydantic(api_endpoints.ApiEndpoints.model_validate(answer.json()))
