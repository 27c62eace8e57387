"""GET /system/usage: requests and active users, resource utilization by service, capacity planning
and infrastructure cost.

- requests and active users (distinct ``user_id`` of the requests that carry one), in total, per
  service and per bucket;
- utilization of CPU, memory and disk per service: the mean of the window's samples and the largest
  sample; per bucket the mean of every service's samples;
- capacity: per service and resource, the trend of its hourly averages and when it is forecast to
  reach the threshold of Settings (semantic/capacity_forecast.py);
- cost: per service and in total, under the cost model of Settings (semantic/infrastructure_cost.py).

Four statements: requests (three groupings), resources per service (with the trend of each resource,
fitted over its service-hours), resources per bucket, and the instance-hours the cost is made of.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from pydantic import BaseModel

from semantic.answers import PinnedAnswer
from semantic.capacity_forecast import CapacityForecast, HourlyTrend, forecast
from semantic.compiler import Filter, MetricQuery, compile_query, run_query
from semantic.infrastructure_cost import (
    NO_CAPACITY,
    CapacityUse,
    CostModel,
    ServiceCost,
    capacity_by_service,
    total_capacity,
)
from semantic.periods import Period
from semantic.results import PeriodInfo, bucket_label, period_buckets
from semantic.system_queries import number_or_none, only_service, ratio, require_known_service
from storage.events import EventStore

RESOURCES = ("cpu", "memory", "disk")
_RESOURCE_METRICS = tuple(
    f"{resource}_{figure}" for resource in RESOURCES for figure in ("samples", "percent_total", "percent_max")
)
_SERIES_METRICS = tuple(f"{resource}_{figure}" for resource in RESOURCES for figure in ("samples", "percent_total"))


class ResourceUse(BaseModel):
    samples: int
    average_percent: float | None
    peak_percent: float | None


class ServiceUsage(BaseModel):
    service: str
    requests: int
    share_of_requests: float
    active_users: int
    cpu: ResourceUse
    memory: ResourceUse
    disk: ResourceUse
    capacity: list[CapacityForecast]
    cost: ServiceCost


class UsagePoint(BaseModel):
    bucket: str
    requests: int
    active_users: int
    cpu_percent: float | None
    memory_percent: float | None
    disk_percent: float | None


class SystemUsage(PinnedAnswer):
    period: PeriodInfo
    service: str | None
    requests: int
    active_users: int
    series: list[UsagePoint]
    services: list[ServiceUsage]
    capacity_thresholds: dict[str, float]
    cost_model: CostModel
    cost: ServiceCost
    source: str


def _mean(total: float, samples: int) -> float | None:
    return total / samples if samples else None


async def _resources_by_service(
    store: EventStore, period: Period, filters: tuple[Filter, ...]
) -> dict[str, dict[str, tuple[ResourceUse, HourlyTrend]]]:
    """Per service and resource: the window's samples, mean and peak, and the trend of its hourly
    averages (one statement over the service-hours)."""
    hours = compile_query(
        MetricQuery("system_resources", _RESOURCE_METRICS, period, ("service", "hour"), filters), prefix="r"
    )
    columns = []
    for resource in RESOURCES:
        samples, total = f"m_{resource}_samples", f"m_{resource}_percent_total"
        sampled, average = f"{samples} > 0", f"{total} / {samples}"
        columns += [
            f"sum({samples})",
            f"sum({total})",
            f"maxIf(m_{resource}_percent_max, {sampled})",
            f"countIf({sampled})",
            f"tupleElement(simpleLinearRegressionIf((toInt64(d_hour) - {{origin:Int64}}) / 3600, {average}, {sampled})"
            f" AS {resource}_fit, 1)",
            f"tupleElement({resource}_fit, 2)",
            f"maxIf(d_hour, {sampled})",
            f"argMaxIf({average}, d_hour, {sampled})",
        ]
    origin = int(period.start.timestamp())
    result = await store.query(
        f"SELECT d_service, {', '.join(columns)} FROM ({hours.sql}) GROUP BY d_service",
        {**hours.parameters, "origin": origin},
    )
    out: dict[str, dict[str, tuple[ResourceUse, HourlyTrend]]] = {}
    for row in result.rows:
        per_resource = {}
        for index, resource in enumerate(RESOURCES):
            samples, total, peak, with_samples, slope, intercept, latest, latest_value = row[
                1 + 8 * index : 9 + 8 * index
            ]
            use = ResourceUse(
                samples=int(samples),
                average_percent=_mean(float(total), int(samples)),
                peak_percent=float(peak) if int(samples) else None,
            )
            trend = HourlyTrend(
                hours=int(with_samples),
                slope=float(slope),
                intercept=float(intercept),
                origin=origin,
                latest_hour=int(latest) if int(with_samples) else None,
                latest_percent=number_or_none(latest_value) if int(with_samples) else None,
            )
            per_resource[resource] = (use, trend)
        out[row[0]] = per_resource
    return out


async def system_usage(
    store: EventStore,
    period: Period,
    *,
    thresholds: dict[str, float],
    cost_model: CostModel,
    service: str | None = None,
) -> SystemUsage:
    filters = only_service(service)
    requests, resources, series, capacity = await asyncio.gather(
        run_query(
            store,
            MetricQuery(
                "system_requests",
                ("requests", "users"),
                period,
                ("service", "bucket"),
                filters,
                grouping_sets=((), ("service",), ("bucket",)),
            ),
        ),
        _resources_by_service(store, period, filters),
        run_query(store, MetricQuery("system_resources", _SERIES_METRICS, period, ("bucket",), filters)),
        capacity_by_service(store, period, filters),
    )
    total: dict[str, Any] = {}
    per_service: dict[str, dict[str, Any]] = {}
    per_bucket: dict[str, dict[str, Any]] = {}
    for row in requests.rows:
        if row["grouping_set"] == 0:
            total = row
        elif row["grouping_set"] == 1:
            per_service[row["service"]] = row
        else:
            per_bucket[bucket_label(row["bucket"], period)] = row
    resource_buckets = {bucket_label(row["bucket"], period): row for row in series.rows}
    names = sorted({*per_service, *resources, *capacity})
    if service is not None and not names:
        await require_known_service(store, service)
    all_requests = int(total.get("requests", 0))
    nothing = ResourceUse(samples=0, average_percent=None, peak_percent=None)
    no_trend = HourlyTrend(0, math.nan, math.nan, 0, None, None)

    def usage(name: str) -> ServiceUsage:
        request_row = per_service.get(name, {})
        service_requests = int(request_row.get("requests", 0))
        mine = resources.get(name, {})
        use = {resource: mine.get(resource, (nothing, no_trend))[0] for resource in RESOURCES}
        return ServiceUsage(
            service=name,
            requests=service_requests,
            share_of_requests=ratio(service_requests, all_requests),
            active_users=int(request_row.get("users", 0)),
            cpu=use["cpu"],
            memory=use["memory"],
            disk=use["disk"],
            capacity=[
                forecast(resource, mine.get(resource, (nothing, no_trend))[1], thresholds[resource], period.zone)
                for resource in RESOURCES
            ],
            cost=ServiceCost.of(capacity.get(name, NO_CAPACITY), service_requests, cost_model),
        )

    def point(label: str) -> UsagePoint:
        request_row, resource_row = per_bucket.get(label, {}), resource_buckets.get(label, {})
        averages = {
            resource: _mean(
                float(resource_row.get(f"{resource}_percent_total", 0.0)),
                int(resource_row.get(f"{resource}_samples", 0)),
            )
            for resource in RESOURCES
        }
        return UsagePoint(
            bucket=label,
            requests=int(request_row.get("requests", 0)),
            active_users=int(request_row.get("users", 0)),
            cpu_percent=averages["cpu"],
            memory_percent=averages["memory"],
            disk_percent=averages["disk"],
        )

    every_use: list[CapacityUse] = list(capacity.values())
    return SystemUsage(
        period=PeriodInfo.of(period),
        service=service,
        requests=all_requests,
        active_users=int(total.get("users", 0)),
        series=[point(label) for label in period_buckets(period)],
        services=[usage(name) for name in names],
        capacity_thresholds=dict(thresholds),
        cost_model=cost_model,
        cost=ServiceCost.of(total_capacity(every_use), all_requests, cost_model),
        source=requests.source,
    )
