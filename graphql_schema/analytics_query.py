"""The analytics catalog and the general query over GraphQL: ``analyticsCatalog`` and
``analyticsQuery(query: AnalyticsQueryInput!)``, the same answers as GET /api/v1/analytics/catalog
and POST /api/v1/analytics/query (semantic/analytics_query.py).

The input has the REST body's fields in camelCase; it is turned back into that body and checked by
the same parser, so errors name the same (snake_case) fields. Rows and totals travel as JSON.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry
from strawberry.types import Info

from core.access import Role
from graphql_schema.analytics_base import AnalyticsMap, AnalyticsPeriod
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadContentAnalytics, RunAnalyticalQueries
from semantic.analytics_query import AnalyticsQueryRequest, AnalyticsQueryResult
from semantic.public_catalog import AnalyticsCatalog, CatalogEntry, catalog_for


@strawberry.type(description="A metric or dimension of the analytics catalog")
class AnalyticsCatalogEntry:
    name: str
    description: str
    type: str = strawberry.field(description="integer, float, string, date or datetime")
    unit: str | None
    family: str
    roles: list[str] = strawberry.field(description="the roles that may use it")

    @classmethod
    def of(cls, entry: CatalogEntry) -> AnalyticsCatalogEntry:
        return cls(**entry.model_dump())


@strawberry.type(name="AnalyticsCatalog", description="What the caller's role may use in analyticsQuery")
class AnalyticsCatalogType:
    role: str
    metrics: list[AnalyticsCatalogEntry]
    dimensions: list[AnalyticsCatalogEntry]

    @classmethod
    def of(cls, catalog: AnalyticsCatalog) -> AnalyticsCatalogType:
        return cls(
            role=catalog.role,
            metrics=[AnalyticsCatalogEntry.of(e) for e in catalog.metrics],
            dimensions=[AnalyticsCatalogEntry.of(e) for e in catalog.dimensions],
        )


@strawberry.input(description="Calendar days in the query's timezone, both included; or a relative range")
class AnalyticsQueryDateRangeInput:
    start_date: date | None = None
    end_date: date | None = None
    relative: str | None = strawberry.field(
        default=None,
        description="last_7_days, last_30_days, last_week, last_month, month_to_date, today or yesterday",
    )


@strawberry.input(description="A filter on a dimension: op is eq, neq, in, not_in, contains, gt, gte, lt or lte")
class AnalyticsQueryFilterInput:
    dimension: str
    op: str = "in"
    values: list[str] | None = None
    value: str | None = None


@strawberry.input
class AnalyticsQueryOrderInput:
    field: str
    direction: str = strawberry.field(default="asc", description="asc or desc")


@strawberry.input(description="The body of POST /api/v1/analytics/query, in camelCase")
class AnalyticsQueryInput:
    metrics: list[str]
    dimensions: list[str] | None = None
    filters: list[AnalyticsQueryFilterInput] | None = None
    date_range: AnalyticsQueryDateRangeInput | None = None
    granularity: str | None = strawberry.field(default=None, description="hour, day, week or month (bucket)")
    timezone: str | None = None
    compare_to: str | None = strawberry.field(default=None, description="previous_period or previous_year")
    order_by: list[AnalyticsQueryOrderInput] | None = None
    limit: int | None = None
    cursor: str | None = None

    def to_body(self) -> dict[str, Any]:
        """The REST body: fields left out stay out, so the parser's defaults and errors apply."""
        return _plain(self)


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "__strawberry_definition__"):
        fields = {name: getattr(value, name) for name in type(value).__annotations__}
        return {name: _plain(v) for name, v in fields.items() if v is not None and v is not strawberry.UNSET}
    if isinstance(value, date):
        return value.isoformat()
    return value


@strawberry.type(description="A column of an analyticsQuery answer")
class AnalyticsQueryColumn:
    name: str
    type: str
    unit: str | None
    kind: str = strawberry.field(description="dimension or metric")


@strawberry.type(
    name="AnalyticsQueryResult", description="The answer of analyticsQuery, as POST /api/v1/analytics/query answers it"
)
class AnalyticsQueryResultType:
    columns: list[AnalyticsQueryColumn]
    rows: list[AnalyticsMap] = strawberry.field(
        description="one object per row: values by column name, and with compareTo, compare"
    )
    totals: AnalyticsMap
    compare_totals: AnalyticsMap | None
    source: str
    as_of: datetime | None
    next_cursor: str | None
    period: AnalyticsPeriod
    compare_period: AnalyticsPeriod | None

    @classmethod
    def of(cls, result: AnalyticsQueryResult) -> AnalyticsQueryResultType:
        data = result.model_dump(mode="json")
        return cls(
            columns=[AnalyticsQueryColumn(**c.model_dump()) for c in result.columns],
            rows=data["rows"],
            totals=data["totals"],
            compare_totals=data["compare_totals"],
            source=result.source,
            as_of=result.as_of,
            next_cursor=result.next_cursor,
            period=AnalyticsPeriod.from_pydantic(result.period),
            compare_period=AnalyticsPeriod.from_pydantic(result.compare_period) if result.compare_period else None,
        )


def _role(info: Info[GraphQLContext, None]) -> Role:
    # The permission class has checked there is a principal.
    assert info.context.principal is not None
    return info.context.principal.role


@strawberry.type
class AnalyticsQueryQueries:
    @strawberry.field(
        description="The metrics and dimensions the caller's role may use in analyticsQuery",
        permission_classes=[ReadContentAnalytics],
    )
    async def analytics_catalog(self, info: Info[GraphQLContext, None]) -> AnalyticsCatalogType:
        return AnalyticsCatalogType.of(catalog_for(_role(info)))

    @strawberry.field(
        description="Catalog metrics by up to 5 dimensions, filtered, compared, ordered and paged",
        permission_classes=[RunAnalyticalQueries],
    )
    @maps_errors
    async def analytics_query(
        self, info: Info[GraphQLContext, None], query: AnalyticsQueryInput
    ) -> AnalyticsQueryResultType:
        service = info.context.analytics.query
        resolved = service.resolve(AnalyticsQueryRequest.parse(query.to_body()))
        role = _role(info)
        service.check_role(resolved, role)
        answer = await info.context.answers.answer(
            "analytics_query",
            resolved,
            info.context.principal,
            lambda watermark: service.run(resolved, role, watermark),
        )
        return AnalyticsQueryResultType.of(AnalyticsQueryResult.model_validate(answer.json()))
