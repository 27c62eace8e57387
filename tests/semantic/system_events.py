"""Hand-built system events (api_request, error_occurred, resource_usage, health_check, database_query)
and their properties read in plain Python as docs/system.md defines them, so tests compute every
expected figure without the SQL under test."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from storage.events import EVENT_SCHEMA


@dataclass(frozen=True)
class Event:
    event_type: str
    at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    user_id: str = ""

    @property
    def service(self) -> str:
        return text(self.properties, "service")


def request(
    at: datetime,
    service: str,
    endpoint: str,
    method: str,
    status: int | None,
    duration: Any = None,
    *,
    user: str = "",
    **extra: Any,
) -> Event:
    props: dict[str, Any] = {"service": service, "endpoint": endpoint, "method": method, **extra}
    if status is not None:
        props["status"] = status
    if duration is not None:
        props["duration_ms"] = duration
    return Event("api_request", at, props, user)


def error(at: datetime, service: str, endpoint: str, error_type: str, severity: str, message: str) -> Event:
    props = {"service": service, "endpoint": endpoint, "error_type": error_type, "severity": severity}
    return Event("error_occurred", at, {**props, "message": message})


def resource(at: datetime, service: str, instance: str, **values: Any) -> Event:
    return Event("resource_usage", at, {"service": service, "instance": instance, **values})


def check(at: datetime, service: str, status: str, latency: Any = None) -> Event:
    props: dict[str, Any] = {"service": service, "status": status}
    if latency is not None:
        props["latency_ms"] = latency
    return Event("health_check", at, props)


def statement(at: datetime, service: str, duration: Any) -> Event:
    return Event(
        "database_query",
        at,
        {
            "service": service,
            "database": "clickhouse",
            "operation": "SELECT",
            "fingerprint": "SELECT ?",
            "duration_ms": duration,
        },
    )


def table(events: list[Event], prefix: str) -> pa.Table:
    n = len(events)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[f"{prefix}-{i}" for i in range(n)],
        event_type=[e.event_type for e in events],
        event_category=["system"] * n,
        timestamp=[e.at for e in events],
        user_id=[e.user_id for e in events],
        properties=[orjson.dumps(e.properties).decode() for e in events],
        processed_at=[datetime(2025, 6, 1, tzinfo=UTC)] * n,
    )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


# ---- properties as docs/system.md reads them ---------------------------------------------------------


def text(props: dict[str, Any], name: str) -> str:
    value = props.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def number(props: dict[str, Any], name: str) -> float | None:
    """A JSON number or a string holding one (true = 1); anything else is no value."""
    value = props.get(name)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def at_least_zero(props: dict[str, Any], name: str) -> float | None:
    value = number(props, name)
    return None if value is None else max(value, 0.0)


def percent(props: dict[str, Any], name: str) -> float | None:
    value = number(props, name)
    return None if value is None else min(max(value, 0.0), 100.0)


def status(props: dict[str, Any]) -> int:
    value = number(props, "status")
    return int(value) if value is not None else 0


def cache_hit(props: dict[str, Any]) -> bool | None:
    value = props.get("cache_hit")
    return value if isinstance(value, bool) else None


def count(props: dict[str, Any], name: str) -> int:
    value = at_least_zero(props, name)
    return int(value) if value is not None else 0


def timing_quantile(values: list[float], level: float) -> float | None:
    """quantileTiming on at most 5,670 values: the whole milliseconds (30 s at most), sorted, the one at
    index floor(level * n)."""
    if not values:
        return None
    assert len(values) <= 5670, "the exact rule holds up to 5,670 values"
    ordered = sorted(int(min(v, 30_000.0)) for v in values)
    return float(ordered[min(int(level * len(ordered)), len(ordered) - 1)])


def local_hour(moment: datetime, zone: Any) -> datetime:
    return moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# ---- the dataset ------------------------------------------------------------------------------------

# The window the tests ask for is 10-16 March 2025; the previous one 3-9 March.
START = datetime(2025, 3, 3, tzinfo=UTC)
# Random events stop before this instant; the hand-placed latest hour of each service comes after.
RANDOM_END = datetime(2025, 3, 16, 9, 0, tzinfo=UTC)
LATEST = datetime(2025, 3, 16, 10, 5, tzinfo=UTC)
ENDPOINTS = {
    "content-service": (("/api/v1/content", "GET"), ("/api/v1/content", "POST"), ("/api/v1/content/{id}", "GET")),
    "search-service": (("/api/v1/search", "GET"), ("/api/v1/search/suggest", "")),
    "analytics": (("/api/v1/analytics/system/health", "GET"),),
}
STATUSES = (200, 200, 200, 200, 201, 304, 400, 404, 500, 503, None)
ERROR_TYPES = ("TimeoutError", "DatabaseError", "ValidationError")
SEVERITIES = ("error", "warning", "critical")
MESSAGES = ("upstream request timed out", "could not serialize access", "payload failed validation", "x" * 600)


def _duration(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.11:
        return str(rng.randint(1, 900))
    if roll < 0.13:
        return -5
    if roll < 0.14:
        return 45_000
    if roll < 0.5:
        return round(rng.uniform(0.5, 1000), 1)
    return rng.randint(1, 900)


def _requests(rng: random.Random) -> list[Event]:
    events: list[Event] = []
    span = (RANDOM_END - START).total_seconds()
    for _ in range(700):
        service = rng.choice(sorted(ENDPOINTS))
        endpoint, method = rng.choice(ENDPOINTS[service])
        extra: dict[str, Any] = {}
        if rng.random() < 0.8:
            extra["cache_hit"] = rng.random() < 0.6
        if rng.random() < 0.7:
            extra["db_query_count"] = rng.randint(0, 5)
            extra["db_time_ms"] = round(rng.uniform(0, 40), 2)
        if rng.random() < 0.4:
            calls = rng.randint(0, 3)
            extra.update(
                external_calls=calls, external_errors=rng.randint(0, calls), external_time_ms=rng.randint(0, 300)
            )
        at = START + timedelta(seconds=rng.random() * span)
        user = f"u{rng.randint(1, 40)}" if rng.random() < 0.5 else ""
        events.append(request(at, service, endpoint, method, rng.choice(STATUSES), _duration(rng), user=user, **extra))
    # The latest hour: content-service answers 1 of 10 with 500 (degraded by its error rate), search-service
    # all well, analytics 1 of 2 with 503 (down by its error rate).
    for i in range(10):
        events.append(
            request(
                LATEST + timedelta(minutes=i),
                "content-service",
                "/api/v1/content",
                "GET",
                500 if i == 3 else 200,
                20 + i,
            )
        )
    for i in range(4):
        events.append(request(LATEST + timedelta(minutes=2 * i), "search-service", "/api/v1/search", "GET", 200, 15))
    events.append(request(LATEST, "analytics", "/api/v1/analytics/system/health", "GET", 200, 3.5))
    events.append(request(LATEST + timedelta(minutes=1), "analytics", "/api/v1/analytics/system/health", "GET", 503, 9))
    return events


def _errors(rng: random.Random) -> list[Event]:
    span = (RANDOM_END - START).total_seconds()
    events = []
    for _ in range(160):
        service = rng.choice(("content-service", "search-service", "media-service"))
        events.append(
            error(
                START + timedelta(seconds=rng.random() * span),
                service,
                rng.choice(("/api/v1/content", "/api/v1/search", "")),
                rng.choice(ERROR_TYPES),
                rng.choice(SEVERITIES),
                rng.choice(MESSAGES),
            )
        )
    return events


def _resources(rng: random.Random) -> list[Event]:
    events = []
    first = datetime(2025, 3, 10, tzinfo=UTC)
    for step in range(0, 24 * 7, 3):
        at = first + timedelta(hours=step, minutes=7)
        # content-service: CPU rising ~4.8 points a day, two instances with 4 cores and 16 GB.
        for instance, offset in (("c1", 0.0), ("c2", 2.0)):
            events.append(
                resource(
                    at,
                    "content-service",
                    instance,
                    cpu_percent=round(20 + 0.2 * step + offset + rng.uniform(-1, 1), 2),
                    memory_percent=round(50 + rng.uniform(-5, 5), 2),
                    disk_percent=round(70 - 0.01 * step, 2),
                    cpu_cores=4,
                    memory_gb=16,
                )
            )
        # search-service: memory above its threshold, disk falling; 2 cores, 8 GB; no disk at times.
        values: dict[str, Any] = {
            "cpu_percent": 35,
            "memory_percent": round(90 + rng.uniform(0, 5), 2),
            "cpu_cores": 2,
            "memory_gb": 8,
        }
        if step % 2 == 0:
            values["disk_percent"] = 60 - 0.1 * step
        events.append(resource(at + timedelta(minutes=20), "search-service", "s1", **values))
    # Odd samples: clamped percentages, a text value, no capacity, one lone sample.
    events.append(
        resource(first + timedelta(hours=5, minutes=1), "search-service", "s1", cpu_percent=150, memory_percent="91.5")
    )
    events.append(
        resource(first + timedelta(hours=5, minutes=2), "search-service", "s1", cpu_percent=-3, memory_percent="n/a")
    )
    events.append(resource(first + timedelta(hours=30), "quiet-service", "", cpu_percent=10))
    events.append(resource(first + timedelta(hours=31), "quiet-service", "", cpu_percent=12, memory_percent=5))
    events.append(
        resource(
            first + timedelta(days=2),
            "media-service",
            "m1",
            cpu_percent=70,
            cpu_cores=8,
            memory_gb=32,
            memory_percent=25,
        )
    )
    return events


def _checks() -> list[Event]:
    events = []
    day = datetime(2025, 3, 10, tzinfo=UTC)
    for hour in range(0, 24 * 6, 6):
        at = day + timedelta(hours=hour, minutes=30)
        events.append(check(at, "content-service", "up", 12))
        events.append(check(at, "search-service", "up" if hour % 12 else "DOWN", 20 + hour % 7))
        events.append(check(at, "media-service", "up", None))
    latest = datetime(2025, 3, 16, 8, 0, tzinfo=UTC)
    events += [
        check(latest, "content-service", "up", 11),
        check(latest, "search-service", "degraded", 40),
        check(latest - timedelta(hours=1), "search-service", "maintenance"),
        # Two checks at the same instant: the worst one is the latest status.
        check(latest, "media-service", "up", 5),
        check(latest, "media-service", "down", 5),
    ]
    return events


def _statements() -> list[Event]:
    at = datetime(2025, 3, 12, 14, 10, tzinfo=UTC)
    durations: list[Any] = [12.5, 499.99, 500.0, 731.25, 2400, 3.25, "900"]
    events = [statement(at + timedelta(minutes=i), "analytics", d) for i, d in enumerate(durations)]
    events.append(statement(at + timedelta(hours=1), "analytics", 650.5))
    events.append(statement(datetime(2025, 3, 5, 1, 0, tzinfo=UTC), "analytics", 999))
    return events


def dataset(seed: int = 20250310) -> list[Event]:
    rng = random.Random(seed)
    events = [*_requests(rng), *_errors(rng), *_resources(rng), *_checks(), *_statements()]
    # The store keeps milliseconds.
    return [replace(e, at=e.at.replace(microsecond=e.at.microsecond // 1000 * 1000)) for e in events]
