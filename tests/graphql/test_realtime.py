"""Live queries and subscriptions over a fake live layer, and the result models both transports share."""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pytest

from core.access import Role
from graphql_schema.schema import schema
from semantic.live_counters import LiveCounters, merge_global
from semantic.realtime_results import ContentLive, RealtimeMetrics, TrendingList
from tests.graphql.conftest import rest_client, run
from tests.graphql.fakes import GLOBAL_METRICS, TRENDING, FakeServices, content_view, hub_state

REALTIME = """{ realtime { asOf source computedAt eventsPerSecond eventsLast60s activeUsers5m activeSessions5m
  windows { window events views uniqueUsers uniqueSessions watchTimeSeconds byEventType trending { score } } } }"""
CONTENT_LIVE = """query($id: String!) { contentLive(contentId: $id) { contentId asOf source
  windows { window views shares uniqueUsers uniqueSessions trending { activity popularity baselinePerMinute score } }
  series { minute events views } } }"""


async def test_realtime_query(services: FakeServices) -> None:
    result = await run(services, Role.VIEWER, REALTIME)
    assert result.errors is None, result.errors
    assert result.data is not None
    body = result.data["realtime"]
    assert body["asOf"] == "2026-03-07T12:00:01.250000+00:00"
    assert (body["source"], body["eventsPerSecond"], body["eventsLast60s"]) == ("live", 1.5, 90)
    assert (body["activeUsers5m"], body["activeSessions5m"]) == (4, 3)
    assert [w["window"] for w in body["windows"]] == ["5m", "1h", "24h"]
    assert body["windows"][1] == {
        "window": "1h",
        "events": 53,
        "views": 50,
        "uniqueUsers": 49,
        "uniqueSessions": 48,
        "watchTimeSeconds": 12.5,
        "byEventType": {"content_view": 50, "content_share": 2},
        "trending": None,
    }


async def test_content_live_query(services: FakeServices) -> None:
    result = await run(services, Role.ANALYST, CONTENT_LIVE, {"id": "video-7"})
    assert result.errors is None, result.errors
    assert result.data is not None
    body = result.data["contentLive"]
    assert (body["contentId"], body["source"]) == ("video-7", "live")
    assert body["windows"][0] == {
        "window": "5m",
        "views": 5,
        "shares": 2,
        "uniqueUsers": 4,
        "uniqueSessions": None,
        "trending": {"activity": 9.0, "popularity": 8.5, "baselinePerMinute": 0.1, "score": 8.9},
    }
    assert body["series"] == [
        {"minute": "2026-03-07T11:59:00+00:00", "events": 4, "views": 3},
        {"minute": "2026-03-07T12:00:00+00:00", "events": 1, "views": 1},
    ]
    assert services.realtime.calls == [("content_live", "video-7")]


async def test_trending_query(services: FakeServices) -> None:
    query = """{ trending(window: "1h", limit: 2, category: "news") {
      window category source items { rank contentId score } } }"""
    result = await run(services, Role.VIEWER, query)
    assert result.errors is None, result.errors
    assert result.data == {
        "trending": {
            "window": "1h",
            "category": "news",
            "source": "live",
            "items": [
                {"rank": 1, "contentId": "video-1", "score": 8.9},
                {"rank": 2, "contentId": "video-2", "score": 4.45},
            ],
        }
    }


async def test_subscriptions_push_each_hub_state(services: FakeServices) -> None:
    services.realtime.updates.states = [hub_state(1, ("video-1",)), hub_state(2, ("video-1",))]
    context = services.context(Role.VIEWER)

    metrics = await schema.subscribe(
        "subscription { realtimeMetrics(intervalMs: 100) { eventsLast60s computedAt } }", context_value=context
    )
    seen = [r.data async for r in metrics]  # type: ignore[union-attr]
    assert seen == [
        {"realtimeMetrics": {"eventsLast60s": 91, "computedAt": "2026-03-07T12:00:01+00:00"}},
        {"realtimeMetrics": {"eventsLast60s": 92, "computedAt": "2026-03-07T12:00:02+00:00"}},
    ]

    ranking = await schema.subscribe(
        'subscription { trendingContent(window: "1h", limit: 1) { items { contentId } } }', context_value=context
    )
    assert [r.data async for r in ranking] == [{"trendingContent": {"items": [{"contentId": "video-1"}]}}] * 2  # type: ignore[union-attr]

    live = await schema.subscribe(
        'subscription { contentLive(contentId: "video-1") { contentId } }', context_value=context
    )
    assert [r.data async for r in live] == [{"contentLive": {"contentId": "video-1"}}] * 3  # type: ignore[union-attr]
    assert services.realtime.updates.streams == [(0.1, None), (1.0, None), (1.0, "video-1")]


async def test_a_subscription_refuses_a_bad_interval_naming_the_field(services: FakeServices) -> None:
    subscription = await schema.subscribe(
        "subscription { realtimeMetrics(intervalMs: 5) { source } }", context_value=services.context(Role.VIEWER)
    )
    results = [r async for r in subscription] if not hasattr(subscription, "errors") else [subscription]
    assert results[0].errors[0].formatted["extensions"]["details"] == {"field": "intervalMs"}  # type: ignore[union-attr]


async def test_a_bad_window_names_the_field(services: FakeServices) -> None:
    subscription = await schema.subscribe(
        'subscription { trendingContent(window: "7d") { window } }', context_value=services.context(Role.VIEWER)
    )
    results = [r async for r in subscription] if not hasattr(subscription, "errors") else [subscription]
    error = results[0].errors[0].formatted  # type: ignore[union-attr]
    assert error["extensions"]["details"] == {"field": "window"}
    assert services.realtime.updates.streams == []


def test_rest_answers_with_the_same_models(services: FakeServices) -> None:
    client = rest_client(services, Role.VIEWER)
    assert client.get("/api/v1/analytics/real-time").json() == _json(GLOBAL_METRICS)
    assert client.get("/api/v1/analytics/content/video-3/live").json() == _json(content_view("video-3"))
    ranking = client.get("/api/v1/analytics/content/trending", params={"window": "1h", "limit": 2}).json()
    assert ranking == _json({**TRENDING, "items": TRENDING["items"][:2]})
    refused = client.get("/api/v1/analytics/content/trending", params={"window": "7d"})
    assert (refused.status_code, refused.json()["details"]) == (400, {"field": "window"})


def _json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (RealtimeMetrics, GLOBAL_METRICS),
        (TrendingList, TRENDING),
        (ContentLive, content_view("video-1")),
    ],
)
def test_rest_answers_keep_the_live_layer_shapes(model: Any, shape: dict[str, Any]) -> None:
    assert model.model_validate(shape).model_dump(mode="json") == _json(shape)


def _delta(now: int) -> pa.Table:
    """A counter shard's delta (one row per minute, content and event type), as the shards apply it."""
    minute = now - now % 60
    rows = [
        (minute, "video-1", "content_view", 4, 31.5, [1, 2]),
        (minute - 120, "video-1", "content_share", 1, 0.0, [3]),
        (minute - 3600, "video-2", "search_query", 2, 0.0, [4]),
    ]
    return pa.table(
        {
            "minute": pa.array([r[0] for r in rows], pa.int64()),
            "content_id": pa.array([r[1] for r in rows], pa.string()),
            "event_type": pa.array([r[2] for r in rows], pa.string()),
            "events": pa.array([r[3] for r in rows], pa.int64()),
            "watch_seconds": pa.array([r[4] for r in rows], pa.float64()),
            "users": pa.array([r[5] for r in rows], pa.list_(pa.uint64())),
            "sessions": pa.array([[7] for _ in rows], pa.list_(pa.uint64())),
            "last_event_ms": pa.array([r[0] * 1000 + 5 for r in rows], pa.int64()),
        }
    )


@pytest.mark.parametrize("content_id", ["video-1", "nothing-yet"])
def test_the_models_read_what_the_live_counters_compute(content_id: str) -> None:
    now = 1_800_000_030
    counters = LiveCounters(now=now)
    counters.apply(_delta(now), now=now)
    view = {**counters.content_view(content_id, now, empty_ok=True), "source": "live"}  # type: ignore[dict-item]
    model = ContentLive.model_validate(view)
    assert model.model_dump(mode="json") == _json(view)
    totals = {**merge_global([counters.global_partial(now)]), "source": "live", "computed_at": None}
    assert RealtimeMetrics.model_validate(totals).model_dump(mode="json") == _json(totals)
    if content_id == "video-1":
        assert (model.windows["5m"].views, model.windows["5m"].shares, model.windows["5m"].unique_users) == (4, 1, 3)
        assert model.windows["5m"].trending is not None and model.windows["5m"].trending.activity == 9.0
    # The minute-table fallback has no trending figures per content window: none are made up.
    rollup = {**view, "source": "rollup", "series": []}
    for figures in rollup["windows"].values():
        figures.pop("trending")
    assert "trending" not in ContentLive.model_validate(rollup).model_dump(mode="json")["windows"]["5m"]


async def test_an_empty_category_is_no_category_on_both_transports(services: FakeServices) -> None:
    result = await run(services, Role.VIEWER, '{ trending(category: "") { category items { rank } } }')
    assert result.errors is None, result.errors
    assert result.data is not None and result.data["trending"]["category"] is None
    rest = rest_client(services, Role.VIEWER).get("/api/v1/analytics/content/trending", params={"category": ""})
    assert rest.status_code == 200 and rest.json()["category"] is None
    assert services.realtime.actor_calls == [("top", "1h", 20, None)] * 2
