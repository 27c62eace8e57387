"""Behaviour analyses over raw events: POST /api/v1/analytics/funnels, /retention, /paths, /stickiness.

Each body is the analysis' request model (semantic/funnels.py, event_retention.py, paths.py,
stickiness.py), checked by the same parser as GraphQL's ``funnel``, ``retentionAnalysis``, ``paths``
and ``stickiness`` (errors name the field), and against the caller's role (a filter or breakdown on
user_id or session_id is for admin and analyst, as in the analytics catalog); docs/analyses.md
describes them. POST
/api/v1/analytics/retention is retention between two chosen events; GET
/api/v1/analytics/users/retention is the cohort retention of users/.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.access import Principal
from semantic.analysis_kinds import FUNNEL, PATHS, RETENTION, STICKINESS, AnalysisKind
from semantic.event_retention import RetentionResult
from semantic.funnels import FunnelResult
from semantic.paths import PathsResult
from semantic.stickiness import StickinessResult
from serve_app.deps import AnalyticalQuerier, services_of
from serve_app.http import cached_response, read_json
from serve_app.openapi import error_responses, json_body

router = APIRouter(prefix="/api/v1/analytics", tags=["behaviour analyses"])

# Ten steps with twenty filters of a few values each fit many times over; 1,000-value filters too.
MAX_ANALYSIS_BODY_BYTES = 256 * 1024
_ERRORS = error_responses(413, 422)


async def _answer(request: Request, principal: Principal, kind: AnalysisKind) -> Response:
    """Parse the body (400 naming the field), resolve its dates, check the role's dimensions (403), answer."""
    body = await read_json(request, max_bytes=MAX_ANALYSIS_BODY_BYTES)
    services = services_of(request)
    return cached_response(await kind.answer(body, principal, services.events, services.answers))


@router.post(
    "/funnels",
    summary="Ordered steps within a conversion window: actors per step, conversion, drop-off, time to convert",
    description="The body is a FunnelRequest (docs/analyses.md#funnels).",
    responses={200: {"model": FunnelResult}, **_ERRORS},
    openapi_extra=json_body("FunnelRequest", FUNNEL.request, "The funnel (docs/analyses.md#funnels)"),
)
async def funnel(request: Request, principal: AnalyticalQuerier) -> Response:
    return await _answer(request, principal, FUNNEL)


@router.post(
    "/retention",
    summary="Retention between a start and a return event: cohorts by day, week or month and the overall curve",
    description="The body is a RetentionRequest (docs/analyses.md#retention). Not the same as "
    "GET /api/v1/analytics/users/retention (cohorts by first event, any event a return).",
    responses={200: {"model": RetentionResult}, **_ERRORS},
    openapi_extra=json_body("RetentionRequest", RETENTION.request, "The retention (docs/analyses.md#retention)"),
)
async def retention(request: Request, principal: AnalyticalQuerier) -> Response:
    return await _answer(request, principal, RETENTION)


@router.post(
    "/paths",
    summary="The most frequent paths of sessions after (or before) an anchor step, and the steps at each depth",
    description="The body is a PathsRequest (docs/analyses.md#paths).",
    responses={200: {"model": PathsResult}, **_ERRORS},
    openapi_extra=json_body("PathsRequest", PATHS.request, "The paths (docs/analyses.md#paths)"),
)
async def paths(request: Request, principal: AnalyticalQuerier) -> Response:
    return await _answer(request, principal, PATHS)


@router.post(
    "/stickiness",
    summary="Users by number of active days per week or month, and the DAU/WAU or DAU/MAU ratio",
    description="The body is a StickinessRequest (docs/analyses.md#stickiness).",
    responses={200: {"model": StickinessResult}, **_ERRORS},
    openapi_extra=json_body("StickinessRequest", STICKINESS.request, "The stickiness (docs/analyses.md#stickiness)"),
)
async def stickiness(request: Request, principal: AnalyticalQuerier) -> Response:
    return await _answer(request, principal, STICKINESS)
