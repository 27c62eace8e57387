"""Live metrics: the ``realtime``, ``trending`` and ``contentLive`` queries and their subscriptions.

Every payload carries ``asOf`` (the timestamp of the newest event included) and ``source``
(``live``: the counter actors; ``live_partial``: a shard was restarting and is missing;
``rollup``: ClickHouse's minute table, while the actors cannot answer). The types view the models
of semantic/realtime_results.py, which REST answers with as they are.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from actors.realtime_client import check_limit, check_window
from core.errors import AnalyticsError, InvalidRequest
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import as_graphql_error, maps_errors
from graphql_schema.permissions import ReadAnalytics
from semantic import realtime_results as live

MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 60_000


@strawberry.type(description="Trending figures of one content item in one window (definitions in docs/realtime.md)")
class TrendFigures:
    activity: float = strawberry.field(description="Weighted events in the window")
    popularity: float = strawberry.field(description="Weighted events decayed with a half-life of a quarter window")
    baseline_per_minute: float = strawberry.field(description="The item's own rate in the previous window")
    velocity: float
    acceleration: float
    score: float

    @classmethod
    def from_model(cls, m: live.TrendFigures) -> TrendFigures:
        return cls(
            activity=m.activity,
            popularity=m.popularity,
            baseline_per_minute=m.baseline_per_minute,
            velocity=m.velocity,
            acceleration=m.acceleration,
            score=m.score,
        )


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
    def from_model(cls, window: str, m: live.WindowFigures) -> LiveWindow:
        return cls(
            window=window,
            events=m.events,
            views=m.views,
            unique_users=m.unique_users,
            plays=m.plays,
            completions=m.completions,
            shares=m.shares,
            bookmarks=m.bookmarks,
            searches=m.searches,
            watch_time_seconds=m.watch_time_seconds,
            by_event_type=m.by_event_type,
            unique_sessions=m.unique_sessions,
            trending=TrendFigures.from_model(m.trending) if m.trending is not None else None,
        )


def _windows(windows: dict[str, live.WindowFigures]) -> list[LiveWindow]:
    return [LiveWindow.from_model(name, figures) for name, figures in windows.items()]


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
    def from_model(cls, m: live.RealtimeMetrics) -> RealtimeMetrics:
        return cls(
            as_of=m.as_of,
            source=m.source,
            computed_at=m.computed_at,
            events_per_second=m.events_per_second,
            events_last_60s=m.events_last_60s,
            active_users_5m=m.active_users_5m,
            active_sessions_5m=m.active_sessions_5m,
            windows=_windows(m.windows),
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

    @classmethod
    def from_model(cls, m: live.TrendingItem) -> TrendingItem:
        return cls(
            rank=m.rank,
            content_id=m.content_id,
            category=m.category,
            score=m.score,
            popularity=m.popularity,
            activity=m.activity,
            baseline_per_minute=m.baseline_per_minute,
            velocity=m.velocity,
            acceleration=m.acceleration,
        )


@strawberry.type(description="Top content of one window, highest score first")
class TrendingList:
    window: str
    category: str | None
    as_of: datetime | None
    computed_at: datetime | None
    source: str
    items: list[TrendingItem]

    @classmethod
    def from_model(cls, m: live.TrendingList) -> TrendingList:
        return cls(
            window=m.window,
            category=m.category,
            as_of=m.as_of,
            computed_at=m.computed_at,
            source=m.source,
            items=[TrendingItem.from_model(item) for item in m.items],
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
    def from_model(cls, m: live.ContentLive) -> ContentLive:
        return cls(
            content_id=m.content_id,
            as_of=m.as_of,
            source=m.source,
            windows=_windows(m.windows),
            series=[MinutePoint(minute=p.minute, events=p.events, views=p.views) for p in m.series],
        )


def _interval(interval_ms: int) -> float:
    if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        raise InvalidRequest(
            f"intervalMs must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}", details={"field": "intervalMs"}
        )
    return interval_ms / 1000


@strawberry.type
class RealtimeQueries:
    @strawberry.field(
        description="Global live metrics: events per second, active users and sessions, window totals",
        permission_classes=[ReadAnalytics],
    )
    @maps_errors
    async def realtime(self, info: Info[GraphQLContext, None]) -> RealtimeMetrics:
        return RealtimeMetrics.from_model(await info.context.realtime.realtime())

    @strawberry.field(
        description="Trending content of a window (5m, 1h, 24h), optionally in one category",
        permission_classes=[ReadAnalytics],
    )
    @maps_errors
    async def trending(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, category: str | None = None
    ) -> TrendingList:
        return TrendingList.from_model(await info.context.realtime.trending(window, limit, category))

    @strawberry.field(
        description="Live counters of one content item (zeros when it had no events in 24 h)",
        permission_classes=[ReadAnalytics],
    )
    @maps_errors
    async def content_live(self, info: Info[GraphQLContext, None], content_id: str) -> ContentLive:
        return ContentLive.from_model(await info.context.realtime.content_live(content_id))


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Global live metrics, pushed when they change, at most once per intervalMs",
        permission_classes=[ReadAnalytics],
    )
    async def realtime_metrics(
        self, info: Info[GraphQLContext, None], interval_ms: int = 1000
    ) -> AsyncGenerator[RealtimeMetrics, None]:
        try:
            interval = _interval(interval_ms)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        async for state in info.context.realtime.updates.stream(interval):
            yield RealtimeMetrics.from_model(state.metrics)

    @strawberry.subscription(
        description="Trending content of a window, pushed when the ranking or its figures change",
        permission_classes=[ReadAnalytics],
    )
    async def trending_content(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, interval_ms: int = 1000
    ) -> AsyncGenerator[TrendingList, None]:
        try:
            check_window(window)
            check_limit(limit)
            interval = _interval(interval_ms)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        async for state in info.context.realtime.updates.stream(interval):
            ranking = state.trending.get(window)
            if ranking is not None:
                yield TrendingList.from_model(ranking.top(limit))

    @strawberry.subscription(
        description="Live counters of one content item, pushed when they change", permission_classes=[ReadAnalytics]
    )
    async def content_live(
        self, info: Info[GraphQLContext, None], content_id: str, interval_ms: int = 1000
    ) -> AsyncGenerator[ContentLive, None]:
        try:
            interval = _interval(interval_ms)
            first = await info.context.realtime.content_live(content_id)
        except AnalyticsError as exc:
            raise as_graphql_error(exc) from exc
        yield ContentLive.from_model(first)
        async for state in info.context.realtime.updates.stream(interval, content_id):
            yield ContentLive.from_model(state.contents[content_id])
