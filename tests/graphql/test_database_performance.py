"""databasePerformance over GraphQL and GET /api/v1/analytics/database/performance over REST, on real
chDB holding the statements of tests/semantic/test_database_performance.py: both transports give the
figures worked out there, share one cache entry, refuse the same roles and name the bad parameter."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from core.access import Role
from semantic.database_performance import DatabasePerformance, DatabasePerformanceService
from semantic.periods import Period
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_database_performance import SLOW_MS, Statement, _check, _edges, _statements, _table

PATH = "/api/v1/analytics/database/performance"
PERIOD = Period(date(2025, 5, 16), date(2025, 5, 24), "Europe/Berlin", "day")
PARAMS = {"start_date": "2025-05-16", "end_date": "2025-05-24", "timezone": "Europe/Berlin"}
FIGURES = "statements totalMs averageMs p95Ms maxMs slowStatements slowShare failedStatements rows"
QUERY = f"""query($service: String, $limit: Int! = 10, $sort: StatementSort! = P95_MS) {{
  databasePerformance(
    range: {{startDate: "2025-05-16", endDate: "2025-05-24", timezone: "Europe/Berlin"}}
    service: $service, limit: $limit, sort: $sort
  ) {{
    period {{ startDate endDate timezone granularity }}
    previousPeriod {{ startDate endDate timezone granularity }}
    slowQueryMs service sort source asOf comparison
    totals {{ {FIGURES} }}
    databases {{ database comparison {FIGURES} }}
    series {{ bucket database statements averageMs p95Ms slowStatements }}
    slowest {{ service database operation fingerprint {FIGURES} }}
  }}
}}"""


@pytest.fixture(scope="module")
def statements() -> list[Statement]:
    return _statements(11, 2_500) + _edges()


@pytest.fixture(scope="module")
def store(chdb_dir: Path, statements: list[Statement]) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"database_api_{secrets.token_hex(4)}")
    events.insert(_table(statements, "api"), "api")
    yield InProcessStore(events)
    events.close()


@pytest.fixture
def services(store: InProcessStore) -> FakeServices:
    fakes = FakeServices.build()
    performance = DatabasePerformanceService(store, slow_query_ms=SLOW_MS)  # type: ignore[arg-type]
    return replace(fakes, analytics=replace(fakes.analytics, database_performance=performance))


def _snake(value: Any) -> Any:
    """A GraphQL answer with the REST answer's field names."""
    if isinstance(value, list):
        return [_snake(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
        # Map keys (metric names inside comparison) are the model's own.
        out[name] = item if key == "comparison" else _snake(item)
    return out


async def test_both_transports_give_the_figures_and_share_one_answer(
    services: FakeServices, statements: list[Statement]
) -> None:
    rest = rest_client(services, Role.ANALYST).get(PATH, params=PARAMS)
    assert rest.status_code == 200, rest.text
    assert rest.headers["x-cache"] == "miss"
    answer = DatabasePerformance.model_validate(rest.json())
    _check(answer, statements, PERIOD)
    assert answer.source == "database_statements" and answer.as_of is not None

    result = await run(services, Role.ADMIN, QUERY)
    assert result.errors is None and result.data is not None, result.errors
    graphql = _snake(result.data["databasePerformance"])
    assert graphql["as_of"] is not None
    assert {**graphql, "as_of": None} == {**rest.json(), "as_of": None}
    # One question, one entry: the role is part of the key, so the admin's was its own miss.
    assert services.cache_count("database.performance", "miss") == 2
    again = await run(services, Role.ANALYST, QUERY)
    assert again.errors is None and services.cache_count("database.performance", "hit") == 1


async def test_options_reach_the_answer(services: FakeServices, statements: list[Statement]) -> None:
    rest = rest_client(services, Role.ADMIN).get(
        PATH, params={**PARAMS, "service": "search-service", "limit": 3, "sort": "total_ms"}
    )
    assert rest.status_code == 200, rest.text
    _check(
        DatabasePerformance.model_validate(rest.json()),
        statements,
        PERIOD,
        service="search-service",
        limit=3,
        sort="total_ms",
    )
    result = await run(services, Role.ADMIN, QUERY, {"service": "search-service", "limit": 3, "sort": "TOTAL_MS"})
    assert result.errors is None and result.data is not None, result.errors
    assert _snake(result.data["databasePerformance"])["slowest"] == rest.json()["slowest"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTENT_MANAGER, Role.SERVICE])
async def test_only_admins_and_analysts_read_it(services: FakeServices, role: Role) -> None:
    rest = rest_client(services, role).get(PATH, params=PARAMS)
    assert rest.status_code == 403
    error = only_error(await run(services, role, QUERY))
    assert error["extensions"]["code"] == "forbidden"
    assert error["message"] == rest.json()["message"]
    assert "admin, analyst" in error["message"]
    assert rest_client(services, None).get(PATH).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"sort": "fingerprint"}, "sort"),
        ({"service": ""}, "service"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"start_date": "2025-05-30"}, "end_date"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(services: FakeServices, params: dict[str, Any], field: str) -> None:
    response = rest_client(services, Role.ANALYST).get(PATH, params={**PARAMS, **params})
    assert response.status_code == 400, response.text
    body = response.json()
    named = body["details"]["field"] if isinstance(body["details"], dict) else body["details"][0]["field"]
    assert named == field


@pytest.mark.parametrize(("variables", "field"), [({"limit": 0}, "limit"), ({"service": ""}, "service")])
async def test_graphql_names_the_bad_argument(services: FakeServices, variables: dict[str, Any], field: str) -> None:
    error = only_error(await run(services, Role.ANALYST, QUERY, variables))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"] == {"field": field}
