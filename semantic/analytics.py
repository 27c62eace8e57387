"""The analytics services a replica (or a test) works with, built once from the event store and Settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.settings import Settings
from semantic.analytics_query import AnalyticsQueryService, RecentQueries
from semantic.behavior import BehaviorService
from semantic.content import ContentAnalyticsService
from semantic.content_comparison import ContentComparisonService
from semantic.content_insights import ContentInsightsService
from semantic.content_metadata import ContentMetadataStore
from semantic.database_performance import DatabasePerformanceService
from semantic.imports import ImportAnalyticsService
from semantic.journeys import JourneyService
from semantic.periods import Period, resolve_period
from semantic.retention import RetentionService
from semantic.search import SearchAnalyticsService
from semantic.segments import SegmentRules, SegmentService
from semantic.system import SystemAnalyticsService, SystemRules
from semantic.users import UserAnalyticsService
from storage.events import EventStore


@dataclass(slots=True)
class Analytics:
    metadata: ContentMetadataStore
    content: ContentAnalyticsService
    insights: ContentInsightsService
    comparison: ContentComparisonService
    users: UserAnalyticsService
    segments: SegmentService
    retention: RetentionService
    journeys: JourneyService
    behavior: BehaviorService
    search: SearchAnalyticsService
    # The catalog's metrics by any dimensions (analyticsQuery, POST /api/v1/analytics/query).
    query: AnalyticsQueryService
    # Query bodies asked lately, parsed and resolved (a repeated dashboard query skips parsing).
    recent_queries: RecentQueries
    # Import and media processing jobs (/api/v1/analytics/imports/...).
    imports: ImportAnalyticsService
    # Statement timings per database (/api/v1/analytics/database/performance).
    database_performance: DatabasePerformanceService
    # The service health board (/api/v1/analytics/system/..., /services, /api/endpoints).
    system: SystemAnalyticsService
    default_range_days: int = 30
    max_range_days: int = 366

    @classmethod
    def build(cls, store: EventStore, settings: Settings) -> Analytics:
        metadata = ContentMetadataStore(store)
        content = ContentAnalyticsService(store, metadata)
        users = UserAnalyticsService(store)
        query = AnalyticsQueryService(
            store, default_range_days=settings.default_range_days, max_range_days=settings.max_range_days
        )
        return cls(
            metadata=metadata,
            content=content,
            insights=ContentInsightsService(store, content, metadata),
            comparison=ContentComparisonService(store, content, metadata),
            users=users,
            segments=SegmentService(
                store,
                SegmentRules(
                    power_min_share=settings.segment_power_min_share,
                    regular_min_share=settings.segment_regular_min_share,
                    churn_inactive_days=settings.segment_churn_inactive_days,
                ),
            ),
            retention=RetentionService(store),
            journeys=JourneyService(store, content, users, metadata),
            behavior=BehaviorService(store, metadata),
            search=SearchAnalyticsService(store, metadata, conversion_minutes=settings.search_conversion_minutes),
            query=query,
            recent_queries=RecentQueries(query),
            imports=ImportAnalyticsService(store, stuck_after_minutes=settings.import_stuck_after_minutes),
            database_performance=DatabasePerformanceService(store, slow_query_ms=settings.slow_query_ms),
            system=SystemAnalyticsService(store, SystemRules.of(settings)),
            default_range_days=settings.default_range_days,
            max_range_days=settings.max_range_days,
        )

    def period(
        self,
        start_date: date | None = None,
        end_date: date | None = None,
        granularity: str = "day",
        timezone: str = "UTC",
    ) -> Period:
        return resolve_period(
            start_date,
            end_date,
            granularity=granularity,
            timezone=timezone,
            default_days=self.default_range_days,
            max_days=self.max_range_days,
        )
