"""System analytics on the running service: system events sent through the ingest API come back from
/system/health, /system/performance, /system/errors, /system/usage, /services, /services/{name} and
/api/endpoints (and GraphQL) with the figures worked out here; the service's own requests show up under
service "analytics"; only admins and analysts may read them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_app import runtime
from tests.e2e.realtime_support import poll

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"


@pytest.fixture(scope="module")
def token() -> str:
    """Keeps this module's services apart from every other test's."""
    return secrets.token_hex(6)


@pytest.fixture(scope="module")
def day() -> datetime:
    return (datetime.now(UTC) - timedelta(days=2)).replace(hour=8, minute=0, second=0, microsecond=0)


def _event(unique: str, index: int, event_type: str, at: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "id": f"sys-{unique}-{index}",
        "event_type": event_type,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


# (minutes after 08:00, endpoint, method, status, duration_ms, cache_hit)
CHECKOUT_REQUESTS = [
    (0, "/cart", "GET", 200, 12, True),
    (5, "/cart", "GET", 200, 30, False),
    (10, "/cart", "GET", 503, 250, None),
    (15, "/pay", "POST", 201, 95, None),
    (20, "/pay", "POST", 400, 8, None),
    (70, "/pay", "POST", 500, 400, True),
    (75, "/cart", "GET", 200, 20, True),
]


def _timing(values: list[float], level: float) -> float:
    ordered = sorted(int(v) for v in values)
    return float(ordered[min(int(level * len(ordered)), len(ordered) - 1)])


def _dataset(unique: str, day: datetime) -> tuple[str, str, list[dict[str, Any]]]:
    checkout, catalog = f"checkout-{unique}", f"catalog-{unique}"
    events: list[dict[str, Any]] = []

    def add(event_type: str, at: datetime, **properties: Any) -> None:
        events.append(_event(unique, len(events), event_type, at, **properties))

    for minutes, endpoint, method, status, duration, hit in CHECKOUT_REQUESTS:
        extra = {} if hit is None else {"cache_hit": hit}
        add(
            "api_request",
            day + timedelta(minutes=minutes),
            service=checkout,
            endpoint=endpoint,
            method=method,
            status=status,
            duration_ms=duration,
            db_query_count=2,
            db_time_ms=3.5,
            **extra,
        )
    add(
        "api_request",
        day + timedelta(minutes=3),
        service=catalog,
        endpoint="/items",
        method="GET",
        status=200,
        duration_ms=40,
    )
    for minutes, error_type, message in (
        (10, "Timeout", "gateway timed out"),
        (70, "DbError", "deadlock"),
        (71, "Timeout", "gateway timed out"),
    ):
        add(
            "error_occurred",
            day + timedelta(minutes=minutes),
            service=checkout,
            endpoint="/pay",
            error_type=error_type,
            severity="error",
            message=message,
        )
    for hours, cpu in ((0, 40), (1, 50), (2, 60)):
        add(
            "resource_usage",
            day + timedelta(hours=hours, minutes=30),
            service=checkout,
            instance="c1",
            cpu_percent=cpu,
            memory_percent=50,
            disk_percent=20,
            cpu_cores=2,
            memory_gb=4,
        )
    add("health_check", day + timedelta(minutes=1), service=checkout, status="up", latency_ms=4)
    add("health_check", day + timedelta(minutes=50), service=catalog, status="down", latency_ms=900)
    return checkout, catalog, events


@pytest.fixture(scope="module")
def loaded(admin: httpx.Client, service: runtime.RunningService, token: str, day: datetime) -> tuple[str, str]:
    checkout, catalog, events = _dataset(token, day)
    response = admin.post(f"{API}/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events)
    service.settle_rollups()
    return checkout, catalog


def _window(day: datetime) -> dict[str, str]:
    return {"start_date": day.date().isoformat(), "end_date": day.date().isoformat()}


def test_health_rates_each_service(client_for: Any, loaded: tuple[str, str], day: datetime) -> None:
    checkout, catalog = loaded
    response = poll(
        lambda: client_for("analyst").get(f"{API}/system/health", params=_window(day)),
        lambda r: {checkout, catalog} <= {s["service"] for s in r.json().get("services", [])},
    )
    assert response.status_code == 200, response.text
    by_name = {s["service"]: s for s in response.json()["services"]}
    mine = by_name[checkout]
    assert (mine["requests"], mine["server_error_requests"], mine["errors"], mine["health_checks"]) == (7, 2, 3, 1)
    # Its latest hour (09:00) answered 1 of 2 with 500: at the down threshold (0.5).
    assert mine["current_error_rate"] == 0.5 and mine["status"] == "down"
    assert mine["response_time_p95_ms"] == _timing([r[4] for r in CHECKOUT_REQUESTS], 0.95)
    assert mine["availability"] == 1.0
    other = by_name[catalog]
    assert (other["status"], other["latest_check_status"], other["availability"]) == ("down", "down", 0.0)
    assert response.json()["status"] == "down"


def test_performance_errors_usage_and_endpoints(client_for: Any, loaded: tuple[str, str], day: datetime) -> None:
    checkout, _ = loaded
    analyst = client_for("analyst")
    params = {**_window(day), "service": checkout}
    performance = analyst.get(f"{API}/system/performance", params=params).json()
    durations = [float(r[4]) for r in CHECKOUT_REQUESTS]
    totals = performance["totals"]
    assert totals["requests"] == 7 and totals["server_error_requests"] == 2
    assert totals["average_ms"] == pytest.approx(sum(durations) / 7)
    assert (totals["p50_ms"], totals["p99_ms"]) == (_timing(durations, 0.5), _timing(durations, 0.99))
    assert totals["throughput_per_second"] == pytest.approx(7 / 86_400)

    errors = analyst.get(f"{API}/system/errors", params=params).json()
    assert errors["errors"]["current"] == 3
    assert [(m["message"], m["errors"]) for m in errors["top_messages"]] == [("gateway timed out", 2), ("deadlock", 1)]
    assert {t["error_type"]: t["errors"] for t in errors["by_error_type"]} == {"Timeout": 2, "DbError": 1}

    usage = analyst.get(f"{API}/system/usage", params=params).json()
    (mine,) = usage["services"]
    assert mine["cpu"]["average_percent"] == 50.0 and mine["cpu"]["peak_percent"] == 60.0
    cpu = next(f for f in mine["capacity"] if f["resource"] == "cpu")
    # +10 points an hour from 60% at 10:00: 80% two hours later.
    assert cpu["status"] == "rising" and cpu["trend_percent_per_day"] == pytest.approx(240.0)
    assert datetime.fromisoformat(cpu["crosses_at"]) == day + timedelta(hours=4)
    model = usage["cost_model"]
    assert mine["cost"]["instance_hours"] == 3
    assert mine["cost"]["total_cost"] == pytest.approx(
        3 * 2 * model["cost_per_cpu_hour"]
        + 3 * 4 * model["cost_per_gb_hour"]
        + 7 / 1e6 * model["cost_per_million_requests"]
    )

    endpoints = analyst.get(f"{API}/api/endpoints", params=params).json()
    stats = {(e["method"], e["endpoint"]): e for e in endpoints["endpoints"]}
    assert stats[("GET", "/cart")]["status_codes"] == {"200": 3, "503": 1}
    assert stats[("POST", "/pay")]["status_codes"] == {"201": 1, "400": 1, "500": 1}
    assert stats[("POST", "/pay")]["client_error_requests"] == 1


def test_service_hours_over_rest_and_graphql(client_for: Any, loaded: tuple[str, str], day: datetime) -> None:
    checkout, _ = loaded
    analyst = client_for("analyst")
    response = analyst.get(f"{API}/services/{checkout}", params=_window(day))
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 3 and [h["hour"] for h in page["hours"]] == [8, 9, 10]
    eight, nine, ten = page["hours"]
    assert (eight["request_count"], eight["success_count"], eight["error_count"]) == (5, 3, 1)
    assert eight["status_code_distribution"] == {"200": 2, "201": 1, "400": 1, "503": 1}
    assert eight["average_response_time"] == pytest.approx((12 + 30 + 250 + 95 + 8) / 5)
    assert (eight["cache_hits"], eight["cache_misses"], eight["cache_hit_rate"]) == (1, 1, 0.5)
    assert (eight["db_query_count"], eight["db_avg_query_time"]) == (10, pytest.approx(3.5 / 2))
    assert eight["cpu_usage_avg"] == 40.0 and eight["endpoint_stats"]["POST /pay"]["request_count"] == 2
    assert (nine["request_count"], nine["error_count"], nine["cpu_usage_avg"]) == (2, 1, 50.0)
    assert (ten["request_count"], ten["cpu_usage_avg"]) == (0, 60.0)

    query = f"""{{ service(serviceName: "{checkout}", range: {{startDate: "{day.date()}", endDate: "{day.date()}"}}) {{
        total hours {{ hour requestCount statusCodeDistribution }} }} }}"""
    graphql = analyst.post("/graphql", json={"query": query}).json()
    assert "errors" not in graphql, graphql
    assert [
        (h["hour"], h["requestCount"], h["statusCodeDistribution"]) for h in graphql["data"]["service"]["hours"]
    ] == [(h["hour"], h["request_count"], h["status_code_distribution"]) for h in page["hours"]]

    every = analyst.get(f"{API}/services", params={**_window(day), "limit": 1000}).json()
    assert checkout in every["services"]
    assert [h["hour"] for h in every["hours"] if h["service_name"] == checkout] == [8, 9, 10]


def test_unknown_services_and_roles(client_for: Any, admin: httpx.Client, unique: str) -> None:
    missing = admin.get(f"{API}/services/nobody-{unique}")
    assert missing.status_code == 404 and f"nobody-{unique}" in missing.json()["message"]
    assert client_for("viewer").get(f"{API}/system/health").status_code == 403
    assert client_for("content_manager").get(f"{API}/api/endpoints").status_code == 403
    bad = admin.get(f"{API}/api/endpoints", params={"sort": "fastest"})
    assert bad.status_code == 400 and bad.json()["details"][0]["field"] == "sort"


def test_the_service_shows_up_as_analytics(admin: httpx.Client, service: runtime.RunningService) -> None:
    for _ in range(3):
        assert admin.get(f"{API}/system/health", params={"window": "1d"}).status_code == 200

    def analytics_hours() -> httpx.Response:
        service.settle_rollups()
        return admin.get(f"{API}/services/analytics", params={"window": "1d", "limit": 1000})

    def health_requests(response: httpx.Response) -> int:
        stats = (h["endpoint_stats"].get(f"GET {API}/system/health", {}) for h in response.json()["hours"])
        return sum(s.get("request_count", 0) for s in stats)

    # The service stores its own requests about once a second, other requests (probes, scrapes) too:
    # wait for the three asked here.
    response = poll(
        analytics_hours, lambda r: r.status_code == 200 and health_requests(r) >= 3, timeout=60, interval=0.5
    )
    assert response.status_code == 200, response.text
    assert health_requests(response) >= 3
    health = admin.get(f"{API}/system/health", params={"window": "1d"}).json()
    assert "analytics" in {s["service"] for s in health["services"]}
