"""Database performance over GraphQL: the same answer as /api/v1/analytics/database/performance (the
same result cache entry, semantic/database_reads.py), for admins and analysts."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.types import Info

from graphql_schema.analytics_base import AnalyticsMap, AnalyticsRange, analytics_period
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadSystemAnalytics
from semantic import database_performance
from semantic.database_reads import DatabaseReads


@strawberry.enum(description="What makes a statement one of the slowest (highest first)")
class StatementSort(Enum):
    P95_MS = "p95_ms"
    AVERAGE_MS = "average_ms"
    MAX_MS = "max_ms"
    TOTAL_MS = "total_ms"
    STATEMENTS = "statements"
    SLOW_STATEMENTS = "slow_statements"


@strawberry.experimental.pydantic.type(model=database_performance.StatementFigures, all_fields=True)
class StatementFigures:
    pass


@strawberry.experimental.pydantic.type(model=database_performance.DatabaseStats, all_fields=True)
class DatabaseStats:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=database_performance.DatabaseSeriesPoint, all_fields=True)
class DatabaseSeriesPoint:
    pass


@strawberry.experimental.pydantic.type(model=database_performance.StatementStats, all_fields=True)
class StatementStats:
    pass


@strawberry.experimental.pydantic.type(model=database_performance.DatabasePerformance, all_fields=True)
class DatabasePerformance:
    comparison: AnalyticsMap


@strawberry.type
class DatabaseQueries:
    @strawberry.field(
        description="Per database: statements, average and p95 time, slow statements, and the slowest fingerprints",
        permission_classes=[ReadSystemAnalytics],
    )
    @maps_errors
    async def database_performance(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        service: str | None = None,
        limit: int = 10,
        sort: StatementSort = StatementSort.P95_MS,
    ) -> DatabasePerformance:
        answer = await DatabaseReads.of(info.context, info.context.principal).database_performance(
            analytics_period(info, range), service=service, limit=limit, sort=sort.value
        )
        return DatabasePerformance.from_pydantic(database_performance.DatabasePerformance.model_validate(answer.json()))
