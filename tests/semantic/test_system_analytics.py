"""The system endpoints (semantic/system*.py, service_hours.py, api_endpoints.py) on real chDB against
figures computed here, in Python, from the hand-built events of tests/semantic/system_events.py: in UTC
from the hourly rollups, in Asia/Kolkata (a half-hour offset) from raw events."""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core.errors import InvalidRequest, NotFound
from semantic.periods import Period
from semantic.system import SystemAnalyticsService, SystemRules
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.system_events import (
    Event,
    at_least_zero,
    cache_hit,
    close,
    count,
    dataset,
    local_hour,
    number,
    percent,
    status,
    table,
    text,
    timing_quantile,
)

EVENTS = dataset()
RULES = SystemRules()
LEVELS = (0.5, 0.95, 0.99)
# (time zone, the table that answers requests)
ROUTES = [("UTC", "system_requests_hourly"), ("Asia/Kolkata", "events")]


@pytest.fixture(scope="module")
def system(chdb_dir: Path) -> Iterator[SystemAnalyticsService]:
    store = open_store(chdb_dir, f"system_{secrets.token_hex(4)}")
    # Two inserts: the rollups hold rows of the same keys in two parts until they merge.
    half = len(EVENTS) // 2
    store.insert(table(EVENTS[:half], "sys-a"), "system-1")
    store.insert(table(EVENTS[half:], "sys-b"), "system-2")
    yield SystemAnalyticsService(InProcessStore(store), RULES)
    store.close()


def period(tz: str, granularity: str = "day", start: date = date(2025, 3, 10), end: date = date(2025, 3, 16)) -> Period:
    return Period(start, end, tz, granularity)  # type: ignore[arg-type]


def within(p: Period, kind: str, service: str | None = None) -> list[Event]:
    return [
        e
        for e in EVENTS
        if e.event_type == kind and p.start <= e.at < p.end and (service is None or e.service == service)
    ]


def durations(events: list[Event]) -> list[float]:
    return [d for e in events if (d := at_least_zero(e.properties, "duration_ms")) is not None]


def quantiles(events: list[Event]) -> list[float | None]:
    timed = durations(events)
    return [timing_quantile(timed, level) for level in LEVELS]


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def bucket_of(moment: datetime, p: Period) -> str:
    local = moment.astimezone(p.zone)
    if p.granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    day = local.date()
    if p.granularity == "week":
        day -= timedelta(days=day.weekday())
    if p.granularity == "month":
        day = day.replace(day=1)
    return day.isoformat()


def as_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


# ---- health -----------------------------------------------------------------------------------------


def expected_health(p: Period) -> dict[str, dict[str, Any]]:
    names = {
        e.service
        for kind in ("api_request", "health_check", "error_occurred", "resource_usage")
        for e in within(p, kind)
    }
    out = {}
    for name in sorted(names):
        requests = within(p, "api_request", name)
        failed = [e for e in requests if status(e.properties) >= 500]
        checks = within(p, "health_check", name)
        check_status = [text(c.properties, "status").lower() for c in checks]
        rated = [s for s in check_status if s in ("up", "degraded", "down")]
        ratings = []
        latest_status = latest_at = None
        if checks:
            rank = {"down": 3, "degraded": 2, "up": 1}
            latest = max(
                checks,
                key=lambda c: (
                    c.at,
                    rank.get(text(c.properties, "status").lower(), 0),
                    text(c.properties, "status").lower(),
                ),
            )
            latest_status, latest_at = text(latest.properties, "status").lower(), latest.at
            if latest_status in rank:
                ratings.append(latest_status)
        current_rate = current_hour = None
        if requests:
            current_hour = max(local_hour(e.at, p.zone) for e in requests)
            in_hour = [e for e in requests if local_hour(e.at, p.zone) == current_hour]
            current_rate = sum(status(e.properties) >= 500 for e in in_hour) / len(in_hour)
            ratings.append("down" if current_rate >= 0.5 else "degraded" if current_rate >= 0.05 else "up")
        order = ["up", "degraded", "down"]
        seen = [
            e.at
            for kind in ("api_request", "health_check", "error_occurred", "resource_usage")
            for e in within(p, kind, name)
        ]
        out[name] = {
            "status": max(ratings, key=order.index) if ratings else "unknown",
            "requests": len(requests),
            "server_error_requests": len(failed),
            "error_rate": ratio(len(failed), len(requests)),
            "current_error_rate": current_rate,
            "current_hour": current_hour,
            "response_time_p95_ms": timing_quantile(durations(requests), 0.95),
            "health_checks": len(checks),
            "availability": ratio(sum(s != "down" for s in rated), len(rated)) if rated else None,
            "latest_check_status": latest_status,
            "latest_check_at": latest_at,
            "errors": len(within(p, "error_occurred", name)),
            "last_seen": max(seen),
        }
    return out


@pytest.mark.parametrize(("tz", "source"), ROUTES)
async def test_health_matches_python(system: SystemAnalyticsService, tz: str, source: str) -> None:
    p = period(tz)
    answer = await system.health(p)
    wanted = expected_health(p)
    assert answer.source == source
    assert [s.service for s in answer.services] == list(wanted)
    for got in answer.services:
        want = wanted[got.service]
        assert got.status == want["status"], got.service
        assert (got.requests, got.server_error_requests, got.health_checks, got.errors) == (
            want["requests"],
            want["server_error_requests"],
            want["health_checks"],
            want["errors"],
        )
        for name in ("error_rate", "current_error_rate", "response_time_p95_ms", "availability"):
            assert close(getattr(got, name), want[name]), (got.service, name)
        assert got.current_hour == want["current_hour"]
        assert (got.latest_check_status, as_utc(got.latest_check_at)) == (
            want["latest_check_status"],
            want["latest_check_at"],
        )
        assert as_utc(got.last_seen) == want["last_seen"]
        assert bool(got.reasons) == (got.status in ("degraded", "down"))
    order = ["unknown", "up", "degraded", "down"]
    rated = [w["status"] for w in wanted.values() if w["status"] != "unknown"]
    assert answer.status == max(rated, key=order.index)


async def test_health_statuses_come_from_checks_and_the_latest_hour(system: SystemAnalyticsService) -> None:
    """The hand-placed cases of the dataset, each for its own reason."""
    answer = await system.health(period("UTC"))
    by_name = {s.service: s for s in answer.services}
    assert by_name["content-service"].status == "degraded"  # 1 of 10 answered 500 in its latest hour
    assert by_name["content-service"].current_error_rate == 0.1
    assert by_name["search-service"].status == "degraded"  # its latest check
    assert by_name["search-service"].latest_check_status == "degraded"
    assert by_name["media-service"].status == "down"  # an up and a down check at the same instant
    assert by_name["media-service"].requests == 0
    assert by_name["analytics"].status == "down"  # 1 of 2 answered 503 in its latest hour
    assert by_name["quiet-service"].status == "unknown"  # resource samples only
    assert answer.status == "down"
    assert any("latest health check" in r for r in by_name["media-service"].reasons)
    assert any("5xx share" in r for r in by_name["content-service"].reasons)


# ---- performance ------------------------------------------------------------------------------------


def figures(events: list[Event], seconds: float) -> dict[str, Any]:
    failed = sum(status(e.properties) >= 500 for e in events)
    p50, p95, p99 = quantiles(events)
    return {
        "requests": len(events),
        "throughput_per_second": len(events) / seconds,
        "server_error_requests": failed,
        "error_rate": ratio(failed, len(events)),
        "average_ms": mean(durations(events)),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
    }


def same_figures(got: Any, want: dict[str, Any]) -> bool:
    return all(
        close(getattr(got, name), value) if isinstance(value, float) or value is None else getattr(got, name) == value
        for name, value in want.items()
    )


def bucket_spans(p: Period) -> dict[str, float]:
    spans: dict[str, float] = defaultdict(float)
    moment = p.start
    while moment < p.end:
        spans[bucket_of(moment, p)] += 60.0
        moment += timedelta(minutes=60 if p.granularity == "hour" else 1)
    if p.granularity == "hour":
        return {label: 3600.0 for label in spans}
    return dict(spans)


@pytest.mark.parametrize(
    ("tz", "granularity", "source"),
    [
        ("UTC", "day", "system_requests_hourly"),
        ("Asia/Kolkata", "day", "events"),
        ("UTC", "hour", "system_requests_hourly"),
    ],
)
async def test_performance_matches_python(
    system: SystemAnalyticsService, tz: str, granularity: str, source: str
) -> None:
    p = period(tz, granularity, date(2025, 3, 14) if granularity == "hour" else date(2025, 3, 10))
    answer = await system.performance(p)
    assert answer.source == source
    requests = within(p, "api_request")
    seconds = (p.end - p.start).total_seconds()
    spans = bucket_spans(p)
    assert same_figures(answer.totals, figures(requests, seconds))
    assert [point.bucket for point in answer.series] == list(spans)
    for point in answer.series:
        assert same_figures(
            point, figures([e for e in requests if bucket_of(e.at, p) == point.bucket], spans[point.bucket])
        )
    assert [s.service for s in answer.services] == sorted({e.service for e in requests})
    for service in answer.services:
        mine = [e for e in requests if e.service == service.service]
        assert same_figures(service.totals, figures(mine, seconds))
        for point in service.series:
            assert same_figures(
                point, figures([e for e in mine if bucket_of(e.at, p) == point.bucket], spans[point.bucket])
            )


async def test_performance_of_one_service_and_of_an_unknown_one(system: SystemAnalyticsService) -> None:
    p = period("UTC")
    answer = await system.performance(p, service="search-service")
    assert [s.service for s in answer.services] == ["search-service"]
    assert same_figures(
        answer.totals, figures(within(p, "api_request", "search-service"), (p.end - p.start).total_seconds())
    )
    # Known (it sent resource samples) but without requests: zeros, not 404.
    quiet = await system.performance(p, service="quiet-service")
    assert quiet.totals.requests == 0 and quiet.services == []
    with pytest.raises(NotFound, match="'nobody'"):
        await system.performance(p, service="nobody")


# ---- errors -----------------------------------------------------------------------------------------


def error_counts(p: Period, key: Any) -> dict[Any, list[int]]:
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for index, window in enumerate((p, p.previous())):
        for e in within(window, "error_occurred"):
            counts[key(e)][index] += 1
    return counts


def ranked(counts: dict[Any, list[int]], limit: int) -> list[tuple[Any, int, int]]:
    rows = sorted(counts.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return [(k, now, before) for k, (now, before) in rows[:limit]]


@pytest.mark.parametrize(("tz", "source"), [("UTC", "system_errors_hourly"), ("Asia/Kolkata", "events")])
async def test_errors_match_python(system: SystemAnalyticsService, tz: str, source: str) -> None:
    p, limit = period(tz), 5
    answer = await system.errors(p, limit=limit)
    assert answer.source == source
    now, before = within(p, "error_occurred"), within(p.previous(), "error_occurred")
    assert (answer.errors.current, answer.errors.previous) == (len(now), len(before))
    requests_now, requests_before = within(p, "api_request"), within(p.previous(), "api_request")
    failed_now = sum(status(e.properties) >= 500 for e in requests_now)
    failed_before = sum(status(e.properties) >= 500 for e in requests_before)
    assert (answer.server_error_requests.current, answer.server_error_requests.previous) == (failed_now, failed_before)
    assert close(answer.request_error_rate.current, ratio(failed_now, len(requests_now)))
    assert close(answer.request_error_rate.previous, ratio(failed_before, len(requests_before)))

    def service(e: Event) -> str:
        return e.service

    def endpoint(e: Event) -> tuple[str, str]:
        return (e.service, text(e.properties, "endpoint"))

    def error_type(e: Event) -> str:
        return text(e.properties, "error_type")

    assert [(s.service, s.errors, s.previous_errors) for s in answer.by_service] == ranked(
        error_counts(p, service), limit
    )
    assert [((s.service, s.endpoint), s.errors, s.previous_errors) for s in answer.by_endpoint] == ranked(
        error_counts(p, endpoint), limit
    )
    assert [(s.error_type, s.errors, s.previous_errors) for s in answer.by_error_type] == ranked(
        error_counts(p, error_type), limit
    )
    for group in answer.by_error_type:
        mine = [e for e in now if error_type(e) == group.error_type]
        assert group.severities == dict(sorted(Counter(text(e.properties, "severity") for e in mine).items()))
        previous = group.previous_errors
        assert group.change_percent == (round(100 * (group.errors - previous) / previous, 2) if previous else None)
    for point in answer.series:
        assert point.errors == sum(bucket_of(e.at, p) == point.bucket for e in now)
        assert point.server_error_requests == sum(
            bucket_of(e.at, p) == point.bucket and status(e.properties) >= 500 for e in requests_now
        )
    messages = Counter((e.service, error_type(e), text(e.properties, "message")[:500]) for e in now)
    top = sorted(messages.items(), key=lambda item: (-item[1], item[0]))[:limit]
    assert [((m.service, m.error_type, m.message), m.errors) for m in answer.top_messages] == top
    for m in answer.top_messages:
        mine = [
            e
            for e in now
            if (e.service, error_type(e), text(e.properties, "message")[:500]) == (m.service, m.error_type, m.message)
        ]
        assert as_utc(m.last_seen) == max(e.at for e in mine)
    assert max(len(m.message) for m in answer.top_messages) <= 500


async def test_errors_of_one_service_and_bad_limits(system: SystemAnalyticsService) -> None:
    p = period("UTC")
    answer = await system.errors(p, service="media-service", limit=100)
    assert [s.service for s in answer.by_service] == ["media-service"]
    assert answer.errors.current == len(within(p, "error_occurred", "media-service"))
    assert answer.server_error_requests.current == 0
    with pytest.raises(InvalidRequest, match="limit"):
        await system.errors(p, limit=0)
    with pytest.raises(NotFound):
        await system.errors(p, service="nobody")


# ---- usage: utilization, capacity, cost ---------------------------------------------------------------


def hourly_averages(samples: list[Event], resource: str, zone: ZoneInfo) -> dict[datetime, float]:
    per_hour: dict[datetime, list[float]] = defaultdict(list)
    for e in samples:
        value = percent(e.properties, f"{resource}_percent")
        if value is not None:
            per_hour[local_hour(e.at, zone)].append(value)
    return {hour: sum(v) / len(v) for hour, v in per_hour.items()}


def expected_forecast(samples: list[Event], resource: str, threshold: float, zone: ZoneInfo) -> dict[str, Any]:
    hourly = hourly_averages(samples, resource, zone)
    if len(hourly) < 2:
        return {"status": "insufficient_data", "hours": len(hourly)}
    xs = np.array([h.timestamp() / 3600 for h in sorted(hourly)])
    ys = np.array([hourly[h] for h in sorted(hourly)])
    slope, intercept = np.polyfit(xs, ys, 1)
    now = intercept + slope * xs[-1]
    out: dict[str, Any] = {"hours": len(hourly), "trend_percent_per_day": slope * 24, "trend_percent_now": now}
    if now >= threshold:
        out["status"] = "over"
    elif slope <= 0:
        out["status"] = "steady"
    else:
        out["status"] = "rising"
        hours = (threshold - now) / slope
        # Beyond the documented horizon of ten years no date is given.
        out["crosses_at"] = datetime.fromtimestamp((xs[-1] + hours) * 3600, UTC) if hours / 24 <= 3650 else None
    return out


def expected_capacity(samples: list[Event], zone: ZoneInfo) -> dict[str, float]:
    per_instance_hour: dict[tuple[str, datetime], list[Event]] = defaultdict(list)
    for e in samples:
        per_instance_hour[(text(e.properties, "instance"), local_hour(e.at, zone))].append(e)
    out: dict[str, float] = defaultdict(float)
    for group in per_instance_hour.values():
        cores = max((at_least_zero(e.properties, "cpu_cores") or 0.0) for e in group)
        memory = max((at_least_zero(e.properties, "memory_gb") or 0.0) for e in group)
        cpu = mean([v for e in group if (v := percent(e.properties, "cpu_percent")) is not None])
        mem = mean([v for e in group if (v := percent(e.properties, "memory_percent")) is not None])
        out["instance_hours"] += 1
        out["instance_hours_without_capacity"] += cores == 0 and memory == 0
        out["cpu_core_hours"] += cores
        out["memory_gb_hours"] += memory
        if cores > 0 and cpu is not None:
            out["used_cpu_core_hours"] += cores * cpu / 100
            out["idle_cpu_core_hours"] += cores * (1 - cpu / 100)
        if memory > 0 and mem is not None:
            out["used_memory_gb_hours"] += memory * mem / 100
            out["idle_memory_gb_hours"] += memory * (1 - mem / 100)
    out["instances"] = len({instance for instance, _ in per_instance_hour})
    return out


def expected_cost(capacity: dict[str, float], requests: int) -> dict[str, float]:
    model = RULES.cost_model
    compute = capacity["cpu_core_hours"] * model.cost_per_cpu_hour
    memory = capacity["memory_gb_hours"] * model.cost_per_gb_hour
    per_request = requests / 1e6 * model.cost_per_million_requests
    idle = (
        capacity["idle_cpu_core_hours"] * model.cost_per_cpu_hour
        + capacity["idle_memory_gb_hours"] * model.cost_per_gb_hour
    )
    return {
        "compute_cost": compute,
        "memory_cost": memory,
        "request_cost": per_request,
        "total_cost": compute + memory + per_request,
        "idle_cost": idle,
    }


@pytest.mark.parametrize(("tz", "source"), ROUTES)
async def test_usage_matches_python(system: SystemAnalyticsService, tz: str, source: str) -> None:
    p = period(tz)
    answer = await system.usage(p)
    assert answer.source == source
    requests = within(p, "api_request")
    samples = within(p, "resource_usage")
    assert answer.requests == len(requests)
    assert answer.active_users == len({e.user_id for e in requests if e.user_id})
    names = sorted({e.service for e in requests} | {e.service for e in samples})
    assert [s.service for s in answer.services] == names
    total_capacity: dict[str, float] = defaultdict(float)
    for usage in answer.services:
        mine = [e for e in requests if e.service == usage.service]
        assert usage.requests == len(mine)
        assert close(usage.share_of_requests, ratio(len(mine), len(requests)))
        assert usage.active_users == len({e.user_id for e in mine if e.user_id})
        my_samples = [e for e in samples if e.service == usage.service]
        for resource in ("cpu", "memory", "disk"):
            values = [v for e in my_samples if (v := percent(e.properties, f"{resource}_percent")) is not None]
            got = getattr(usage, resource)
            assert got.samples == len(values)
            assert close(got.average_percent, mean(values))
            assert close(got.peak_percent, max(values) if values else None)
        for forecast in usage.capacity:
            want = expected_forecast(my_samples, forecast.resource, RULES.capacity_percent[forecast.resource], p.zone)
            assert forecast.status == want["status"], (usage.service, forecast.resource)
            assert forecast.hours == want["hours"]
            if want["status"] != "insufficient_data":
                assert forecast.trend_percent_per_day == pytest.approx(
                    want["trend_percent_per_day"], rel=1e-6, abs=1e-9
                )
                assert forecast.trend_percent_now == pytest.approx(want["trend_percent_now"], rel=1e-6)
            if want["status"] == "rising" and want["crosses_at"] is None:
                assert forecast.crosses_at is None and forecast.crosses_on is None
            elif want["status"] == "rising":
                assert forecast.crosses_at is not None
                assert abs((forecast.crosses_at - want["crosses_at"]).total_seconds()) < 60
                assert forecast.crosses_on == forecast.crosses_at.astimezone(p.zone).date()
        capacity = expected_capacity(my_samples, p.zone)
        for name, value in capacity.items():
            total_capacity[name] += value
            assert getattr(usage.cost, name) == pytest.approx(value, rel=1e-9, abs=1e-9), (usage.service, name)
        for name, value in expected_cost(capacity, len(mine)).items():
            assert getattr(usage.cost, name) == pytest.approx(value, rel=1e-9, abs=1e-12), (usage.service, name)
    for name, value in expected_cost(total_capacity, len(requests)).items():
        assert getattr(answer.cost, name) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    for point in answer.series:
        in_bucket = [e for e in samples if bucket_of(e.at, p) == point.bucket]
        assert point.requests == sum(bucket_of(e.at, p) == point.bucket for e in requests)
        cpu = [v for e in in_bucket if (v := percent(e.properties, "cpu_percent")) is not None]
        assert close(point.cpu_percent, mean(cpu))


async def test_usage_forecasts_each_case(system: SystemAnalyticsService) -> None:
    """content-service's CPU rises toward 80%, search-service's memory is over 85%, its disk falls,
    media-service has one sample."""
    answer = await system.usage(period("UTC"))
    by_name = {s.service: {f.resource: f for f in s.capacity} for s in answer.services}
    rising = by_name["content-service"]["cpu"]
    assert rising.status == "rising" and rising.crosses_on is not None and rising.days_until is not None
    assert rising.crosses_on > date(2025, 3, 16) and 4 < rising.trend_percent_per_day < 6  # type: ignore[operator]
    assert by_name["search-service"]["memory"].status == "over"
    assert by_name["search-service"]["disk"].status == "steady"
    assert by_name["media-service"]["cpu"].status == "insufficient_data"
    quiet = next(s for s in answer.services if s.service == "quiet-service")
    assert quiet.cost.instance_hours == 2 == quiet.cost.instance_hours_without_capacity
    assert quiet.cost.total_cost == 0


# ---- SystemAnalytics per service and hour -------------------------------------------------------------


def expected_hours(p: Period, slow_ms: float) -> dict[tuple[str, datetime], dict[str, Any]]:
    rows: dict[tuple[str, datetime], dict[str, Any]] = {}

    def row(event: Event) -> dict[str, Any]:
        return rows.setdefault(
            (event.service, local_hour(event.at, p.zone)), {"requests": [], "samples": [], "slow": 0}
        )

    for e in within(p, "api_request"):
        row(e)["requests"].append(e)
    for e in within(p, "resource_usage"):
        row(e)["samples"].append(e)
    for e in within(p, "database_query"):
        duration = e.properties.get("duration_ms")
        if isinstance(duration, int | float) and max(float(duration), 0.0) >= slow_ms:
            row(e)["slow"] += 1
    out = {}
    for key, parts in rows.items():
        if not parts["requests"] and not parts["samples"] and not parts["slow"]:
            continue
        requests: list[Event] = parts["requests"]
        hits = sum(cache_hit(e.properties) is True for e in requests)
        misses = sum(cache_hit(e.properties) is False for e in requests)
        db_queries = sum(count(e.properties, "db_query_count") for e in requests)
        calls = sum(count(e.properties, "external_calls") for e in requests)
        endpoints: dict[str, list[Event]] = defaultdict(list)
        for e in requests:
            method, endpoint = text(e.properties, "method"), text(e.properties, "endpoint")
            endpoints[f"{method} {endpoint}" if method else endpoint].append(e)

        def usage(resource: str, samples: list[Event] = parts["samples"]) -> float:
            return mean([v for e in samples if (v := percent(e.properties, f"{resource}_percent")) is not None]) or 0.0

        out[key] = {
            "request_count": len(requests),
            "success_count": sum(100 <= status(e.properties) < 400 for e in requests),
            "error_count": sum(status(e.properties) >= 500 for e in requests),
            "average_response_time": mean(durations(requests)) or 0.0,
            "cpu_usage_avg": usage("cpu"),
            "memory_usage_avg": usage("memory"),
            "disk_usage_avg": usage("disk"),
            "endpoint_stats": {
                name: {
                    "endpoint": text(group[0].properties, "endpoint"),
                    "method": text(group[0].properties, "method"),
                    "request_count": len(group),
                    "success_count": sum(100 <= status(e.properties) < 400 for e in group),
                    "error_count": sum(status(e.properties) >= 500 for e in group),
                    "average_response_time": mean(durations(group)) or 0.0,
                    "p95_response_time": timing_quantile(durations(group), 0.95),
                }
                for name, group in sorted(endpoints.items())
            },
            "status_code_distribution": {
                str(code): n for code, n in sorted(Counter(status(e.properties) for e in requests).items())
            },
            "db_query_count": db_queries,
            "db_avg_query_time": ratio(
                sum(at_least_zero(e.properties, "db_time_ms") or 0.0 for e in requests), db_queries
            ),
            "db_slow_queries": parts["slow"],
            "cache_hits": hits,
            "cache_misses": misses,
            "cache_hit_rate": ratio(hits, hits + misses),
            "external_api_calls": calls,
            "external_api_errors": sum(count(e.properties, "external_errors") for e in requests),
            "external_avg_response_time": ratio(
                sum(at_least_zero(e.properties, "external_time_ms") or 0.0 for e in requests), calls
            ),
        }
    return out


def same_value(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    if isinstance(want, float) or want is None:
        return close(got, want)
    return bool(got == want)


@pytest.mark.parametrize(("tz", "source"), ROUTES)
async def test_every_system_analytics_field_matches_python(
    system: SystemAnalyticsService, tz: str, source: str
) -> None:
    p = period(tz)
    wanted = expected_hours(p, RULES.slow_query_ms)
    keys = sorted(wanted, key=lambda key: (key[1], key[0]))
    seen = []
    offset = 0
    while True:
        page = await system.services(p, limit=50, offset=offset)
        assert page.source == source and page.total == len(wanted)
        assert page.services == sorted({name for name, _ in wanted})
        if not page.hours:
            break
        for analytics in page.hours:
            seen.append(analytics)
        offset += 50
    assert [(a.service_name, a.date, a.hour) for a in seen] == [(name, hour.date(), hour.hour) for name, hour in keys]
    for analytics, key in zip(seen, keys, strict=True):
        got = analytics.model_dump(exclude={"service_name", "date", "hour", "calculated_at"})
        assert set(got) == set(wanted[key]), "every field of the spec's model"
        for name, want in wanted[key].items():
            assert same_value(got[name], want), (key, name, got[name], want)
    assert any(a.db_slow_queries for a in seen) and any(a.cache_hits for a in seen)
    assert any(" " not in name for a in seen for name in a.endpoint_stats)  # an endpoint without a method


async def test_one_service_newest_first_and_unknown_services(system: SystemAnalyticsService) -> None:
    p = period("UTC")
    wanted = expected_hours(p, RULES.slow_query_ms)
    mine = sorted((hour for name, hour in wanted if name == "analytics"), reverse=True)
    page = await system.services(p, service="analytics", limit=3, order="desc")
    assert page.total == len(mine) and page.services == ["analytics"]
    assert [(a.date, a.hour) for a in page.hours] == [(h.date(), h.hour) for h in mine[:3]]
    assert all(a.service_name == "analytics" for a in page.hours)
    # Known before the window only: an empty page, not 404.
    earlier = await system.services(period("UTC", start=date(2025, 4, 1), end=date(2025, 4, 2)), service="analytics")
    assert earlier.total == 0 and earlier.hours == []
    with pytest.raises(NotFound, match="'nobody'"):
        await system.services(p, service="nobody")
    with pytest.raises(InvalidRequest, match="limit"):
        await system.services(p, limit=0)


# ---- API endpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tz", "source"), ROUTES)
async def test_endpoints_match_python(system: SystemAnalyticsService, tz: str, source: str) -> None:
    p = period(tz)
    answer = await system.endpoints(p, limit=1000)
    assert answer.source == source
    groups: dict[tuple[str, str, str], list[Event]] = defaultdict(list)
    for e in within(p, "api_request"):
        groups[(e.service, text(e.properties, "endpoint"), text(e.properties, "method"))].append(e)
    assert answer.total == len(groups)
    wanted_order = sorted(groups, key=lambda key: (-len(groups[key]), key))
    assert [(s.service, s.endpoint, s.method) for s in answer.endpoints] == wanted_order
    for stats in answer.endpoints:
        group = groups[(stats.service, stats.endpoint, stats.method)]
        codes = Counter(status(e.properties) for e in group)
        failed = sum(status(e.properties) >= 500 for e in group)
        p50, p95, p99 = quantiles(group)
        assert stats.successful_requests == sum(100 <= status(e.properties) < 400 for e in group)
        assert stats.client_error_requests == sum(400 <= status(e.properties) < 500 for e in group)
        assert stats.server_error_requests == failed
        assert close(stats.error_rate, ratio(failed, len(group)))
        assert close(stats.average_ms, mean(durations(group)))
        assert (close(stats.p50_ms, p50), close(stats.p95_ms, p95), close(stats.p99_ms, p99)) == (True, True, True)
        assert stats.status_codes == {str(code): n for code, n in sorted(codes.items())}
        assert as_utc(stats.last_seen) == max(e.at for e in group)


async def test_endpoints_sort_page_and_filter(system: SystemAnalyticsService) -> None:
    p = period("UTC")
    every = (await system.endpoints(p, limit=1000)).endpoints
    by_p95 = await system.endpoints(p, sort="p95_ms", limit=2, offset=1)
    ordered = sorted(every, key=lambda s: (s.p95_ms is None, -(s.p95_ms or 0), s.service, s.endpoint, s.method))
    assert [(s.service, s.endpoint, s.method) for s in by_p95.endpoints] == [
        (s.service, s.endpoint, s.method) for s in ordered[1:3]
    ]
    only = await system.endpoints(p, service="search-service")
    assert {s.service for s in only.endpoints} == {"search-service"} and only.total == 2
    with pytest.raises(InvalidRequest, match="sort"):
        await system.endpoints(p, sort="nope")
    with pytest.raises(NotFound):
        await system.endpoints(p, service="nobody")


def test_dataset_reads_odd_values_as_documented() -> None:
    """The Python reading the expectations use: a text number counts, other text does not, negatives are 0."""
    assert number({"a": "12.5"}, "a") == 12.5 and number({"a": "n/a"}, "a") is None and number({"a": True}, "a") == 1.0
    assert at_least_zero({"a": -5}, "a") == 0.0 and percent({"a": 150}, "a") == 100.0
    assert timing_quantile([0.4, 12.9, 1500.0, 29_999.9, 45_000.0], 0.5) == 1500.0
