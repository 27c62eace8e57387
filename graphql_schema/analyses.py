"""Behaviour analyses over GraphQL: ``funnel``, ``retentionAnalysis``, ``paths`` and ``stickiness``,
the same answers as POST /api/v1/analytics/funnels, /retention, /paths and /stickiness.

Each input has the REST body's fields in camelCase; it is turned back into that body and checked by
the same parser (semantic/funnels.py and its siblings), so errors name the same (snake_case) fields,
and checked against the caller's role as REST does.
Date ranges and filters use the inputs of ``analyticsQuery``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from pydantic import BaseModel
from strawberry.types import Info

from graphql_schema.analytics_query import AnalyticsQueryDateRangeInput, AnalyticsQueryFilterInput
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import RunAnalyticalQueries
from semantic import event_retention, funnels, paths, stickiness
from semantic.analysis_kinds import FUNNEL, PATHS, RETENTION, STICKINESS, AnalysisKind


def request_body(value: Any) -> Any:
    """An input as the REST body: snake_case keys, fields left out stay out (so the parser's defaults
    and errors apply), dates as ISO text."""
    if isinstance(value, list):
        return [request_body(v) for v in value]
    if hasattr(value, "__strawberry_definition__"):
        fields = {name: getattr(value, name) for name in type(value).__annotations__}
        return {name: request_body(v) for name, v in fields.items() if v is not None and v is not strawberry.UNSET}
    if isinstance(value, date):
        return value.isoformat()
    return value


# --- inputs --------------------------------------------------------------------------------------


@strawberry.input(description="An event type and filters on the dimensions of its events")
class AnalysisEventInput:
    event_type: str
    filters: list[AnalyticsQueryFilterInput] | None = None


@strawberry.input(description="A funnel step: an event type, filters and a label shown in the answer")
class FunnelStepInput:
    event_type: str
    filters: list[AnalyticsQueryFilterInput] | None = None
    label: str | None = None


@strawberry.input(description="An event that, strictly between step afterStep and the next step, ends the chain")
class FunnelExclusionInput:
    event_type: str
    after_step: int
    filters: list[AnalyticsQueryFilterInput] | None = None


@strawberry.input(description="How long after the first step the last may come (at most 90 days; default 1 day)")
class ConversionWindowInput:
    value: int | None = None
    unit: str | None = strawberry.field(default=None, description="seconds, minutes, hours or days")


@strawberry.input(description="Split by one dimension: the top `limit` values and the rest together")
class FunnelBreakdownInput:
    dimension: str
    limit: int | None = None


@strawberry.input(description="The body of POST /api/v1/analytics/funnels, in camelCase")
class FunnelInput:
    steps: list[FunnelStepInput]
    conversion_window: ConversionWindowInput | None = None
    exclusions: list[FunnelExclusionInput] | None = None
    breakdown: FunnelBreakdownInput | None = None
    date_range: AnalyticsQueryDateRangeInput | None = None
    timezone: str | None = None


@strawberry.input(description="The body of POST /api/v1/analytics/retention, in camelCase")
class RetentionAnalysisInput:
    start_event: AnalysisEventInput
    return_event: AnalysisEventInput
    bucket: str | None = strawberry.field(default=None, description="day, week (default) or month")
    periods: int | None = strawberry.field(default=None, description="offsets after the cohort's bucket")
    date_range: AnalyticsQueryDateRangeInput | None = None
    timezone: str | None = None


@strawberry.input(description="The body of POST /api/v1/analytics/paths, in camelCase")
class PathsInput:
    anchor: str = strawberry.field(description="content:<id>, search, page, or an event type")
    direction: str | None = strawberry.field(default=None, description="after (default) or before")
    depth: int | None = None
    limit: int | None = None
    event_types: list[str] | None = None
    filters: list[AnalyticsQueryFilterInput] | None = None
    date_range: AnalyticsQueryDateRangeInput | None = None
    timezone: str | None = None


@strawberry.input(description="The body of POST /api/v1/analytics/stickiness, in camelCase")
class StickinessInput:
    event: AnalysisEventInput
    window: str | None = strawberry.field(default=None, description="week (default) or month")
    date_range: AnalyticsQueryDateRangeInput | None = None
    timezone: str | None = None


# --- answers -------------------------------------------------------------------------------------


@strawberry.experimental.pydantic.type(model=funnels.FunnelStepResult, all_fields=True, name="FunnelStep")
class FunnelStep:
    pass


@strawberry.experimental.pydantic.type(model=funnels.FunnelGroup, all_fields=True)
class FunnelGroup:
    pass


@strawberry.experimental.pydantic.type(model=funnels.FunnelBreakdown, all_fields=True)
class FunnelBreakdown:
    pass


@strawberry.experimental.pydantic.type(
    model=funnels.FunnelResult, all_fields=True, name="Funnel", description="The answer of funnel"
)
class Funnel:
    pass


@strawberry.experimental.pydantic.type(
    model=event_retention.RetentionCell, all_fields=True, name="RetentionAnalysisCell"
)
class RetentionAnalysisCell:
    pass


@strawberry.experimental.pydantic.type(
    model=event_retention.RetentionCohort, all_fields=True, name="RetentionAnalysisCohort"
)
class RetentionAnalysisCohort:
    pass


@strawberry.experimental.pydantic.type(
    model=event_retention.RetentionCurvePoint, all_fields=True, name="RetentionAnalysisPoint"
)
class RetentionAnalysisPoint:
    pass


@strawberry.experimental.pydantic.type(
    model=event_retention.RetentionResult,
    all_fields=True,
    name="RetentionAnalysis",
    description="The answer of retentionAnalysis",
)
class RetentionAnalysis:
    pass


@strawberry.experimental.pydantic.type(model=paths.PathStep, all_fields=True, name="PathStep")
class PathStep:
    pass


@strawberry.experimental.pydantic.type(model=paths.DepthSteps, all_fields=True, name="PathDepth")
class PathDepth:
    pass


@strawberry.experimental.pydantic.type(model=paths.PathCount, all_fields=True, name="PathCount")
class PathCount:
    pass


@strawberry.experimental.pydantic.type(
    model=paths.PathsResult, all_fields=True, name="Paths", description="The answer of paths"
)
class Paths:
    pass


@strawberry.experimental.pydantic.type(model=stickiness.ActiveDays, all_fields=True, name="StickinessActiveDays")
class StickinessActiveDays:
    pass


@strawberry.experimental.pydantic.type(model=stickiness.StickinessWindow, all_fields=True)
class StickinessWindow:
    pass


@strawberry.experimental.pydantic.type(
    model=stickiness.StickinessResult, all_fields=True, name="Stickiness", description="The answer of stickiness"
)
class Stickiness:
    pass


# --- the fields ----------------------------------------------------------------------------------


async def _answer(info: Info[GraphQLContext, None], kind: AnalysisKind, input: Any) -> BaseModel:
    """The analysis answer for the input (the REST body in camelCase), through the result cache."""
    # The permission class has checked there is a principal.
    assert info.context.principal is not None
    answer = await kind.answer(request_body(input), info.context.principal, info.context.events, info.context.answers)
    return kind.result.model_validate(answer.json())


@strawberry.type
class AnalysesQueries:
    @strawberry.field(
        description="Ordered steps within a conversion window: actors per step, conversion, drop-off, time to "
        "convert (docs/analyses.md#funnels)",
        permission_classes=[RunAnalyticalQueries],
    )
    @maps_errors
    async def funnel(self, info: Info[GraphQLContext, None], input: FunnelInput) -> Funnel:
        return Funnel.from_pydantic(await _answer(info, FUNNEL, input))  # type: ignore[arg-type]

    @strawberry.field(
        description="Retention between a start and a return event: cohorts and the overall curve "
        "(docs/analyses.md#retention); not userRetention",
        permission_classes=[RunAnalyticalQueries],
    )
    @maps_errors
    async def retention_analysis(
        self, info: Info[GraphQLContext, None], input: RetentionAnalysisInput
    ) -> RetentionAnalysis:
        return RetentionAnalysis.from_pydantic(await _answer(info, RETENTION, input))  # type: ignore[arg-type]

    @strawberry.field(
        description="The most frequent paths of sessions after (or before) an anchor step (docs/analyses.md#paths)",
        permission_classes=[RunAnalyticalQueries],
    )
    @maps_errors
    async def paths(self, info: Info[GraphQLContext, None], input: PathsInput) -> Paths:
        return Paths.from_pydantic(await _answer(info, PATHS, input))  # type: ignore[arg-type]

    @strawberry.field(
        description="Users by number of active days per week or month, and the DAU/WAU or DAU/MAU ratio "
        "(docs/analyses.md#stickiness)",
        permission_classes=[RunAnalyticalQueries],
    )
    @maps_errors
    async def stickiness(self, info: Info[GraphQLContext, None], input: StickinessInput) -> Stickiness:
        return Stickiness.from_pydantic(await _answer(info, STICKINESS, input))  # type: ignore[arg-type]
