"""Content and user analytics queries over fake services with known answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from core.access import Role
from semantic.content import ContentAnalyticsService
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices, KnownUsers

USERS_OVERVIEW = """query($r: AnalyticsRange) {
  usersOverview(range: $r) {
    period { startDate endDate timezone granularity }
    activeUsers newUsers returningUsers dau wau mau stickiness
    sessions { sessions bounceRate }
    series { bucket activeUsers }
    comparison
    source
  }
}"""
TOP_CONTENT = """{
  topPerformingContent(metric: "views", limit: 1, category: "news") {
    metric category minViews items { rank contentId value previousValue changePercent views uniqueViews }
  }
}"""


async def test_users_overview_answers_what_the_service_computed(services: FakeServices) -> None:
    variables = {
        "r": {"startDate": "2026-03-01", "endDate": "2026-03-07", "granularity": "WEEK", "timezone": "Europe/Paris"}
    }
    result = await run(services, Role.ANALYST, USERS_OVERVIEW, variables)
    assert result.errors is None, result.errors
    assert result.data == {
        "usersOverview": {
            "period": {
                "startDate": "2026-03-01",
                "endDate": "2026-03-07",
                "timezone": "Europe/Paris",
                "granularity": "week",
            },
            "activeUsers": 42,
            "newUsers": 10,
            "returningUsers": 32,
            "dau": 6.5,
            "wau": 40,
            "mau": 42,
            "stickiness": 0.155,
            "sessions": {"sessions": 70, "bounceRate": 0.1},
            "series": [{"bucket": "2026-03-01", "activeUsers": 5}],
            "comparison": {
                "active_users": {"current": 42.0, "previous": 21.0, "change": 21.0, "change_percent": 100.0}
            },
            "source": "test",
        }
    }
    users = services.analytics.users
    assert isinstance(users, KnownUsers)
    (period,) = users.periods
    assert (period.start_date, period.end_date, period.granularity) == (date(2026, 3, 1), date(2026, 3, 7), "week")


async def test_a_bad_range_names_the_field(services: FakeServices) -> None:
    variables = {"r": {"startDate": "2026-03-10", "endDate": "2026-03-01"}}
    error = only_error(await run(services, Role.ANALYST, USERS_OVERVIEW, variables))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"]["field"] == "end_date"
    assert services.analytics.users.periods == []  # type: ignore[attr-defined]


async def test_top_performing_content(services: FakeServices) -> None:
    result = await run(services, Role.CONTENT_MANAGER, TOP_CONTENT)
    assert result.errors is None, result.errors
    assert result.data == {
        "topPerformingContent": {
            "metric": "views",
            "category": "news",
            "minViews": 1,
            "items": [
                {
                    "rank": 1,
                    "contentId": "video-1",
                    "value": 120.0,
                    "previousValue": 60.0,
                    "changePercent": 100.0,
                    "views": 120,
                    "uniqueViews": 90,
                }
            ],
        }
    }


CONTENT_AUDIENCE = """query($limit: Int!) { contentAudience(contentId: "video-1", limit: $limit) { views } }"""


@pytest.mark.parametrize("limit", [-1, 0, 101])
async def test_content_audience_refuses_a_limit_out_of_range_on_both_transports(
    services: FakeServices, limit: int
) -> None:
    # The real content service: the bound is checked there, before any query would run.
    services.analytics = replace(
        services.analytics, content=ContentAnalyticsService(services.events, services.analytics.metadata)
    )
    error = only_error(await run(services, Role.ANALYST, CONTENT_AUDIENCE, {"limit": limit}))
    assert error["message"] == "limit must be between 1 and 100"
    assert error["extensions"] == {"code": "invalid_request", "status": 400, "details": {"field": "limit"}}
    response = rest_client(services, Role.ANALYST).get(
        "/api/v1/analytics/content/video-1/audience", params={"limit": limit}
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "limit"


UPSERT_METADATA = """mutation($id: String!, $m: ContentMetadataInput!) {
  upsertContentMetadata(contentId: $id, metadata: $m) { contentId } }"""


async def test_metadata_upsert_names_a_bad_content_id_before_the_fields_on_both_transports(
    services: FakeServices,
) -> None:
    error = only_error(await run(services, Role.SERVICE, UPSERT_METADATA, {"id": " padded", "m": {}}))
    response = rest_client(services, Role.SERVICE).put("/api/v1/analytics/content-metadata/%20padded", json={})
    assert response.status_code == 422
    assert error["extensions"]["code"] == response.json()["error"] == "validation_failed"
    assert error["message"] == response.json()["message"]
    assert error["extensions"]["details"] == response.json()["details"]
    assert response.json()["details"][0]["field"] == "content_id"


@pytest.mark.parametrize("value", ["0", "1700000000", "0.5", "2026-3-01", "03/01/2026"])
def test_a_date_parameter_must_be_an_iso_date(services: FakeServices, value: str) -> None:
    response = rest_client(services, Role.ANALYST).get("/api/v1/analytics/users", params={"end_date": value})
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == "end_date"


@pytest.mark.parametrize("value", ["0.5", "1700000000"])
def test_an_event_time_bound_must_be_an_iso_date_time(services: FakeServices, value: str) -> None:
    response = rest_client(services, Role.ADMIN).get("/api/v1/analytics/events", params={"start": value})
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["field"] == "start"
