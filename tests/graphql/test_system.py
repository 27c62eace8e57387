"""System analytics through both transports over real chDB in this process: each REST route answers what
the service computes (plus ``as_of``), through the result cache shared with its GraphQL field, for
admins and analysts only; an unknown service is a 404 naming it, a bad parameter a 400 naming it."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from core.access import Role
from semantic.analytics import Analytics
from semantic.periods import Period
from semantic.system import SystemAnalyticsService
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.system_events import dataset, table

# The fake store's watermark (tests/graphql/fakes.py MemoryEventStore.watermark).
AS_OF = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
PERIOD = Period(date(2025, 3, 10), date(2025, 3, 16))
DATES = {"start_date": "2025-03-10", "end_date": "2025-03-16"}
RANGE = '{startDate: "2025-03-10", endDate: "2025-03-16"}'


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"system_reads_{secrets.token_hex(4)}")
    events.insert(table(dataset(), "gq"), "system-reads")
    yield InProcessStore(events)
    events.close()


@pytest.fixture
def services(store: InProcessStore) -> FakeServices:
    fakes = FakeServices.build()
    return replace(fakes, analytics=Analytics.build(store, fakes.settings))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Read:
    kind: str
    path: str
    params: dict[str, Any]
    field: str
    compute: Callable[[SystemAnalyticsService], Awaitable[BaseModel]]


READS = [
    Read("system.health", "/system/health", {}, f"systemHealth(range: {RANGE})", lambda s: s.health(PERIOD)),
    Read(
        "system.performance",
        "/system/performance",
        {"service": "content-service"},
        f'systemPerformance(range: {RANGE}, service: "content-service")',
        lambda s: s.performance(PERIOD, service="content-service"),
    ),
    Read(
        "system.errors",
        "/system/errors",
        {"limit": 3},
        f"systemErrors(range: {RANGE}, limit: 3)",
        lambda s: s.errors(PERIOD, limit=3),
    ),
    Read("system.usage", "/system/usage", {}, f"systemUsage(range: {RANGE})", lambda s: s.usage(PERIOD)),
    Read(
        "system.services",
        "/services",
        {"limit": 20, "offset": 5},
        f"services(range: {RANGE}, limit: 20, offset: 5)",
        lambda s: s.services(PERIOD, limit=20, offset=5),
    ),
    Read(
        "system.services",
        "/services/analytics",
        {"order": "desc"},
        f'service(serviceName: "analytics", range: {RANGE}, order: DESC)',
        lambda s: s.services(PERIOD, service="analytics", order="desc"),
    ),
    Read(
        "system.endpoints",
        "/api/endpoints",
        {"sort": "p95_ms", "limit": 4},
        f"apiEndpoints(range: {RANGE}, sort: P95_MS, limit: 4)",
        lambda s: s.endpoints(PERIOD, sort="p95_ms", limit=4),
    ),
]


def _stable(value: Any) -> Any:
    """An answer without the instants it was computed at."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in ("as_of", "calculated_at")}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.mark.parametrize("read", READS, ids=[r.path for r in READS])
async def test_every_read_answers_as_the_service_and_is_shared_with_graphql(services: FakeServices, read: Read) -> None:
    expected = (await read.compute(services.analytics.system)).model_dump(mode="json")
    client = rest_client(services, Role.ANALYST)
    first = client.get(f"/api/v1/analytics{read.path}", params={**DATES, **read.params})
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache"] == "miss"
    body = first.json()
    assert datetime.fromisoformat(body["as_of"]) == AS_OF
    assert set(body) == set(expected)
    assert _stable(body) == _stable(expected)
    again = client.get(f"/api/v1/analytics{read.path}", params={**DATES, **read.params})
    assert again.headers["X-Cache"] == "hit" and again.json() == body

    result = await run(services, Role.ANALYST, f"{{ {read.field} {{ asOf period {{ startDate }} }} }}")
    assert result.errors is None, result.errors
    assert result.data is not None
    (answer,) = result.data.values()
    assert datetime.fromisoformat(answer["asOf"]) == AS_OF
    # The GraphQL field found the entry REST made: one computation for the three requests.
    assert (services.cache_count(read.kind, "miss"), services.cache_count(read.kind, "hit")) == (1, 2)


async def test_graphql_answers_the_same_figures_as_rest(services: FakeServices) -> None:
    client = rest_client(services, Role.ANALYST)
    health = client.get("/api/v1/analytics/system/health", params=DATES).json()
    hours = client.get("/api/v1/analytics/services/content-service", params={**DATES, "limit": 5}).json()
    query = f"""{{
      systemHealth(range: {RANGE}) {{ status services {{ service status requests availability reasons }} }}
      service(serviceName: "content-service", range: {RANGE}, limit: 5) {{
        total hours {{ serviceName date hour requestCount statusCodeDistribution endpointStats dbSlowQueries }}
      }}
    }}"""
    result = await run(services, Role.ANALYST, query)
    assert result.errors is None, result.errors
    assert result.data is not None
    got = result.data["systemHealth"]
    assert got["status"] == health["status"]
    assert got["services"] == [
        {k: s[k] for k in ("service", "status", "requests", "availability", "reasons")} for s in health["services"]
    ]
    page = result.data["service"]
    assert page["total"] == hours["total"]
    assert [
        (h["serviceName"], h["date"], h["hour"], h["requestCount"], h["statusCodeDistribution"], h["endpointStats"])
        for h in page["hours"]
    ] == [
        (
            h["service_name"],
            h["date"],
            h["hour"],
            h["request_count"],
            h["status_code_distribution"],
            h["endpoint_stats"],
        )
        for h in hours["hours"]
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTENT_MANAGER, Role.SERVICE])
async def test_only_admins_and_analysts_read_system_analytics(services: FakeServices, role: Role) -> None:
    response = rest_client(services, role).get("/api/v1/analytics/system/health", params=DATES)
    assert response.status_code == 403
    assert "admin, analyst" in response.json()["message"]
    error = only_error(await run(services, role, "{ systemHealth { status } }"))
    assert error["extensions"]["code"] == "forbidden"
    assert rest_client(services, None).get("/api/v1/analytics/api/endpoints").status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/services/nobody", {}),
        ("/system/performance", {"service": "nobody"}),
        ("/system/errors", {"service": "nobody"}),
        ("/system/usage", {"service": "nobody"}),
        ("/api/endpoints", {"service": "nobody"}),
    ],
)
async def test_an_unknown_service_is_404_naming_it(services: FakeServices, path: str, params: dict[str, str]) -> None:
    client = rest_client(services, Role.ANALYST)
    for _ in range(2):
        response = client.get(f"/api/v1/analytics{path}", params={**DATES, **params})
        assert response.status_code == 404
        assert "'nobody'" in response.json()["message"]
        assert response.json()["details"] == {"service": "nobody"}
        assert "X-Cache" not in response.headers
    error = only_error(await run(services, Role.ANALYST, '{ service(serviceName: "nobody") { total } }'))
    assert error["extensions"]["code"] == "not_found" and "'nobody'" in error["message"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/services", {"limit": 0}, "limit"),
        ("/services", {"order": "sideways"}, "order"),
        ("/services/analytics", {"offset": -1}, "offset"),
        ("/api/endpoints", {"sort": "fastest"}, "sort"),
        ("/system/errors", {"limit": 101}, "limit"),
        ("/system/usage", {"timezone": "Mars/Olympus"}, "timezone"),
        ("/system/health", {"start_date": "2025-03-20"}, "end_date"),
        ("/system/performance", {"granularity": "fortnight"}, "granularity"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(
    services: FakeServices, path: str, params: dict[str, Any], field: str
) -> None:
    response = rest_client(services, Role.ANALYST).get(f"/api/v1/analytics{path}", params={**DATES, **params})
    assert response.status_code == 400, response.text
    body = response.json()
    named = body["details"]["field"] if isinstance(body["details"], dict) else body["details"][0]["field"]
    assert named == field


async def test_graphql_refuses_bad_limits_naming_them(services: FakeServices) -> None:
    for field in (
        "services(limit: 0) { total }",
        "apiEndpoints(limit: 5000) { total }",
        "systemErrors(limit: 0) { source }",
    ):
        error = only_error(await run(services, Role.ANALYST, f"{{ {field} }}"))
        assert error["extensions"]["code"] == "invalid_request"
        assert error["extensions"]["details"] == {"field": "limit"}


def test_openapi_documents_the_answers_and_the_404s(services: FakeServices) -> None:
    document = rest_client(services, Role.ADMIN).app.openapi()  # type: ignore[attr-defined]
    paths = document["paths"]
    for path, model, not_found in [
        ("/api/v1/analytics/system/health", "SystemHealth", False),
        ("/api/v1/analytics/system/performance", "SystemPerformance", True),
        ("/api/v1/analytics/system/errors", "SystemErrors", True),
        ("/api/v1/analytics/system/usage", "SystemUsage", True),
        ("/api/v1/analytics/services", "ServiceHours", False),
        ("/api/v1/analytics/services/{service_name}", "ServiceHours", True),
        ("/api/v1/analytics/api/endpoints", "ApiEndpoints", True),
    ]:
        responses = paths[path]["get"]["responses"]
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{model}")
        assert ("404" in responses) == not_found
        assert {"400", "401", "403"} <= set(responses)
    hours = document["components"]["schemas"]["SystemAnalytics"]["properties"]
    assert {"endpoint_stats", "status_code_distribution", "db_slow_queries", "cache_hit_rate"} <= set(hours)
