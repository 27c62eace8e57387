"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from serve_app import metrics
from serve_app.deps import CurrentPrincipal, ServicesDep
from serve_app.http import json_response
from serve_app.openapi import Readiness, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: every store answers",
    responses={
        200: {"model": Readiness, "description": "Every store answers"},
        503: {"model": Readiness, "description": "Not ready: checks names the store that did not answer"},
    },
)
async def readyz(services: ServicesDep) -> Response:
    events, metadata, cache = await asyncio.gather(
        services.events.ping(), services.metadata.ping(), services.cache.ping()
    )
    checks = {"clickhouse": events, "postgres": metadata, "cache": cache}
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return json_response(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (any valid API key)",
    responses={
        200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
        # Any valid key may read them (no 403); looking the key up while PostgreSQL is down is a 503.
        **error_responses(401, 503, common=False),
    },
    # The 200 is text (above), so FastAPI must not document a JSON one beside it; errors stay JSON.
    response_class=Response,
)
async def prometheus_metrics(services: ServicesDep, _: CurrentPrincipal) -> Response:
    body = generate_latest(metrics.REGISTRY)
    try:
        body += await asyncio.wait_for(services.events.metrics_text(), timeout=5)
    except Exception:  # noqa: BLE001 - a scrape still returns the replica's own metrics
        metrics.INGEST.event_store_error()
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
