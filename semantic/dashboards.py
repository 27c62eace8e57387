"""Dashboards: the rules REST and GraphQL both apply to definitions, widgets, versions and data.

Who may do what:

- whoever may manage dashboards (content_manager, analyst, admin) creates them and owns what it creates;
  a widget is saved only if its creator may read what it shows (the type's operation, the metrics it
  names, a saved query it reads);
- the owner and admins change, share, restore and delete a dashboard and its widgets;
- principals and roles it is shared with (or everyone who may read dashboards, when it is public) see it
  and its data — computed for them, with their own role and content scope: a widget they may not read
  carries a 403 error, the others show;
- everyone else gets 404, the same answer as for an id that does not exist.

Data follows the spec's update workflow: every widget is computed once per refresh interval for one
role and scope (``Answers.answer_per_interval``: shared by every viewer and every replica through the
result cache), pinned to one data watermark; one widget's failure is that widget's error; the
dashboard's last refresh time is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from core.access import Permission, Principal, Role
from core.errors import Forbidden, InvalidRequest
from semantic.analytics_query import AnalyticsQueryRequest
from semantic.answers import Answers
from semantic.dashboard_definitions import DashboardCreate, DashboardUpdate, parse_widget, parse_widgets
from semantic.dashboard_widgets import WIDGET_TYPES
from semantic.prebuilt_dashboards import PREBUILT, SYSTEM_OWNER
from semantic.public_catalog import METRICS, require_allowed
from semantic.result_cache import CachedAnswer
from semantic.widget_data import WidgetData, WidgetSources, coalesced_queries, widget_data
from storage.dashboards import (
    DashboardRepository,
    DashboardVersion,
    NewDashboard,
    NewWidget,
    StoredDashboard,
    StoredWidget,
    dashboard_not_found,
    widget_not_found,
)

DASHBOARDS_PREFIX = "/api/v1/analytics/dashboards"
WIDGETS_PREFIX = "/api/v1/analytics/widgets"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000
DATA_KIND = "dashboard.data"

# Whether a saved query exists and ``principal`` may read it (NotFound otherwise); it has a ``kind``.
SavedQueryCheck = Callable[[str, Principal], Awaitable[Any]]


class DashboardData(BaseModel):
    dashboard_id: str
    version: int
    refreshed_at: datetime
    as_of: datetime | None
    widgets: list[WidgetData]


def dashboard_to_dict(
    dashboard: StoredDashboard, principal: Principal | None, *, widgets: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": dashboard.id,
        "name": dashboard.name,
        "description": dashboard.description,
        "owner_key_id": dashboard.owner_key_id,
        "created_by": dashboard.created_by,
        "refresh_interval_seconds": dashboard.refresh_interval_seconds,
        "theme": dashboard.theme,
        "columns": dashboard.columns,
        "prebuilt": dashboard.prebuilt,
        "shared_with": list(dashboard.shared_with),
        "shared_with_roles": [r.value for r in dashboard.shared_with_roles],
        "is_public": dashboard.is_public,
        "version": dashboard.version,
        "created_at": dashboard.created_at.isoformat(),
        "updated_at": dashboard.updated_at.isoformat(),
        "last_refreshed_at": dashboard.last_refreshed_at.isoformat() if dashboard.last_refreshed_at else None,
        "can_edit": principal is not None and dashboard.managed_by(principal),
        "widget_count": dashboard.widget_count,
    }
    if widgets:
        body["widgets"] = [w.to_dict() for w in dashboard.widgets]
    return body


class DashboardService:
    def __init__(
        self,
        dashboards: DashboardRepository,
        *,
        answers: Answers,
        sources: WidgetSources,
        saved_query_check: SavedQueryCheck,
        resolve_query: Callable[[AnalyticsQueryRequest], AnalyticsQueryRequest],
        check_query_role: Callable[[AnalyticsQueryRequest, Role], None],
    ) -> None:
        self.dashboards = dashboards
        self._answers = answers
        self._sources = sources
        self._saved_query_check = saved_query_check
        self._resolve_query = resolve_query
        self._check_query_role = check_query_role

    # --- definitions --------------------------------------------------------------------------------

    async def create(self, body: Any, principal: Principal) -> StoredDashboard:
        create = DashboardCreate.parse(body)
        widgets = parse_widgets(create.widgets, create.columns)
        for index, widget in enumerate(widgets):
            await self._check_access(widget, principal, f"widgets[{index}]")
        return await self.dashboards.create(
            principal,
            NewDashboard(
                name=create.name,
                description=create.description,
                refresh_interval_seconds=create.refresh_interval_seconds,
                theme=create.theme,
                columns=create.columns,
                shared_with=tuple(create.shared_with),
                shared_with_roles=tuple(create.shared_with_roles),
                is_public=create.is_public,
                widgets=widgets,
            ),
        )

    async def get(self, dashboard_id: str, principal: Principal) -> StoredDashboard:
        dashboard = await self.dashboards.get(dashboard_id)
        if dashboard is None or not dashboard.visible_to(principal):
            raise dashboard_not_found(dashboard_id)
        return dashboard

    async def list_dashboards(
        self, principal: Principal, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> tuple[list[StoredDashboard], int]:
        return await self.dashboards.list_visible(principal, limit=limit, offset=offset)

    async def _managed(self, dashboard_id: str, principal: Principal) -> StoredDashboard:
        dashboard = await self.get(dashboard_id, principal)
        if not dashboard.managed_by(principal):
            # The caller can see it, so saying it exists reveals nothing.
            raise Forbidden(f"only the owner of dashboard {dashboard_id!r} or an admin may change, share or delete it")
        return dashboard

    async def update(self, dashboard_id: str, body: Any, principal: Principal) -> StoredDashboard:
        update = DashboardUpdate.parse(body)
        dashboard = await self._managed(dashboard_id, principal)
        columns = update.columns or dashboard.columns
        widgets: tuple[NewWidget, ...] | None = None
        if update.widgets is not None:
            own = {w.id for w in dashboard.widgets}
            for index, item in enumerate(update.widgets):
                given = item.get("id") if isinstance(item, dict) else None
                if given is not None and given not in own:
                    raise InvalidRequest(
                        f"widget {str(given)[:100]!r} is not one of this dashboard's; leave id out for a new widget",
                        details={"field": f"widgets[{index}].id"},
                    )
            widgets = parse_widgets(update.widgets, columns)
            for index, widget in enumerate(widgets):
                await self._check_access(widget, principal, f"widgets[{index}]")
        elif update.columns is not None and update.columns < dashboard.columns:
            for index, placed in enumerate(dashboard.widgets):
                if placed.layout["x"] + placed.layout["w"] > columns:
                    raise InvalidRequest(
                        f"widget {placed.id!r} does not fit {columns} columns; move or resize it first",
                        details={"field": "columns", "widget_id": placed.id, "index": index},
                    )
        return await self.dashboards.update(
            dashboard.id,
            update.changes(),
            saved_by=principal.name,
            widgets=widgets,
            expected_version=update.version,
        )

    async def delete(self, dashboard_id: str, principal: Principal, *, version: int | None = None) -> None:
        dashboard = await self._managed(dashboard_id, principal)
        await self.dashboards.delete(dashboard.id, expected_version=version)

    async def versions(
        self, dashboard_id: str, principal: Principal, *, limit: int, offset: int
    ) -> tuple[list[DashboardVersion], int]:
        dashboard = await self.get(dashboard_id, principal)
        return await self.dashboards.versions(dashboard.id, limit=limit, offset=offset)

    async def version(self, dashboard_id: str, version: int, principal: Principal) -> DashboardVersion:
        dashboard = await self.get(dashboard_id, principal)
        saved = await self.dashboards.saved_version(dashboard.id, version)
        if saved is None:
            raise InvalidRequest(
                f"dashboard {dashboard_id!r} has no version {version}; GET .../versions lists them",
                details={"field": "version"},
            )
        return saved

    async def restore(self, dashboard_id: str, version: int, principal: Principal) -> StoredDashboard:
        await self._managed(dashboard_id, principal)
        saved = await self.version(dashboard_id, version, principal)
        return await self.dashboards.restore(dashboard_id, saved, saved_by=principal.name)

    # --- widgets ------------------------------------------------------------------------------------

    async def widget(self, widget_id: str, principal: Principal) -> tuple[StoredDashboard, StoredWidget]:
        dashboard = await self.dashboards.dashboard_of_widget(widget_id)
        widget = dashboard.widget(widget_id) if dashboard is not None else None
        if dashboard is None or widget is None or not dashboard.visible_to(principal):
            raise widget_not_found(widget_id)
        return dashboard, widget

    async def add_widget(self, body: Any, principal: Principal) -> StoredWidget:
        if not isinstance(body, dict):
            raise InvalidRequest("the body must be a widget object", details={"field": "(body)"})
        dashboard_id = body.get("dashboard_id")
        if not isinstance(dashboard_id, str) or not dashboard_id:
            raise InvalidRequest(
                "dashboard_id is required: the dashboard the widget goes on", details={"field": "dashboard_id"}
            )
        dashboard = await self._managed(dashboard_id, principal)
        widget = parse_widget({k: v for k, v in body.items() if k != "dashboard_id"}, "", dashboard.columns)
        if widget.id is not None:
            raise InvalidRequest("a new widget's id is given by the service", details={"field": "id"})
        await self._check_access(widget, principal, "")
        return await self.dashboards.add_widget(dashboard.id, widget, saved_by=principal.name)

    async def update_widget(self, widget_id: str, body: Any, principal: Principal) -> StoredWidget:
        dashboard, current = await self.widget(widget_id, principal)
        if not dashboard.managed_by(principal):
            raise Forbidden(f"only the owner of dashboard {dashboard.id!r} or an admin may change its widgets")
        if not isinstance(body, dict) or not body:
            raise InvalidRequest("give at least one of widget_type, title, config, layout", details={"field": "(body)"})
        if body.get("dashboard_id") not in (None, dashboard.id):
            raise InvalidRequest("a widget does not move between dashboards", details={"field": "dashboard_id"})
        item = {k: v for k, v in body.items() if k not in ("dashboard_id", "id")}
        existing = NewWidget(
            widget_type=current.widget_type,
            title=current.title,
            config=current.config,
            layout=current.layout,
            id=current.id,
        )
        widget = parse_widget(item, "", dashboard.columns, current=existing)
        await self._check_access(widget, principal, "")
        return await self.dashboards.update_widget(dashboard.id, widget, saved_by=principal.name)

    async def delete_widget(self, widget_id: str, principal: Principal) -> None:
        dashboard, _ = await self.widget(widget_id, principal)
        if not dashboard.managed_by(principal):
            raise Forbidden(f"only the owner of dashboard {dashboard.id!r} or an admin may change its widgets")
        await self.dashboards.delete_widget(dashboard.id, widget_id, saved_by=principal.name)

    async def _check_access(self, widget: NewWidget, principal: Principal, where: str) -> None:
        """Forbidden unless the editor may read what the widget shows; a saved query it reads must be
        visible to the editor and of the kind the widget takes."""
        prefix = f"{where}." if where else ""
        kind = WIDGET_TYPES[widget.widget_type]
        if kind.operation is not None:
            Permission(kind.operation).check(principal)
        config = widget.config
        for name in ("metric", "order_by"):
            value = config.get(name)
            if isinstance(value, str) and value in METRICS:
                require_allowed(METRICS[value], principal.role, f"{prefix}config.{name}")
        for index, value in enumerate(config.get("metrics") or ()):
            require_allowed(METRICS[value], principal.role, f"{prefix}config.metrics[{index}]")
        if isinstance(config.get("query"), dict):
            request = self._resolve_query(AnalyticsQueryRequest.parse(config["query"]))
            self._check_query_role(request, principal.role)
        saved_id = config.get("saved_query_id")
        if isinstance(saved_id, str):
            saved = await self._saved_query_check(saved_id, principal)
            field = next(f for f in kind.fields if f.name == "saved_query_id")
            if saved.kind not in field.saved_kinds:
                raise InvalidRequest(
                    f"saved query {saved_id!r} is a {saved.kind}; a {kind.name} widget reads a "
                    + " or ".join(field.saved_kinds),
                    details={"field": f"{prefix}config.saved_query_id"},
                )

    # --- data ---------------------------------------------------------------------------------------

    async def data(
        self, dashboard: StoredDashboard, principal: Principal, *, now: float | None = None
    ) -> DashboardData:
        """Every widget's data for ``principal``'s role and scope, computed once per refresh interval."""
        answer = await self.data_answer(dashboard, principal, now=now)
        return DashboardData.model_validate_json(answer.body)

    async def data_answer(
        self, dashboard: StoredDashboard, principal: Principal, *, now: float | None = None
    ) -> CachedAnswer:
        """As ``data``, as the cached JSON (REST sends it as it is)."""
        now = time.time() if now is None else now

        async def compute() -> DashboardData:
            watermark = await self._answers.watermark()
            at = datetime.fromtimestamp(time.time(), UTC)
            # The KPIs asked together start with the other widgets; only the widgets of inline queries wait.
            prefetch = asyncio.ensure_future(coalesced_queries(dashboard.widgets, principal, self._sources, watermark))

            async def one(widget: StoredWidget) -> WidgetData:
                sources = self._sources
                if widget.widget_type == "custom_metric" and isinstance(widget.config.get("query"), dict):
                    sources = replace(sources, prefetched=await prefetch)
                return await widget_data(widget, principal, dashboard.owner, sources, watermark, at)

            try:
                widgets = await asyncio.gather(*(one(w) for w in dashboard.widgets))
            finally:
                if not prefetch.done():
                    prefetch.cancel()
            await self.dashboards.mark_refreshed(dashboard.id, at)
            return DashboardData(
                dashboard_id=dashboard.id,
                version=dashboard.version,
                refreshed_at=at,
                as_of=watermark.as_of,
                widgets=list(widgets),
            )

        return await self._answers.answer_per_interval(
            DATA_KIND,
            {"dashboard_id": dashboard.id, "version": dashboard.version},
            principal,
            compute,
            interval_seconds=dashboard.refresh_interval_seconds,
            now=now,
        )

    async def widget_data(self, widget_id: str, principal: Principal) -> tuple[StoredWidget, WidgetData]:
        """One widget's data: from its dashboard's data of this interval."""
        dashboard, widget = await self.widget(widget_id, principal)
        data = await self.data(dashboard, principal)
        found = next((w for w in data.widgets if w.widget_id == widget_id), None)
        assert found is not None
        return widget, found

    # --- prebuilt -----------------------------------------------------------------------------------

    async def ensure_prebuilt(self) -> list[str]:
        """Make the prebuilt dashboards that were never made (whichever replica starts first); the keys
        of those this call made."""
        owner = Principal(key_id=SYSTEM_OWNER, name=SYSTEM_OWNER, role=Role.ADMIN)
        made = []
        for key, definition in PREBUILT.items():
            create = DashboardCreate.parse(definition)
            widgets = parse_widgets(create.widgets, create.columns)
            new = NewDashboard(
                name=create.name,
                description=create.description,
                refresh_interval_seconds=create.refresh_interval_seconds,
                theme=create.theme,
                columns=create.columns,
                is_public=True,
                widgets=widgets,
                prebuilt=key,
            )
            if await self.dashboards.create_prebuilt(owner, new) is not None:
                made.append(key)
        return made
