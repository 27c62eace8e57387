"""Database performance: /api/v1/analytics/database/performance (admins and analysts).

The statements the service ran on ClickHouse, PostgreSQL and Redis (and any other service's
``database_query`` events) per database over the window: statements, average and p95 time, slow ones,
and the slowest statements' fingerprints. The answer comes through the result cache
(semantic/database_reads.py, shared with GraphQL), says its ``as_of`` and X-Cache hit or miss.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from semantic.database_performance import (
    MAX_SERVICE_CHARS,
    MAX_STATEMENTS,
    DatabasePerformance,
    StatementSort,
)
from semantic.database_reads import DatabaseReads
from serve_app.deps import ServicesDep, SystemAnalyticsReader
from serve_app.http import cached_response
from serve_app.openapi import error_responses
from serve_app.periods import PeriodDep

router = APIRouter(prefix="/api/v1/analytics/database", tags=["database performance"])


@router.get(
    "/performance",
    summary="Per database: statements, average and p95 time, slow statements, and the slowest fingerprints",
    responses={200: {"model": DatabasePerformance}, **error_responses(422)},
)
async def database_performance(
    services: ServicesDep,
    principal: SystemAnalyticsReader,
    period: PeriodDep,
    service: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_SERVICE_CHARS, description="one service's statements only"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STATEMENTS, description="how many of the slowest statements")] = 10,
    sort: Annotated[StatementSort, Query(description="what makes a statement one of the slowest")] = "p95_ms",
) -> Response:
    answer = await DatabaseReads.of(services, principal).database_performance(
        period, service=service, limit=limit, sort=sort
    )
    return cached_response(answer)
