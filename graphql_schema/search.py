"""Search and discovery analytics over GraphQL: the same answers as /api/v1/analytics/search/... (the
same result cache entries, semantic/analytics_reads.py)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_schema.analytics_base import AnalyticsMap, AnalyticsRange, analytics_period, reads
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadSearchAnalytics
from semantic import search


@strawberry.experimental.pydantic.type(model=search.SearchOverview, all_fields=True)
class SearchOverview:
    click_positions: AnalyticsMap
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=search.QueryStats, all_fields=True)
class SearchQueryStats:
    pass


@strawberry.experimental.pydantic.type(model=search.TopQueries, all_fields=True)
class SearchQueries:
    pass


@strawberry.experimental.pydantic.type(model=search.RecommendedContent, all_fields=True)
class RecommendedContent:
    pass


@strawberry.experimental.pydantic.type(model=search.RecommendationReport, all_fields=True)
class RecommendationReport:
    comparison: AnalyticsMap


@strawberry.type
class SearchAnalyticsQueries:
    @strawberry.field(
        description="Searches, zero results, click-through and positions, conversion, recommendations",
        permission_classes=[ReadSearchAnalytics],
    )
    @maps_errors
    async def search_overview(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None
    ) -> SearchOverview:
        answer = await reads(info).search_overview(analytics_period(info, range))
        return SearchOverview.from_pydantic(search.SearchOverview.model_validate(answer.json()))

    @strawberry.field(description="Top queries with their click-through rate", permission_classes=[ReadSearchAnalytics])
    @maps_errors
    async def top_search_queries(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, limit: int = 20
    ) -> SearchQueries:
        answer = await reads(info).top_search_queries(analytics_period(info, range), limit=limit)
        return SearchQueries.from_pydantic(search.TopQueries.model_validate(answer.json()))

    @strawberry.field(
        description="Queries that returned no results, most frequent first", permission_classes=[ReadSearchAnalytics]
    )
    @maps_errors
    async def zero_result_queries(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, limit: int = 20
    ) -> SearchQueries:
        answer = await reads(info).zero_result_queries(analytics_period(info, range), limit=limit)
        return SearchQueries.from_pydantic(search.TopQueries.model_validate(answer.json()))

    @strawberry.field(
        description="Recommendation impressions and clicks, overall and per content",
        permission_classes=[ReadSearchAnalytics],
    )
    @maps_errors
    async def recommendation_performance(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, limit: int = 20
    ) -> RecommendationReport:
        answer = await reads(info).recommendations(analytics_period(info, range), limit=limit)
        return RecommendationReport.from_pydantic(search.RecommendationReport.model_validate(answer.json()))
