"""Content analytics over GraphQL: the same answers as /api/v1/analytics/content/... (the same result
cache entries, semantic/analytics_reads.py) and content metadata."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from core.models import ContentAnalytics
from graphql_schema.analytics_base import (
    AnalyticsMap,
    AnalyticsRange,
    ContentMetadataType,
    analytics,
    analytics_period,
    reads,
)
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadContentAnalytics, ReadContentMetadata, WriteContentMetadata
from semantic import content as content_models
from semantic import content_comparison, content_insights, journeys


@strawberry.experimental.pydantic.type(
    model=ContentAnalytics, all_fields=True, description="The spec's ContentAnalytics"
)
class ContentAnalyticsType:
    top_countries: AnalyticsMap
    top_regions: AnalyticsMap
    hourly_distribution: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_models.ContentSeriesPoint, all_fields=True)
class ContentSeriesPoint:
    pass


@strawberry.experimental.pydantic.type(model=content_models.ContentAnalyticsReport, all_fields=True)
class ContentAnalyticsReport:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_models.ContentListItem, all_fields=True)
class ContentListItem:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_models.ContentPage, all_fields=True)
class ContentPage:
    pass


@strawberry.experimental.pydantic.type(model=content_models.TopContentItem, all_fields=True)
class TopContentItem:
    pass


@strawberry.experimental.pydantic.type(model=content_models.TopPerforming, all_fields=True)
class TopPerformingContent:
    pass


@strawberry.experimental.pydantic.type(model=content_models.ContentAudience, all_fields=True)
class ContentAudience:
    comparison: AnalyticsMap
    breakdowns: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_insights.Insight, all_fields=True)
class ContentInsight:
    severity: str = strawberry.field(description="positive, negative or info")
    data: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_insights.ContentInsights, all_fields=True)
class ContentInsights:
    pass


@strawberry.experimental.pydantic.type(model=content_comparison.LifecyclePoint, all_fields=True)
class LifecyclePoint:
    pass


@strawberry.experimental.pydantic.type(model=content_comparison.Lifecycle, all_fields=True)
class Lifecycle:
    pass


@strawberry.experimental.pydantic.type(model=content_comparison.ComparedContent, all_fields=True)
class ComparedContent:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=content_comparison.ContentComparison, all_fields=True)
class ContentComparison:
    pass


@strawberry.experimental.pydantic.type(model=journeys.JourneyStep, all_fields=True)
class JourneyStep:
    kind: str = strawberry.field(description="content, search, page, entry or exit")


@strawberry.experimental.pydantic.type(model=journeys.JourneyPath, all_fields=True)
class JourneyPath:
    pass


@strawberry.experimental.pydantic.type(model=journeys.ContentJourney, all_fields=True)
class ContentJourney:
    pass


@strawberry.input(description="Metadata fields to set; those left out keep their value")
class ContentMetadataInput:
    title: str | None = None
    category: str | None = None
    content_type: str | None = None
    language: str | None = None
    author: str | None = None
    published_at: datetime | None = None


@strawberry.type
class ContentQueries:
    @strawberry.field(
        description="ContentAnalytics of one content, with a series and the previous period",
        permission_classes=[ReadContentAnalytics],
    )
    @maps_errors
    async def content_analytics(
        self, info: Info[GraphQLContext, None], content_id: str, range: AnalyticsRange | None = None
    ) -> ContentAnalyticsReport:
        answer = await reads(info).content_report(content_id, analytics_period(info, range))
        return ContentAnalyticsReport.from_pydantic(content_models.ContentAnalyticsReport.model_validate(answer.json()))

    @strawberry.field(
        description="Content analytics in bulk: filter, sort, paginate", permission_classes=[ReadContentAnalytics]
    )
    @maps_errors
    async def content_list(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        sort: str = "views",
        descending: bool = True,
        limit: int = 20,
        offset: int = 0,
        ids: list[str] | None = None,
        category: str | None = None,
        content_type: str | None = None,
        language: str | None = None,
    ) -> ContentPage:
        answer = await reads(info).content_list(
            analytics_period(info, range),
            sort=sort,
            descending=descending,
            limit=limit,
            offset=offset,
            content_ids=ids,
            category=category,
            content_type=content_type,
            language=language,
        )
        return ContentPage.from_pydantic(content_models.ContentPage.model_validate(answer.json()))

    @strawberry.field(
        description="Top content by a metric, optionally in one category", permission_classes=[ReadContentAnalytics]
    )
    @maps_errors
    async def top_performing_content(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        metric: str = "views",
        limit: int = 10,
        category: str | None = None,
        content_type: str | None = None,
        min_views: int = 1,
    ) -> TopPerformingContent:
        answer = await reads(info).top_performing(
            analytics_period(info, range),
            metric=metric,
            limit=limit,
            category=category,
            content_type=content_type,
            min_views=min_views,
        )
        return TopPerformingContent.from_pydantic(content_models.TopPerforming.model_validate(answer.json()))

    @strawberry.field(
        description="Plain-language findings about one content", permission_classes=[ReadContentAnalytics]
    )
    @maps_errors
    async def content_insights(
        self, info: Info[GraphQLContext, None], content_id: str, range: AnalyticsRange | None = None
    ) -> ContentInsights:
        answer = await reads(info).content_insights(content_id, analytics_period(info, range))
        return ContentInsights.from_pydantic(content_insights.ContentInsights.model_validate(answer.json()))

    @strawberry.field(
        description="Who views the content, by source, place, device, browser and referrer",
        permission_classes=[ReadContentAnalytics],
    )
    @maps_errors
    async def content_audience(
        self, info: Info[GraphQLContext, None], content_id: str, range: AnalyticsRange | None = None, limit: int = 20
    ) -> ContentAudience:
        answer = await reads(info).content_audience(content_id, analytics_period(info, range), limit=limit)
        return ContentAudience.from_pydantic(content_models.ContentAudience.model_validate(answer.json()))

    @strawberry.field(
        description="What viewers did right before and after viewing the content",
        permission_classes=[ReadContentAnalytics],
    )
    @maps_errors
    async def content_journey(
        self, info: Info[GraphQLContext, None], content_id: str, range: AnalyticsRange | None = None, limit: int = 10
    ) -> ContentJourney:
        answer = await reads(info).content_journey(content_id, analytics_period(info, range), limit=limit)
        return ContentJourney.from_pydantic(journeys.ContentJourney.model_validate(answer.json()))

    @strawberry.field(
        description="Contents side by side, each against its category's lifecycle median",
        permission_classes=[ReadContentAnalytics],
    )
    @maps_errors
    async def content_comparison(
        self,
        info: Info[GraphQLContext, None],
        ids: list[str],
        range: AnalyticsRange | None = None,
        lifecycle_days: int = 30,
    ) -> ContentComparison:
        answer = await reads(info).content_comparison(ids, analytics_period(info, range), lifecycle_days=lifecycle_days)
        return ContentComparison.from_pydantic(content_comparison.ContentComparison.model_validate(answer.json()))

    @strawberry.field(
        description="A content's metadata (null when none was recorded)", permission_classes=[ReadContentMetadata]
    )
    @maps_errors
    async def content_metadata(self, info: Info[GraphQLContext, None], content_id: str) -> ContentMetadataType | None:
        found = await analytics(info).metadata.get(content_id)
        return ContentMetadataType.from_pydantic(found) if found else None


@strawberry.type
class ContentMetadataMutations:
    @strawberry.mutation(
        description="Create or update a content's metadata (roles service, admin)",
        permission_classes=[WriteContentMetadata],
    )
    @maps_errors
    async def upsert_content_metadata(
        self, info: Info[GraphQLContext, None], content_id: str, metadata: ContentMetadataInput
    ) -> ContentMetadataType:
        body = {name: value for name, value in vars(metadata).items() if value is not None}
        if "published_at" in body:
            body["published_at"] = body["published_at"].isoformat()
        stored = await analytics(info).metadata.upsert(content_id, body)
        return ContentMetadataType.from_pydantic(stored)
