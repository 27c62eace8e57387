"""GET /system/errors: ``error_occurred`` events by service, endpoint and error type (with severities),
each against the previous period of the same length, per bucket, and the most frequent messages;
beside them the requests answered 5xx and their share of all requests.

Groups present in either period are listed (a group gone quiet shows 0 now), most errors first, then
most errors before, then by name; ``limit`` caps each list. Messages are compared by their first 500
characters, per service and error type.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from core.errors import InvalidRequest
from semantic.answers import PinnedAnswer
from semantic.compiler import MetricQuery, run_query
from semantic.periods import Period
from semantic.results import MetricChange, PeriodInfo, bucket_label, period_buckets
from semantic.system_queries import only_service, ratio, require_known_service, utc
from storage.events import EventStore

MAX_LIMIT = 100
_DIMENSIONS = ("period", "service", "endpoint", "error_type", "severity", "bucket")
_GROUPINGS = (
    ("period",),
    ("period", "service"),
    ("period", "service", "endpoint"),
    ("period", "error_type"),
    ("period", "error_type", "severity"),
    ("period", "bucket"),
)
_TOTAL, _SERVICE, _ENDPOINT, _TYPE, _SEVERITY, _BUCKET = range(len(_GROUPINGS))


class ErrorTrend(BaseModel):
    errors: int
    previous_errors: int
    change_percent: float | None


class ServiceErrors(ErrorTrend):
    service: str


class EndpointErrors(ErrorTrend):
    service: str
    endpoint: str


class ErrorTypeErrors(ErrorTrend):
    error_type: str
    # Errors of the period by severity.
    severities: dict[str, int]


class ErrorMessage(BaseModel):
    service: str
    error_type: str
    message: str
    errors: int
    last_seen: datetime | None


class ErrorPoint(BaseModel):
    bucket: str
    errors: int
    server_error_requests: int


class SystemErrors(PinnedAnswer):
    period: PeriodInfo
    previous_period: PeriodInfo
    service: str | None
    errors: MetricChange
    server_error_requests: MetricChange
    request_error_rate: MetricChange
    by_service: list[ServiceErrors]
    by_endpoint: list[EndpointErrors]
    by_error_type: list[ErrorTypeErrors]
    series: list[ErrorPoint]
    top_messages: list[ErrorMessage]
    source: str


def _trend(now: int, before: int) -> dict[str, Any]:
    return {
        "errors": now,
        "previous_errors": before,
        "change_percent": round(100 * (now - before) / before, 2) if before else None,
    }


def _ranked(counts: dict[Any, list[int]], limit: int) -> list[tuple[Any, int, int]]:
    """(key, errors now, errors before) of every key, most errors now first, then before, then key."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return [(key, now, before) for key, (now, before) in ordered[:limit]]


async def system_errors(
    store: EventStore, period: Period, *, service: str | None = None, limit: int = 10
) -> SystemErrors:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    filters = only_service(service)
    groups, messages, requests = await asyncio.gather(
        run_query(
            store,
            MetricQuery(
                "system_errors", ("errors",), period, _DIMENSIONS, filters, with_previous=True, grouping_sets=_GROUPINGS
            ),
        ),
        run_query(
            store,
            MetricQuery(
                "system_errors",
                ("errors", "last_seen"),
                period,
                ("service", "error_type", "message"),
                filters,
                order_by=(("errors", True), ("service", False), ("error_type", False), ("message", False)),
                limit=limit,
            ),
        ),
        run_query(
            store,
            MetricQuery(
                "system_requests",
                ("requests", "server_error_requests"),
                period,
                ("period", "bucket"),
                filters,
                with_previous=True,
                grouping_sets=(("period",), ("period", "bucket")),
            ),
        ),
    )
    totals = {"current": [0, 0], "previous": [0, 0]}
    by_service: dict[str, list[int]] = {}
    by_endpoint: dict[tuple[str, str], list[int]] = {}
    by_type: dict[str, list[int]] = {}
    severities: dict[str, dict[str, int]] = {}
    errors_per_bucket: dict[str, int] = {}
    slot = {"current": 0, "previous": 1}
    for row in groups.rows:
        which, errors, grouping = slot[row["period"]], int(row["errors"]), row["grouping_set"]
        if grouping == _TOTAL:
            totals[row["period"]][0] = errors
        elif grouping == _SERVICE:
            by_service.setdefault(row["service"], [0, 0])[which] = errors
        elif grouping == _ENDPOINT:
            by_endpoint.setdefault((row["service"], row["endpoint"]), [0, 0])[which] = errors
        elif grouping == _TYPE:
            by_type.setdefault(row["error_type"], [0, 0])[which] = errors
        elif grouping == _SEVERITY:
            if which == 0:
                severities.setdefault(row["error_type"], {})[row["severity"]] = errors
        elif which == 0:
            errors_per_bucket[bucket_label(row["bucket"], period)] = errors
    request_totals = {"current": (0, 0), "previous": (0, 0)}
    failed_per_bucket: dict[str, int] = {}
    for row in requests.rows:
        if row["grouping_set"] == 0:
            request_totals[row["period"]] = (int(row["requests"]), int(row["server_error_requests"]))
        elif row["period"] == "current":
            failed_per_bucket[bucket_label(row["bucket"], period)] = int(row["server_error_requests"])
    if (
        service is not None
        and not by_service
        and not request_totals["current"][0]
        and not request_totals["previous"][0]
    ):
        await require_known_service(store, service)
    (requests_now, failed_now), (requests_before, failed_before) = request_totals["current"], request_totals["previous"]
    return SystemErrors(
        period=PeriodInfo.of(period),
        previous_period=PeriodInfo.of(period.previous()),
        service=service,
        errors=MetricChange.of(totals["current"][0], totals["previous"][0]),
        server_error_requests=MetricChange.of(failed_now, failed_before),
        request_error_rate=MetricChange.of(ratio(failed_now, requests_now), ratio(failed_before, requests_before)),
        by_service=[
            ServiceErrors(service=key, **_trend(now, before)) for key, now, before in _ranked(by_service, limit)
        ],
        by_endpoint=[
            EndpointErrors(service=key[0], endpoint=key[1], **_trend(now, before))
            for key, now, before in _ranked(by_endpoint, limit)
        ],
        by_error_type=[
            ErrorTypeErrors(
                error_type=key, severities=dict(sorted(severities.get(key, {}).items())), **_trend(now, before)
            )
            for key, now, before in _ranked(by_type, limit)
        ],
        series=[
            ErrorPoint(
                bucket=label,
                errors=errors_per_bucket.get(label, 0),
                server_error_requests=failed_per_bucket.get(label, 0),
            )
            for label in period_buckets(period)
        ],
        top_messages=[
            ErrorMessage(
                service=row["service"],
                error_type=row["error_type"],
                message=row["message"],
                errors=int(row["errors"]),
                last_seen=utc(row["last_seen"]),
            )
            for row in messages.rows
        ],
        source=groups.source,
    )
