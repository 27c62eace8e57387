"""The content, user and search reads through both transports and the result cache, over real chDB in
this process and the real analytics services: every answer says the watermark it was computed at
(``as_of`` / ``asOf``), a repeated question is a cache hit, another option or period is a miss, REST
and GraphQL asking the same question share one entry, and an error is not cached."""

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
from core.errors import NotFound
from semantic.analytics import Analytics
from semantic.periods import Period
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.generator import generate

# The fake store's watermark (tests/graphql/fakes.py MemoryEventStore.watermark): 1,700,000,000,000 ms.
AS_OF = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 7))
DATES = {"start_date": "2026-03-01", "end_date": "2026-03-07"}
RANGE = '{startDate: "2026-03-01", endDate: "2026-03-07"}'
CONTENT, OTHER, USER = "rc1", "rc2", "ru1"


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"analytics_reads_{secrets.token_hex(4)}")
    events.insert(
        generate(3000, start=datetime(2026, 2, 20, tzinfo=UTC), days=16, prefix="r", contents=20, users=50), "reads"
    )
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
    # The GraphQL field asking the same question, with its arguments.
    field: str
    # The service call that computes the answer, as a test would make it.
    compute: Callable[[Analytics], Awaitable[BaseModel]]


READS = [
    Read(
        "content.list",
        "/content",
        {"ids": f"{CONTENT},{OTHER}", "sort": "views", "limit": 5},
        f'contentList(range: {RANGE}, ids: ["{CONTENT}", "{OTHER}"], sort: "views", limit: 5)',
        lambda a: a.content.page(
            PERIOD,
            sort="views",
            descending=True,
            limit=5,
            offset=0,
            content_ids=[CONTENT, OTHER],
            category=None,
            content_type=None,
            language=None,
        ),
    ),
    Read(
        "content.top_performing",
        "/content/top-performing",
        {"limit": 3},
        f"topPerformingContent(range: {RANGE}, limit: 3)",
        lambda a: a.content.top_performing(
            PERIOD, metric="views", limit=3, category=None, content_type=None, min_views=1
        ),
    ),
    Read(
        "content.comparison",
        "/content/comparison",
        {"ids": f"{CONTENT},{OTHER}"},
        f'contentComparison(ids: ["{CONTENT}", "{OTHER}"], range: {RANGE})',
        lambda a: a.comparison.compare([CONTENT, OTHER], PERIOD, lifecycle_days=30),
    ),
    Read(
        "content.report",
        f"/content/{CONTENT}",
        {},
        f'contentAnalytics(contentId: "{CONTENT}", range: {RANGE})',
        lambda a: a.content.report(CONTENT, PERIOD),
    ),
    Read(
        "content.insights",
        f"/content/{CONTENT}/insights",
        {},
        f'contentInsights(contentId: "{CONTENT}", range: {RANGE})',
        lambda a: a.insights.insights(CONTENT, PERIOD),
    ),
    Read(
        "content.audience",
        f"/content/{CONTENT}/audience",
        {"limit": 5},
        f'contentAudience(contentId: "{CONTENT}", range: {RANGE}, limit: 5)',
        lambda a: a.content.audience(CONTENT, PERIOD, limit=5),
    ),
    Read(
        "content.journey",
        f"/content/{CONTENT}/journey",
        {"limit": 4},
        f'contentJourney(contentId: "{CONTENT}", range: {RANGE}, limit: 4)',
        lambda a: a.journeys.content_journey(CONTENT, PERIOD, limit=4),
    ),
    Read("users.overview", "/users", {}, f"usersOverview(range: {RANGE})", lambda a: a.users.overview(PERIOD)),
    Read(
        "users.segments",
        "/users/segments",
        {"churn_inactive_days": 3},
        f"userSegments(range: {RANGE}, churnInactiveDays: 3)",
        lambda a: a.segments.segments(PERIOD, a.segments.rules(churn_inactive_days=3)),
    ),
    Read("users.cohorts", "/users/cohorts", {}, f"userCohorts(range: {RANGE})", lambda a: a.retention.cohorts(PERIOD)),
    Read(
        "users.retention",
        "/users/retention",
        {},
        f"userRetention(range: {RANGE})",
        lambda a: a.retention.retention(PERIOD),
    ),
    Read(
        "users.behavior_patterns",
        "/users/behavior-patterns",
        {"transitions": 5},
        f"behaviorPatterns(range: {RANGE}, transitions: 5)",
        lambda a: a.behavior.patterns(PERIOD, transitions=5),
    ),
    Read(
        "users.report",
        f"/users/{USER}",
        {},
        f'userAnalytics(userId: "{USER}", range: {RANGE})',
        lambda a: a.users.report(USER, PERIOD),
    ),
    Read(
        "users.journey",
        f"/users/{USER}/journey",
        {"sessions": 3},
        f'userJourney(userId: "{USER}", range: {RANGE}, sessions: 3)',
        lambda a: a.journeys.user_journey(USER, PERIOD, sessions=3),
    ),
    Read(
        "users.preferences",
        f"/users/{USER}/preferences",
        {},
        f'userPreferences(userId: "{USER}", range: {RANGE})',
        lambda a: a.users.preferences(USER, PERIOD),
    ),
    Read(
        "search.overview",
        "/search/overview",
        {},
        f"searchOverview(range: {RANGE})",
        lambda a: a.search.overview(PERIOD),
    ),
    Read(
        "search.queries",
        "/search/queries",
        {"limit": 5},
        f"topSearchQueries(range: {RANGE}, limit: 5)",
        lambda a: a.search.top_queries(PERIOD, limit=5),
    ),
    Read(
        "search.zero_results",
        "/search/zero-results",
        {"limit": 5},
        f"zeroResultQueries(range: {RANGE}, limit: 5)",
        lambda a: a.search.zero_result_queries(PERIOD, limit=5),
    ),
    Read(
        "search.recommendations",
        "/search/recommendations",
        {"limit": 5},
        f"recommendationPerformance(range: {RANGE}, limit: 5)",
        lambda a: a.search.recommendations(PERIOD, limit=5),
    ),
]


# The spec's ContentAnalytics and UserAnalytics say when they were computed: a cached answer keeps the
# instant of its computation, a fresh one made for comparison has its own.
COMPUTED_AT = ("calculated_at", "last_updated", "as_of")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _stable(value: Any) -> Any:
    """An answer without the instants it was computed at."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in COMPUTED_AT}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.mark.parametrize("read", READS, ids=[r.kind for r in READS])
async def test_every_read_says_its_watermark_and_is_shared_by_both_transports(
    services: FakeServices, read: Read
) -> None:
    expected = (await read.compute(services.analytics)).model_dump(mode="json")
    client = rest_client(services, Role.ANALYST)

    first = client.get(f"/api/v1/analytics{read.path}", params={**DATES, **read.params})
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache"] == "miss"
    body = first.json()
    assert _instant(body["as_of"]) == AS_OF
    # What the service computes for the same question, plus as_of: nothing else changed.
    assert set(body) == {*expected, "as_of"}
    assert _stable(body) == _stable(expected)

    again = client.get(f"/api/v1/analytics{read.path}", params={**DATES, **read.params})
    assert again.headers["X-Cache"] == "hit"
    assert again.json() == first.json()

    result = await run(services, Role.ANALYST, f"{{ {read.field} {{ asOf }} }}")
    assert result.errors is None, result.errors
    assert result.data is not None
    (answer,) = result.data.values()
    assert _instant(answer["asOf"]) == AS_OF
    # The GraphQL field found the entry REST made: one computation for the three requests.
    assert (services.cache_count(read.kind, "miss"), services.cache_count(read.kind, "hit")) == (1, 2)


async def test_graphql_first_then_rest_with_the_default_window_share_an_entry(services: FakeServices) -> None:
    result = await run(services, Role.ANALYST, "{ usersOverview { asOf period { startDate endDate } } }")
    assert result.errors is None, result.errors
    assert result.data is not None
    assert _instant(result.data["usersOverview"]["asOf"]) == AS_OF

    response = rest_client(services, Role.ANALYST).get("/api/v1/analytics/users")
    assert response.status_code == 200, response.text
    assert response.headers["X-Cache"] == "hit"
    assert _instant(response.json()["as_of"]) == AS_OF
    gql_period = result.data["usersOverview"]["period"]
    assert (response.json()["period"]["start_date"], response.json()["period"]["end_date"]) == (
        gql_period["startDate"],
        gql_period["endDate"],
    )
    assert (services.cache_count("users.overview", "miss"), services.cache_count("users.overview", "hit")) == (1, 1)


@pytest.mark.parametrize(
    ("path", "params", "changed"),
    [
        ("/search/queries", {"limit": 5}, {"limit": 6}),
        ("/search/queries", {"limit": 5}, {"end_date": "2026-03-08"}),
        ("/search/queries", {"limit": 5}, {"timezone": "Asia/Riyadh"}),
        (f"/content/{CONTENT}", {}, {"granularity": "week"}),
        (f"/content/{CONTENT}/audience", {"limit": 5}, {"limit": 7}),
        ("/content", {"sort": "views"}, {"order": "asc"}),
        ("/users/segments", {}, {"power_min_share": 0.6}),
    ],
)
def test_another_option_or_window_is_another_entry(
    services: FakeServices, path: str, params: dict[str, Any], changed: dict[str, Any]
) -> None:
    client = rest_client(services, Role.ANALYST)
    url = f"/api/v1/analytics{path}"
    assert client.get(url, params={**DATES, **params}).headers["X-Cache"] == "miss"
    assert client.get(url, params={**DATES, **params}).headers["X-Cache"] == "hit"
    other = client.get(url, params={**DATES, **params, **changed})
    assert other.status_code == 200, other.text
    assert other.headers["X-Cache"] == "miss"
    assert client.get(url, params={**DATES, **params, **changed}).headers["X-Cache"] == "hit"


def test_another_role_is_another_entry(services: FakeServices) -> None:
    url = "/api/v1/analytics/search/overview"
    assert rest_client(services, Role.ANALYST).get(url, params=DATES).headers["X-Cache"] == "miss"
    assert rest_client(services, Role.CONTENT_MANAGER).get(url, params=DATES).headers["X-Cache"] == "miss"
    assert rest_client(services, Role.CONTENT_MANAGER).get(url, params=DATES).headers["X-Cache"] == "hit"


async def test_an_unknown_content_is_not_cached_and_answers_404_on_both_transports(services: FakeServices) -> None:
    unknown = f"nope-{secrets.token_hex(4)}"
    with pytest.raises(NotFound) as raised:
        await services.analytics.content.report(unknown, PERIOD)
    client = rest_client(services, Role.ANALYST)
    for _ in range(2):
        response = client.get(f"/api/v1/analytics/content/{unknown}", params=DATES)
        assert response.status_code == 404
        assert "X-Cache" not in response.headers
        assert response.json() == raised.value.to_dict()

    error = only_error(await run(services, Role.ANALYST, f'{{ contentAnalytics(contentId: "{unknown}") {{ asOf }} }}'))
    assert error["message"] == raised.value.message
    assert error["extensions"]["code"] == "not_found"
    assert error["extensions"]["status"] == 404
    # Every request computed afresh: nothing was stored for the failed question.
    assert services.cache_count("content.report", "hit") == 0
    assert services.cache_count("content.report", "miss") == 3


def test_an_invalid_option_is_refused_before_the_cache_as_before(services: FakeServices) -> None:
    response = rest_client(services, Role.ANALYST).get(
        "/api/v1/analytics/users/segments", params={**DATES, "power_min_share": 0.2, "regular_min_share": 0.3}
    )
    assert response.status_code == 400
    assert response.json()["details"] == {"field": "regular_min_share"}
    assert services.cache_count("users.segments", "miss") == 0


def _keys_as_text(mapping: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in mapping.items()}


async def test_graphql_reads_the_cached_json_into_the_same_answer_as_rest(services: FakeServices) -> None:
    # Maps keyed by numbers and datetimes travel as JSON text in the cache and come back typed.
    query = f"""{{
      behaviorPatterns(range: {RANGE}) {{ viewsByHour viewsByWeekday sessionLengths }}
      searchOverview(range: {RANGE}) {{ clickPositions searches }}
      userJourney(userId: "{USER}", range: {RANGE}) {{ sessions {{ started events {{ timestamp eventType }} }} }}
    }}"""
    result = await run(services, Role.ANALYST, query)
    assert result.errors is None, result.errors
    assert result.data is not None
    client = rest_client(services, Role.ANALYST)
    behavior = client.get("/api/v1/analytics/users/behavior-patterns", params=DATES)
    search = client.get("/api/v1/analytics/search/overview", params=DATES)
    journey = client.get(f"/api/v1/analytics/users/{USER}/journey", params=DATES)
    assert [r.headers["X-Cache"] for r in (behavior, search, journey)] == ["hit"] * 3

    patterns = result.data["behaviorPatterns"]
    assert _keys_as_text(patterns["viewsByHour"]) == behavior.json()["views_by_hour"]
    assert _keys_as_text(patterns["viewsByWeekday"]) == behavior.json()["views_by_weekday"]
    assert patterns["sessionLengths"] == behavior.json()["session_lengths"]
    assert _keys_as_text(result.data["searchOverview"]["clickPositions"]) == search.json()["click_positions"]
    assert result.data["searchOverview"]["searches"] == search.json()["searches"]
    sessions = result.data["userJourney"]["sessions"]
    assert sessions, "the user has sessions in the window"
    assert [
        (_instant(s["started"]), [(_instant(e["timestamp"]), e["eventType"]) for e in s["events"]]) for s in sessions
    ] == [
        (_instant(s["started"]), [(_instant(e["timestamp"]), e["event_type"]) for e in s["events"]])
        for s in journey.json()["sessions"]
    ]


def test_cache_control_no_cache_asks_for_a_fresh_answer_on_both_transports(services: FakeServices) -> None:
    client = rest_client(services, Role.ANALYST)
    url = "/api/v1/analytics/search/overview"
    assert client.get(url, params=DATES).headers["X-Cache"] == "miss"
    fresh = client.get(url, params=DATES, headers={"Cache-Control": "no-cache"})
    assert fresh.status_code == 200 and fresh.headers["X-Cache"] == "miss"
    # Only that request skipped the cache; the next one finds the answer it stored.
    assert client.get(url, params=DATES).headers["X-Cache"] == "hit"
    query = {"query": f"{{ searchOverview(range: {RANGE}) {{ asOf searches }} }}"}
    graphql = client.post("/graphql", json=query, headers={"Cache-Control": "no-cache"})
    assert graphql.status_code == 200 and "errors" not in graphql.json(), graphql.text
    counts = [services.cache_count("search.overview", o) for o in ("miss", "refresh", "hit")]
    assert counts == [1, 2, 1]
