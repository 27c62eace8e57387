"""Analytics request errors over HTTP: unknown ids are 404 with a message, bad windows are 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"


@pytest.fixture(scope="module")
def reader(client_for: Any) -> httpx.Client:
    return client_for("analyst")


@pytest.mark.parametrize("suffix", ["", "/insights", "/audience", "/journey"])
def test_unknown_content_is_404(reader: httpx.Client, unique: str, suffix: str) -> None:
    response = reader.get(f"{API}/content/nope-{unique}{suffix}")
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["error"] == "not_found"
    assert f"nope-{unique}" in body["message"] and "unknown" in body["message"]
    assert body["details"]["field"] == "content_id"


def test_unknown_content_in_a_comparison_is_404(reader: httpx.Client, unique: str) -> None:
    response = reader.get(f"{API}/content/comparison", params={"ids": f"nope-{unique}"})
    assert response.status_code == 404 and f"nope-{unique}" in response.json()["message"]


@pytest.mark.parametrize("suffix", ["", "/journey", "/preferences"])
def test_unknown_user_is_404(reader: httpx.Client, unique: str, suffix: str) -> None:
    response = reader.get(f"{API}/users/nobody-{unique}{suffix}")
    assert response.status_code == 404
    assert f"nobody-{unique}" in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/content/top-performing", {"start_date": "2025-03-10", "end_date": "2025-03-01"}, "end_date"),
        ("/users", {"start_date": "2025-03-10", "end_date": "2025-03-09"}, "end_date"),
        ("/search/overview", {"start_date": "2024-01-01", "end_date": "2025-06-01"}, "start_date"),
        ("/users/segments", {"timezone": "Mars/Olympus"}, "timezone"),
        ("/users/cohorts", {"granularity": "fortnight"}, "granularity"),
        (
            "/users/cohorts",
            {"granularity": "hour", "start_date": "2025-03-01", "end_date": "2025-03-02"},
            "granularity",
        ),
        ("/content", {"granularity": "hour", "start_date": "2025-01-01", "end_date": "2025-03-01"}, "granularity"),
        ("/content", {"start_date": "03/01/2025"}, "start_date"),
        ("/content", {"window": "7d", "start_date": "2025-03-01"}, "window"),
        ("/content", {"window": "3w"}, "window"),
        ("/content", {"sort": "title"}, "sort"),
        ("/content/top-performing", {"metric": "popularity"}, "metric"),
        ("/content/comparison", {"ids": ",".join(f"c{i}" for i in range(11))}, "ids"),
        ("/users/segments", {"regular_min_share": 0.9}, "regular_min_share"),
    ],
)
def test_bad_window_or_parameter_is_400_naming_it(
    reader: httpx.Client, path: str, params: dict[str, Any], field: str
) -> None:
    response = reader.get(f"{API}{path}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    fields = [body["details"]["field"]] if isinstance(body["details"], dict) else [d["field"] for d in body["details"]]
    assert field in fields, body
    assert field in body["message"]


def test_oversized_range_says_the_limit(reader: httpx.Client) -> None:
    body = reader.get(f"{API}/users", params={"start_date": "2024-01-01", "end_date": "2025-06-01"}).json()
    assert body["details"] == {"field": "start_date", "max_days": 366}
    assert "spans 518 days" in body["message"] and "366" in body["message"]


def test_default_range_is_the_last_30_days(reader: httpx.Client) -> None:
    body = reader.get(f"{API}/search/overview", params={"timezone": "Pacific/Kiritimati"}).json()
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert body["period"] == {
        "start_date": (today - timedelta(days=29)).isoformat(),
        "end_date": today.isoformat(),
        "timezone": "Pacific/Kiritimati",
        "granularity": "day",
    }
    assert body["previous_period"]["end_date"] == (today - timedelta(days=30)).isoformat()
    window = reader.get(f"{API}/search/overview", params={"window": "7d"}).json()["period"]
    assert window["start_date"] == (datetime.now(UTC).date() - timedelta(days=6)).isoformat()


def test_roles(client_for: Any, service: Any) -> None:
    denied = client_for("service").get(f"{API}/users")
    assert denied.status_code == 403 and "service" in denied.json()["message"]
    anonymous = httpx.get(f"{service.base_url}{API}/content/top-performing")
    assert anonymous.status_code == 401


def test_graphql_errors_carry_the_field(reader: httpx.Client, unique: str) -> None:
    response = reader.post(
        "/graphql",
        json={
            "query": """{
        a: usersOverview(range: {startDate: "2025-03-10", endDate: "2025-03-01"}) { activeUsers }
    }"""
        },
    )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "invalid_request" and error["extensions"]["details"]["field"] == "end_date"
    missing = reader.post(
        "/graphql", json={"query": f'{{ contentAnalytics(contentId: "nope-{unique}") {{ source }} }}'}
    ).json()
    assert missing["errors"][0]["extensions"]["code"] == "not_found"
    assert f"nope-{unique}" in missing["errors"][0]["message"]


def test_refusals_read_the_same_on_rest_and_graphql(client_for: Any) -> None:
    service = client_for("service")
    rest = service.get(f"{API}/users")
    gql = service.post("/graphql", json={"query": "{ usersOverview { activeUsers } }"}).json()["errors"][0]
    expected = "role 'service' may not read user analytics; allowed roles: admin, analyst"
    assert rest.status_code == 403 and rest.json()["message"] == expected
    assert gql["message"] == expected and gql["extensions"]["code"] == "forbidden"
    assert gql["extensions"]["status"] == 403
