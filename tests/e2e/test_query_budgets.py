"""Query budgets, dates and the data watermark through the running service: a limit tripped inside
the event store actor reaches its caller as our own error (not Ray's wrapper, not retried), dates
the store cannot hold are 400 naming the parameter, and the watermark follows what is stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from actors.event_store import RemoteEventStore, find_event_store_actor
from core.errors import QueryBudgetExceeded

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"


@pytest.fixture(scope="module")
def store(service: Any) -> RemoteEventStore:
    return RemoteEventStore(find_event_store_actor())


async def test_a_statement_over_the_budget_reaches_the_caller_as_query_budget_exceeded(
    store: RemoteEventStore,
) -> None:
    # numbers() says how many rows it will read: refused at once, under the default budget.
    started = time.monotonic()
    with pytest.raises(QueryBudgetExceeded) as refused:
        await store.query("SELECT sum(number) FROM numbers(3000000000)")
    assert time.monotonic() - started < 10  # refused, not retried
    error = refused.value
    assert type(error) is QueryBudgetExceeded  # what the actor raised, not Ray's wrapper of it
    assert error.status == 422
    assert error.details == {"limit": "rows_read", "max": 2_000_000_000, "setting": "ANALYTICS_QUERY_MAX_ROWS_TO_READ"}
    assert error.to_dict()["message"].startswith("the query would read more rows than its limit of rows read")
    with pytest.raises(QueryBudgetExceeded):
        await store.query_arrow("SELECT 1 + 2 + 3 + 4 + 5 + 6 SETTINGS max_ast_elements = 5")
    assert (await store.query("SELECT sum(number) FROM numbers(1000)")).rows == [(sum(range(1000)),)]


@pytest.mark.parametrize(
    "params",
    [
        {"end_date": "0033-01-01"},
        {"end_date": "0001-01-01"},
        {"granularity": "week", "end_date": "0794-12-10", "offset": "16703"},
        {"window": "7d", "end_date": "0001-01-01"},
        {"start_date": "1969-12-31", "end_date": "1970-01-05"},
        {"end_date": "2106-01-01"},
    ],
)
def test_dates_the_store_cannot_hold_are_400_naming_the_parameter(admin: httpx.Client, params: dict[str, str]) -> None:
    response = admin.get(f"{API}/content", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    field = "start_date" if "start_date" in params else "end_date"
    assert body["error"] == "invalid_request" and body["details"] == {"field": field}
    assert "1970-01-01 to 2105-12-31" in body["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "1970-01-01", "end_date": "1970-01-31", "granularity": "week", "timezone": "Asia/Tokyo"},
        {"start_date": "2105-12-01", "end_date": "2105-12-31", "timezone": "Etc/GMT+12"},
    ],
)
@pytest.mark.parametrize("path", ["/content", "/users", "/search/overview", "/users/cohorts"])
def test_the_edge_dates_answer(admin: httpx.Client, path: str, params: dict[str, str]) -> None:
    response = admin.get(f"{API}{path}", params=params)
    assert response.status_code == 200, response.text


async def test_the_watermark_follows_what_is_stored_and_fed(
    store: RemoteEventStore, admin: httpx.Client, unique: str
) -> None:
    response = admin.post(
        f"{API}/events",
        json={"id": f"wm-{unique}", "event_type": "content_view", "content_id": f"wm-{unique}", "user_id": "u1"},
    )
    assert response.status_code == 201, response.text
    acknowledged = int(datetime.now(UTC).timestamp() * 1000)
    await store.settle_rollups()
    watermark = await store.watermark()
    assert watermark.stored_seq >= watermark.fed_seq >= 1
    assert acknowledged <= watermark.as_of_ms <= int(datetime.now(UTC).timestamp() * 1000) + 1
    assert watermark.as_of.tzinfo is UTC
