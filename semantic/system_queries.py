"""What the system analytics modules share: reading the system families of the catalog, the services
they name, and the values their rows come back as.

The families (semantic/catalog.py: system_requests, system_errors, system_resources, system_health,
system_statements) are answered from their hourly rollups where the period's time zone has whole-hour
offsets, from raw events elsewhere (semantic/compiler.py); either way the numbers are the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from math import isnan
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import NotFound
from semantic.compiler import Filter
from storage.events import EventStore

# Every table that names services: a service is known once any of them holds a row of it.
_SERVICE_TABLES = (
    "system_requests_hourly",
    "system_errors_hourly",
    "system_resources_hourly",
    "system_health_hourly",
    "database_statements",
)


def only_service(service: str | None) -> tuple[Filter, ...]:
    """The filter of an optional ``service`` parameter."""
    return (Filter("service", (service,)),) if service is not None else ()


async def require_known_service(store: EventStore, service: str) -> None:
    """NotFound naming ``service`` unless some system event (at any time) names it."""
    branches = " UNION ALL ".join(
        f"SELECT 1 FROM (SELECT service FROM {table} WHERE service = {{service:String}} LIMIT 1)"
        for table in _SERVICE_TABLES
    )
    result = await store.query(f"SELECT count() FROM ({branches})", {"service": service})
    if not int(result.rows[0][0]):
        raise NotFound(
            f"service {service!r} has sent no system events; GET /api/v1/analytics/services lists the services",
            details={"service": service},
        )


def utc(value: Any) -> datetime | None:
    """A DateTime64 from ClickHouse (naive, UTC) as an aware instant; None for none."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def local_hour(epoch_seconds: int, zone: ZoneInfo) -> datetime:
    """The start of an ``hour`` dimension value, in the period's zone."""
    return datetime.fromtimestamp(int(epoch_seconds), zone)


def number_or_none(value: Any) -> float | None:
    """A nullable metric (a quantile, an average) as JSON has it: None for NULL or NaN."""
    if value is None:
        return None
    number = float(value)
    return None if isnan(number) else number


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0
