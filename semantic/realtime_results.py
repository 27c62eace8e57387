"""What the live layer answers: global live metrics, trending rankings and a content's live counters.

The counter actors and the minute-table fallback (semantic/realtime_rollup.py) build these shapes
as plain dicts (they cross Ray and Redis as such); actors/realtime_client.py reads them into the
models below, which REST serializes as they are and GraphQL types view (graphql_schema/realtime.py):
field order and descriptions here are the GraphQL schema's. Definitions are in
semantic/live_counters.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


def _absent(value: object) -> bool:
    return value is None


class TrendFigures(BaseModel):
    """Trending figures of one content item in one window."""

    activity: float = Field(description="Weighted events in the window")
    popularity: float = Field(description="Weighted events decayed with a half-life of a quarter window")
    baseline_per_minute: float = Field(description="The item's own rate in the previous window")
    velocity: float
    acceleration: float
    score: float


class WindowFigures(BaseModel):
    """Counts in one window: 5m, 1h or 24h (whole minutes, the current one included)."""

    events: int
    views: int
    unique_users: int
    plays: int
    completions: int
    shares: int
    bookmarks: int
    searches: int
    watch_time_seconds: float
    by_event_type: dict[str, int]
    # Global windows only.
    unique_sessions: int | None = Field(default=None, exclude_if=_absent)
    # A content's windows from the live counters only (the minute-table fallback has none).
    trending: TrendFigures | None = Field(default=None, exclude_if=_absent)


class RealtimeMetrics(BaseModel):
    """Global live metrics. ``source``: live, live_partial (a shard is missing) or rollup."""

    as_of: datetime | None
    source: str
    computed_at: datetime | None = None
    events_per_second: float
    events_last_60s: int
    active_users_5m: int
    active_sessions_5m: int
    windows: dict[str, WindowFigures]


class TrendingItem(BaseModel):
    rank: int
    content_id: str
    category: str | None
    score: float
    popularity: float
    activity: float
    baseline_per_minute: float
    velocity: float
    acceleration: float


class TrendingList(BaseModel):
    """Top content of one window, highest score first."""

    window: str
    category: str | None
    as_of: datetime | None
    computed_at: datetime | None
    source: str
    items: list[TrendingItem]

    def top(self, limit: int) -> TrendingList:
        return self if len(self.items) <= limit else self.model_copy(update={"items": self.items[:limit]})


class MinutePoint(BaseModel):
    minute: datetime
    events: int
    views: int


class ContentLive(BaseModel):
    """Live counters of one content item; ``series`` is its last 60 minutes, oldest first."""

    content_id: str
    as_of: datetime | None
    source: str = "live"
    windows: dict[str, WindowFigures]
    series: list[MinutePoint] = Field(description="The last 60 minutes, oldest first")


class LiveState(BaseModel):
    """One version of the live hub's state, as the subscriptions of a replica see it."""

    version: int
    computed_at: datetime | None
    metrics: RealtimeMetrics
    trending: dict[str, TrendingList]
    # Only the content ids this replica's subscribers watch.
    contents: dict[str, ContentLive]

    @classmethod
    def from_hub(cls, state: dict[str, Any]) -> LiveState:
        return cls(
            version=state["version"],
            computed_at=state["computed_at"],
            metrics=RealtimeMetrics.model_validate({**state["global"], "computed_at": state["computed_at"]}),
            trending={w: TrendingList.model_validate(r) for w, r in state["trending"].items()},
            contents={c: ContentLive.model_validate(v) for c, v in state["contents"].items()},
        )
