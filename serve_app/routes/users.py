"""User analytics: /api/v1/analytics/users/... (static paths before /users/{user_id}).

Every answer comes through the result cache (semantic/analytics_reads.py, shared with GraphQL), says
its ``as_of`` and X-Cache hit or miss.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from semantic.analytics_reads import AnalyticsReads
from serve_app.deps import ServicesDep, UserAnalyticsReader
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/users", tags=["user analytics"])


@router.get(
    "",
    summary="Aggregated user analytics: active, new and returning users, DAU/WAU/MAU, stickiness, sessions",
    responses=error_responses(422),
)
async def users_overview(services: ServicesDep, principal: UserAnalyticsReader, period: PeriodDep) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).users_overview(period))


@router.get(
    "/segments",
    summary="Rule-based segments: new, churning, power, regular, casual",
    responses=error_responses(422),
)
async def user_segments(
    services: ServicesDep,
    principal: UserAnalyticsReader,
    period: PeriodDep,
    power_min_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    regular_min_share: Annotated[float | None, Query(gt=0, le=1)] = None,
    churn_inactive_days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> Response:
    answer = await AnalyticsReads.of(services, principal).user_segments(
        period,
        power_min_share=power_min_share,
        regular_min_share=regular_min_share,
        churn_inactive_days=churn_inactive_days,
    )
    return cached_response(answer)


@router.get(
    "/cohorts",
    summary="Cohorts by first-seen day, week or month (the granularity) and their retention cells",
    responses=error_responses(422),
)
async def user_cohorts(services: ServicesDep, principal: UserAnalyticsReader, period: PeriodDep) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).user_cohorts(period))


@router.get(
    "/retention",
    summary="Retention curve over all cohorts, and churn against the previous period",
    responses=error_responses(422),
)
async def user_retention(services: ServicesDep, principal: UserAnalyticsReader, period: PeriodDep) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).user_retention(period))


@router.get(
    "/behavior-patterns",
    summary="Views by hour and weekday, session lengths, next-content transitions",
    responses=error_responses(422),
)
async def behavior_patterns(
    services: ServicesDep,
    principal: UserAnalyticsReader,
    period: PeriodDep,
    transitions: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    reads = AnalyticsReads.of(services, principal)
    return cached_response(await reads.behavior_patterns(period, transitions=transitions))


@router.get(
    "/{user_id}",
    summary="UserAnalytics of one user, against the previous period",
    responses=error_responses(404, 422),
)
async def user_analytics(
    user_id: str, services: ServicesDep, principal: UserAnalyticsReader, period: PeriodDep
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).user_report(user_id, period))


@router.get(
    "/{user_id}/journey",
    summary="One user's sessions, step by step, and content-to-content transitions",
    responses=error_responses(404, 422),
)
async def user_journey(
    user_id: str,
    services: ServicesDep,
    principal: UserAnalyticsReader,
    period: PeriodDep,
    sessions: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    reads = AnalyticsReads.of(services, principal)
    return cached_response(await reads.user_journey(user_id, period, sessions=sessions))


@router.get(
    "/{user_id}/preferences",
    summary="Categories, languages and content types the user views",
    responses=error_responses(404, 422),
)
async def user_preferences(
    user_id: str, services: ServicesDep, principal: UserAnalyticsReader, period: PeriodDep
) -> Response:
    return cached_response(await AnalyticsReads.of(services, principal).user_preferences(user_id, period))
