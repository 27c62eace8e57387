"""Live metrics: /api/v1/analytics/real-time and /api/v1/analytics/content/trending."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from actors.trending import MAX_TRENDING_LIMIT
from serve_app.deps import RealtimeReader, ServicesDep
from serve_app.http import json_response
from serve_app.openapi import error_responses

router = APIRouter(prefix="/api/v1/analytics", tags=["real-time"])


@router.get(
    "/real-time",
    summary="Global live metrics: events per second, active users and sessions, window totals",
    responses=error_responses(),
)
async def real_time(services: ServicesDep, _: RealtimeReader) -> Response:
    return json_response((await services.realtime.realtime()).model_dump(mode="json"))


@router.get(
    "/content/trending",
    summary="Trending content per window (5m, 1h, 24h), optionally in one category",
    responses=error_responses(),
)
async def trending(
    services: ServicesDep,
    _: RealtimeReader,
    window: str = "1h",
    limit: Annotated[int, Query(ge=1, le=MAX_TRENDING_LIMIT)] = 20,
    category: str | None = None,
) -> Response:
    ranking = await services.realtime.trending(window, limit, category)
    return json_response(ranking.model_dump(mode="json"))


@router.get("/content/{content_id}/live", summary="Live counters of one content item", responses=error_responses())
async def content_live(content_id: str, services: ServicesDep, _: RealtimeReader) -> Response:
    return json_response((await services.realtime.content_live(content_id)).model_dump(mode="json"))
