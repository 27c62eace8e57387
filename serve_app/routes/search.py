"""Search and discovery analytics: /api/v1/analytics/search/..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from serve_app.deps import AnalyticsReader, ServicesDep
from serve_app.http import json_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/search", tags=["search analytics"])


@router.get(
    "/overview",
    summary="Searches, zero results, click-through and positions, conversion, recommendations",
    responses=error_responses(422),
)
async def search_overview(services: ServicesDep, _: AnalyticsReader, period: PeriodDep) -> Response:
    result = await services.analytics.search.overview(period)
    return json_response(result.model_dump(mode="json"))


@router.get("/queries", summary="Top queries with their click-through rate", responses=error_responses(422))
async def top_queries(
    services: ServicesDep,
    _: AnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    result = await services.analytics.search.top_queries(period, limit=limit)
    return json_response(result.model_dump(mode="json"))


@router.get(
    "/zero-results",
    summary="Queries that returned no results, most frequent first",
    responses=error_responses(422),
)
async def zero_result_queries(
    services: ServicesDep,
    _: AnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    result = await services.analytics.search.zero_result_queries(period, limit=limit)
    return json_response(result.model_dump(mode="json"))


@router.get(
    "/recommendations",
    summary="Recommendation impressions and clicks, overall and per content",
    responses=error_responses(422),
)
async def recommendations(
    services: ServicesDep,
    _: AnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    result = await services.analytics.search.recommendations(period, limit=limit)
    return json_response(result.model_dump(mode="json"))
