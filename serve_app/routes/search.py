"""Search and discovery analytics: /api/v1/analytics/search/...

Every answer comes through the result cache (semantic/analytics_reads.py, shared with GraphQL), says
its ``as_of`` and X-Cache hit or miss.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from semantic.analytics_reads import AnalyticsReads
from serve_app.deps import SearchAnalyticsReader, ServicesDep
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/search", tags=["search analytics"])


@router.get(
    "/overview",
    summary="Searches, zero results, click-through and positions, conversion, recommendations",
    responses=error_responses(422),
)
async def search_overview(services: ServicesDep, principal: SearchAnalyticsReader, period: PeriodDep) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).search_overview(period))


@router.get("/queries", summary="Top queries with their click-through rate", responses=error_responses(422))
async def top_queries(
    services: ServicesDep,
    principal: SearchAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).top_search_queries(period, limit=limit))


@router.get(
    "/zero-results",
    summary="Queries that returned no results, most frequent first",
    responses=error_responses(422),
)
async def zero_result_queries(
    services: ServicesDep,
    principal: SearchAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).zero_result_queries(period, limit=limit))


@router.get(
    "/recommendations",
    summary="Recommendation impressions and clicks, overall and per content",
    responses=error_responses(422),
)
async def recommendations(
    services: ServicesDep,
    principal: SearchAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).recommendations(period, limit=limit))
