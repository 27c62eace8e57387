"""Import and media processing job analytics: /api/v1/analytics/imports/... (admins and analysts).

The static paths (jobs, sources, quality, trends, failures, optimization) are declared before
/imports/{job_id}, which would otherwise take them as job ids. Every answer comes through the result
cache (semantic/import_reads.py, shared with GraphQL), says its ``as_of`` and X-Cache hit or miss.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from semantic.import_failures import MAX_EXAMPLES, ImportFailures
from semantic.import_figures import ImportQuality, ImportSources, ImportTrends
from semantic.import_jobs import MAX_PAGE, ImportJobPage, ImportJobReport
from semantic.import_optimization import ImportOptimization
from semantic.import_reads import ImportReads
from serve_app.deps import ImportAnalyticsReader, ServicesDep
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/imports", tags=["import analytics"])

Kind = Annotated[Literal["import", "processing"] | None, Query(description="import or processing jobs only")]
Source = Annotated[str | None, Query(min_length=1, max_length=256, description="one source only (properties.source)")]


@router.get(
    "/jobs",
    summary="Jobs started in the window, newest first: filter by source, status, kind; paginated",
    responses={200: {"model": ImportJobPage}, **error_responses(422)},
)
async def import_jobs(
    services: ServicesDep,
    principal: ImportAnalyticsReader,
    period: PeriodDep,
    source: Source = None,
    status: Annotated[
        Literal["completed", "failed", "running", "stuck"] | None, Query(description="jobs of this status only")
    ] = None,
    kind: Kind = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    answer = await ImportReads.of(services, principal).import_jobs(
        period, source=source, status=status, kind=kind, limit=limit, offset=offset
    )
    return cached_response(answer)


@router.get(
    "/sources",
    summary="Per source: runs, success rate, throughput, duration p50/p95, failure rate trend",
    responses={200: {"model": ImportSources}, **error_responses(422)},
)
async def import_sources(
    services: ServicesDep, principal: ImportAnalyticsReader, period: PeriodDep, kind: Kind = None
) -> Response:
    return cached_response(await ImportReads.of(services, principal).import_sources(period, kind=kind))


@router.get(
    "/quality",
    summary="Data quality: duplicates, invalid rows, missing fields, transform errors, by source and over time",
    responses={200: {"model": ImportQuality}, **error_responses(422)},
)
async def import_quality(
    services: ServicesDep,
    principal: ImportAnalyticsReader,
    period: PeriodDep,
    source: Source = None,
    kind: Kind = None,
) -> Response:
    answer = await ImportReads.of(services, principal).import_quality(period, source=source, kind=kind)
    return cached_response(answer)


@router.get(
    "/trends",
    summary="Jobs, outcomes, records, durations and throughput by bucket, against the previous period",
    responses={200: {"model": ImportTrends}, **error_responses(422)},
)
async def import_trends(
    services: ServicesDep,
    principal: ImportAnalyticsReader,
    period: PeriodDep,
    source: Source = None,
    kind: Kind = None,
) -> Response:
    answer = await ImportReads.of(services, principal).import_trends(period, source=source, kind=kind)
    return cached_response(answer)


@router.get(
    "/failures",
    summary="Failed jobs grouped by failure reason and stage, with their sources and latest examples",
    responses={200: {"model": ImportFailures}, **error_responses(422)},
)
async def import_failures(
    services: ServicesDep,
    principal: ImportAnalyticsReader,
    period: PeriodDep,
    source: Source = None,
    kind: Kind = None,
    examples: Annotated[int, Query(ge=0, le=MAX_EXAMPLES, description="latest failed jobs shown per group")] = 3,
) -> Response:
    answer = await ImportReads.of(services, principal).import_failures(
        period, source=source, kind=kind, examples=examples
    )
    return cached_response(answer)


@router.get(
    "/optimization",
    summary="Rule-based recommendations (slow stages, failure rate rises, overlaps, stuck jobs, throughput "
    "drops), each with its evidence",
    responses={200: {"model": ImportOptimization}, **error_responses(422)},
)
async def import_optimization(
    services: ServicesDep, principal: ImportAnalyticsReader, period: PeriodDep, kind: Kind = None
) -> Response:
    return cached_response(await ImportReads.of(services, principal).import_optimization(period, kind=kind))


@router.get(
    "/{job_id}",
    summary="One job: its status, figures, stages and the timeline of its events",
    responses={200: {"model": ImportJobReport}, **error_responses(404, 422)},
)
async def import_job(
    services: ServicesDep,
    principal: ImportAnalyticsReader,
    job_id: Annotated[str, Path(min_length=1, max_length=256)],
) -> Response:
    return cached_response(await ImportReads.of(services, principal).import_job(job_id))
