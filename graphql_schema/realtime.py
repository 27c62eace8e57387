"""Live metrics: the ``realtime``, ``trending`` and ``contentLive`` queries and their subscriptions.

Every payload carries ``asOf`` (the timestamp of the newest event included) and ``source``
(``live``: the counter actors; ``live_partial``: a shard was restarting and is missing;
``rollup``: ClickHouse's minute table, while the actors cannot answer). The types are strawberry's
views of the models of semantic/realtime_results.py, which REST answers with as they are; only
the models' dicts of windows become lists of named windows here.

A subscriber with a content scope gets what the queries give it (actors/realtime_client.py): trending
within its scope, live counters of in-scope content only, and no global metrics (403).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from actors.realtime_client import GLOBAL_METRICS, check_limit, check_window
from core.access import ContentScope
from core.errors import InvalidRequest
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import graphql_errors, maps_errors
from graphql_schema.permissions import ReadRealtimeAnalytics
from semantic import realtime_results as live
from semantic.content_scope import current_scope, require_applicable

MIN_INTERVAL_MS = 100
MAX_INTERVAL_MS = 60_000


@strawberry.experimental.pydantic.type(
    model=live.TrendFigures,
    all_fields=True,
    description="Trending figures of one content item in one window (definitions in docs/realtime.md)",
)
class TrendFigures:
    pass


@strawberry.experimental.pydantic.type(
    model=live.WindowFigures,
    all_fields=True,
    description="Counts in one window: 5m, 1h or 24h (whole minutes, the current one included)",
)
class LiveWindow:
    # The window's name: the key of the model's dict of windows.
    window: str
    by_event_type: JSON


def _windows(root: Any) -> list[LiveWindow]:
    """The model's dict of windows as a list, each window named (GraphQL has no maps)."""
    # from_pydantic keeps the model it converted on the instance.
    windows: dict[str, live.WindowFigures] = root._original_model.windows
    return [LiveWindow.from_pydantic(figures, extra={"window": name}) for name, figures in windows.items()]


@strawberry.experimental.pydantic.type(model=live.RealtimeMetrics, all_fields=True, description="Global live metrics")
class RealtimeMetrics:
    windows: list[LiveWindow] = strawberry.field(resolver=_windows)


@strawberry.experimental.pydantic.type(model=live.TrendingItem, all_fields=True)
class TrendingItem:
    pass


@strawberry.experimental.pydantic.type(
    model=live.TrendingList, all_fields=True, description="Top content of one window, highest score first"
)
class TrendingList:
    pass


@strawberry.experimental.pydantic.type(model=live.MinutePoint, all_fields=True)
class MinutePoint:
    pass


@strawberry.experimental.pydantic.type(
    model=live.ContentLive, all_fields=True, description="Live counters of one content item"
)
class ContentLive:
    windows: list[LiveWindow] = strawberry.field(resolver=_windows)


def _scope(info: Info[GraphQLContext, None]) -> ContentScope:
    """The subscriber's content scope, as its principal says (a subscription lives past the request)."""
    principal = info.context.principal
    return principal.scope if principal is not None else current_scope()


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
        permission_classes=[ReadRealtimeAnalytics],
    )
    @maps_errors
    async def realtime(self, info: Info[GraphQLContext, None]) -> RealtimeMetrics:
        return RealtimeMetrics.from_pydantic(await info.context.realtime.realtime())

    @strawberry.field(
        description="Trending content of a window (5m, 1h, 24h), optionally in one category",
        permission_classes=[ReadRealtimeAnalytics],
    )
    @maps_errors
    async def trending(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, category: str | None = None
    ) -> TrendingList:
        return TrendingList.from_pydantic(await info.context.realtime.trending(window, limit, category))

    @strawberry.field(
        description="Live counters of one content item (zeros when it had no events in 24 h)",
        permission_classes=[ReadRealtimeAnalytics],
    )
    @maps_errors
    async def content_live(self, info: Info[GraphQLContext, None], content_id: str) -> ContentLive:
        return ContentLive.from_pydantic(await info.context.realtime.content_live(content_id))


@strawberry.type
class RealtimeSubscription:
    @strawberry.subscription(
        description="Global live metrics, pushed when they change, at most once per intervalMs",
        permission_classes=[ReadRealtimeAnalytics],
    )
    async def realtime_metrics(
        self, info: Info[GraphQLContext, None], interval_ms: int = 1000
    ) -> AsyncGenerator[RealtimeMetrics, None]:
        with graphql_errors():
            interval = _interval(interval_ms)
            require_applicable(GLOBAL_METRICS, _scope(info))
        async for state in info.context.realtime.updates.stream(interval):
            yield RealtimeMetrics.from_pydantic(state.metrics)

    @strawberry.subscription(
        description="Trending content of a window, pushed when the ranking or its figures change",
        permission_classes=[ReadRealtimeAnalytics],
    )
    async def trending_content(
        self, info: Info[GraphQLContext, None], window: str = "1h", limit: int = 20, interval_ms: int = 1000
    ) -> AsyncGenerator[TrendingList, None]:
        with graphql_errors():
            check_window(window)
            check_limit(limit)
            interval = _interval(interval_ms)
        async for ranking in info.context.realtime.trending_updates(window, limit, interval, _scope(info)):
            yield TrendingList.from_pydantic(ranking)

    @strawberry.subscription(
        description="Live counters of one content item, pushed when they change",
        permission_classes=[ReadRealtimeAnalytics],
    )
    async def content_live(
        self, info: Info[GraphQLContext, None], content_id: str, interval_ms: int = 1000
    ) -> AsyncGenerator[ContentLive, None]:
        with graphql_errors():
            interval = _interval(interval_ms)
            first = await info.context.realtime.content_live(content_id, _scope(info))
        yield ContentLive.from_pydantic(first)
        async for state in info.context.realtime.updates.stream(interval, content_id):
            yield ContentLive.from_pydantic(state.contents[content_id])
