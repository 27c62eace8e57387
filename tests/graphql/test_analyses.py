"""The behaviour analyses through both transports, over real chDB in this process: GraphQL's
``funnel``, ``retentionAnalysis``, ``paths`` and ``stickiness`` (a schema of the AnalysesQueries mixin
alone) and POST /api/v1/analytics/funnels, /retention, /paths, /stickiness (an app of the analyses
router alone) answer what the semantic functions answer for the same request, refuse bad input
naming the field, and check the caller's role."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import strawberry
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from core.access import Role
from core.errors import AnalyticsError
from graphql_schema.analyses import AnalysesQueries
from semantic import event_retention, funnels, paths, stickiness
from serve_app.http import error_response
from serve_app.routes import analyses
from tests.graphql.conftest import only_error
from tests.graphql.fakes import ROLE_KEYS, FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_funnels import Row, event_table


@strawberry.type
class Query(AnalysesQueries):
    pass


schema = strawberry.Schema(query=Query)
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
RANGE = {"start_date": "2026-03-02", "end_date": "2026-03-15"}
GQL_RANGE = {"startDate": "2026-03-02", "endDate": "2026-03-15"}


def rows() -> list[Row]:
    out = []
    for i in range(6):
        user, session = f"u{i}", f"s{i}"
        day = T0 + timedelta(days=i % 3)
        out += [
            Row(day, "content_view", user, session, country="DE" if i % 2 else "FR", content_id="A"),
            Row(day + timedelta(seconds=30 + i), "search_query", user, session),
        ]
        if i % 2:
            out.append(Row(day + timedelta(minutes=2), "content_play", user, session, content_id="A"))
        if i < 4:
            out.append(Row(day + timedelta(days=7), "content_view", user, f"{session}-later", content_id="B"))
    return out


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"analyses_api_{secrets.token_hex(4)}")
    # Through the rollup feed: paths read session_steps, which the feed fills.
    events.insert(event_table(rows()), "analyses")
    yield InProcessStore(events)
    events.close()


@pytest.fixture
def services(store: InProcessStore) -> FakeServices:
    return replace(FakeServices.build(), events=store)  # type: ignore[arg-type]


async def run(services: FakeServices, role: Role | None, query: str, variables: dict[str, Any]) -> Any:
    return await schema.execute(query, variable_values=variables, context_value=services.context(role))


def rest_client(services: FakeServices, role: Role | None) -> TestClient:
    app = FastAPI()
    app.include_router(analyses.router)

    @app.exception_handler(AnalyticsError)
    async def _domain_error(_: Request, exc: AnalyticsError) -> Any:
        return error_response(exc)

    app.state.services = services
    headers = {"Authorization": f"Bearer {ROLE_KEYS[role]}"} if role is not None else {}
    return TestClient(app, headers=headers)


def camel(value: Any) -> Any:
    """A model dump as GraphQL shows it: camelCase keys."""
    if isinstance(value, dict):
        return {_camel(k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


FUNNEL_BODY = {
    "date_range": RANGE,
    "steps": [
        {"event_type": "content_view", "label": "viewed"},
        {"event_type": "search_query"},
        {"event_type": "content_play", "filters": [{"dimension": "content_id", "value": "A"}]},
    ],
    "conversion_window": {"value": 1, "unit": "hours"},
    "exclusions": [{"event_type": "content_like", "after_step": 1}],
    "breakdown": {"dimension": "country", "limit": 1},
}
FUNNEL_QUERY = """query($input: FunnelInput!) {
  funnel(input: $input) {
    period { startDate endDate timezone granularity }
    asOf countedBy conversionWindowSeconds overallConversion
    steps { step eventType label count conversionFromFirst conversionFromPrevious dropOff medianSecondsFromPrevious }
    breakdown { dimension groups { value steps { step eventType label count conversionFromFirst
      conversionFromPrevious dropOff medianSecondsFromPrevious } } }
  }
}"""
FUNNEL_INPUT = {
    "dateRange": GQL_RANGE,
    "steps": [
        {"eventType": "content_view", "label": "viewed"},
        {"eventType": "search_query"},
        {"eventType": "content_play", "filters": [{"dimension": "content_id", "value": "A"}]},
    ],
    "conversionWindow": {"value": 1, "unit": "hours"},
    "exclusions": [{"eventType": "content_like", "afterStep": 1}],
    "breakdown": {"dimension": "country", "limit": 1},
}

RETENTION_BODY = {
    "date_range": RANGE,
    "start_event": {"event_type": "content_view"},
    "return_event": {"event_type": "content_view", "filters": [{"dimension": "content_id", "value": "B"}]},
    "bucket": "day",
    "periods": 10,
}
RETENTION_QUERY = """query($input: RetentionAnalysisInput!) {
  retentionAnalysis(input: $input) {
    period { startDate endDate timezone granularity } asOf bucket periods startEvent returnEvent
    cohorts { cohort size cells { offset users rate } }
    curve { offset returnedUsers eligibleUsers rate }
  }
}"""
RETENTION_INPUT = {
    "dateRange": GQL_RANGE,
    "startEvent": {"eventType": "content_view"},
    "returnEvent": {"eventType": "content_view", "filters": [{"dimension": "content_id", "value": "B"}]},
    "bucket": "day",
    "periods": 10,
}

PATHS_BODY = {"date_range": RANGE, "anchor": "content:A", "depth": 2, "event_types": ["content_view", "search_query"]}
PATHS_QUERY = """query($input: PathsInput!) {
  paths(input: $input) {
    period { startDate endDate timezone granularity } asOf anchor direction depth sessions otherPaths
    paths { steps sessions share }
    byDepth { depth steps { step sessions share } }
  }
}"""
PATHS_INPUT = {
    "dateRange": GQL_RANGE,
    "anchor": "content:A",
    "depth": 2,
    "eventTypes": ["content_view", "search_query"],
}

STICKINESS_BODY = {"date_range": RANGE, "event": {"event_type": "content_view"}, "window": "week"}
STICKINESS_QUERY = """query($input: StickinessInput!) {
  stickiness(input: $input) {
    period { startDate endDate timezone granularity } asOf eventType window activeUsers
    averageDailyActiveUsers ratio
    windows { window days activeUsers averageActiveDays ratio distribution { days users share } }
  }
}"""
STICKINESS_INPUT = {"dateRange": GQL_RANGE, "event": {"eventType": "content_view"}, "window": "week"}

CASES = {
    "funnel": (FUNNEL_QUERY, FUNNEL_INPUT, FUNNEL_BODY, "/funnels", funnels.FunnelRequest, funnels.run_funnel),
    "retentionAnalysis": (
        RETENTION_QUERY,
        RETENTION_INPUT,
        RETENTION_BODY,
        "/retention",
        event_retention.RetentionRequest,
        event_retention.run_retention,
    ),
    "paths": (PATHS_QUERY, PATHS_INPUT, PATHS_BODY, "/paths", paths.PathsRequest, paths.run_paths),
    "stickiness": (
        STICKINESS_QUERY,
        STICKINESS_INPUT,
        STICKINESS_BODY,
        "/stickiness",
        stickiness.StickinessRequest,
        stickiness.run_stickiness,
    ),
}


@pytest.mark.parametrize("field", CASES)
async def test_both_transports_answer_what_the_analysis_computes(
    services: FakeServices, store: InProcessStore, field: str
) -> None:
    query, variables, body, path, model, compute = CASES[field]
    # Answers carry the data watermark's as_of; the fake store's is fixed (tests/graphql/fakes.py).
    watermark = await services.answers.watermark()
    expected = dump(await compute(store, model.parse(body).resolved(), watermark))
    # The dataset gives every analysis something to count.
    assert expected != dump(
        await compute(
            store,
            model.parse({**body, "date_range": {"start_date": "2026-01-05", "end_date": "2026-01-06"}}).resolved(),
        )
    )
    result = await run(services, Role.ANALYST, query, {"input": variables})
    assert result.errors is None, result.errors
    assert expected["as_of"] == "2023-11-14T22:13:20Z"
    got = result.data[field]
    assert datetime.fromisoformat(got.pop("asOf")) == datetime.fromisoformat(expected["as_of"])
    assert {field: got} == {field: {k: v for k, v in camel(expected).items() if k != "asOf"}}
    response = rest_client(services, Role.ANALYST).post(f"/api/v1/analytics{path}", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == expected


async def test_funnel_answer_by_hand(services: FakeServices) -> None:
    result = await run(services, Role.ANALYST, FUNNEL_QUERY, {"input": FUNNEL_INPUT})
    assert result.errors is None, result.errors
    funnel = result.data["funnel"]
    # Six viewers search within the hour; the three odd ones play A two minutes after viewing.
    assert [s["count"] for s in funnel["steps"]] == [6, 6, 3]
    assert funnel["steps"][0]["label"] == "viewed"
    assert funnel["breakdown"]["groups"][0]["value"] in ("DE", "FR")
    assert [g["value"] for g in funnel["breakdown"]["groups"]][1] is None


async def test_paths_answer_by_hand(services: FakeServices) -> None:
    result = await run(services, Role.ANALYST, PATHS_QUERY, {"input": PATHS_INPUT})
    assert result.errors is None, result.errors
    answer = result.data["paths"]
    # Six sessions view A, search, and end there (the plays are not steps here; the later sessions
    # view only B).
    assert answer["sessions"] == 6
    assert answer["paths"] == [{"steps": ["content:A", "search", "exit"], "sessions": 6, "share": 1.0}]


@pytest.mark.parametrize(
    ("field", "variables", "bad_field"),
    [
        ("funnel", {**FUNNEL_INPUT, "steps": [{"eventType": "content_view"}]}, "steps"),
        (
            "funnel",
            {**FUNNEL_INPUT, "steps": [{"eventType": "content_view"}, {"eventType": "Bad Type"}]},
            "steps[1].event_type",
        ),
        ("retentionAnalysis", {**RETENTION_INPUT, "periods": 91}, "periods"),
        ("paths", {**PATHS_INPUT, "anchor": "exit"}, "anchor"),
        ("stickiness", {**STICKINESS_INPUT, "window": "year"}, "window"),
        ("stickiness", {**STICKINESS_INPUT, "timezone": "Atlantis/Capital"}, "timezone"),
    ],
)
async def test_bad_input_names_the_field(
    services: FakeServices, field: str, variables: dict[str, Any], bad_field: str
) -> None:
    query = CASES[field][0]
    error = only_error(await run(services, Role.ANALYST, query, {"input": variables}))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["status"] == 400
    assert error["extensions"]["details"]["field"] == bad_field


@pytest.mark.parametrize(
    ("path", "body", "bad_field"),
    [
        ("/funnels", {**FUNNEL_BODY, "steps": []}, "steps"),
        ("/funnels", {**FUNNEL_BODY, "conversion_window": {"value": 100, "unit": "days"}}, "conversion_window"),
        ("/retention", {**RETENTION_BODY, "bucket": "year"}, "bucket"),
        ("/paths", {**PATHS_BODY, "depth": 9}, "depth"),
        ("/stickiness", {**STICKINESS_BODY, "event": {"event_type": "content_view", "extra": True}}, "event.extra"),
        ("/stickiness", [1, 2], "(body)"),
    ],
)
def test_rest_refuses_bad_bodies_naming_the_field(services: FakeServices, path: str, body: Any, bad_field: str) -> None:
    response = rest_client(services, Role.ANALYST).post(f"/api/v1/analytics{path}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert response.json()["details"]["field"] == bad_field


def test_rest_refuses_malformed_and_oversized_bodies(services: FakeServices) -> None:
    client = rest_client(services, Role.ANALYST)
    response = client.post(
        "/api/v1/analytics/funnels", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    huge = {
        **FUNNEL_BODY,
        "steps": [{"event_type": "content_view", "label": "x" * 200}] * 2,
        "pad": "y" * analyses.MAX_ANALYSIS_BODY_BYTES,
    }
    response = client.post("/api/v1/analytics/funnels", json=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


@pytest.mark.parametrize("field", CASES)
async def test_roles_without_analytics_are_refused(services: FakeServices, field: str) -> None:
    query, variables, body, path, *_ = CASES[field]
    error = only_error(await run(services, Role.SERVICE, query, {"input": variables}))
    assert error["extensions"]["code"] == "forbidden"
    error = only_error(await run(services, None, query, {"input": variables}))
    assert error["extensions"]["code"] == "unauthenticated"
    assert rest_client(services, Role.SERVICE).post(f"/api/v1/analytics{path}", json=body).status_code == 403
    assert rest_client(services, None).post(f"/api/v1/analytics{path}", json=body).status_code == 401


async def test_analyses_are_for_admin_and_analyst_with_user_and_session_dimensions(services: FakeServices) -> None:
    by_user = {**FUNNEL_INPUT, "breakdown": {"dimension": "user_id", "limit": 1}}
    error = only_error(await run(services, Role.VIEWER, FUNNEL_QUERY, {"input": by_user}))
    assert error["extensions"]["code"] == "forbidden"
    assert error["message"].startswith("role 'viewer' may not run analytical queries")
    result = await run(services, Role.ANALYST, FUNNEL_QUERY, {"input": by_user})
    assert result.errors is None, result.errors
    assert len(result.data["funnel"]["breakdown"]["groups"]) == 2  # the top user, then the other five
    on_session = {
        **STICKINESS_BODY,
        "event": {"event_type": "content_view", "filters": [{"dimension": "session_id", "value": "s1"}]},
    }
    response = rest_client(services, Role.CONTENT_MANAGER).post("/api/v1/analytics/stickiness", json=on_session)
    assert response.status_code == 403
    assert response.json()["message"].startswith("role 'content_manager' may not run analytical queries")
    response = rest_client(services, Role.ADMIN).post("/api/v1/analytics/stickiness", json=on_session)
    assert response.status_code == 200 and response.json()["active_users"] == 1


def test_the_routes_document_their_bodies_and_errors(services: FakeServices) -> None:
    app = FastAPI()
    app.include_router(analyses.router)
    document = app.openapi()
    for path in ("/funnels", "/retention", "/paths", "/stickiness"):
        operation = document["paths"][f"/api/v1/analytics{path}"]["post"]
        assert {"200", "400", "401", "403", "413", "422", "503"} <= set(operation["responses"])
