"""Batch aggregation jobs: /api/v1/analytics/jobs (semantic/aggregation_jobs.py holds the rules,
docs/batch.md the guide). Admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from core.errors import AnalyticsError
from semantic.aggregation_jobs import (
    DEFAULT_PAGE_SIZE,
    JOBS_PREFIX,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    AggregateBody,
    AggregationJobs,
    check_day,
)
from serve_app.deps import BatchJobRunner, ServicesDep
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body
from serve_app.services import Services

MAX_BODY_BYTES = 4 * 1024

router = APIRouter(prefix=JOBS_PREFIX, tags=["jobs"])


def _jobs(services: Services) -> AggregationJobs:
    if services.aggregation_jobs is None:
        raise AnalyticsError("batch jobs are not available on this replica")
    return services.aggregation_jobs


@router.get("", summary="The aggregation runs, newest first, with their status", responses=error_responses())
async def list_runs(
    services: ServicesDep,
    _: BatchJobRunner,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    date: Annotated[str | None, Query(description="only the runs of this day, YYYY-MM-DD")] = None,
) -> Response:
    day = check_day(date) if date is not None else None
    runs, total = await _jobs(services).runs(limit=limit, offset=offset, day=day)
    items: list[Any] = [run.to_dict() for run in runs]
    return json_response({"items": items, "total": total, "limit": limit, "offset": offset})


@router.post(
    "/aggregate",
    status_code=202,
    summary="Compute a day's records now, on the cluster; answers the run at once, running",
    responses=error_responses(413),
    openapi_extra=json_body("AggregateBody", AggregateBody, "The day to compute (docs/batch.md)"),
)
async def aggregate(request: Request, services: ServicesDep, principal: BatchJobRunner) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    run = await _jobs(services).start(body, principal)
    return json_response(run.to_dict(), status_code=202, headers={"Location": f"{JOBS_PREFIX}/{run.id}"})


@router.get("/{run_id}", summary="One aggregation run", responses=error_responses(404))
async def get_run(run_id: str, services: ServicesDep, _: BatchJobRunner) -> Response:
    return json_response((await _jobs(services).run(run_id)).to_dict())
