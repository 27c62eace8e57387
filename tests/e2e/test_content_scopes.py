"""Content scopes end to end: API keys limited to categories and content ids, through HTTP, GraphQL and a
websocket subscription of the running service.

The dataset is this module's own: six contents (three in a 'news' category, one 'sports', one 'music',
one without metadata) viewed, liked and recommended in four sessions of a week about 400 days ago, and a
few events a minute ago for the live figures. Categories and ids carry the module's unique prefix, so a
scope of them admits nothing another test stored. Every expected number is computed here from the events
sent; the scoped answers are compared with them and with the unscoped answers of the same question.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from serve_app import runtime
from tests.e2e.realtime_support import ago
from tests.e2e.test_subscriptions import subscribe

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
START = datetime.now(UTC).date() - timedelta(days=400)
END = START + timedelta(days=6)
WINDOW = {"start_date": START.isoformat(), "end_date": END.isoformat()}
RANGE = {"startDate": START.isoformat(), "endDate": END.isoformat()}
SCOPE_MESSAGE = "content scope"


@dataclass
class World:
    p: str
    events: list[dict[str, Any]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)

    def c(self, name: str) -> str:
        return f"{self.p}-{name}"

    @property
    def news(self) -> str:
        return f"{self.p}-news"

    def in_scope(self, content_id: str) -> bool:
        """The scope of the 'news' keys: the news category, and x1 by its id."""
        return self.categories.get(content_id) == self.news or content_id == self.c("x1")

    @property
    def contents(self) -> list[str]:
        return [self.c(n) for n in ("n1", "n2", "n3", "s1", "m1", "x1")]

    def count(self, event_type: str, content_id: str, events: list[dict[str, Any]] | None = None) -> int:
        return sum(
            1
            for e in (self.events if events is None else events)
            if e["event_type"] == event_type and e.get("content_id") == content_id
        )

    def users(self, event_type: str, content_id: str) -> int:
        return len(
            {e["user_id"] for e in self.events if e["event_type"] == event_type and e.get("content_id") == content_id}
        )


def at(day: int, clock: str) -> str:
    return datetime.combine(START + timedelta(days=day), datetime.strptime(clock, "%H:%M").time(), UTC).isoformat()


def build_world(p: str) -> World:
    world = World(p)
    c = world.c
    world.categories = {c("n1"): world.news, c("n2"): world.news, c("n3"): world.news, c("s1"): f"{p}-sports"}
    world.categories[c("m1")] = f"{p}-music"

    def add(event_type: str, user: int, day: int, clock: str, content: str | None = None, **extra: Any) -> None:
        event: dict[str, Any] = {
            "id": f"{p}-e{len(world.events)}",
            "event_type": event_type,
            "timestamp": at(day, clock),
            "user_id": f"{p}-u{user}",
            "session_id": f"{p}-s{user}-{day}",
            **extra,
        }
        if content:
            event["content_id"] = content
        world.events.append(event)

    for user in (1, 2, 3, 4):
        day = user - 1
        add("search_query", user, day, "09:58", properties={"query": f"{p} q", "results_count": 3})
        add("recommendation_impression", user, day, "09:59", c("n1"))
        add("recommendation_impression", user, day, "09:59", c("s1"))
        if user == 1:
            add("recommendation_click", user, day, "09:59", c("n1"))
        if user <= 3:
            add("recommendation_click", user, day, "09:59", c("s1"))
        # Each session: n1, then s1 (outside the scope), n2, m1, and x1 for two of them.
        for minute, name in enumerate(("n1", "s1", "n2", "m1")):
            add("content_view", user, day, f"10:0{minute}", c(name))
        if user <= 2:
            add("content_view", user, day, "10:04", c("x1"))
        add("content_like", user, day, "10:05", c("s1") if user == 2 else c("n1"))
    add("content_view", 3, 4, "11:00", c("n3"))
    add("content_view", 1, 5, "12:00", c("s1"))
    # A minute ago, for trending and the live counters.
    for i, name in enumerate(("n1", "n1", "n1", "s1", "s1", "x1", "m1")):
        world.live.append(
            {
                "id": f"{p}-live{i}",
                "event_type": "content_view",
                "timestamp": ago(seconds=60).isoformat(),
                "content_id": c(name),
                "user_id": f"{p}-lu{i}",
            }
        )
    return world


@pytest.fixture(scope="module")
def world(client_for: Any, admin: httpx.Client, service: runtime.RunningService) -> World:
    w = build_world(f"cs{secrets.token_hex(4)}")
    ingest = client_for("service")
    response = ingest.post(f"{API}/events/batch", json={"events": w.events + w.live})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(w.events) + len(w.live), response.text
    for content_id, category in w.categories.items():
        body: dict[str, Any] = {"title": f"title of {content_id}", "category": category}
        if category == w.news:
            body["published_at"] = at(0, "06:00")
        put = ingest.put(f"{API}/content-metadata/{content_id}", json=body)
        assert put.status_code == 200, put.text
    news_scope = {"categories": [w.news], "content_ids": [w.c("x1")]}
    for name, role, scope in (
        ("manager", "content_manager", news_scope),
        ("analyst", "analyst", news_scope),
        ("n1 viewer", "viewer", {"content_ids": [w.c("n1")]}),
    ):
        created = admin.post("/api/v1/admin/api-keys", json={"name": f"{w.p} {name}", "role": role, "scope": scope})
        assert created.status_code == 201, created.text
        w.keys[name] = created.json()
    service.settle_rollups()
    return w


@pytest.fixture(scope="module")
def scoped(service: runtime.RunningService, world: World) -> Callable[[str], httpx.Client]:
    clients: dict[str, httpx.Client] = {}

    def get(name: str) -> httpx.Client:
        if name not in clients:
            headers = {"Authorization": f"Bearer {world.keys[name]['key']}"}
            clients[name] = httpx.Client(base_url=service.base_url, headers=headers, timeout=120)
        return clients[name]

    yield get
    for client in clients.values():
        client.close()


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused_for_scope(response: httpx.Response, world: World) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "forbidden"
    assert SCOPE_MESSAGE in body["message"] and world.news in body["message"], body


def not_found_as_unknown(response: httpx.Response, content_id: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {
        "error": "not_found",
        "message": f"content {content_id!r} is unknown: no events and no metadata were ever recorded for it",
        "details": {"field": "content_id", "content_id": content_id},
    }


def graphql(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


def views_by_content(world: World, in_scope_only: bool) -> dict[str, int]:
    out = {cid: world.count("content_view", cid) for cid in world.contents}
    return {cid: n for cid, n in out.items() if n and (world.in_scope(cid) or not in_scope_only)}


# --- content analytics over REST ------------------------------------------------------------------------


def test_content_list_and_top_performing_hold_only_in_scope_content(world: World, scoped: Any, client_for: Any) -> None:
    manager = scoped("manager")
    expected = views_by_content(world, in_scope_only=True)
    assert set(expected) == {world.c(n) for n in ("n1", "n2", "n3", "x1")}
    page = ok(manager.get(f"{API}/content", params={**WINDOW, "limit": 100}))
    assert page["total"] == len(expected)
    assert {i["content_id"]: i["analytics"]["total_views"] for i in page["items"]} == expected
    n1 = next(i for i in page["items"] if i["content_id"] == world.c("n1"))
    assert n1["analytics"]["unique_views"] == world.users("content_view", world.c("n1"))
    assert n1["analytics"]["likes"] == world.count("content_like", world.c("n1"))
    assert n1["metadata"]["category"] == world.news
    # Asking for out-of-scope ids by name changes nothing.
    named = ok(manager.get(f"{API}/content", params={**WINDOW, "ids": ",".join(world.contents)}))
    assert {i["content_id"] for i in named["items"]} == set(expected)
    everyone = ok(client_for("analyst").get(f"{API}/content", params={**WINDOW, "ids": ",".join(world.contents)}))
    assert {i["content_id"]: i["analytics"]["total_views"] for i in everyone["items"]} == views_by_content(
        world, in_scope_only=False
    )

    top = ok(manager.get(f"{API}/content/top-performing", params={**WINDOW, "limit": 100}))
    ranked = sorted(expected.items(), key=lambda item: (-item[1], item[0]))
    assert [(i["content_id"], i["value"]) for i in top["items"]] == [(c, float(v)) for c, v in ranked]
    sports = ok(manager.get(f"{API}/content/top-performing", params={**WINDOW, "category": f"{world.p}-sports"}))
    assert sports["items"] == []


def test_one_content_outside_the_scope_is_404_as_if_it_did_not_exist(world: World, scoped: Any) -> None:
    manager = scoped("manager")
    n1, s1, nobody = world.c("n1"), world.c("s1"), world.c("nobody")
    report = ok(manager.get(f"{API}/content/{n1}", params=WINDOW))
    assert report["analytics"]["total_views"] == world.count("content_view", n1)
    assert ok(manager.get(f"{API}/content/{world.c('x1')}", params=WINDOW))["analytics"]["total_views"] == 2
    audience = ok(manager.get(f"{API}/content/{n1}/audience", params=WINDOW))
    assert audience["views"] == world.count("content_view", n1)
    ok(manager.get(f"{API}/content/{n1}/insights", params=WINDOW))
    for path in ("", "/insights", "/audience", "/journey"):
        not_found_as_unknown(manager.get(f"{API}/content/{s1}{path}", params=WINDOW), s1)
        not_found_as_unknown(manager.get(f"{API}/content/{nobody}{path}", params=WINDOW), nobody)
    not_found_as_unknown(manager.get(f"{API}/content/comparison", params={**WINDOW, "ids": f"{n1},{s1}"}), s1)
    metadata = manager.get(f"{API}/content-metadata/{s1}")
    absent = manager.get(f"{API}/content-metadata/{nobody}")
    assert metadata.status_code == absent.status_code == 404
    assert metadata.json()["message"] == absent.json()["message"].replace(nobody, s1)
    assert ok(manager.get(f"{API}/content-metadata/{n1}"))["category"] == world.news


def test_a_journey_leaves_out_neighbours_outside_the_scope(world: World, scoped: Any, client_for: Any) -> None:
    n1 = world.c("n1")
    everyone = ok(client_for("analyst").get(f"{API}/content/{n1}/journey", params=WINDOW))
    assert [(s["step"], s["views"]) for s in everyone["after"]] == [(f"content:{world.c('s1')}", 4)]
    journey = ok(scoped("manager").get(f"{API}/content/{n1}/journey", params=WINDOW))
    assert journey["views_in_sessions"] == everyone["views_in_sessions"] == 4
    assert [(s["step"], s["views"]) for s in journey["before"]] == [("search", 4)]
    assert journey["after"] == [] and journey["paths"] == []


def test_category_medians_count_in_scope_contents_only(world: World, scoped: Any, client_for: Any) -> None:
    n1 = world.c("n1")
    params = {**WINDOW, "ids": n1, "lifecycle_days": 3}
    everyone = ok(client_for("analyst").get(f"{API}/content/comparison", params=params))
    only_n1 = ok(scoped("n1 viewer").get(f"{API}/content/comparison", params=params))
    # n1, n2 and n3 are news published on day 0; the viewer's scope holds n1 alone.
    assert everyone["items"][0]["lifecycle"]["points"][0]["category_titles"] == 3
    assert only_n1["items"][0]["lifecycle"]["points"][0]["category_titles"] == 1
    not_found_as_unknown(scoped("n1 viewer").get(f"{API}/content/{world.c('n2')}", params=WINDOW), world.c("n2"))


def test_search_analytics_recommendations_filter_and_the_rest_refuse(
    world: World, scoped: Any, client_for: Any
) -> None:
    manager = scoped("manager")
    n1, s1 = world.c("n1"), world.c("s1")
    recommended = ok(manager.get(f"{API}/search/recommendations", params={**WINDOW, "limit": 100}))
    assert [(c["content_id"], c["impressions"], c["clicks"]) for c in recommended["contents"]] == [
        (n1, world.count("recommendation_impression", n1), world.count("recommendation_click", n1))
    ]
    assert (recommended["impressions"], recommended["clicks"]) == (4, 1)
    everyone = ok(client_for("content_manager").get(f"{API}/search/recommendations", params={**WINDOW, "limit": 100}))
    assert {c["content_id"] for c in everyone["contents"]} >= {n1, s1}
    for path in ("overview", "queries", "zero-results"):
        refused_for_scope(manager.get(f"{API}/search/{path}", params=WINDOW), world)


def test_answers_that_are_not_about_content_refuse_a_scoped_principal(world: World, scoped: Any) -> None:
    analyst = scoped("analyst")
    for path in ("/users/overview", "/system/health", "/imports/jobs", "/database/performance"):
        refused_for_scope(analyst.get(f"{API}{path}", params=WINDOW), world)
    refused_for_scope(scoped("manager").get(f"{API}/real-time"), world)


# --- analyticsQuery, analyses, saved queries, the cache ---------------------------------------------------


def test_analytics_query_counts_events_on_in_scope_content(world: World, scoped: Any, client_for: Any) -> None:
    body = {
        "metrics": ["views", "likes", "searches"],
        "dimensions": ["content_id"],
        "filters": [{"dimension": "content_id", "op": "in", "values": world.contents}],
        "date_range": WINDOW,
        "limit": 100,
    }
    expected = views_by_content(world, in_scope_only=True)
    # The same query for an unscoped analyst first, then the scoped one: the scoped answer is never the
    # entry the first one left in the result cache (tests/semantic/test_content_scope.py checks the keys).
    unscoped = ok(client_for("analyst").post(f"{API}/query", json=body))
    assert {r["content_id"]: r["views"] for r in unscoped["rows"]} == views_by_content(world, in_scope_only=False)
    answer = ok(scoped("analyst").post(f"{API}/query", json=body))
    assert {r["content_id"]: r["views"] for r in answer["rows"]} == expected
    assert answer["totals"] == {"views": sum(expected.values()), "likes": 3, "searches": 0}
    for client, first in ((client_for("analyst"), unscoped), (scoped("analyst"), answer)):
        again = ok(client.post(f"{API}/query", json=body))
        assert (again["rows"], again["totals"]) == (first["rows"], first["totals"])
    by_category = ok(
        scoped("analyst").post(
            f"{API}/query", json={"metrics": ["views"], "dimensions": ["category"], "date_range": WINDOW}
        )
    )
    news = sum(n for c, n in expected.items() if world.categories.get(c) == world.news)
    assert {r["category"]: r["views"] for r in by_category["rows"]} == {world.news: news, "": 2}
    # Searches name no content: none is in a scope, though the window holds this module's.
    searches = {"metrics": ["searches"], "date_range": WINDOW}
    assert ok(client_for("analyst").post(f"{API}/query", json=searches))["totals"]["searches"] >= 4
    assert ok(scoped("analyst").post(f"{API}/query", json=searches))["totals"] == {"searches": 0}

    gql = graphql(
        scoped("analyst"),
        """query($q: AnalyticsQueryInput!) { analyticsQuery(query: $q) { rows totals } }""",
        {
            "q": {
                "metrics": ["views", "searches"],
                "dimensions": ["content_id"],
                "filters": [{"dimension": "content_id", "op": "in", "values": world.contents}],
                "dateRange": RANGE,
            }
        },
    )
    assert gql.get("errors") is None, gql
    rows = gql["data"]["analyticsQuery"]["rows"]
    assert {r["content_id"]: r["views"] for r in rows} == expected
    assert gql["data"]["analyticsQuery"]["totals"]["searches"] == 0


def test_analyses_see_only_events_on_in_scope_content(world: World, scoped: Any, client_for: Any) -> None:
    # This module's users only: the window is the module's, but a funnel counts any actor in it.
    mine = [{"dimension": "user_id", "op": "in", "values": [f"{world.p}-u{n}" for n in (1, 2, 3, 4)]}]
    funnel = {
        "steps": [{"event_type": t, "filters": mine} for t in ("content_view", "content_like")],
        "date_range": WINDOW,
    }
    everyone = ok(client_for("analyst").post(f"{API}/funnels", json=funnel))
    within = ok(scoped("analyst").post(f"{API}/funnels", json=funnel))
    # Every user viewed in-scope content; user 2 liked s1 only, the others n1.
    assert [s["count"] for s in everyone["steps"]] == [4, 4]
    assert [s["count"] for s in within["steps"]] == [4, 3]
    s1_sessions = len(
        {
            e["session_id"]
            for e in world.events
            if e["event_type"] == "content_view" and e["content_id"] == world.c("s1")
        }
    )
    paths = {"anchor": f"content:{world.c('s1')}", "date_range": WINDOW}
    assert ok(client_for("analyst").post(f"{API}/paths", json=paths))["sessions"] == s1_sessions
    assert ok(scoped("analyst").post(f"{API}/paths", json=paths))["sessions"] == 0
    gql = graphql(
        scoped("analyst"),
        """query($f: FunnelInput!) { funnel(input: $f) { steps { count } } }""",
        {
            "f": {
                "steps": [
                    {"eventType": "content_view", "filters": mine},
                    {"eventType": "content_like", "filters": mine},
                ],
                "dateRange": RANGE,
            }
        },
    )
    assert gql.get("errors") is None, gql
    assert [s["count"] for s in gql["data"]["funnel"]["steps"]] == [4, 3]


def test_a_saved_query_runs_within_the_scope_of_who_runs_it(world: World, scoped: Any, admin: httpx.Client) -> None:
    definition = {
        "metrics": ["views"],
        "dimensions": ["content_id"],
        "filters": [{"dimension": "content_id", "op": "in", "values": world.contents}],
        "date_range": WINDOW,
    }
    created = admin.post(
        f"{API}/saved-queries",
        json={
            "name": f"{world.p} views",
            "kind": "query",
            "definition": definition,
            "shared_with_roles": ["content_manager"],
        },
    )
    assert created.status_code == 201, created.text
    query_id = created.json()["id"]
    everyone = ok(admin.post(f"{API}/saved-queries/{query_id}/run"))["result"]
    within = ok(scoped("manager").post(f"{API}/saved-queries/{query_id}/run"))["result"]
    assert {r["content_id"]: r["views"] for r in everyone["rows"]} == views_by_content(world, in_scope_only=False)
    assert {r["content_id"]: r["views"] for r in within["rows"]} == views_by_content(world, in_scope_only=True)


# --- GraphQL -------------------------------------------------------------------------------------------


def test_graphql_content_fields_filter_as_rest(world: World, scoped: Any) -> None:
    manager = scoped("manager")
    expected = views_by_content(world, in_scope_only=True)
    body = graphql(
        manager,
        """query($range: AnalyticsRange, $ids: [String!], $n1: String!, $s1: String!) {
          contentList(range: $range, ids: $ids, limit: 100) { total items { contentId analytics { totalViews } } }
          topPerformingContent(range: $range, limit: 100) { items { contentId value } }
          contentAnalytics(contentId: $n1, range: $range) { analytics { totalViews } }
          contentAudience(contentId: $n1, range: $range) { views }
          contentJourney(contentId: $n1, range: $range) { after { step } }
          contentMetadata(contentId: $s1) { category }
          n1Metadata: contentMetadata(contentId: $n1) { category }
          recommendationPerformance(range: $range, limit: 100) { impressions clicks contents { contentId } }
        }""",
        {"range": RANGE, "ids": world.contents, "n1": world.c("n1"), "s1": world.c("s1")},
    )
    assert body.get("errors") is None, body
    d = body["data"]
    assert {i["contentId"]: i["analytics"]["totalViews"] for i in d["contentList"]["items"]} == expected
    assert {i["contentId"] for i in d["topPerformingContent"]["items"]} == set(expected)
    assert d["contentAnalytics"]["analytics"]["totalViews"] == expected[world.c("n1")]
    assert d["contentAudience"]["views"] == expected[world.c("n1")]
    assert d["contentJourney"]["after"] == []
    assert d["contentMetadata"] is None and d["n1Metadata"] == {"category": world.news}
    assert [c["contentId"] for c in d["recommendationPerformance"]["contents"]] == [world.c("n1")]
    for query in (
        "query($id: String!, $r: AnalyticsRange) { contentAnalytics(contentId: $id, range: $r) { source } }",
        "query($id: String!, $r: AnalyticsRange) { contentInsights(contentId: $id, range: $r) { contentId } }",
        "query($id: String!) { contentLive(contentId: $id) { contentId } }",
    ):
        refused = graphql(manager, query, {"id": world.c("s1"), **({"r": RANGE} if "$r" in query else {})})
        assert refused["errors"][0]["extensions"]["code"] == "not_found", refused
        assert refused["errors"][0]["message"] == (
            f"content {world.c('s1')!r} is unknown: no events and no metadata were ever recorded for it"
        )
    for query in (
        "query($r: AnalyticsRange) { searchOverview(range: $r) { searches } }",
        "query($r: AnalyticsRange) { topSearchQueries(range: $r) { queries { query } } }",
        "{ realtime { eventsLast60s } }",
    ):
        refused = graphql(manager, query, {"r": RANGE} if "$r" in query else {})
        error = refused["errors"][0]
        assert error["extensions"]["code"] == "forbidden" and SCOPE_MESSAGE in error["message"], refused


# --- the live layer ------------------------------------------------------------------------------------


def _eventually(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_trending_and_live_counters_within_the_scope(world: World, scoped: Any, client_for: Any) -> None:
    manager = scoped("manager")
    n1, x1, s1 = world.c("n1"), world.c("x1"), world.c("s1")
    live_views = {cid: world.count("content_view", cid, world.live) for cid in (n1, x1, s1)}

    def activity(client: httpx.Client) -> dict[str, float]:
        ranking = ok(client.get(f"{API}/content/trending", params={"window": "5m", "limit": 100}))
        return {i["content_id"]: i["activity"] for i in ranking["items"]}

    everyone = _eventually(lambda: activity(client_for("content_manager")), lambda a: n1 in a and s1 in a and x1 in a)
    assert (everyone[n1], everyone[s1]) == (live_views[n1], live_views[s1])  # views weigh 1
    within = _eventually(lambda: activity(manager), lambda a: n1 in a and x1 in a)
    assert all(world.in_scope(c) for c in within), within
    assert (within[n1], within[x1]) == (live_views[n1], live_views[x1])
    gql = graphql(manager, '{ trending(window: "5m", limit: 100) { items { contentId rank } } }')
    items = gql["data"]["trending"]["items"]
    assert all(world.in_scope(i["contentId"]) for i in items) and [i["rank"] for i in items] == list(
        range(1, len(items) + 1)
    )

    live = ok(manager.get(f"{API}/content/{n1}/live"))
    assert next(w for name, w in live["windows"].items() if name == "5m")["views"] == live_views[n1]
    not_found_as_unknown(manager.get(f"{API}/content/{s1}/live"), s1)
    assert ok(client_for("content_manager").get(f"{API}/content/{s1}/live"))["content_id"] == s1


async def _first_message(ws: Any) -> dict[str, Any]:
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
        if message["type"] == "ping":
            await ws.send('{"type": "pong"}')
            continue
        return message


def _errors(message: dict[str, Any]) -> list[dict[str, Any]]:
    assert message["type"] in ("error", "next"), message
    return message["payload"] if message["type"] == "error" else message["payload"].get("errors") or []


async def test_subscriptions_within_the_scope(world: World, service: runtime.RunningService) -> None:
    key = world.keys["manager"]["key"]
    n1 = world.c("n1")
    trending = await subscribe(
        service.base_url,
        key,
        'subscription { trendingContent(window: "5m", limit: 100, intervalMs: 100) { items { contentId activity } } }',
        {},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            message = await _first_message(trending)
            assert not _errors(message), message
            items = message["payload"]["data"]["trendingContent"]["items"]
            assert all(world.in_scope(i["contentId"]) for i in items), items
            if any(i["contentId"] == n1 for i in items) or time.monotonic() > deadline:
                break
        assert next(i["activity"] for i in items if i["contentId"] == n1) == world.count("content_view", n1, world.live)
    finally:
        await trending.close()
    for query, variables, code in (
        (
            "subscription($id: String!) { contentLive(contentId: $id, intervalMs: 100) { contentId } }",
            {"id": world.c("s1")},
            "not_found",
        ),
        ("subscription { realtimeMetrics(intervalMs: 100) { eventsLast60s } }", {}, "forbidden"),
    ):
        ws = await subscribe(service.base_url, key, query, variables)
        try:
            errors = _errors(await _first_message(ws))
            assert errors and errors[0]["extensions"]["code"] == code, errors
        finally:
            await ws.close()
    ws = await subscribe(
        service.base_url,
        key,
        "subscription($id: String!) { contentLive(contentId: $id, intervalMs: 100) { contentId } }",
        {"id": n1},
    )
    try:
        message = await _first_message(ws)
        assert not _errors(message) and message["payload"]["data"]["contentLive"]["contentId"] == n1
    finally:
        await ws.close()
