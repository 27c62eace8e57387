"""The batch jobs over GraphQL (graphql_schema/jobs.py) on the real PostgreSQL, against the REST routes
of serve_app/routes/jobs.py over the same service: the same runs, the same refusals. The launch is
recorded here; tests/e2e/test_daily_aggregation.py runs the jobs on the cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.access import Role
from core.settings import Settings
from semantic.aggregation_jobs import AggregationJobs
from serve_app.factory import create_app
from storage.aggregates import AggregateStore
from storage.metadata import MetadataStore
from tests.graphql.conftest import only_error, run
from tests.graphql.fakes import ROLE_KEYS, FakeServices

RUN_FIELDS = "id job day engine trigger requestedBy status startedAt finishedAt seconds asOf partitions records error"
RUN = f"""mutation($date: String!, $engine: String! = "ray", $trigger: String! = "api") {{
  runAggregation(date: $date, engine: $engine, trigger: $trigger) {{ {RUN_FIELDS} }} }}"""
ONE = f"query($id: String!) {{ aggregationRun(id: $id) {{ {RUN_FIELDS} }} }}"
LIST = """query($date: String, $limit: Int! = 50, $offset: Int! = 0) {
  aggregationRuns(date: $date, limit: $limit, offset: $offset) { total limit offset items { id day trigger } } }"""
YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


@pytest.fixture
async def launched(migrated: MetadataStore, services: FakeServices) -> list[str]:
    await migrated.pool.execute("TRUNCATE aggregation_runs")
    started: list[str] = []

    async def launch(run_id: str) -> None:
        started.append(run_id)

    services.aggregation_jobs = AggregationJobs(AggregateStore(migrated.pool), launch=launch)
    return started


def rest(services: FakeServices, role: Role) -> httpx.AsyncClient:
    """The REST app over the same services, on this event loop (the PostgreSQL pool is bound to it)."""
    app = create_app(Settings(environment="test"))
    app.state.services = services  # no lifespan: the fakes stand in for Services.start
    headers = {"Authorization": f"Bearer {ROLE_KEYS[role]}"}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)


def _data(result: Any) -> Any:
    assert result.errors is None, result.errors
    return result.data


def _as_rest(run: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL run with REST's names and shapes."""
    names = {"requestedBy": "requested_by", "startedAt": "started_at", "finishedAt": "finished_at", "asOf": "as_of"}
    return {names.get(k, k): v for k, v in run.items()}


async def test_a_run_started_over_graphql_is_launched_and_read_alike_on_both_transports(
    services: FakeServices, launched: list[str]
) -> None:
    started = _data(await run(services, Role.ADMIN, RUN, {"date": YESTERDAY}))["runAggregation"]
    assert launched == [started["id"]]
    assert {k: started[k] for k in ("job", "day", "engine", "trigger", "status", "requestedBy")} == {
        "job": "daily",
        "day": YESTERDAY,
        "engine": "ray",
        "trigger": "api",
        "status": "running",
        "requestedBy": "key_admin",
    }
    assert started["finishedAt"] is None and started["seconds"] is None and started["records"] == {}
    one = _data(await run(services, Role.ADMIN, ONE, {"id": started["id"]}))["aggregationRun"]
    assert one == started
    async with rest(services, Role.ADMIN) as client:
        answer = await client.get(f"/api/v1/analytics/jobs/{started['id']}")
    assert answer.status_code == 200
    assert answer.json() == {**_as_rest(one), "started_at": answer.json()["started_at"]}
    assert datetime.fromisoformat(answer.json()["started_at"]) == datetime.fromisoformat(one["startedAt"])

    # A second run of the day from the command line's trigger, and the list by day, newest first.
    second = _data(await run(services, Role.ADMIN, RUN, {"date": YESTERDAY, "trigger": "backfill"}))["runAggregation"]
    page = _data(await run(services, Role.ADMIN, LIST, {"date": YESTERDAY}))["aggregationRuns"]
    assert page == {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "items": [
            {"id": second["id"], "day": YESTERDAY, "trigger": "backfill"},
            {"id": started["id"], "day": YESTERDAY, "trigger": "api"},
        ],
    }
    async with rest(services, Role.ADMIN) as client:
        rest_page = (await client.get("/api/v1/analytics/jobs", params={"date": YESTERDAY})).json()
    assert [r["id"] for r in rest_page["items"]] == [second["id"], started["id"]] and rest_page["total"] == 2


@pytest.mark.parametrize(
    ("variables", "field", "message"),
    [
        ({"date": "2026-13-01"}, "date", "date must be a date, YYYY-MM-DD"),
        ({"date": "2999-01-01"}, "date", "date must be a day from 1970-01-01 to today"),
        ({"date": YESTERDAY, "engine": "spark"}, "engine", "engine 'spark' cannot run from the API"),
        ({"date": YESTERDAY, "trigger": "schedule"}, "trigger", "trigger must be one of api, cli, backfill"),
    ],
)
async def test_a_bad_argument_is_refused_by_name_and_starts_nothing(
    services: FakeServices, launched: list[str], variables: dict[str, str], field: str, message: str
) -> None:
    error = only_error(await run(services, Role.ADMIN, RUN, variables))
    assert error["extensions"] == {"code": "invalid_request", "status": 400, "details": {"field": field}}
    assert error["message"].startswith(message)
    async with rest(services, Role.ADMIN) as client:
        answer = await client.post("/api/v1/analytics/jobs/aggregate", json=variables)
    assert answer.status_code == 400 and answer.json()["message"] == error["message"]
    assert launched == []


async def test_paging_and_an_unknown_run(services: FakeServices, launched: list[str]) -> None:
    assert _data(await run(services, Role.ADMIN, ONE, {"id": "run_nothing"})) == {"aggregationRun": None}
    assert _data(await run(services, Role.ADMIN, ONE, {"id": "run_\x00"})) == {"aggregationRun": None}
    for name, value in (("limit", 0), ("limit", 201), ("offset", -1)):
        error = only_error(await run(services, Role.ADMIN, LIST, {name: value}))
        assert error["extensions"]["details"] == {"field": name}, (name, value)
    error = only_error(await run(services, Role.ADMIN, LIST, {"date": "yesterday"}))
    assert error["extensions"]["details"] == {"field": "date"}


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.ADMIN])
async def test_only_admins_run_or_see_jobs(services: FakeServices, launched: list[str], role: Role) -> None:
    for document, variables in ((RUN, {"date": YESTERDAY}), (LIST, {})):
        error = only_error(await run(services, role, document, variables))
        assert error["extensions"] == {"code": "forbidden", "status": 403}
        assert f"role '{role.value}' may not run batch jobs" in error["message"]
    assert launched == []


async def test_a_replica_without_batch_jobs_says_so(services: FakeServices) -> None:
    error = only_error(await run(services, Role.ADMIN, LIST))
    assert "batch jobs are not available on this replica" in error["message"]
