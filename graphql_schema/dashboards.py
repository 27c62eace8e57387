"""Dashboards over GraphQL: the same rules, bodies and errors as /api/v1/analytics/dashboards and /widgets,
and the ``dashboardUpdates`` subscription.

Inputs are the JSON bodies REST reads (snake_case, docs/dashboards.md), given to the one
DashboardService (semantic/dashboards.py), so a refusal names the same field on both transports
(``widgets[1].config.metric``) in ``extensions.details``. A widget's ``config`` and ``layout`` and its
data are JSON: their shape depends on the widget type.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.errors import AnalyticsError, InvalidRequest
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import graphql_errors, maps_errors
from graphql_schema.permissions import ManageDashboards, ReadDashboards
from graphql_schema.reports import check_page
from semantic.dashboard_feed import DashboardFeeds
from semantic.dashboard_widgets import catalog
from semantic.dashboards import DEFAULT_PAGE_SIZE, DashboardService, dashboard_to_dict
from semantic.widget_data import WidgetData
from storage.dashboards import StoredDashboard, StoredWidget


def dashboard_service(info: Info[GraphQLContext, None]) -> DashboardService:
    dashboards = info.context.dashboards
    if dashboards is None:
        raise AnalyticsError("dashboards are not available on this replica")
    return dashboards


def dashboard_feeds(info: Info[GraphQLContext, None]) -> DashboardFeeds:
    feeds = info.context.dashboard_feeds
    if feeds is None:
        raise AnalyticsError("dashboards are not available on this replica")
    return feeds


@strawberry.type(description="A widget: its type, title, config and place on the grid (x, y, w, h)")
class WidgetType:
    id: str
    dashboard_id: str
    widget_type: str
    title: str
    config: JSON
    layout: JSON
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, widget: StoredWidget) -> WidgetType:
        return cls(
            id=widget.id,
            dashboard_id=widget.dashboard_id,
            widget_type=widget.widget_type,
            title=widget.title,
            config=widget.config,
            layout=widget.layout,
            created_at=widget.created_at,
            updated_at=widget.updated_at,
        )


@strawberry.type(description="A dashboard and its widgets")
class DashboardType:
    id: str
    name: str
    description: str | None
    owner_key_id: str
    created_by: str
    refresh_interval_seconds: int
    theme: str
    columns: int
    prebuilt: str | None = strawberry.field(description="executive, content_operations, performance_monitoring")
    shared_with: list[str]
    shared_with_roles: list[str]
    is_public: bool
    version: int = strawberry.field(description="Goes up by one with every change; send it back to update")
    created_at: datetime
    updated_at: datetime
    last_refreshed_at: datetime | None
    can_edit: bool = strawberry.field(description="Whether the caller may change it")
    widget_count: int
    widgets: list[WidgetType]

    @classmethod
    def from_domain(cls, dashboard: StoredDashboard, info: Info[GraphQLContext, None]) -> DashboardType:
        body = dashboard_to_dict(dashboard, info.context.principal, widgets=False)
        for name in ("created_at", "updated_at", "last_refreshed_at"):
            body[name] = getattr(dashboard, name)
        return cls(**body, widgets=[WidgetType.from_domain(w) for w in dashboard.widgets])


@strawberry.type(description="One widget's data for the caller, or its error")
class WidgetDataType:
    widget_id: str
    widget_type: str
    title: str
    as_of: datetime | None = strawberry.field(description="How fresh the widget's data is")
    refreshed_at: datetime
    data: JSON | None = strawberry.field(description="By kind: counter, series, table, funnel, retention, status")
    error: JSON | None = strawberry.field(description="code, message and field when the widget failed")
    digest: str

    @classmethod
    def from_domain(cls, data: WidgetData) -> WidgetDataType:
        return cls(
            widget_id=data.widget_id,
            widget_type=data.widget_type,
            title=data.title,
            as_of=data.as_of,
            refreshed_at=data.refreshed_at,
            data=data.data,
            error=data.error.model_dump() if data.error else None,
            digest=data.digest,
        )


@strawberry.type(description="Every widget's data, computed for the caller once per refresh interval")
class DashboardDataType:
    dashboard_id: str
    version: int
    refreshed_at: datetime
    as_of: datetime | None
    widgets: list[WidgetDataType]


@strawberry.type(description="A push of dashboardUpdates: the widgets whose data changed")
class DashboardUpdateType:
    dashboard_id: str
    version: int = strawberry.field(description="A new version means the dashboard was edited: read it again")
    refreshed_at: datetime
    widgets: list[WidgetDataType]
    removed_widget_ids: list[str]


@strawberry.type(description="A widget and its data")
class WidgetWithDataType:
    widget: WidgetType
    data: WidgetDataType


@strawberry.type
class DashboardPage:
    items: list[DashboardType]
    total: int


def _body(value: Any) -> Any:
    if not isinstance(value, dict):
        raise InvalidRequest("input must be a JSON object", details={"field": "input"})
    return value


@strawberry.type
class DashboardQueries:
    @strawberry.field(
        description="The dashboards the caller may see, prebuilt first", permission_classes=[ReadDashboards]
    )
    @maps_errors
    async def dashboards(
        self, info: Info[GraphQLContext, None], limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> DashboardPage:
        check_page(limit, offset)
        found, total = await dashboard_service(info).list_dashboards(info.context.principal, limit=limit, offset=offset)
        return DashboardPage(items=[DashboardType.from_domain(d, info) for d in found], total=total)

    @strawberry.field(description="A dashboard and its widgets", permission_classes=[ReadDashboards])
    @maps_errors
    async def dashboard(self, info: Info[GraphQLContext, None], id: str) -> DashboardType:
        return DashboardType.from_domain(await dashboard_service(info).get(id, info.context.principal), info)

    @strawberry.field(
        description="Every widget's data, computed for the caller once per refresh interval",
        permission_classes=[ReadDashboards],
    )
    @maps_errors
    async def dashboard_data(self, info: Info[GraphQLContext, None], id: str) -> DashboardDataType:
        service = dashboard_service(info)
        data = await service.data(await service.get(id, info.context.principal), info.context.principal)
        return DashboardDataType(
            dashboard_id=data.dashboard_id,
            version=data.version,
            refreshed_at=data.refreshed_at,
            as_of=data.as_of,
            widgets=[WidgetDataType.from_domain(w) for w in data.widgets],
        )

    @strawberry.field(description="A widget and its data", permission_classes=[ReadDashboards])
    @maps_errors
    async def widget(self, info: Info[GraphQLContext, None], id: str) -> WidgetWithDataType:
        widget, data = await dashboard_service(info).widget_data(id, info.context.principal)
        return WidgetWithDataType(widget=WidgetType.from_domain(widget), data=WidgetDataType.from_domain(data))

    @strawberry.field(
        description="The widget types and the fields of their config, with the metrics and dimensions they name",
        permission_classes=[ReadDashboards],
    )
    async def widget_types(self) -> JSON:
        return catalog()


@strawberry.type
class DashboardMutations:
    @strawberry.mutation(
        description="Create a dashboard (the REST body as JSON); the caller owns it",
        permission_classes=[ManageDashboards],
    )
    @maps_errors
    async def create_dashboard(self, info: Info[GraphQLContext, None], input: JSON) -> DashboardType:
        dashboard = await dashboard_service(info).create(_body(input), info.context.principal)
        return DashboardType.from_domain(dashboard, info)

    @strawberry.mutation(
        description="Change a dashboard (owner or admin); widgets, when given, replace the whole list",
        permission_classes=[ManageDashboards],
    )
    @maps_errors
    async def update_dashboard(self, info: Info[GraphQLContext, None], id: str, input: JSON) -> DashboardType:
        dashboard = await dashboard_service(info).update(id, _body(input), info.context.principal)
        return DashboardType.from_domain(dashboard, info)

    @strawberry.mutation(description="Delete a dashboard (owner or admin)", permission_classes=[ManageDashboards])
    @maps_errors
    async def delete_dashboard(self, info: Info[GraphQLContext, None], id: str, version: int | None = None) -> bool:
        if version is not None and version < 1:
            raise InvalidRequest("version must be at least 1", details={"field": "version"})
        await dashboard_service(info).delete(id, info.context.principal, version=version)
        return True

    @strawberry.mutation(
        description="Put a saved version of a dashboard back, as a new version (owner or admin)",
        permission_classes=[ManageDashboards],
    )
    @maps_errors
    async def restore_dashboard_version(self, info: Info[GraphQLContext, None], id: str, version: int) -> DashboardType:
        dashboard = await dashboard_service(info).restore(id, version, info.context.principal)
        return DashboardType.from_domain(dashboard, info)

    @strawberry.mutation(
        description="Add a widget to a dashboard (the REST body as JSON, with dashboard_id)",
        permission_classes=[ManageDashboards],
    )
    @maps_errors
    async def create_widget(self, info: Info[GraphQLContext, None], input: JSON) -> WidgetType:
        return WidgetType.from_domain(await dashboard_service(info).add_widget(_body(input), info.context.principal))

    @strawberry.mutation(description="Change a widget (owner or admin)", permission_classes=[ManageDashboards])
    @maps_errors
    async def update_widget(self, info: Info[GraphQLContext, None], id: str, input: JSON) -> WidgetType:
        widget = await dashboard_service(info).update_widget(id, _body(input), info.context.principal)
        return WidgetType.from_domain(widget)

    @strawberry.mutation(description="Remove a widget (owner or admin)", permission_classes=[ManageDashboards])
    @maps_errors
    async def delete_widget(self, info: Info[GraphQLContext, None], id: str) -> bool:
        await dashboard_service(info).delete_widget(id, info.context.principal)
        return True


@strawberry.type
class DashboardSubscription:
    @strawberry.subscription(
        description="A dashboard's widgets as their data changes, each at most once per refresh interval: first "
        "every widget, then only those whose data changed (all of them again after an edit)",
        permission_classes=[ReadDashboards],
    )
    async def dashboard_updates(
        self, info: Info[GraphQLContext, None], dashboard_id: str
    ) -> AsyncGenerator[DashboardUpdateType, None]:
        principal = info.context.principal
        assert principal is not None
        updates = dashboard_feeds(info).updates(dashboard_id, principal)
        try:
            with graphql_errors():
                first = await anext(updates)
            yield _update(first)
            with graphql_errors():
                async for update in updates:
                    yield _update(update)
        finally:
            # Now, not when collected: the feed counts its subscribers.
            await updates.aclose()


def _update(update: Any) -> DashboardUpdateType:
    return DashboardUpdateType(
        dashboard_id=update.dashboard_id,
        version=update.version,
        refreshed_at=update.refreshed_at,
        widgets=[WidgetDataType.from_domain(w) for w in update.widgets],
        removed_widget_ids=update.removed_widget_ids,
    )
