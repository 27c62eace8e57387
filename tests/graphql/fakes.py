"""In-process fakes of the services the transports call, through their interfaces: no Ray, no HTTP
server, no database. Shared by the GraphQL and REST tests of this directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
from prometheus_client import CollectorRegistry

from actors.realtime_client import RealtimeClient
from core.access import ContentScope, Principal, Role
from core.settings import Settings
from graphql_schema.context import GraphQLContext
from semantic.analytics import Analytics
from semantic.answers import Answers
from semantic.content import TopContentItem, TopPerforming
from semantic.freshness import Watermark, WatermarkTracker
from semantic.ingest_metrics import IngestMetrics
from semantic.ingestion import IngestService
from semantic.periods import Period
from semantic.realtime_results import ContentLive, LiveState, RealtimeMetrics, TrendingList
from semantic.result_cache import CacheMetrics, ResultCache
from semantic.results import MetricChange, PeriodInfo
from semantic.sessions import SessionStats
from semantic.users import ActiveUsersPoint, UsersOverview
from serve_app.auth import Authenticator
from storage.cache import InProcessCache
from storage.events import EventColumns, EventFilter, EventPage, QueryResult, WriteReceipt, encode_cursor
from storage.metadata import ApiKey


class MemoryEventStore:
    """The EventStore interface over a list: ids deduplicate, reads filter, newest first."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.list_calls: list[tuple[EventFilter, int, str | None]] = []

    async def write(self, rows: EventColumns) -> WriteReceipt:
        self.writes += 1
        n = len(rows["id"])
        duplicates: list[str] = []
        for i in range(n):
            row = {name: values[i] if isinstance(values, list) else values for name, values in rows.items()}
            row["properties"] = orjson.loads(row["properties"])
            if row["id"] in self.rows:
                duplicates.append(row["id"])
            else:
                self.rows[row["id"]] = row
        return WriteReceipt(inserted=n - len(duplicates), duplicate_ids=duplicates)

    async def get(self, event_id: str) -> dict[str, Any] | None:
        return self.rows.get(event_id)

    async def watermark(self) -> Watermark:
        """Moves with every write, as the store's does with every insert."""
        return Watermark(stored_seq=self.writes, fed_seq=self.writes, as_of_ms=1_700_000_000_000)

    def _matching(self, f: EventFilter) -> list[dict[str, Any]]:
        out = []
        for row in self.rows.values():
            if any(
                wanted is not None and row[name] != wanted
                for name, wanted in (
                    ("event_type", f.event_type),
                    ("event_category", f.event_category),
                    ("user_id", f.user_id),
                    ("session_id", f.session_id),
                    ("content_id", f.content_id),
                )
            ):
                continue
            if (f.start is not None and row["timestamp"] < f.start) or (
                f.end is not None and row["timestamp"] >= f.end
            ):
                continue
            out.append(row)
        return sorted(out, key=lambda r: (r["timestamp"], r["id"]), reverse=True)

    async def list(self, filters: EventFilter, limit: int, cursor: str | None) -> EventPage:
        self.list_calls.append((filters, limit, cursor))
        rows = self._matching(filters)
        page = rows[:limit]
        more = len(rows) > limit
        return EventPage(
            events=page, next_cursor=encode_cursor(page[-1]["timestamp"], page[-1]["id"]) if more else None
        )

    async def count(self, filters: EventFilter) -> int:
        return len(self._matching(filters))

    async def ping(self) -> bool:
        return True

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        raise AssertionError("the analytics services are faked in these tests; no SQL should run")

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        raise AssertionError("the analytics services are faked in these tests; no SQL should run")

    async def insert_table(self, table: str, rows: pa.Table) -> None:
        raise AssertionError("no table inserts in these tests")

    async def metrics_text(self) -> bytes:
        return b""


# ---- analytics with known answers ------------------------------------------------------------

PERIOD_INFO = PeriodInfo(start_date=date(2026, 3, 1), end_date=date(2026, 3, 7), timezone="UTC", granularity="day")
PREVIOUS_INFO = PeriodInfo(start_date=date(2026, 2, 22), end_date=date(2026, 2, 28), timezone="UTC", granularity="day")


class KnownUsers:
    """UserAnalyticsService.overview with fixed figures; records the period it was asked for."""

    def __init__(self) -> None:
        self.periods: list[Period] = []

    async def overview(self, period: Period) -> UsersOverview:
        self.periods.append(period)
        return UsersOverview(
            period=PeriodInfo.of(period),
            previous_period=PREVIOUS_INFO,
            active_users=42,
            new_users=10,
            returning_users=32,
            dau=6.5,
            wau=40,
            mau=42,
            stickiness=0.155,
            sessions=SessionStats(
                sessions=70, total_duration=7000.0, average_duration=100.0, bounces=7, bounce_rate=0.1
            ),
            series=[ActiveUsersPoint(bucket="2026-03-01", active_users=5)],
            comparison={"active_users": MetricChange(current=42, previous=21, change=21, change_percent=100.0)},
            source="test",
        )


class KnownContent:
    """ContentAnalyticsService.top_performing with fixed items."""

    async def top_performing(
        self,
        period: Period,
        *,
        metric: str,
        limit: int,
        category: str | None,
        content_type: str | None,
        min_views: int,
    ) -> TopPerforming:
        items = [
            TopContentItem(
                rank=1,
                content_id="video-1",
                metadata=None,
                value=120.0,
                previous_value=60.0,
                change_percent=100.0,
                views=120,
                unique_views=90,
            ),
            TopContentItem(
                rank=2,
                content_id="video-2",
                metadata=None,
                value=80.0,
                previous_value=0.0,
                change_percent=None,
                views=80,
                unique_views=70,
            ),
        ][:limit]
        return TopPerforming(
            period=PeriodInfo.of(period),
            previous_period=PREVIOUS_INFO,
            metric=metric,
            category=category,
            content_type=content_type,
            min_views=min_views,
            items=items,
            source="test",
        )


def known_analytics(store: MemoryEventStore, settings: Settings) -> Analytics:
    """The real Analytics (its period rules included) with the users and content services faked."""
    return replace(Analytics.build(store, settings), users=KnownUsers(), content=KnownContent())


# ---- the live layer ------------------------------------------------------------------------


def _window(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "views": n,
        "plays": 1,
        "completions": 0,
        "shares": 2,
        "bookmarks": 0,
        "searches": 0,
        "watch_time_seconds": 12.5,
        "events": n + 3,
        "by_event_type": {"content_view": n, "content_share": 2},
        "unique_users": n - 1,
        **extra,
    }


TREND = {
    "activity": 9.0,
    "popularity": 8.5,
    "baseline_per_minute": 0.1,
    "velocity": 0.05,
    "acceleration": 0.01,
    "score": 8.9,
}
# The dict shapes the hub and the counter shards send (semantic/live_counters.py).
GLOBAL_METRICS = {
    "as_of": "2026-03-07T12:00:01.250000Z",
    "events_per_second": 1.5,
    "events_last_60s": 90,
    "active_users_5m": 4,
    "active_sessions_5m": 3,
    "windows": {w: _window(n, unique_sessions=n - 2) for w, n in (("5m", 5), ("1h", 50), ("24h", 500))},
    "source": "live",
    "computed_at": "2026-03-07T12:00:01.500000Z",
}
TRENDING = {
    "window": "1h",
    "category": None,
    "computed_at": "2026-03-07T12:00:01.500000Z",
    "as_of": "2026-03-07T12:00:01.250000Z",
    "source": "live",
    "items": [
        {"rank": i, "content_id": f"video-{i}", "category": "news", **{k: v / i for k, v in TREND.items()}}
        for i in (1, 2, 3)
    ],
}


def content_view(content_id: str) -> dict[str, Any]:
    return {
        "content_id": content_id,
        "as_of": "2026-03-07T12:00:01Z",
        "windows": {w: _window(n, trending=dict(TREND)) for w, n in (("5m", 5), ("1h", 50), ("24h", 500))},
        "series": [
            {"minute": "2026-03-07T11:59:00Z", "events": 4, "views": 3},
            {"minute": "2026-03-07T12:00:00Z", "events": 1, "views": 1},
        ],
        "source": "live",
    }


@dataclass
class FakeLiveFeed:
    """LiveUpdates as a fixed sequence of hub states."""

    states: list[dict[str, Any]] = field(default_factory=list)
    streams: list[tuple[float, str | None]] = field(default_factory=list)

    async def stream(self, interval_seconds: float, content_id: str | None = None) -> AsyncIterator[LiveState]:
        self.streams.append((interval_seconds, content_id))
        for state in self.states:
            parsed = LiveState.from_hub(state)
            if content_id is None or content_id in parsed.contents:
                yield parsed


class FakeLiveReader(RealtimeClient):
    """RealtimeClient over fixed actor answers: its own checks and normalisation run as in a replica.

    ``calls`` are what the transports asked for; ``actor_calls`` what reached the actors.
    """

    def __init__(self) -> None:
        super().__init__(shards=1)
        self.updates = FakeLiveFeed()  # type: ignore[assignment]
        self.calls: list[tuple[Any, ...]] = []
        self.actor_calls: list[tuple[Any, ...]] = []

    async def _call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.actor_calls.append((method, *args))
        if method == "snapshot":
            return GLOBAL_METRICS
        if method == "top":
            window, limit, category = args
            return {**TRENDING, "window": window, "category": category, "items": TRENDING["items"][:limit]}
        if method == "content_view":
            return content_view(args[0])
        raise AssertionError(f"no fake answer for {name}.{method}")

    async def realtime(self) -> RealtimeMetrics:
        self.calls.append(("realtime",))
        return await super().realtime()

    async def trending(
        self, window: str, limit: int, category: str | None = None, scope: ContentScope | None = None
    ) -> TrendingList:
        self.calls.append(("trending", window, limit, category))
        return await super().trending(window, limit, category, scope)

    async def content_live(self, content_id: str, scope: ContentScope | None = None) -> ContentLive:
        self.calls.append(("content_live", content_id))
        return await super().content_live(content_id, scope)


def hub_state(version: int, content_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """One poll answer of the live hub (actors/live_hub.py)."""
    global_metrics = {k: v for k, v in GLOBAL_METRICS.items() if k != "computed_at"}
    return {
        "version": version,
        "computed_at": f"2026-03-07T12:00:0{version}Z",
        "global": {**global_metrics, "events_last_60s": 90 + version},
        "trending": {"1h": TRENDING},
        "contents": {c: content_view(c) for c in content_ids},
    }


# ---- keys, and the whole set of services -------------------------------------------------------

ROLE_KEYS = {role: f"ak_{role.value}_key" for role in Role}


class KnownKeys:
    """The API-key lookup of the metadata store: one key per role (``ROLE_KEYS``)."""

    async def find_api_key(self, plain: str) -> ApiKey | None:
        for role, key in ROLE_KEYS.items():
            if key == plain:
                return ApiKey(
                    id=f"key_{role.value}",
                    name=role.value,
                    role=role,
                    key_prefix=key[:8],
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
        return None


def principal(role: Role) -> Principal:
    return Principal(key_id=f"key_{role.value}", name=role.value, role=role)


@dataclass
class FakeServices:
    """What serve_app.services.Services offers the routes and the GraphQL context, in-process."""

    settings: Settings
    events: MemoryEventStore
    ingest: IngestService
    metrics: IngestMetrics
    auth: Authenticator
    realtime: FakeLiveReader
    analytics: Analytics
    answers: Answers
    # The result cache's counters (analytics_result_cache_requests_total{kind, outcome}).
    cache_metrics: CacheMetrics
    # Tests of saved queries set one on the real PostgreSQL (tests/graphql/test_saved_queries.py).
    saved_queries: Any = None
    # Tests of reports set one on the real PostgreSQL (tests/graphql/test_reports.py).
    reports: Any = None
    blobs: Any = None
    dashboards: Any = None
    dashboard_feeds: Any = None
    # Tests of the batch jobs set one on the real PostgreSQL (tests/graphql/test_jobs.py).
    aggregation_jobs: Any = None

    @classmethod
    def build(cls) -> FakeServices:
        settings = Settings(environment="test", internal_hosts=["platform.example"])
        store = MemoryEventStore()
        metrics = IngestMetrics(CollectorRegistry())
        cache_metrics = CacheMetrics(CollectorRegistry())
        return cls(
            settings=settings,
            events=store,
            ingest=IngestService(store, settings, metrics),
            metrics=metrics,
            auth=Authenticator(KnownKeys(), InProcessCache(), cache_seconds=0),
            realtime=FakeLiveReader(),
            analytics=known_analytics(store, settings),
            answers=Answers(
                ResultCache(InProcessCache(), ttl_seconds=60, metrics=cache_metrics),
                WatermarkTracker(store.watermark, poll_seconds=1),
            ),
            cache_metrics=cache_metrics,
        )

    def context(self, role: Role | None) -> GraphQLContext:
        return GraphQLContext.build(principal(role) if role is not None else None, self)

    def count(self, name: str, **labels: str) -> float:
        """The current value of one ingest series (0 when it was never touched)."""
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def cache_count(self, kind: str, outcome: str) -> float:
        """Result cache requests of one kind and outcome (hit, miss, shared) so far."""
        labels = {"kind": kind, "outcome": outcome}
        return self.cache_metrics.registry.get_sample_value("analytics_result_cache_requests_total", labels) or 0.0
