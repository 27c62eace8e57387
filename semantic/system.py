"""System analytics: the service health board over the platform's system events (``api_request``,
``error_occurred``, ``resource_usage``, ``health_check``, and this service's own ``database_query``).

``SystemAnalyticsService`` answers the endpoints of docs/system.md, each from its own module:
health (semantic/system_health.py), performance (system_performance.py), errors (system_errors.py),
usage with capacity and cost (system_usage.py), SystemAnalytics per service and hour
(service_hours.py) and API endpoints (api_endpoints.py). They read the hourly rollups of migration
017 (and 019's database_statements) through the catalog's system families.

System analytics describe the platform itself, not its content: admins and analysts may read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from core.settings import Settings
from semantic.api_endpoints import ApiEndpoints, api_endpoints
from semantic.infrastructure_cost import CostModel
from semantic.periods import Period
from semantic.service_hours import ServiceHours, service_hours
from semantic.system_errors import SystemErrors, system_errors
from semantic.system_health import SystemHealth, system_health
from semantic.system_performance import SystemPerformance, system_performance
from semantic.system_usage import SystemUsage, system_usage
from storage.events import EventStore


@dataclass(frozen=True, slots=True)
class SystemRules:
    """The thresholds and the cost model of Settings (docs/settings.md)."""

    degraded_error_rate: float = 0.05
    down_error_rate: float = 0.5
    capacity_percent: dict[str, float] = field(default_factory=lambda: {"cpu": 80.0, "memory": 85.0, "disk": 90.0})
    cost_model: CostModel = field(
        default_factory=lambda: CostModel(cost_per_cpu_hour=0.04, cost_per_gb_hour=0.005, cost_per_million_requests=0.2)
    )
    slow_query_ms: float = 500.0

    @classmethod
    def of(cls, settings: Settings) -> SystemRules:
        return cls(
            degraded_error_rate=settings.health_degraded_error_rate,
            down_error_rate=settings.health_down_error_rate,
            capacity_percent={
                "cpu": settings.capacity_cpu_percent,
                "memory": settings.capacity_memory_percent,
                "disk": settings.capacity_disk_percent,
            },
            cost_model=CostModel(
                cost_per_cpu_hour=settings.cost_per_cpu_hour,
                cost_per_gb_hour=settings.cost_per_gb_hour,
                cost_per_million_requests=settings.cost_per_million_requests,
            ),
            slow_query_ms=settings.slow_query_ms,
        )


class SystemAnalyticsService:
    def __init__(self, store: EventStore, rules: SystemRules | None = None) -> None:
        self._store = store
        self.rules = rules or SystemRules()

    async def health(self, period: Period) -> SystemHealth:
        return await system_health(
            self._store,
            period,
            degraded_error_rate=self.rules.degraded_error_rate,
            down_error_rate=self.rules.down_error_rate,
        )

    async def performance(self, period: Period, *, service: str | None = None) -> SystemPerformance:
        return await system_performance(self._store, period, service=service)

    async def errors(self, period: Period, *, service: str | None = None, limit: int = 10) -> SystemErrors:
        return await system_errors(self._store, period, service=service, limit=limit)

    async def usage(self, period: Period, *, service: str | None = None) -> SystemUsage:
        return await system_usage(
            self._store,
            period,
            thresholds=self.rules.capacity_percent,
            cost_model=self.rules.cost_model,
            service=service,
        )

    async def services(
        self,
        period: Period,
        *,
        service: str | None = None,
        limit: int = 24,
        offset: int = 0,
        order: Literal["asc", "desc"] = "asc",
    ) -> ServiceHours:
        return await service_hours(
            self._store,
            period,
            service=service,
            limit=limit,
            offset=offset,
            order=order,
            slow_query_ms=self.rules.slow_query_ms,
        )

    async def endpoints(
        self,
        period: Period,
        *,
        service: str | None = None,
        sort: str = "requests",
        limit: int = 50,
        offset: int = 0,
    ) -> ApiEndpoints:
        return await api_endpoints(self._store, period, service=service, sort=sort, limit=limit, offset=offset)
