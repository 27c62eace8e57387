"""Dashboards and widgets: /api/v1/analytics/dashboards, /widgets, /widget-types (semantic/dashboards.py
holds the rules, docs/dashboards.md the guide).

A dashboard the caller may not see answers 404, as an id that does not exist does; one shared with the
caller but not owned by it answers 403 to a change. Data is computed once per refresh interval for the
caller's role and scope (X-Cache says whether this answer was).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from core.errors import AnalyticsError
from semantic.dashboard_definitions import DashboardCreate, DashboardUpdate, WidgetBody
from semantic.dashboard_widgets import catalog
from semantic.dashboards import (
    DASHBOARDS_PREFIX,
    DEFAULT_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    WIDGETS_PREFIX,
    DashboardService,
    dashboard_to_dict,
)
from serve_app.deps import DashboardManager, DashboardReader, ServicesDep
from serve_app.http import cached_response, json_response, read_json
from serve_app.openapi import error_responses, json_body
from serve_app.services import Services

# Fifty widgets with inline queries fit many times over.
MAX_BODY_BYTES = 512 * 1024
MAX_VERSION = 2**31 - 1

router = APIRouter(tags=["dashboards"])


def _service(services: Services) -> DashboardService:
    if services.dashboards is None:
        raise AnalyticsError("dashboards are not available on this replica")
    return services.dashboards


def _page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    DASHBOARDS_PREFIX,
    status_code=201,
    summary="Create a dashboard, with its widgets; the caller owns it",
    responses=error_responses(403, 413, 422),
    openapi_extra=json_body("DashboardCreate", DashboardCreate, "The dashboard and its widgets (docs/dashboards.md)"),
)
async def create_dashboard(request: Request, services: ServicesDep, principal: DashboardManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    dashboard = await _service(services).create(body, principal)
    return json_response(
        dashboard_to_dict(dashboard, principal),
        status_code=201,
        headers={"Location": f"{DASHBOARDS_PREFIX}/{dashboard.id}"},
    )


@router.get(DASHBOARDS_PREFIX, summary="The dashboards the caller may see, prebuilt first", responses=error_responses())
async def list_dashboards(
    services: ServicesDep,
    principal: DashboardReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    dashboards, total = await _service(services).list_dashboards(principal, limit=limit, offset=offset)
    items = [dashboard_to_dict(d, principal, widgets=False) for d in dashboards]
    return json_response(_page(items, total, limit, offset))


@router.get(
    "/api/v1/analytics/widget-types",
    summary="The widget types, each with the fields of its config, and the metrics and dimensions they name",
    responses=error_responses(),
)
async def widget_types(_: DashboardReader) -> Response:
    return json_response(catalog())


@router.get(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}", summary="A dashboard and its widgets", responses=error_responses(404)
)
async def get_dashboard(dashboard_id: str, services: ServicesDep, principal: DashboardReader) -> Response:
    dashboard = await _service(services).get(dashboard_id, principal)
    return json_response(dashboard_to_dict(dashboard, principal))


@router.put(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}",
    summary="Change a dashboard (owner or admin); widgets, when given, replace the whole list",
    responses=error_responses(404, 409, 413, 422),
    openapi_extra=json_body("DashboardUpdate", DashboardUpdate, "The fields to change (docs/dashboards.md)"),
)
async def update_dashboard(
    dashboard_id: str, request: Request, services: ServicesDep, principal: DashboardManager
) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    dashboard = await _service(services).update(dashboard_id, body, principal)
    return json_response(dashboard_to_dict(dashboard, principal))


@router.delete(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}",
    status_code=204,
    summary="Delete a dashboard, its widgets and its versions (owner or admin)",
    responses=error_responses(404, 409),
)
async def delete_dashboard(
    dashboard_id: str,
    services: ServicesDep,
    principal: DashboardManager,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    await _service(services).delete(dashboard_id, principal, version=version)
    return Response(status_code=204)


@router.get(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}/data",
    summary="Every widget's data, computed for the caller once per refresh interval; a widget that failed "
    "carries its error",
    responses=error_responses(404),
)
async def dashboard_data(dashboard_id: str, services: ServicesDep, principal: DashboardReader) -> Response:
    service = _service(services)
    dashboard = await service.get(dashboard_id, principal)
    return cached_response(await service.data_answer(dashboard, principal))


@router.get(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}/versions",
    summary="The dashboard's saved versions, newest first",
    responses=error_responses(404),
)
async def dashboard_versions(
    dashboard_id: str,
    services: ServicesDep,
    principal: DashboardReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    versions, total = await _service(services).versions(dashboard_id, principal, limit=limit, offset=offset)
    return json_response(_page([v.summary() for v in versions], total, limit, offset))


@router.get(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}/versions/{{version}}",
    summary="One saved version of the dashboard: its definition as it then was",
    responses=error_responses(404),
)
async def dashboard_version(
    dashboard_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    services: ServicesDep,
    principal: DashboardReader,
) -> Response:
    saved = await _service(services).version(dashboard_id, version, principal)
    return json_response({**saved.summary(), "definition": saved.snapshot})


@router.post(
    f"{DASHBOARDS_PREFIX}/{{dashboard_id}}/versions/{{version}}/restore",
    summary="Put a saved version back, as a new version (owner or admin)",
    responses=error_responses(404),
)
async def restore_dashboard_version(
    dashboard_id: str,
    version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
    services: ServicesDep,
    principal: DashboardManager,
) -> Response:
    dashboard = await _service(services).restore(dashboard_id, version, principal)
    return json_response(dashboard_to_dict(dashboard, principal))


@router.get(
    f"{WIDGETS_PREFIX}/{{widget_id}}",
    summary="A widget and its data (computed for the caller, once per its dashboard's refresh interval)",
    responses=error_responses(404),
)
async def get_widget(widget_id: str, services: ServicesDep, principal: DashboardReader) -> Response:
    widget, data = await _service(services).widget_data(widget_id, principal)
    return json_response({**widget.to_dict(), "data": data.model_dump(mode="json")})


@router.post(
    WIDGETS_PREFIX,
    status_code=201,
    summary="Add a widget to a dashboard (owner or admin)",
    responses=error_responses(404, 413, 422),
    openapi_extra=json_body("WidgetBody", WidgetBody, "The widget, with dashboard_id (docs/dashboards.md)"),
)
async def create_widget(request: Request, services: ServicesDep, principal: DashboardManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    widget = await _service(services).add_widget(body, principal)
    return json_response(widget.to_dict(), status_code=201, headers={"Location": f"{WIDGETS_PREFIX}/{widget.id}"})


@router.put(
    f"{WIDGETS_PREFIX}/{{widget_id}}",
    summary="Change a widget's type, title, config or place (owner or admin)",
    responses=error_responses(404, 413, 422),
    openapi_extra=json_body("WidgetBody", WidgetBody, "The fields to change (docs/dashboards.md)"),
)
async def update_widget(
    widget_id: str, request: Request, services: ServicesDep, principal: DashboardManager
) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    widget = await _service(services).update_widget(widget_id, body, principal)
    return json_response(widget.to_dict())


@router.delete(
    f"{WIDGETS_PREFIX}/{{widget_id}}",
    status_code=204,
    summary="Remove a widget from its dashboard (owner or admin)",
    responses=error_responses(404),
)
async def delete_widget(widget_id: str, services: ServicesDep, principal: DashboardManager) -> Response:
    await _service(services).delete_widget(widget_id, principal)
    return Response(status_code=204)
