"""Batch aggregation jobs over GraphQL: the same rules and errors as /api/v1/analytics/jobs (admins only).

``aggregationRuns`` lists the runs newest first, ``aggregationRun`` is one (null for an id no run has),
and ``runAggregation`` records a day's run and starts it on the cluster, answering at once with the
run ``running``; ``aggregationRun`` then tells how it ended (docs/batch.md).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.errors import AnalyticsError, NotFound
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import RunBatchJobs
from semantic.aggregation_jobs import DEFAULT_PAGE_SIZE, AggregationJobs, check_day
from storage.aggregates import AggregationRun


def aggregation_jobs(info: Info[GraphQLContext, None]) -> AggregationJobs:
    jobs = info.context.aggregation_jobs
    if jobs is None:
        raise AnalyticsError("batch jobs are not available on this replica")
    return jobs


@strawberry.type(name="AggregationRun", description="One run of a batch job for one UTC day, and how it went")
class AggregationRunType:
    id: str
    job: str
    day: date
    engine: str
    trigger: str = strawberry.field(description="What started it: schedule, api, cli, backfill or late_events")
    requested_by: str
    status: str = strawberry.field(description="running, completed or failed")
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    as_of: datetime | None = strawberry.field(description="The data watermark the records were computed at")
    partitions: int | None
    records: JSON = strawberry.field(description="Rows written per table")
    error: str | None

    @classmethod
    def from_domain(cls, run: AggregationRun) -> AggregationRunType:
        return cls(
            id=run.id,
            job=run.job,
            day=run.day,
            engine=run.engine,
            trigger=run.trigger,
            requested_by=run.requested_by,
            status=run.status,
            started_at=run.started_at,
            finished_at=run.finished_at,
            seconds=run.seconds,
            as_of=run.as_of,
            partitions=run.partitions,
            records=run.records,
            error=run.error,
        )


@strawberry.type(name="AggregationRunPage", description="Aggregation runs, newest first")
class AggregationRunPageType:
    items: list[AggregationRunType]
    total: int
    limit: int
    offset: int


@strawberry.type
class JobQueries:
    @strawberry.field(description="The aggregation runs, newest first (admins)", permission_classes=[RunBatchJobs])
    @maps_errors
    async def aggregation_runs(
        self,
        info: Info[GraphQLContext, None],
        date: Annotated[str | None, strawberry.argument(description="only the runs of this day, YYYY-MM-DD")] = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> AggregationRunPageType:
        day = check_day(date) if date is not None else None
        runs, total = await aggregation_jobs(info).runs(limit=limit, offset=offset, day=day)
        return AggregationRunPageType(
            items=[AggregationRunType.from_domain(r) for r in runs], total=total, limit=limit, offset=offset
        )

    @strawberry.field(
        description="One aggregation run; null for an id no run has (admins)", permission_classes=[RunBatchJobs]
    )
    @maps_errors
    async def aggregation_run(self, info: Info[GraphQLContext, None], id: str) -> AggregationRunType | None:
        try:
            return AggregationRunType.from_domain(await aggregation_jobs(info).run(id))
        except NotFound:
            return None


@strawberry.type
class JobMutations:
    @strawberry.mutation(
        description="Compute a day's records now, on the cluster; answers at once with the run running (admins)",
        permission_classes=[RunBatchJobs],
    )
    @maps_errors
    async def run_aggregation(
        self,
        info: Info[GraphQLContext, None],
        date: Annotated[str, strawberry.argument(description="the UTC day, YYYY-MM-DD, from 1970-01-01 to today")],
        engine: str = "ray",
        trigger: Annotated[str, strawberry.argument(description="what started the run: api, cli, backfill")] = "api",
    ) -> AggregationRunType:
        body: dict[str, Any] = {"date": date, "engine": engine, "trigger": trigger}
        principal = info.context.principal
        assert principal is not None  # the permission class refused a missing one
        return AggregationRunType.from_domain(await aggregation_jobs(info).start(body, principal))
