"""What every resolver gets: the services it may call and who is asking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from strawberry.fastapi import BaseContext

from core.access import Principal
from semantic.aggregation_jobs import AggregationJobs
from semantic.analytics import Analytics
from semantic.answers import Answers
from semantic.dashboard_feed import DashboardFeeds
from semantic.dashboards import DashboardService
from semantic.ingestion import IngestService
from semantic.realtime_results import ContentLive, LiveState, RealtimeMetrics, TrendingList
from semantic.reports import ReportService
from semantic.saved_queries import SavedQueryService
from storage.events import EventStore


class LiveFeed(Protocol):
    """The live hub's state as it changes (actors.realtime_client.LiveUpdates)."""

    def stream(self, interval_seconds: float, content_id: str | None = None) -> AsyncIterator[LiveState]: ...


class LiveReader(Protocol):
    """The live layer as a replica reads it (actors.realtime_client.RealtimeClient)."""

    @property
    def updates(self) -> LiveFeed: ...

    async def realtime(self) -> RealtimeMetrics: ...

    async def trending(self, window: str, limit: int, category: str | None = None) -> TrendingList: ...

    async def content_live(self, content_id: str) -> ContentLive: ...


class ResolverServices(Protocol):
    """The part of a replica's services (serve_app.services.Services) the resolvers use."""

    @property
    def ingest(self) -> IngestService: ...

    @property
    def events(self) -> EventStore: ...

    @property
    def realtime(self) -> LiveReader: ...

    @property
    def analytics(self) -> Analytics: ...

    @property
    def answers(self) -> Answers: ...

    @property
    def saved_queries(self) -> SavedQueryService: ...

    @property
    def reports(self) -> ReportService | None: ...

    @property
    def dashboards(self) -> DashboardService | None: ...

    @property
    def dashboard_feeds(self) -> DashboardFeeds | None: ...

    @property
    def aggregation_jobs(self) -> AggregationJobs | None: ...


@dataclass
class GraphQLContext(BaseContext):
    # None only for the in-browser IDE page (and a websocket until it authenticates); every field
    # declares its permission (graphql_schema/permissions.py), which refuses a missing principal.
    principal: Principal | None
    ingest: IngestService
    events: EventStore
    # The live layer (counter shards, trending, live hub) as seen from this replica.
    realtime: LiveReader
    # The analytics services: content, users, search, metadata.
    analytics: Analytics
    # Answers pinned to the data watermark, through the result cache (semantic/answers.py).
    answers: Answers
    saved_queries: SavedQueryService
    # Reports and the file store their runs write; None on a replica without them (the fields say so).
    reports: ReportService | None = None
    dashboards: DashboardService | None = None
    dashboard_feeds: DashboardFeeds | None = None
    aggregation_jobs: AggregationJobs | None = None

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def build(cls, principal: Principal | None, services: ResolverServices) -> GraphQLContext:
        return cls(
            principal=principal,
            ingest=services.ingest,
            events=services.events,
            realtime=services.realtime,
            analytics=services.analytics,
            answers=services.answers,
            saved_queries=services.saved_queries,
            reports=services.reports,
            dashboards=services.dashboards,
            dashboard_feeds=services.dashboard_feeds,
            aggregation_jobs=services.aggregation_jobs,
        )
