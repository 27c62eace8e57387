"""The service's own telemetry on the running service: requests made here come back as api_request events
of service "analytics" with their route templates and statuses, and the statements they ran on
ClickHouse, PostgreSQL and Redis as database_query events with fingerprints that hold no values; and
/database/performance (REST and GraphQL) gives, for statements sent here, the figures worked out here."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_app import runtime
from tests.e2e.realtime_support import poll

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"


def _events(admin: httpx.Client, event_type: str, start: datetime) -> list[dict[str, Any]]:
    """Every event of ``event_type`` stored since ``start`` (newest first, all pages)."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"event_type": event_type, "start": start.isoformat(), "limit": 1000}
    while True:
        response = admin.get(f"{API}/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["events"]
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def _requests(events: list[dict[str, Any]]) -> Counter[tuple[str, str, int]]:
    return Counter(
        (e["properties"]["method"], e["properties"]["endpoint"], e["properties"]["status"])
        for e in events
        if e["properties"].get("service") == "analytics"
    )


def test_requests_and_their_statements_come_back_as_events(
    admin: httpx.Client, service: runtime.RunningService, unique: str
) -> None:
    # Requests of earlier tests were answered before this instant (same clock; events keep milliseconds).
    now = datetime.now(UTC)
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)
    missing = f"missing-{unique}"
    made = [
        (admin.get(f"{API}/events/{missing}"), ("GET", f"{API}/events/{{event_id}}", 404)),
        (admin.get(f"{API}/events/{missing}-2"), ("GET", f"{API}/events/{{event_id}}", 404)),
        (admin.get(f"{API}/users", params={"window": "7d"}), ("GET", f"{API}/users", 200)),
        (admin.get(f"/nothing-here/{unique}"), ("GET", "(unmatched)", 404)),
        (admin.post("/graphql", json={"query": "{ __typename }"}), ("POST", "/graphql", 200)),
        (
            admin.get(f"{API}/database/performance", params={"window": "1d"}),
            ("GET", f"{API}/database/performance", 200),
        ),
    ]
    for response, (_, _, status) in made:
        assert response.status_code == status, response.text
    # A new key: stored in PostgreSQL, then looked up there (and cached in Redis) when it is first used.
    created = admin.post("/api/v1/admin/api-keys", json={"name": f"telemetry {unique}", "role": "analyst"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    with httpx.Client(base_url=service.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as analyst:
        assert analyst.get(f"{API}/database/performance").status_code == 200
        assert analyst.get(f"{API}/events/{missing}").status_code == 403
    expected = Counter(wanted for _, wanted in made)
    expected[("POST", "/api/v1/admin/api-keys", 201)] += 1
    expected[("GET", f"{API}/database/performance", 200)] += 1
    expected[("GET", f"{API}/events/{{event_id}}", 403)] += 1

    requests = poll(
        lambda: _events(admin, "api_request", started),
        lambda found: all(_requests(found)[k] >= n for k, n in expected.items()),
    )
    counted = _requests(requests)
    for wanted, times in expected.items():
        # The event reads of this test use another route, so these templates count this test's requests only.
        assert counted[wanted] == times, (wanted, counted)
    ours = [e for e in requests if e["properties"].get("service") == "analytics"]
    assert all(e["event_category"] == "system" and e["resource_id"] == "analytics" for e in ours)
    assert not any(unique in e["properties"]["endpoint"] for e in ours)
    reads = [e["properties"] for e in ours if e["properties"]["endpoint"] == f"{API}/events/{{event_id}}"]
    # Each ran its event lookup on ClickHouse, and its key check on Redis at least.
    missed = [p for p in reads if p["status"] == 404]
    assert all(p["db_query_count"] >= 1 and p["duration_ms"] >= p["db_time_ms"] > 0 for p in missed)

    statements = poll(
        lambda: _events(admin, "database_query", started),
        lambda found: {e["properties"]["database"] for e in found} >= {"clickhouse", "postgres", "redis"},
    )
    by_database: dict[str, set[str]] = {}
    for event in statements:
        properties = event["properties"]
        assert properties["service"] == "analytics" and properties["duration_ms"] >= 0
        by_database.setdefault(properties["database"], set()).add(properties["fingerprint"])
    assert "SELECT … FROM events WHERE id = ? LIMIT ?" in by_database["clickhouse"]
    assert any(f.startswith("INSERT INTO api_keys") for f in by_database["postgres"])
    lookups = [f for f in by_database["postgres"] if f.startswith("SELECT id, name, role, key_prefix")]
    assert any("key_hash = ?" in f for f in lookups)
    assert "GET auth:?" in by_database["redis"]
    every_fingerprint = repr(by_database)
    assert missing not in every_fingerprint and key not in every_fingerprint and unique not in every_fingerprint


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * 0.95
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def test_database_performance_of_statements_sent_here(
    admin: httpx.Client, client_for: Any, service: runtime.RunningService, unique: str
) -> None:
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    name = f"svc-{unique}"
    shapes = [
        ("postgres", "select", "SELECT ? FROM a"),
        ("postgres", "update", "UPDATE a SET b = ?"),
        ("redis", "get", "GET x:?"),
    ]
    sent = []
    for i in range(60):
        database, operation, fingerprint = shapes[i % 3]
        # Durations in hundredths of a millisecond; a few on and over the slow threshold (500 ms).
        centi = [1234, 50_000, 50_001, 731, 99][i % 5] + (i // 5) * 17
        sent.append((database, operation, fingerprint, centi / 100))
    events = [
        {
            "id": f"{unique}-dq-{i}",
            "event_type": "database_query",
            "timestamp": (day + timedelta(minutes=i)).isoformat(),
            "properties": {"service": name, "database": d, "operation": o, "fingerprint": f, "duration_ms": ms},
        }
        for i, (d, o, f, ms) in enumerate(sent)
    ]
    response = admin.post(f"{API}/events/batch", json={"events": events})
    assert response.status_code == 200 and response.json()["accepted"] == len(events), response.text
    service.settle_rollups()

    params = {"start_date": day.date().isoformat(), "end_date": day.date().isoformat(), "service": name}
    answer = client_for("analyst").get(f"{API}/database/performance", params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "database_statements" and body["slow_query_ms"] == 500.0
    for stats in body["databases"]:
        mine = [ms for d, _, _, ms in sent if d == stats["database"]]
        assert stats["statements"] == len(mine)
        assert stats["average_ms"] == pytest.approx(sum(mine) / len(mine), abs=1e-3)
        assert stats["p95_ms"] == pytest.approx(_p95(mine), abs=1e-3)
        assert stats["max_ms"] == max(mine)
        assert stats["slow_statements"] == sum(1 for ms in mine if ms > 500.0)
    assert sorted(s["database"] for s in body["databases"]) == ["postgres", "redis"]
    slowest = [(s["operation"], s["fingerprint"]) for s in body["slowest"]]
    ranked = sorted(shapes, key=lambda shape: -_p95([ms for d, o, f, ms in sent if (d, o, f) == shape]))
    assert slowest == [(o, f) for _, o, f in ranked]

    graphql = client_for("analyst").post(
        "/graphql",
        json={
            "query": "query($r: AnalyticsRange, $s: String) { databasePerformance(range: $r, service: $s) "
            "{ totals { statements p95Ms } slowest { fingerprint } } }",
            "variables": {"r": {"startDate": params["start_date"], "endDate": params["end_date"]}, "s": name},
        },
    )
    data = graphql.json()
    assert "errors" not in data, data
    assert data["data"]["databasePerformance"]["totals"]["statements"] == len(sent)
    assert data["data"]["databasePerformance"]["totals"]["p95Ms"] == pytest.approx(
        _p95([ms for *_, ms in sent]), abs=1e-3
    )
    assert [s["fingerprint"] for s in data["data"]["databasePerformance"]["slowest"]] == [f for *_, f in ranked]
    assert client_for("viewer").get(f"{API}/database/performance").status_code == 403
