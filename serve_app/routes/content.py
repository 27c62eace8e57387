"""Content analytics: /api/v1/analytics/content/...

Static paths (top-performing, comparison) are declared before /content/{content_id}; the realtime
router (with /content/trending) is included before this one. Every answer comes through the result
cache (semantic/analytics_reads.py, shared with GraphQL), says its ``as_of`` and X-Cache hit or miss.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from semantic.analytics_reads import AnalyticsReads
from serve_app.deps import ContentAnalyticsReader, ServicesDep
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/content", tags=["content analytics"])


def _ids(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


@router.get("", summary="Content analytics in bulk: filter, sort, paginate", responses=error_responses(422))
async def content_list(
    services: ServicesDep,
    principal: ContentAnalyticsReader,
    period: PeriodDep,
    sort: str = "views",
    order: Literal["asc", "desc"] = "desc",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ids: Annotated[str | None, Query(description="comma-separated content ids to restrict to")] = None,
    category: str | None = None,
    content_type: str | None = None,
    language: str | None = None,
) -> Response:
    answer = await AnalyticsReads.of(services, principal).content_list(
        period,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
        content_ids=_ids(ids),
        category=category,
        content_type=content_type,
        language=language,
    )
    return cached_response(answer)


@router.get(
    "/top-performing",
    summary="Top content by a metric over a window, optionally in one category",
    responses=error_responses(422),
)
async def top_performing(
    services: ServicesDep,
    principal: ContentAnalyticsReader,
    period: PeriodDep,
    metric: str = "views",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    category: str | None = None,
    content_type: str | None = None,
    min_views: Annotated[int, Query(ge=0)] = 1,
) -> Response:
    answer = await AnalyticsReads.of(services, principal).top_performing(
        period, metric=metric, limit=limit, category=category, content_type=content_type, min_views=min_views
    )
    return cached_response(answer)


@router.get(
    "/comparison",
    summary="Contents side by side, each against its category's lifecycle median",
    responses=error_responses(404, 422),
)
async def comparison(
    services: ServicesDep,
    principal: ContentAnalyticsReader,
    period: PeriodDep,
    ids: Annotated[str, Query(description="comma-separated content ids (1 to 10)")],
    lifecycle_days: Annotated[int, Query(ge=1, le=90)] = 30,
) -> Response:
    reads = AnalyticsReads.of(services, principal)
    return cached_response(await reads.content_comparison(_ids(ids) or [], period, lifecycle_days=lifecycle_days))


@router.get(
    "/{content_id}",
    summary="ContentAnalytics of one content, with a series and the previous period",
    responses=error_responses(404, 422),
)
async def content_analytics(
    content_id: str, services: ServicesDep, principal: ContentAnalyticsReader, period: PeriodDep
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).content_report(content_id, period))


@router.get(
    "/{content_id}/insights",
    summary="Plain-language findings about one content",
    responses=error_responses(404, 422),
)
async def content_insights(
    content_id: str, services: ServicesDep, principal: ContentAnalyticsReader, period: PeriodDep
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).content_insights(content_id, period))


@router.get(
    "/{content_id}/audience",
    summary="Who views the content: sources, places, devices, browsers, referrers",
    responses=error_responses(404, 422),
)
async def content_audience(
    content_id: str,
    services: ServicesDep,
    principal: ContentAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    reads = AnalyticsReads.of(services, principal)
    return cached_response(await reads.content_audience(content_id, period, limit=limit))


@router.get(
    "/{content_id}/journey",
    summary="What viewers did right before and after viewing the content",
    responses=error_responses(404, 422),
)
async def content_journey(
    content_id: str,
    services: ServicesDep,
    principal: ContentAnalyticsReader,
    period: PeriodDep,
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
) -> Response:
    reads = AnalyticsReads.of(services, principal)
    return cached_response(await reads.content_journey(content_id, period, limit=limit))
