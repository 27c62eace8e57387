"""Import and media processing job analytics over GraphQL: the same answers as
/api/v1/analytics/imports/... (the same result cache entries, semantic/import_reads.py), for admins
and analysts."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry
from strawberry.types import Info

from graphql_schema.analytics_base import AnalyticsMap, AnalyticsRange, analytics_period
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadImportAnalytics
from semantic import import_failures, import_figures, import_jobs, import_optimization
from semantic.import_reads import ImportReads


@strawberry.enum(description="import: import_* events; processing: processing_* events (media processing)")
class ImportJobKind(Enum):
    IMPORT = "import"
    PROCESSING = "processing"


@strawberry.enum
class ImportJobStatus(Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    RUNNING = "running"
    STUCK = "stuck"


# Named import_source in Python: a resolver argument named ``source`` collides with Strawberry's own.
SourceArgument = Annotated[str | None, strawberry.argument(name="source", description="one source only")]


def _reads(info: Info[GraphQLContext, None]) -> ImportReads:
    return ImportReads.of(info.context, info.context.principal)


def _value(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)


# ---- jobs ---------------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=import_jobs.ImportJob, all_fields=True, name="ImportJob")
class ImportJob:
    pass


@strawberry.experimental.pydantic.type(model=import_jobs.JobFilters, all_fields=True, name="ImportJobFilters")
class ImportJobFilters:
    pass


@strawberry.experimental.pydantic.type(model=import_jobs.ImportJobPage, all_fields=True, name="ImportJobPage")
class ImportJobPage:
    statuses: AnalyticsMap


@strawberry.experimental.pydantic.type(model=import_jobs.JobEvent, all_fields=True, name="ImportJobEvent")
class ImportJobEvent:
    pass


@strawberry.experimental.pydantic.type(model=import_jobs.StageRun, all_fields=True, name="ImportStageRun")
class ImportStageRun:
    pass


@strawberry.experimental.pydantic.type(model=import_jobs.JobQuality, all_fields=True, name="ImportJobQuality")
class ImportJobQuality:
    pass


@strawberry.experimental.pydantic.type(model=import_jobs.ImportJobReport, all_fields=True, name="ImportJobReport")
class ImportJobReport:
    pass


# ---- sources, quality, trends -------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=import_figures.JobFigures, all_fields=True, name="ImportJobFigures")
class ImportJobFigures:
    pass


@strawberry.experimental.pydantic.type(
    model=import_figures.QualityFigures, all_fields=True, name="ImportQualityFigures"
)
class ImportQualityFigures:
    pass


@strawberry.experimental.pydantic.type(
    model=import_figures.FailureRatePoint, all_fields=True, name="ImportFailureRatePoint"
)
class ImportFailureRatePoint:
    pass


@strawberry.experimental.pydantic.type(
    model=import_figures.SourcePerformance, all_fields=True, name="ImportSourcePerformance"
)
class ImportSourcePerformance:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=import_figures.ImportSources, all_fields=True, name="ImportSources")
class ImportSources:
    pass


@strawberry.experimental.pydantic.type(
    model=import_figures.QualityBySource, all_fields=True, name="ImportQualityBySource"
)
class ImportQualityBySource:
    pass


@strawberry.experimental.pydantic.type(model=import_figures.QualityPoint, all_fields=True, name="ImportQualityPoint")
class ImportQualityPoint:
    pass


@strawberry.experimental.pydantic.type(model=import_figures.ImportQuality, all_fields=True, name="ImportQuality")
class ImportQuality:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=import_figures.TrendPoint, all_fields=True, name="ImportTrendPoint")
class ImportTrendPoint:
    pass


@strawberry.experimental.pydantic.type(model=import_figures.ImportTrends, all_fields=True, name="ImportTrends")
class ImportTrends:
    comparison: AnalyticsMap


# ---- failures -----------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(
    model=import_failures.FailedJobExample, all_fields=True, name="ImportFailedJobExample"
)
class ImportFailedJobExample:
    pass


@strawberry.experimental.pydantic.type(model=import_failures.FailureGroup, all_fields=True, name="ImportFailureGroup")
class ImportFailureGroup:
    sources: AnalyticsMap


@strawberry.experimental.pydantic.type(model=import_failures.FailureCount, all_fields=True, name="ImportFailureCount")
class ImportFailureCount:
    pass


@strawberry.experimental.pydantic.type(model=import_failures.ImportFailures, all_fields=True, name="ImportFailures")
class ImportFailures:
    pass


# ---- optimization -------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(
    model=import_optimization.Recommendation, all_fields=True, name="ImportRecommendation"
)
class ImportRecommendation:
    evidence: AnalyticsMap


@strawberry.experimental.pydantic.type(model=import_optimization.RuleSummary, all_fields=True, name="ImportRuleSummary")
class ImportRuleSummary:
    thresholds: AnalyticsMap


@strawberry.experimental.pydantic.type(
    model=import_optimization.ImportOptimization, all_fields=True, name="ImportOptimization"
)
class ImportOptimization:
    pass


@strawberry.type
class ImportQueries:
    @strawberry.field(
        description="Jobs started in the range, newest first: filter by source, status, kind; paginated",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_jobs(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        import_source: SourceArgument = None,
        status: ImportJobStatus | None = None,
        kind: ImportJobKind | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ImportJobPage:
        answer = await _reads(info).import_jobs(
            analytics_period(info, range),
            source=import_source,
            status=_value(status),
            kind=_value(kind),
            limit=limit,
            offset=offset,
        )
        return ImportJobPage.from_pydantic(import_jobs.ImportJobPage.model_validate(answer.json()))

    @strawberry.field(
        description="One job: its status, figures, stages and the timeline of its events",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_job(self, info: Info[GraphQLContext, None], job_id: str) -> ImportJobReport:
        answer = await _reads(info).import_job(job_id)
        return ImportJobReport.from_pydantic(import_jobs.ImportJobReport.model_validate(answer.json()))

    @strawberry.field(
        description="Per source: runs, success rate, throughput, duration p50/p95, failure rate trend",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_sources(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, kind: ImportJobKind | None = None
    ) -> ImportSources:
        answer = await _reads(info).import_sources(analytics_period(info, range), kind=_value(kind))
        return ImportSources.from_pydantic(import_figures.ImportSources.model_validate(answer.json()))

    @strawberry.field(
        description="Data quality figures by source and over time", permission_classes=[ReadImportAnalytics]
    )
    @maps_errors
    async def import_quality(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        import_source: SourceArgument = None,
        kind: ImportJobKind | None = None,
    ) -> ImportQuality:
        answer = await _reads(info).import_quality(
            analytics_period(info, range), source=import_source, kind=_value(kind)
        )
        return ImportQuality.from_pydantic(import_figures.ImportQuality.model_validate(answer.json()))

    @strawberry.field(
        description="Jobs, outcomes, records, durations and throughput by bucket, against the previous period",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_trends(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        import_source: SourceArgument = None,
        kind: ImportJobKind | None = None,
    ) -> ImportTrends:
        answer = await _reads(info).import_trends(
            analytics_period(info, range), source=import_source, kind=_value(kind)
        )
        return ImportTrends.from_pydantic(import_figures.ImportTrends.model_validate(answer.json()))

    @strawberry.field(
        description="Failed jobs grouped by failure reason and stage, with their sources and latest examples",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_failures(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        import_source: SourceArgument = None,
        kind: ImportJobKind | None = None,
        examples: int = 3,
    ) -> ImportFailures:
        answer = await _reads(info).import_failures(
            analytics_period(info, range), source=import_source, kind=_value(kind), examples=examples
        )
        return ImportFailures.from_pydantic(import_failures.ImportFailures.model_validate(answer.json()))

    @strawberry.field(
        description="Rule-based recommendations for imports, each with its evidence",
        permission_classes=[ReadImportAnalytics],
    )
    @maps_errors
    async def import_optimization(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, kind: ImportJobKind | None = None
    ) -> ImportOptimization:
        answer = await _reads(info).import_optimization(analytics_period(info, range), kind=_value(kind))
        return ImportOptimization.from_pydantic(import_optimization.ImportOptimization.model_validate(answer.json()))
