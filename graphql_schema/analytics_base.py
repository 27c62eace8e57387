"""What every analytics query shares: the range input, the period and metadata types, and a scalar for maps.

Types are thin views over the pydantic result models of semantic/ (strawberry's pydantic
integration); maps (top countries, comparisons, breakdowns) travel as ``AnalyticsMap`` JSON objects
with the same keys as the REST answers. The content, user and search fields answer through ``reads``
(semantic/analytics_reads.py): the same result cache entries as REST, each answer with its ``asOf``.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import NewType

import strawberry
from pydantic_core import to_jsonable_python
from strawberry.types import Info

from graphql_schema.context import GraphQLContext
from semantic.analytics import Analytics
from semantic.analytics_reads import AnalyticsReads
from semantic.content_metadata import ContentMetadata
from semantic.periods import Period
from semantic.results import MetricChange, PeriodInfo

AnalyticsMap = strawberry.scalar(
    NewType("AnalyticsMap", object),
    description=(
        "A JSON object: a map such as views by country, or metric name -> {current, previous, change, change_percent}"
    ),
    serialize=to_jsonable_python,
    parse_value=lambda value: value,
)


@strawberry.enum
class Granularity(Enum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.input(description="Dates are calendar days in the timezone, both included; default: the last 30 days")
class AnalyticsRange:
    start_date: date | None = None
    end_date: date | None = None
    granularity: Granularity = Granularity.DAY
    timezone: str = "UTC"


def analytics_period(info: Info[GraphQLContext, None], range: AnalyticsRange | None) -> Period:
    """Resolve the range (InvalidRequest names the bad field)."""
    r = range or AnalyticsRange()
    return info.context.analytics.period(r.start_date, r.end_date, r.granularity.value, r.timezone)


def analytics(info: Info[GraphQLContext, None]) -> Analytics:
    return info.context.analytics


def reads(info: Info[GraphQLContext, None]) -> AnalyticsReads:
    """The caller's analytics reads, through the result cache shared with REST."""
    return AnalyticsReads.of(info.context, info.context.principal)


@strawberry.experimental.pydantic.type(model=PeriodInfo, all_fields=True, description="The days an answer covers")
class AnalyticsPeriod:
    pass


@strawberry.experimental.pydantic.type(
    model=MetricChange, all_fields=True, description="A number against the previous period"
)
class MetricChangeType:
    pass


@strawberry.experimental.pydantic.type(
    model=ContentMetadata, all_fields=True, description="A content's metadata dimension"
)
class ContentMetadataType:
    pass
