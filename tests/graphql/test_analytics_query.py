"""analyticsCatalog / analyticsQuery over GraphQL and GET /catalog / POST /query over REST, on real chDB.

The GraphQL schema here is built from the AnalyticsQueryQueries mixin alone; the REST app is the
service's app (create_app) with the analytics query router included, over the in-process fakes of
tests/graphql/fakes.py whose event store is a chDB database holding the dataset of
tests/semantic/test_analytics_query.py. Expected numbers come from that module's Python model.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import strawberry
from fastapi.testclient import TestClient

from core.access import Role
from graphql_schema.analytics_query import AnalyticsQueryQueries
from semantic.analytics_query import AnalyticsQueryService, RecentQueries
from serve_app.routes.analytics_query import MAX_QUERY_BODY_BYTES
from tests.graphql.conftest import only_error, rest_client
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_analytics_query import (
    INJECTION,
    assert_rows,
    expected,
    expected_totals,
    load,
    march,
    same,
)


@strawberry.type
class Query(AnalyticsQueryQueries):
    pass


schema = strawberry.Schema(query=Query)

CATALOG = "{ analyticsCatalog { role metrics { name type unit family roles } dimensions { name type roles } } }"
QUERY = """query($q: AnalyticsQueryInput!) {
  analyticsQuery(query: $q) {
    columns { name type unit kind }
    rows totals compareTotals source asOf nextCursor
    period { startDate endDate timezone granularity }
    comparePeriod { startDate endDate }
  }
}"""


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"analytics_query_api_{secrets.token_hex(4)}")
    load(events)
    yield InProcessStore(events)
    events.close()


@pytest.fixture
def services(store: InProcessStore) -> FakeServices:
    services = FakeServices.build()
    services.events = store  # type: ignore[assignment]  # the EventStore read interface over chDB
    query = AnalyticsQueryService(store)  # type: ignore[arg-type]
    services.analytics = replace(services.analytics, query=query, recent_queries=RecentQueries(query))
    return services


async def graphql(services: FakeServices, role: Role | None, query: str, variables: dict[str, Any] | None = None):
    return await schema.execute(query, variable_values=variables, context_value=services.context(role))


def client(services: FakeServices, role: Role | None) -> TestClient:
    return rest_client(services, role)


# --- the catalog ---------------------------------------------------------------------------------


async def test_catalog_lists_what_the_role_may_use(services: FakeServices) -> None:
    viewer = await graphql(services, Role.VIEWER, CATALOG)
    analyst = await graphql(services, Role.ANALYST, CATALOG)
    assert viewer.errors is None and analyst.errors is None
    seen = {m["name"]: m for m in viewer.data["analyticsCatalog"]["metrics"]}
    assert "views" in seen and "users" not in seen and "latency_p50" not in seen
    assert seen["views"] == {
        "name": "views",
        "type": "integer",
        "unit": "events",
        "family": "content",
        "roles": ["admin", "analyst", "content_manager", "viewer"],
    }
    viewer_dimensions = {d["name"] for d in viewer.data["analyticsCatalog"]["dimensions"]}
    assert "country" in viewer_dimensions and "user_id" not in viewer_dimensions
    analyst_metrics = {m["name"]: m for m in analyst.data["analyticsCatalog"]["metrics"]}
    assert analyst_metrics["latency_p50"]["roles"] == ["admin", "analyst"]
    assert analyst_metrics["latency_p50"]["unit"] == "ms"
    rest = client(services, Role.VIEWER).get("/api/v1/analytics/catalog")
    assert rest.status_code == 200
    assert rest.json()["metrics"] == [
        {k: m[k] for k in ("name", "type", "unit", "family", "roles")}
        | {"description": rest.json()["metrics"][i]["description"]}
        for i, m in enumerate(viewer.data["analyticsCatalog"]["metrics"])
    ]
    assert rest.json()["role"] == "viewer"


async def test_catalog_needs_an_analytics_reader(services: FakeServices) -> None:
    assert only_error(await graphql(services, None, CATALOG))["extensions"]["code"] == "unauthenticated"
    refused = only_error(await graphql(services, Role.SERVICE, CATALOG))
    assert refused["extensions"]["code"] == "forbidden"
    assert client(services, Role.SERVICE).get("/api/v1/analytics/catalog").status_code == 403
    assert client(services, None).get("/api/v1/analytics/catalog").status_code == 401


# --- the query: both transports, one answer --------------------------------------------------------

BODY = {
    "metrics": ["views", "completion_rate", "api_requests"],
    "dimensions": ["category", "day"],
    "filters": [{"dimension": "country", "op": "neq", "value": "DE"}],
    "date_range": march(8, 14),
    "timezone": "Asia/Riyadh",
    "compare_to": "previous_period",
    "order_by": [{"field": "views", "direction": "desc"}],
    "limit": 4,
}


def camel(body: dict[str, Any]) -> dict[str, Any]:
    def key(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(p.title() for p in rest)

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {key(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    out = convert(body)
    # GraphQL filter values are strings.
    for flt in out.get("filters", []):
        if "value" in flt:
            flt["value"] = str(flt["value"])
        if "values" in flt:
            flt["values"] = [str(v) for v in flt["values"]]
    return out


async def test_graphql_and_rest_give_the_same_answer(services: FakeServices) -> None:
    result = await graphql(services, Role.ANALYST, QUERY, {"q": camel(BODY)})
    assert result.errors is None, result.errors
    answer = result.data["analyticsQuery"]
    rest = client(services, Role.ANALYST).post("/api/v1/analytics/query", json=BODY)
    assert rest.status_code == 200, rest.text
    body = rest.json()
    assert answer["rows"] == body["rows"]
    assert answer["totals"] == body["totals"]
    assert answer["compareTotals"] == body["compare_totals"]
    assert answer["nextCursor"] == body["next_cursor"] is not None
    assert answer["source"] == body["source"] == "events"
    assert answer["period"] == {
        "startDate": "2025-03-08",
        "endDate": "2025-03-14",
        "timezone": "Asia/Riyadh",
        "granularity": "day",
    }
    assert answer["comparePeriod"] == {"startDate": "2025-03-01", "endDate": "2025-03-07"}
    assert [c["name"] for c in answer["columns"]] == ["category", "day", "views", "completion_rate", "api_requests"]
    # The data watermark of the store the answer was computed at (tests/graphql/fakes.py).
    assert body["as_of"] == "2023-11-14T22:13:20Z"
    assert answer["asOf"].startswith("2023-11-14T22:13:20")
    # The numbers: the Python model of the dataset.
    metrics, dims = BODY["metrics"], BODY["dimensions"]
    wanted = expected(metrics, dims, date(2025, 3, 8), date(2025, 3, 14), tz="Asia/Riyadh", filters=BODY["filters"])
    wanted.sort(key=lambda r: (-r["views"], r["category"], r["day"]))
    assert_rows([{k: v for k, v in r.items() if k != "compare"} for r in body["rows"]], wanted[:4])
    assert same(
        body["totals"],
        expected_totals(metrics, date(2025, 3, 8), date(2025, 3, 14), tz="Asia/Riyadh", filters=BODY["filters"]),
    )
    # The next page over both transports.
    page2 = client(services, Role.ANALYST).post("/api/v1/analytics/query", json={**BODY, "cursor": body["next_cursor"]})
    gql2 = await graphql(services, Role.ANALYST, QUERY, {"q": camel({**BODY, "cursor": body["next_cursor"]})})
    assert page2.status_code == 200 and gql2.errors is None
    assert page2.json()["rows"] == gql2.data["analyticsQuery"]["rows"]
    assert_rows([{k: v for k, v in r.items() if k != "compare"} for r in page2.json()["rows"]], wanted[4:8])


async def test_relative_ranges_over_both_transports(services: FakeServices) -> None:
    body = {"metrics": ["events"], "date_range": {"relative": "today"}}
    rest = client(services, Role.ADMIN).post("/api/v1/analytics/query", json=body)
    gql = await graphql(services, Role.ADMIN, QUERY, {"q": camel(body)})
    assert rest.status_code == 200 and gql.errors is None
    assert rest.json()["period"]["start_date"] == rest.json()["period"]["end_date"]
    assert gql.data["analyticsQuery"]["period"]["startDate"] == rest.json()["period"]["start_date"]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metrics": ["views", "veiws"]}, "metrics[1]"),
        ({"metrics": ["views"], "filters": [{"dimension": "country", "op": "like", "value": "x"}]}, "filters[0].op"),
        ({"metrics": ["views"], "timezone": INJECTION}, "timezone"),
        ({"metrics": ["views"], "cursor": INJECTION}, "cursor"),
        ({"metrics": ["views"], "order_by": [{"field": INJECTION}]}, "order_by[0].field"),
        (
            {"metrics": ["views"], "date_range": {"start_date": "2025-03-09", "end_date": "2025-03-01"}},
            "date_range.end_date",
        ),
        ({"metrics": ["views"], "limit": 20_000}, "limit"),
    ],
)
async def test_bad_queries_are_400s_naming_the_field(services: FakeServices, body: dict[str, Any], field: str) -> None:
    rest = client(services, Role.ADMIN).post("/api/v1/analytics/query", json=body)
    assert rest.status_code == 400, rest.text
    assert rest.json()["error"] == "invalid_request"
    assert rest.json()["details"]["field"] == field
    error = only_error(await graphql(services, Role.ADMIN, QUERY, {"q": camel(body)}))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"]["field"] == field


async def test_rest_body_errors(services: FakeServices) -> None:
    rest = client(services, Role.ADMIN)
    unknown = rest.post("/api/v1/analytics/query", json={"metrics": ["views"], "colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["details"]["field"] == "colour"
    not_json = rest.post("/api/v1/analytics/query", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    not_object = rest.post("/api/v1/analytics/query", json=["views"])
    assert not_object.status_code == 400 and not_object.json()["details"]["field"] == "(body)"
    huge = rest.post(
        "/api/v1/analytics/query",
        content=orjson.dumps({"metrics": ["views"], "cursor": "x" * MAX_QUERY_BODY_BYTES}),
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413


async def test_queries_are_for_admin_and_analyst(services: FakeServices) -> None:
    # Which catalog entries a role may use (semantic/public_catalog.py) still holds for the saved queries
    # shared with a viewer (tests/graphql/test_saved_queries.py); running a query is for analysts.
    body = {"metrics": ["views", "latency_p99"], "date_range": march(1, 7)}
    rest = client(services, Role.VIEWER).post("/api/v1/analytics/query", json=body)
    assert rest.status_code == 403
    assert rest.json()["message"] == "role 'viewer' may not run analytical queries; allowed roles: admin, analyst"
    error = only_error(await graphql(services, Role.CONTENT_MANAGER, QUERY, {"q": camel(body)}))
    assert error["extensions"] == {"code": "forbidden", "status": 403}
    assert client(services, Role.ANALYST).post("/api/v1/analytics/query", json=body).status_code == 200
    assert client(services, Role.SERVICE).post("/api/v1/analytics/query", json=body).status_code == 403
    assert client(services, None).post("/api/v1/analytics/query", json=body).status_code == 401


async def test_hostile_filter_values_change_nothing_over_rest(services: FakeServices) -> None:
    rest = client(services, Role.ADMIN)
    everything = rest.post("/api/v1/analytics/query", json={"metrics": ["events"], "date_range": march(1, 14)})
    for value in (INJECTION, "\\'; DROP TABLE events; --", "{p0:String}", "back\\slash", "ünïcødé"):
        body = {
            "metrics": ["events"],
            "date_range": march(1, 14),
            "filters": [{"dimension": "city", "op": "neq", "value": value}],
        }
        answer = rest.post("/api/v1/analytics/query", json=body)
        assert answer.status_code == 200
        assert (
            answer.json()["totals"]["events"]
            == expected_totals(["events"], date(2025, 3, 1), date(2025, 3, 14), filters=body["filters"])["events"]
        )
    again = rest.post("/api/v1/analytics/query", json={"metrics": ["events"], "date_range": march(1, 14)})
    assert again.json()["totals"] == everything.json()["totals"]
