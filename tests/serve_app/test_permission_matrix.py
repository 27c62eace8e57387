"""The permission matrix, cell by cell, over both transports.

One table here names the operation every REST route and every GraphQL root field performs; the test
holds each declaration to it, then sends every role to every route and field: a role the matrix
(core/access.py PERMISSION_MATRIX) allows is never refused (neither 401 nor 403), any other role gets
403 naming its role and the roles allowed. docs/security.md prints the same matrix; it is compared too.
A new route or field fails here until it is added to the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)

from core.access import PERMISSION_MATRIX, Operation, Role
from core.settings import Settings
from graphql_schema.permissions import RolePermission
from graphql_schema.schema import schema
from serve_app.deps import Allow, get_principal
from serve_app.factory import create_app
from tests.graphql.fakes import ROLE_KEYS, FakeServices

Op = Operation

REST_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/api/v1/analytics/events"): Op.INGEST_EVENTS,
    ("POST", "/api/v1/analytics/events/batch"): Op.INGEST_EVENTS,
    ("POST", "/api/v1/analytics/track/content-view"): Op.INGEST_EVENTS,
    ("POST", "/api/v1/analytics/track/search"): Op.INGEST_EVENTS,
    ("POST", "/api/v1/analytics/track/user-action"): Op.INGEST_EVENTS,
    ("GET", "/api/v1/analytics/events"): Op.QUERY_RAW_EVENTS,
    ("GET", "/api/v1/analytics/events/{event_id}"): Op.READ_RAW_EVENTS,
    ("PUT", "/api/v1/analytics/content-metadata/{content_id}"): Op.WRITE_CONTENT_METADATA,
    ("GET", "/api/v1/analytics/content-metadata/{content_id}"): Op.READ_CONTENT_METADATA,
    ("GET", "/api/v1/analytics/real-time"): Op.READ_REALTIME_ANALYTICS,
    ("GET", "/api/v1/analytics/content/trending"): Op.READ_REALTIME_ANALYTICS,
    ("GET", "/api/v1/analytics/content/{content_id}/live"): Op.READ_REALTIME_ANALYTICS,
    ("GET", "/api/v1/analytics/content"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/top-performing"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/comparison"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/{content_id}"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/{content_id}/insights"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/{content_id}/audience"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/content/{content_id}/journey"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/catalog"): Op.READ_CONTENT_ANALYTICS,
    ("GET", "/api/v1/analytics/search/overview"): Op.READ_SEARCH_ANALYTICS,
    ("GET", "/api/v1/analytics/search/queries"): Op.READ_SEARCH_ANALYTICS,
    ("GET", "/api/v1/analytics/search/zero-results"): Op.READ_SEARCH_ANALYTICS,
    ("GET", "/api/v1/analytics/search/recommendations"): Op.READ_SEARCH_ANALYTICS,
    ("GET", "/api/v1/analytics/users"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/segments"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/cohorts"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/retention"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/behavior-patterns"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/{user_id}"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/{user_id}/journey"): Op.READ_USER_ANALYTICS,
    ("GET", "/api/v1/analytics/users/{user_id}/preferences"): Op.READ_USER_ANALYTICS,
    ("POST", "/api/v1/analytics/query"): Op.RUN_ANALYTICAL_QUERIES,
    ("POST", "/api/v1/analytics/funnels"): Op.RUN_ANALYTICAL_QUERIES,
    ("POST", "/api/v1/analytics/retention"): Op.RUN_ANALYTICAL_QUERIES,
    ("POST", "/api/v1/analytics/paths"): Op.RUN_ANALYTICAL_QUERIES,
    ("POST", "/api/v1/analytics/stickiness"): Op.RUN_ANALYTICAL_QUERIES,
    ("GET", "/api/v1/analytics/saved-queries"): Op.READ_SAVED_QUERIES,
    ("GET", "/api/v1/analytics/saved-queries/{query_id}"): Op.READ_SAVED_QUERIES,
    ("POST", "/api/v1/analytics/saved-queries/{query_id}/run"): Op.READ_SAVED_QUERIES,
    ("POST", "/api/v1/analytics/saved-queries"): Op.MANAGE_SAVED_QUERIES,
    ("PUT", "/api/v1/analytics/saved-queries/{query_id}"): Op.MANAGE_SAVED_QUERIES,
    ("DELETE", "/api/v1/analytics/saved-queries/{query_id}"): Op.MANAGE_SAVED_QUERIES,
    ("GET", "/api/v1/analytics/reports"): Op.READ_REPORTS,
    ("GET", "/api/v1/analytics/reports/shared"): Op.READ_REPORTS,
    ("GET", "/api/v1/analytics/reports/{report_id}"): Op.READ_REPORTS,
    ("POST", "/api/v1/analytics/reports/{report_id}/generate"): Op.READ_REPORTS,
    ("GET", "/api/v1/analytics/reports/{report_id}/status"): Op.READ_REPORTS,
    ("GET", "/api/v1/analytics/reports/{report_id}/runs"): Op.READ_REPORTS,
    ("GET", "/api/v1/analytics/reports/{report_id}/download"): Op.DOWNLOAD_REPORTS,
    ("POST", "/api/v1/analytics/reports"): Op.MANAGE_REPORTS,
    ("PUT", "/api/v1/analytics/reports/{report_id}"): Op.MANAGE_REPORTS,
    ("DELETE", "/api/v1/analytics/reports/{report_id}"): Op.MANAGE_REPORTS,
    ("POST", "/api/v1/analytics/reports/{report_id}/schedule"): Op.MANAGE_REPORTS,
    ("POST", "/api/v1/analytics/reports/{report_id}/share"): Op.MANAGE_REPORTS,
    ("PUT", "/api/v1/analytics/reports/{report_id}/permissions"): Op.MANAGE_REPORTS,
    ("GET", "/api/v1/analytics/system/health"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/system/performance"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/system/errors"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/system/usage"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/services"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/services/{service_name}"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/api/endpoints"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/database/performance"): Op.READ_SYSTEM_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/jobs"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/sources"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/quality"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/trends"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/failures"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/optimization"): Op.READ_IMPORT_ANALYTICS,
    ("GET", "/api/v1/analytics/imports/{job_id}"): Op.READ_IMPORT_ANALYTICS,
    ("POST", "/api/v1/admin/api-keys"): Op.MANAGE_API_KEYS,
    ("GET", "/api/v1/admin/api-keys"): Op.MANAGE_API_KEYS,
    ("DELETE", "/api/v1/admin/api-keys/{key_id}"): Op.MANAGE_API_KEYS,
    ("POST", "/api/v1/admin/api-keys/{key_id}/rotate"): Op.MANAGE_API_KEYS,
    ("GET", "/api/v1/admin/audit"): Op.READ_AUDIT_LOG,
    ("GET", "/api/v1/admin/retention"): Op.READ_RETENTION,
    ("DELETE", "/api/v1/analytics/users/{user_id}/data"): Op.ERASE_USER_DATA,
    ("GET", "/api/v1/analytics/users/{user_id}/data/erasure/{job_id}"): Op.ERASE_USER_DATA,
    ("GET", "/api/v1/analytics/users/{user_id}/data"): Op.EXPORT_USER_DATA,
    ("POST", "/api/v1/analytics/exports"): Op.EXPORT_DATA,
    ("GET", "/api/v1/analytics/exports"): Op.EXPORT_DATA,
    ("GET", "/api/v1/analytics/exports/{export_id}"): Op.EXPORT_DATA,
    ("GET", "/api/v1/analytics/exports/{export_id}/download"): Op.EXPORT_DATA,
    ("POST", "/api/v1/analytics/dashboards"): Op.MANAGE_DASHBOARDS,
    ("GET", "/api/v1/analytics/dashboards"): Op.READ_DASHBOARDS,
    ("GET", "/api/v1/analytics/widget-types"): Op.READ_DASHBOARDS,
    ("GET", "/api/v1/analytics/dashboards/{dashboard_id}"): Op.READ_DASHBOARDS,
    ("PUT", "/api/v1/analytics/dashboards/{dashboard_id}"): Op.MANAGE_DASHBOARDS,
    ("DELETE", "/api/v1/analytics/dashboards/{dashboard_id}"): Op.MANAGE_DASHBOARDS,
    ("GET", "/api/v1/analytics/dashboards/{dashboard_id}/data"): Op.READ_DASHBOARDS,
    ("GET", "/api/v1/analytics/dashboards/{dashboard_id}/versions"): Op.READ_DASHBOARDS,
    ("GET", "/api/v1/analytics/dashboards/{dashboard_id}/versions/{version}"): Op.READ_DASHBOARDS,
    ("POST", "/api/v1/analytics/dashboards/{dashboard_id}/versions/{version}/restore"): Op.MANAGE_DASHBOARDS,
    ("GET", "/api/v1/analytics/widgets/{widget_id}"): Op.READ_DASHBOARDS,
    ("POST", "/api/v1/analytics/widgets"): Op.MANAGE_DASHBOARDS,
    ("PUT", "/api/v1/analytics/widgets/{widget_id}"): Op.MANAGE_DASHBOARDS,
    ("DELETE", "/api/v1/analytics/widgets/{widget_id}"): Op.MANAGE_DASHBOARDS,
    ("GET", "/api/v1/analytics/jobs"): Op.RUN_BATCH_JOBS,
    ("POST", "/api/v1/analytics/jobs/aggregate"): Op.RUN_BATCH_JOBS,
    ("GET", "/api/v1/analytics/jobs/{run_id}"): Op.RUN_BATCH_JOBS,
}
# Public: liveness and readiness. /metrics takes any valid key. /graphql checks each field (below).
REST_WITHOUT_OPERATION = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", ""), ("POST", "")}
# Public too: the web dashboard's static pages and files (their data calls take the signed-in key).
REST_WITHOUT_OPERATION |= {("GET", "/"), ("GET", "/dashboards/{dashboard_id}"), ("GET", "/web/{path:path}")}
# Downloads that also take a signed link instead of a key: their dependency checks the operation itself
# when no signature is sent (serve_app/routes/reports.py), so the cells below are what holds them to it.
REST_SIGNED_LINK_READS = {("GET", "/api/v1/analytics/reports/{report_id}/download")}

GRAPHQL_OPERATIONS: dict[tuple[str, str], Operation] = {
    ("Query", "event"): Op.READ_RAW_EVENTS,
    ("Query", "events"): Op.QUERY_RAW_EVENTS,
    ("Query", "realtime"): Op.READ_REALTIME_ANALYTICS,
    ("Query", "trending"): Op.READ_REALTIME_ANALYTICS,
    ("Query", "contentLive"): Op.READ_REALTIME_ANALYTICS,
    ("Query", "contentAnalytics"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentList"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "topPerformingContent"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentInsights"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentAudience"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentJourney"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentComparison"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "analyticsCatalog"): Op.READ_CONTENT_ANALYTICS,
    ("Query", "contentMetadata"): Op.READ_CONTENT_METADATA,
    ("Query", "userAnalytics"): Op.READ_USER_ANALYTICS,
    ("Query", "usersOverview"): Op.READ_USER_ANALYTICS,
    ("Query", "userSegments"): Op.READ_USER_ANALYTICS,
    ("Query", "userCohorts"): Op.READ_USER_ANALYTICS,
    ("Query", "userRetention"): Op.READ_USER_ANALYTICS,
    ("Query", "userJourney"): Op.READ_USER_ANALYTICS,
    ("Query", "userPreferences"): Op.READ_USER_ANALYTICS,
    ("Query", "behaviorPatterns"): Op.READ_USER_ANALYTICS,
    ("Query", "searchOverview"): Op.READ_SEARCH_ANALYTICS,
    ("Query", "topSearchQueries"): Op.READ_SEARCH_ANALYTICS,
    ("Query", "zeroResultQueries"): Op.READ_SEARCH_ANALYTICS,
    ("Query", "recommendationPerformance"): Op.READ_SEARCH_ANALYTICS,
    ("Query", "importJobs"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importJob"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importSources"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importQuality"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importTrends"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importFailures"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "importOptimization"): Op.READ_IMPORT_ANALYTICS,
    ("Query", "databasePerformance"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "systemHealth"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "systemPerformance"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "systemErrors"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "systemUsage"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "services"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "service"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "apiEndpoints"): Op.READ_SYSTEM_ANALYTICS,
    ("Query", "analyticsQuery"): Op.RUN_ANALYTICAL_QUERIES,
    ("Query", "funnel"): Op.RUN_ANALYTICAL_QUERIES,
    ("Query", "retentionAnalysis"): Op.RUN_ANALYTICAL_QUERIES,
    ("Query", "paths"): Op.RUN_ANALYTICAL_QUERIES,
    ("Query", "stickiness"): Op.RUN_ANALYTICAL_QUERIES,
    ("Query", "savedQuery"): Op.READ_SAVED_QUERIES,
    ("Query", "savedQueries"): Op.READ_SAVED_QUERIES,
    ("Query", "reports"): Op.READ_REPORTS,
    ("Query", "sharedReports"): Op.READ_REPORTS,
    ("Query", "report"): Op.READ_REPORTS,
    ("Query", "reportRuns"): Op.READ_REPORTS,
    ("Query", "reportStatus"): Op.READ_REPORTS,
    ("Mutation", "trackEvent"): Op.INGEST_EVENTS,
    ("Mutation", "trackEvents"): Op.INGEST_EVENTS,
    ("Mutation", "upsertContentMetadata"): Op.WRITE_CONTENT_METADATA,
    ("Mutation", "createSavedQuery"): Op.MANAGE_SAVED_QUERIES,
    ("Mutation", "updateSavedQuery"): Op.MANAGE_SAVED_QUERIES,
    ("Mutation", "deleteSavedQuery"): Op.MANAGE_SAVED_QUERIES,
    ("Mutation", "createReport"): Op.MANAGE_REPORTS,
    ("Mutation", "updateReport"): Op.MANAGE_REPORTS,
    ("Mutation", "deleteReport"): Op.MANAGE_REPORTS,
    ("Mutation", "generateReport"): Op.READ_REPORTS,
    ("Mutation", "scheduleReport"): Op.MANAGE_REPORTS,
    ("Mutation", "shareReport"): Op.MANAGE_REPORTS,
    ("Mutation", "setReportPermissions"): Op.MANAGE_REPORTS,
    ("Query", "dashboards"): Op.READ_DASHBOARDS,
    ("Query", "dashboard"): Op.READ_DASHBOARDS,
    ("Query", "dashboardData"): Op.READ_DASHBOARDS,
    ("Query", "widget"): Op.READ_DASHBOARDS,
    ("Query", "widgetTypes"): Op.READ_DASHBOARDS,
    ("Mutation", "createDashboard"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "updateDashboard"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "deleteDashboard"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "restoreDashboardVersion"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "createWidget"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "updateWidget"): Op.MANAGE_DASHBOARDS,
    ("Mutation", "deleteWidget"): Op.MANAGE_DASHBOARDS,
    ("Query", "aggregationRuns"): Op.RUN_BATCH_JOBS,
    ("Query", "aggregationRun"): Op.RUN_BATCH_JOBS,
    ("Mutation", "runAggregation"): Op.RUN_BATCH_JOBS,
    ("Subscription", "dashboardUpdates"): Op.READ_DASHBOARDS,
    ("Subscription", "realtimeMetrics"): Op.READ_REALTIME_ANALYTICS,
    ("Subscription", "trendingContent"): Op.READ_REALTIME_ANALYTICS,
    ("Subscription", "contentLive"): Op.READ_REALTIME_ANALYTICS,
}


def refusal(role: Role, operation: Operation) -> str:
    allowed = ", ".join(sorted(r.value for r in PERMISSION_MATRIX[operation]))
    return f"role '{role.value}' may not {operation.value}; allowed roles: {allowed}"


# --- REST ---------------------------------------------------------------------------------------------


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every route of the app, through the routers it includes."""
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop(0)
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            stack[:0] = route.original_router.routes


def declared_permissions(route: APIRoute) -> list[Allow]:
    found: list[Allow] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Allow):
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


APP = create_app(Settings(environment="test"))
ROUTES = {(method, route.path): route for route in api_routes(APP) for method in route.methods}


def test_every_rest_route_performs_the_operation_of_the_table() -> None:
    assert set(ROUTES) == set(REST_OPERATIONS) | REST_WITHOUT_OPERATION
    for (method, path), route in ROUTES.items():
        declared = declared_permissions(route)
        if (method, path) in REST_WITHOUT_OPERATION | REST_SIGNED_LINK_READS:
            assert declared == [], (method, path)
            continue
        assert [allow.permission.operation for allow in declared] == [REST_OPERATIONS[method, path]], (method, path)
    assert any(dependant.call is get_principal for dependant in ROUTES["GET", "/metrics"].dependant.dependencies)


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[Role, TestClient]]:
    APP.state.services = FakeServices.build()  # no lifespan: the fakes stand in for Services.start
    # A handler that fails on a fake is no refusal: the test asks only whether the call got past the check.
    made = {
        role: TestClient(APP, headers={"Authorization": f"Bearer {ROLE_KEYS[role]}"}, raise_server_exceptions=False)
        for role in Role
    }
    yield made
    for client in made.values():
        client.close()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path"), sorted(REST_OPERATIONS))
def test_rest_cell(clients: dict[Role, TestClient], role: Role, method: str, path: str) -> None:
    operation = REST_OPERATIONS[method, path]
    body = {} if method in ("POST", "PUT") else None
    response = clients[role].request(method, _concrete(path), json=body)
    if role in PERMISSION_MATRIX[operation]:
        assert response.status_code not in (401, 403), (response.status_code, response.text)
    else:
        assert response.status_code == 403, response.text
        assert response.json() == {"error": "forbidden", "message": refusal(role, operation)}


# --- GraphQL ------------------------------------------------------------------------------------------

# Values for the custom scalars, as GraphQL literals; every other type is built from the schema.
SCALAR_LITERALS = {
    "String": '"x1"',
    "ID": '"x1"',
    "Int": "1",
    "Float": "1.0",
    "Boolean": "true",
    "DateTime": '"2026-01-01T00:00:00+00:00"',
    "Date": '"2026-01-01"',
    "JSON": "{}",
}


def literal(type_: GraphQLInputType) -> str:
    """A value of a GraphQL input type, with just its required fields."""
    if isinstance(type_, GraphQLNonNull):
        return literal(type_.of_type)
    if isinstance(type_, GraphQLList):
        return f"[{literal(type_.of_type)}]"
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        required = [
            f"{name}: {literal(f.type)}"
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        ]
        return "{" + ", ".join(required) + "}"
    assert isinstance(type_, GraphQLScalarType), type_
    return SCALAR_LITERALS[type_.name]


def document(kind: str, name: str, field: GraphQLField) -> str:
    args = [
        f"{arg_name}: {literal(arg.type)}"
        for arg_name, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
    ]
    call = f"{name}({', '.join(args)})" if args else name
    selection = " { __typename }" if not isinstance(get_named_type(field.type), GraphQLScalarType) else ""
    return f"{kind.lower()} {{ {call}{selection} }}"


def root_fields() -> dict[tuple[str, str], GraphQLField]:
    fields: dict[tuple[str, str], GraphQLField] = {}
    for kind in ("Query", "Mutation", "Subscription"):
        root = schema._schema.get_type(kind)
        assert isinstance(root, GraphQLObjectType)
        fields.update({(kind, name): field for name, field in root.fields.items()})
    return fields


FIELDS = root_fields()


def test_every_graphql_field_performs_the_operation_of_the_table() -> None:
    assert set(FIELDS) == set(GRAPHQL_OPERATIONS)
    name_of = schema.config.name_converter.get_graphql_name
    for kind in ("Query", "Mutation", "Subscription"):
        definition = schema.get_type_by_name(kind)
        for field in definition.fields:  # type: ignore[union-attr]
            declared = [p.permission.operation for p in field.permission_classes if issubclass(p, RolePermission)]
            assert declared == [GRAPHQL_OPERATIONS[kind, name_of(field)]], (kind, field.name)


def _errors(result: Any) -> list[dict[str, Any]]:
    return [error.formatted for error in (result.errors or [])]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("kind", "name"), sorted(GRAPHQL_OPERATIONS))
async def test_graphql_cell(role: Role, kind: str, name: str) -> None:
    operation = GRAPHQL_OPERATIONS[kind, name]
    services = FakeServices.build()
    text = document(kind, name, FIELDS[kind, name])
    if kind == "Subscription":
        subscription = await schema.subscribe(text, context_value=services.context(role))
        if hasattr(subscription, "errors"):
            errors = _errors(subscription)
        else:
            # An allowed subscription over the fakes may end without a result: nothing was refused.
            first = await anext(subscription, None)
            errors = _errors(first) if first is not None else []
            await subscription.aclose()
    else:
        errors = _errors(await schema.execute(text, context_value=services.context(role)))
    assert all(e.get("extensions", {}).get("code") != "invalid_request" or e["path"] for e in errors), (text, errors)
    refused = [e for e in errors if e.get("extensions", {}).get("code") in ("forbidden", "unauthenticated")]
    if role in PERMISSION_MATRIX[operation]:
        assert refused == [], (text, refused)
    else:
        assert [(e["message"], e["extensions"]) for e in refused] == [
            (refusal(role, operation), {"code": "forbidden", "status": 403})
        ], (text, errors)


# --- the written matrix ---------------------------------------------------------------------------------

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def documented_matrix() -> dict[str, frozenset[Role]]:
    """The permission table of docs/security.md: operation -> the roles marked allowed."""
    lines = SECURITY_DOC.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| operation |"))
    columns = [cell.strip().strip("`") for cell in lines[header].strip("|").split("|")]
    matrix: dict[str, frozenset[Role]] = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = {role.value for role in Role}
        roles = {
            Role(column) for column, cell in zip(columns, cells, strict=False) if column in names and cell == "yes"
        }
        matrix[cells[0]] = frozenset(roles)
    return matrix


def test_the_documented_matrix_is_the_enforced_one() -> None:
    documented = documented_matrix()
    # /metrics is for any valid key: no operation of the matrix, but a row of the page.
    assert documented.pop("read `/metrics`") == frozenset(Role)
    assert documented == {operation.value: roles for operation, roles in PERMISSION_MATRIX.items()}
