"""Live metrics: the ``realtime``, ``trending`` and ``contentLive`` queries and their subscriptions.

Every payload carries ``asOf`` (the timestamp of the newest event included) and ``source``
(``live``: the counter actors; ``live_partial``: a shard was restarting and is missing;
``rollup``: ClickHouse's minute table, while the actors cannot answer).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from actors.realtime_client import check_limit, check_window
from core.access import READ_ANALYTICS, require
from core.errors import AnalyticsError, InvalidRequest
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import as_graphql_error, maps_errors

MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 60_000


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@strawberry.type(description="Trending figures of one content item in one window (definitions in the README)")
class TrendFigures:
    activity: float = strawberry.field(description="Weighted events in the window")
    popularity: float = strawberry.field(description="Weighted events decayed with a half-life of a quarter window")
    baseline_per_minute: float = strawberry.field(description="The item's own rate in the previous window")
    velocity: float
    acceleration: float
    score: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrendFigures:
        return cls(**{k: float(d[k]) for k in ("activity", "popularity", "baseline_per_minute", "velocity", "acceleration", "score")})


@strawberry.type(description="Counts in one window: 5m, 1h or 24h (whole minutes, the current one included)")
class LiveWindow:
    window: str
    events: int
    views: int
    unique_users: int
    plays: int
    completions: int
    shares: int
    bookmarks: int
    searches: int
    watch_time_seconds: float
    by_event_type: JSON
    unique_sessions: int | None = None
    trending: TrendFigures | None = None

    @classmethod
    def from_dict(cls, window: str, d: dict[str, Any]) -> LiveWindow:
        return cls(
            window=window,
            events=d["events"],
            views=d["views"],
            unique_users=d["unique_users"],
            plays=d["plays"],
            completions=d["completions"],
            shares=d["shares"],
            bookmarks=d["bookmarks"],
            searches=d["searches"],
            watch_time_seconds=d["watch_time_seconds"],
            by_event_type=d["by_event_type"],
            unique_sessions=d.get("unique_sessions"),
            trending=TrendFigures.from_dict(d["trending"]) if "trending" in d else None,
        )


@strawberry.type(description="Global live metrics")
class RealtimeMetrics:
    as_of: datetime | None
    source: str
    computed_at: datetime | None
    events_per_second: float
    events_last_60s: int
    active_users_5m: int
    active_sessions_5m: int
    windows: list[LiveWindow]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RealtimeMetrics:
        return cls(
            as_of=_time(d.get("as_of")),
            source=d["source"],
            computed_at=_time(d.get("computed_at")),
            events_per_second=d["events_per_second"],
            events_last_60s=d["events_last_60s"],
            active_users_5m=d["active_users_5m"],
            active_sessions_5m=d["active_sessions_5m"],
            windows=[LiveWindow.from_dict(w, v) for w, v in d["windows"].items()],
        )


@strawberry.type
class TrendingItem:
    rank: int
    content_id: str
    category: str | None
    score: float
    popularity: float
    activity: float
    baseline_per_minute: float
    velocity: float
    acceleration: float


@strawberry.type(description="Top content of one window, highest score first")
class TrendingList:
    window: str
    category: str | None
    as_of: datetime | None
    computed_at: datetime | None
    source: str
    items: list[TrendingItem]

    @classmethod
    def from_dict(cls, d: dict[str, Any], limit: int | None = None) -> TrendingList:
        items = d["items"][:limit] if limit is not None else d["items"]
        return cls(
            window=d["window"],
            category=d.get("category"),
            as_of=_time(d.get("as_of")),
            computed_at=_time(d.get("computed_at")),
            source=d["source"],
            items=[TrendingItem(**item) for item in items],
        )


@strawberry.type
class MinutePoint:
    minute: datetime
    events: int
    views: int


@strawberry.type(description="Live counters of one content item")
class ContentLive:
    content_id: str
    as_of: datetime | None
    source: str
    windows: list[LiveWindow]
    series: list[MinutePoint] = strawberry.field(description="The last 60 minutes, oldest first")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContentLive:
        return cls(
            content_id=d["content_id"],
            as_of=_time(d.get("as_of")),
            source=d.get("source", "live"),
            windows=[LiveWindow.from_dict(w, v) for w, v in d["windows"].items()],
            series=[MinutePoint(minute=_time(p["minute"]), events=p["events"], views=p["views"]) for p in d["series"]],
        )


def _interval(interval_ms: int) -> float:
    if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        raise InvalidRequest(
            f"intervalMs must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}", details={"field": "intervalMs"}
        )
    return interval_ms / 1000


@strawberry.type
class RealtimeQueries:
    @strawberry.field(description="Global live metrics: events per second, active users and sessions, window totals")
    @maps_errors
    async def realtime(self, info: Info[GraphQLContext, None]) -> RealtimeMetrics:
        require(info.context.principal, READ_ANALYTICS, "read analytics")
        return RealtimeMetrics.from_dict(await info.context.realtime.realtime())

    @strawberry.field(description="Trending content of a window (5m, 1h, 24h), optionally in one category")
    @maps_errors
    async def trending(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, category: str | None = None
    ) -> TrendingList:
        require(info.context.principal, READ_ANALYTICS, "read analytics")
        return TrendingList.from_dict(await info.context.realtime.trending(window, limit, category))

    @strawberry.field(description="Live counters of one content item (zeros when it had no events in 24 h)")
    @maps_errors
    async def content_live(self, info: Info[GraphQLContext, None], content_id: str) -> ContentLive:
        require(info.context.principal, READ_ANALYTICS, "read analytics")
        return ContentLive.from_dict(await info.context.realtime.content_live(content_id))


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Global live metrics, pushed when they change, at most once per intervalMs")
    async def realtime_metrics(
        self, info: Info[GraphQLContext, None], interval_ms: int = 1000
    ) -> AsyncGenerator[RealtimeMetrics, None]:
        try:
            require(info.context.principal, READ_ANALYTICS, "read analytics")
            interval = _interval(interval_ms)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        async for state in info.context.realtime.updates.stream(interval):
            yield RealtimeMetrics.from_dict({**state["global"], "computed_at": state["computed_at"]})

    @strawberry.subscription(description="Trending content of a window, pushed when the ranking or its figures change")
    async def trending_content(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, interval_ms: int = 1000
    ) -> AsyncGenerator[TrendingList, None]:
        try:
            require(info.context.principal, READ_ANALYTICS, "read analytics")
            check_window(window)
            check_limit(limit)
            interval = _interval(interval_ms)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        async for state in info.context.realtime.updates.stream(interval):
            ranking = state["trending"].get(window)
            if ranking is not None:
                yield TrendingList.from_dict(ranking, limit)

    @strawberry.subscription(description="Live counters of one content item, pushed when they change")
    async def content_live(
        self, info: Info[GraphQLContext, None], content_id: str, interval_ms: int = 1000
    ) -> AsyncGenerator[ContentLive, None]:
        try:
            require(info.context.principal, READ_ANALYTICS, "read analytics")
            interval = _interval(interval_ms)
            first = await info.context.realtime.content_live(content_id)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        yield ContentLive.from_dict(first)
        async for state in info.context.realtime.updates.stream(interval, content_id):
            yield ContentLive.from_dict(state["contents"][content_id])
