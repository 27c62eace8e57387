"""Infrastructure cost: what the services' capacity and requests cost under the cost model of Settings
(ANALYTICS_COST_PER_CPU_HOUR, ANALYTICS_COST_PER_GB_HOUR, ANALYTICS_COST_PER_MILLION_REQUESTS).

Capacity is paid for by the hour it is there, used or not. An instance-hour is an hour (of the period's
time zone) in which an instance of a service sent a ``resource_usage`` sample; it counts the largest
``cpu_cores`` and ``memory_gb`` the instance reported that hour (instance-hours reporting neither
cost nothing and are counted in ``instance_hours_without_capacity``). Used capacity is the capacity
times the hour's average utilization (cpu_percent, memory_percent); ``idle_cost`` is what the unused
part cost, over the instance-hours that report both the capacity and the utilization.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from semantic.compiler import Filter, MetricQuery, compile_query
from semantic.periods import Period
from storage.events import EventStore


class CostModel(BaseModel):
    cost_per_cpu_hour: float
    cost_per_gb_hour: float
    cost_per_million_requests: float


class CapacityUse(BaseModel):
    """What one service (or all) held and used over the window."""

    instances: int
    instance_hours: int
    instance_hours_without_capacity: int
    cpu_core_hours: float
    used_cpu_core_hours: float
    idle_cpu_core_hours: float
    memory_gb_hours: float
    used_memory_gb_hours: float
    idle_memory_gb_hours: float


class ServiceCost(CapacityUse):
    requests: int
    compute_cost: float
    memory_cost: float
    request_cost: float
    total_cost: float
    idle_cost: float

    @classmethod
    def of(cls, use: CapacityUse, requests: int, model: CostModel) -> ServiceCost:
        compute = use.cpu_core_hours * model.cost_per_cpu_hour
        memory = use.memory_gb_hours * model.cost_per_gb_hour
        per_request = requests / 1_000_000 * model.cost_per_million_requests
        idle = use.idle_cpu_core_hours * model.cost_per_cpu_hour + use.idle_memory_gb_hours * model.cost_per_gb_hour
        return cls(
            **use.model_dump(),
            requests=requests,
            compute_cost=compute,
            memory_cost=memory,
            request_cost=per_request,
            total_cost=compute + memory + per_request,
            idle_cost=idle,
        )


def _sum(left: CapacityUse, right: CapacityUse) -> CapacityUse:
    return CapacityUse(**{name: getattr(left, name) + getattr(right, name) for name in CapacityUse.model_fields})


NO_CAPACITY = CapacityUse(
    instances=0,
    instance_hours=0,
    instance_hours_without_capacity=0,
    cpu_core_hours=0.0,
    used_cpu_core_hours=0.0,
    idle_cpu_core_hours=0.0,
    memory_gb_hours=0.0,
    used_memory_gb_hours=0.0,
    idle_memory_gb_hours=0.0,
)


def total_capacity(uses: list[CapacityUse]) -> CapacityUse:
    total = NO_CAPACITY
    for use in uses:
        total = _sum(total, use)
    return total


async def capacity_by_service(store: EventStore, period: Period, filters: tuple[Filter, ...]) -> dict[str, CapacityUse]:
    """Each service's capacity over the window, from its instance-hours (one statement)."""
    hours = compile_query(
        MetricQuery(
            "system_resources",
            ("cpu_cores", "memory_gb", "cpu_percent_avg", "memory_percent_avg"),
            period,
            ("service", "instance", "hour"),
            filters,
        ),
        prefix="c",
    )
    both_cpu = "m_cpu_cores > 0 AND isNotNull(m_cpu_percent_avg)"
    both_memory = "m_memory_gb > 0 AND isNotNull(m_memory_percent_avg)"
    result = await store.query(
        f"""SELECT
            d_service,
            uniqExact(d_instance),
            count(),
            countIf(m_cpu_cores = 0 AND m_memory_gb = 0),
            sum(m_cpu_cores),
            sumIf(m_cpu_cores * m_cpu_percent_avg / 100, {both_cpu}),
            sumIf(m_cpu_cores * (1 - m_cpu_percent_avg / 100), {both_cpu}),
            sum(m_memory_gb),
            sumIf(m_memory_gb * m_memory_percent_avg / 100, {both_memory}),
            sumIf(m_memory_gb * (1 - m_memory_percent_avg / 100), {both_memory})
        FROM ({hours.sql})
        GROUP BY d_service""",
        hours.parameters,
    )
    uses: dict[str, CapacityUse] = {}
    for row in result.rows:
        values: list[Any] = list(row[1:])
        uses[row[0]] = CapacityUse(
            instances=int(values[0]),
            instance_hours=int(values[1]),
            instance_hours_without_capacity=int(values[2]),
            cpu_core_hours=float(values[3]),
            used_cpu_core_hours=float(values[4] or 0.0),
            idle_cpu_core_hours=float(values[5] or 0.0),
            memory_gb_hours=float(values[6]),
            used_memory_gb_hours=float(values[7] or 0.0),
            idle_memory_gb_hours=float(values[8] or 0.0),
        )
    return uses
