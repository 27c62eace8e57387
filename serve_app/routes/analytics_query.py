"""The analytics catalog and the general query: GET /api/v1/analytics/catalog, POST /api/v1/analytics/query.

The same answers as GraphQL ``analyticsCatalog`` and ``analyticsQuery`` (semantic/analytics_query.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from semantic.analytics_query import AnalyticsQueryRequest, AnalyticsQueryResult
from semantic.public_catalog import AnalyticsCatalog, catalog_for
from serve_app.deps import AnalyticalQuerier, ContentAnalyticsReader, services_of
from serve_app.http import cached_response, json_response, parse_json, read_body
from serve_app.openapi import error_responses, json_body

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics query"])

# 20 filters of up to 1,000 values fit many times over; larger bodies are refused before parsing.
MAX_QUERY_BODY_BYTES = 256 * 1024


@router.get(
    "/catalog",
    summary="The metrics and dimensions the caller's role may use in an analytics query",
    responses={200: {"model": AnalyticsCatalog}, **error_responses()},
)
async def analytics_catalog(principal: ContentAnalyticsReader) -> Response:
    return json_response(catalog_for(principal.role).model_dump(mode="json"))


@router.post(
    "/query",
    summary="Catalog metrics by up to 5 dimensions, filtered, compared, ordered and paged",
    description="The body is an AnalyticsQueryRequest (docs/queries.md); a metric or dimension the role "
    "may not use is a 403 naming it and the allowed roles.",
    responses={200: {"model": AnalyticsQueryResult}, **error_responses(413, 422)},
    openapi_extra=json_body("AnalyticsQueryRequest", AnalyticsQueryRequest, "The query (docs/queries.md)"),
)
async def analytics_query(request: Request, principal: AnalyticalQuerier) -> Response:
    services = services_of(request)
    body = await read_body(request, max_bytes=MAX_QUERY_BODY_BYTES)
    service = services.analytics.query
    resolved, fingerprint = services.analytics.recent_queries.get(body, principal.role, parse_json)
    answer = await services.answers.answer(
        "analytics_query", fingerprint, principal, lambda watermark: service.run(resolved, principal.role, watermark)
    )
    return cached_response(answer)
