"""analyticsQuery, the result cache and saved queries on the running service: exact counts after
ingest, cache hits until new data moves the watermark, the catalog's roles, saved queries run as
their owner shared them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from serve_app import runtime
from tests.e2e.realtime_support import poll

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"


def _events(prefix: str, views: dict[str, int], day: datetime) -> list[dict[str, Any]]:
    out = []
    for content, n in views.items():
        for i in range(n):
            out.append(
                {
                    "id": f"{prefix}-{content}-{i}",
                    "event_type": "content_view",
                    "timestamp": (day + timedelta(minutes=i)).isoformat(),
                    "user_id": f"{prefix}-u{i % 3}",
                    "session_id": f"{prefix}-s{i % 4}",
                    "content_id": f"{prefix}-{content}",
                    "country": "DE" if i % 2 else "FR",
                }
            )
    return out


def _query(prefix: str, contents: list[str], day: datetime) -> dict[str, Any]:
    return {
        "metrics": ["views", "unique_viewers"],
        "dimensions": ["content_id", "country"],
        "filters": [{"dimension": "content_id", "op": "in", "values": [f"{prefix}-{c}" for c in contents]}],
        "date_range": {"start_date": day.date().isoformat(), "end_date": day.date().isoformat()},
        "order_by": [{"field": "content_id", "direction": "asc"}],
    }


def _expected(prefix: str, views: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    for content, n in sorted(views.items()):
        for country, parity in (("DE", 1), ("FR", 0)):
            indexes = [i for i in range(n) if i % 2 == parity]
            if indexes:
                users = {i % 3 for i in indexes}
                rows.append(
                    {
                        "content_id": f"{prefix}-{content}",
                        "country": country,
                        "views": len(indexes),
                        "unique_viewers": len(users),
                    }
                )
    return rows


@pytest.fixture(scope="module")
def day() -> datetime:
    return (datetime.now(UTC) - timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)


def _ingest(admin: httpx.Client, events: list[dict[str, Any]], service: runtime.RunningService) -> None:
    response = admin.post("/api/v1/analytics/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events)
    service.settle_rollups()


def _cache_hits(client: httpx.Client) -> float:
    """Cache hits of analyticsQuery answers counted by the replica this client's connection is on."""
    series = 'analytics_result_cache_requests_total{kind="analytics_query",outcome="hit"} '
    text = client.get("/metrics").text
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(series)), 0.0)


def test_counts_are_exact_and_repeats_hit_the_cache_until_new_data_arrives(
    admin: httpx.Client, client_for: Any, service: runtime.RunningService, unique: str, day: datetime
) -> None:
    views = {"a": 5, "b": 2}
    _ingest(admin, _events(unique, views, day), service)
    analyst = client_for("analyst")
    body = _query(unique, ["a", "b"], day)

    first = poll(
        lambda: analyst.post(f"{API}/query", json=body), lambda r: r.json().get("rows") == _expected(unique, views)
    )
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["rows"] == _expected(unique, views)
    assert answer["totals"]["views"] == 7
    assert answer["as_of"] is not None
    # Asked again at the same watermark: from the cache, the same bytes. Each replica counts its own
    # hits, so the counter is read over the analyst's connection, which lands on the replica that
    # answers. The service's own telemetry is stored about once a second and moves the watermark
    # too, so a repeat that lands just after such a flush is computed afresh: the next one is a hit.
    for _ in range(5):
        hits_before = _cache_hits(analyst)
        again = analyst.post(f"{API}/query", json=body)
        assert again.json()["rows"] == answer["rows"]
        if again.headers["x-cache"] == "hit":
            break
    assert again.headers["x-cache"] == "hit"
    assert _cache_hits(analyst) == hits_before + 1

    # One more view moves the watermark: the next answer is computed afresh and counts it.
    more = {"a": 6, "b": 2}
    _ingest(admin, [_events(unique, more, day)[5]], service)
    fresh = poll(
        lambda: analyst.post(f"{API}/query", json=body), lambda r: r.json()["totals"]["views"] == 8, timeout=30
    )
    assert fresh.json()["rows"] == _expected(unique, more)


def test_graphql_gives_the_rest_answer(
    admin: httpx.Client, client_for: Any, service: runtime.RunningService, unique: str, day: datetime
) -> None:
    views = {"x": 3}
    _ingest(admin, _events(unique, views, day), service)
    analyst = client_for("analyst")
    body = _query(unique, ["x"], day)
    rest = poll(lambda: analyst.post(f"{API}/query", json=body), lambda r: r.json()["totals"]["views"] == 3)
    graphql = analyst.post(
        "/graphql",
        json={
            "query": "query($q: AnalyticsQueryInput!) { analyticsQuery(query: $q) { rows totals source asOf } }",
            "variables": {
                "q": {
                    "metrics": body["metrics"],
                    "dimensions": body["dimensions"],
                    "filters": body["filters"],
                    "dateRange": {
                        "startDate": body["date_range"]["start_date"],
                        "endDate": body["date_range"]["end_date"],
                    },
                    "orderBy": body["order_by"],
                }
            },
        },
    )
    data = graphql.json()
    assert "errors" not in data, data
    assert data["data"]["analyticsQuery"]["rows"] == rest.json()["rows"] == _expected(unique, views)
    assert data["data"]["analyticsQuery"]["source"] == rest.json()["source"]


def test_the_catalog_decides_what_a_role_may_ask(client_for: Any, unique: str, day: datetime) -> None:
    viewer, analyst = client_for("viewer"), client_for("analyst")
    catalog = viewer.get(f"{API}/catalog").json()
    metrics = {m["name"] for m in catalog["metrics"]}
    assert "views" in metrics and "users" not in metrics
    # Running queries is for analysts; a saved query shared with a viewer still may use only the
    # viewer's catalog entries.
    refused = viewer.post(f"{API}/query", json={"metrics": ["views"]})
    assert refused.status_code == 403 and "may not run analytical queries" in refused.json()["message"]
    definition = {**_query(unique, ["s"], day), "metrics": ["views", "users"]}
    created = analyst.post(
        f"{API}/saved-queries",
        json={"name": f"users {unique}", "kind": "query", "definition": definition, "shared_with_roles": ["viewer"]},
    )
    assert created.status_code == 201, created.text
    refused = viewer.post(f"{API}/saved-queries/{created.json()['id']}/run")
    assert refused.status_code == 403
    assert "users" in refused.json()["message"] and "analyst" in refused.json()["message"]
    assert client_for("service").get(f"{API}/catalog").status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": ["veiws"]}, "metrics[0]"),
        ({"metrics": ["views"], "dimensions": ["colour"]}, "dimensions[0]"),
        (
            {"metrics": ["views"], "date_range": {"start_date": "0001-01-01", "end_date": "0001-01-02"}},
            "date_range.start_date",
        ),
        ({"metrics": ["views"], "timezone": "Europe"}, "timezone"),
        ({"metrics": ["views"], "cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_queries_are_400s_naming_the_field(client_for: Any, body: dict[str, Any], field: str) -> None:
    response = client_for("analyst").post(f"{API}/query", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == field


def test_a_saved_query_runs_for_whom_it_is_shared_with(
    admin: httpx.Client, client_for: Any, service: runtime.RunningService, unique: str, day: datetime
) -> None:
    views = {"s": 4}
    _ingest(admin, _events(unique, views, day), service)
    analyst, viewer = client_for("analyst"), client_for("viewer")
    definition = _query(unique, ["s"], day)
    created = analyst.post(
        f"{API}/saved-queries", json={"name": f"views {unique}", "kind": "query", "definition": definition}
    )
    assert created.status_code == 201, created.text
    saved = created.json()
    run = poll(
        lambda: analyst.post(f"{API}/saved-queries/{saved['id']}/run"),
        lambda r: r.status_code == 200 and r.json()["result"]["totals"]["views"] == 4,
    )
    assert run.json()["result"]["rows"] == _expected(unique, views)

    assert viewer.post(f"{API}/saved-queries/{saved['id']}/run").status_code == 404
    shared = analyst.put(
        f"{API}/saved-queries/{saved['id']}", json={"version": saved["version"], "shared_with_roles": ["viewer"]}
    )
    assert shared.status_code == 200, shared.text
    assert viewer.post(f"{API}/saved-queries/{saved['id']}/run").json()["result"]["rows"] == _expected(unique, views)
    assert viewer.delete(f"{API}/saved-queries/{saved['id']}").status_code == 403
    audit = admin.get("/api/v1/admin/audit", params={"limit": 1000}).json()
    actions = {(e["action"], e["target"]) for e in audit["entries"]}
    assert ("saved_query.create", saved["id"]) in actions and ("saved_query.update", saved["id"]) in actions
