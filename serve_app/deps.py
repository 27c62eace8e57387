"""FastAPI dependencies as Annotated aliases, one per permission of core/access.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from core.access import (
    CAN_ERASE_USER_DATA,
    CAN_EXPORT_DATA,
    CAN_EXPORT_USER_DATA,
    CAN_INGEST_EVENTS,
    CAN_MANAGE_API_KEYS,
    CAN_MANAGE_DASHBOARDS,
    CAN_MANAGE_REPORTS,
    CAN_MANAGE_SAVED_QUERIES,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_AUDIT_LOG,
    CAN_READ_CONTENT_ANALYTICS,
    CAN_READ_CONTENT_METADATA,
    CAN_READ_DASHBOARDS,
    CAN_READ_IMPORT_ANALYTICS,
    CAN_READ_RAW_EVENTS,
    CAN_READ_REALTIME_ANALYTICS,
    CAN_READ_REPORTS,
    CAN_READ_RETENTION,
    CAN_READ_SAVED_QUERIES,
    CAN_READ_SEARCH_ANALYTICS,
    CAN_READ_SYSTEM_ANALYTICS,
    CAN_READ_USER_ANALYTICS,
    CAN_RUN_ANALYTICAL_QUERIES,
    CAN_RUN_BATCH_JOBS,
    CAN_WRITE_CONTENT_METADATA,
    Permission,
    Principal,
)
from semantic.content_scope import CURRENT_SCOPE
from semantic.rate_limits import RateLimiter, RouteClass, route_class_of
from serve_app.http import note_cache_directives
from serve_app.services import Services


def services_of(request: Request) -> Services:
    return request.app.state.services


async def get_services(request: Request) -> Services:
    # async: a plain def dependency runs in the thread pool, a thread hop on every request.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(services: ServicesDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return await services.auth.authenticate(authorization)


# Any valid API key.
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def rate_limiter_of(request: Request) -> RateLimiter | None:
    """The app's rate limiter, made with it (serve_app/factory.py create_app). An app made otherwise,
    such as a test's app of a few routers, has none and no limits."""
    return getattr(request.app.state, "rate_limiter", None)


ADMIN_PATH_PREFIX = "/api/v1/admin/"


class Allow:
    """A route's permission: the authenticated caller (401 without a valid key), refused (403)
    unless its role may perform the operation, then (429) when the key is over the rate limit of the
    route's class (semantic/rate_limits.py).

    The class is ``route_class`` when given; otherwise every route under /api/v1/admin is admin, and
    any other takes the class of its permission's operations (as its GraphQL field does).

    It reads the request itself, with no sub-dependencies to solve: the ingest routes use it too,
    and FastAPI's dependency solving is a noticeable share of a single-event request's CPU.
    """

    def __init__(self, permission: Permission, route_class: RouteClass | None = None) -> None:
        self.permission = permission
        self.route_class = route_class
        self._permission_route_class = route_class_of(permission)

    def route_class_at(self, path: str) -> RouteClass:
        if self.route_class is not None:
            return self.route_class
        if path.startswith(ADMIN_PATH_PREFIX):
            return RouteClass.ADMIN
        return self._permission_route_class

    async def __call__(self, request: Request) -> Principal:
        principal = await services_of(request).auth.authenticate(request.headers.get("authorization"))
        note_cache_directives(request.headers)
        # For the audit trail (serve_app/audit_trail.py), which records refusals too.
        request.state.principal = principal
        request.state.operation = self.permission.operation
        self.permission.check(principal)
        CURRENT_SCOPE.set(principal.scope)
        limiter = rate_limiter_of(request)
        if limiter is not None:
            await limiter.admit(principal, self.route_class_at(request.scope["path"]))
        return principal

    def __repr__(self) -> str:
        return f"Allow({self.permission.action!r})"


# One alias per operation of the permission matrix (core/access.py).
EventIngester = Annotated[Principal, Depends(Allow(CAN_INGEST_EVENTS))]
ContentMetadataWriter = Annotated[Principal, Depends(Allow(CAN_WRITE_CONTENT_METADATA))]
ContentMetadataReader = Annotated[Principal, Depends(Allow(CAN_READ_CONTENT_METADATA))]
ContentAnalyticsReader = Annotated[Principal, Depends(Allow(CAN_READ_CONTENT_ANALYTICS))]
RealtimeReader = Annotated[Principal, Depends(Allow(CAN_READ_REALTIME_ANALYTICS))]
SearchAnalyticsReader = Annotated[Principal, Depends(Allow(CAN_READ_SEARCH_ANALYTICS))]
UserAnalyticsReader = Annotated[Principal, Depends(Allow(CAN_READ_USER_ANALYTICS))]
AnalyticalQuerier = Annotated[Principal, Depends(Allow(CAN_RUN_ANALYTICAL_QUERIES))]
SavedQueryReader = Annotated[Principal, Depends(Allow(CAN_READ_SAVED_QUERIES))]
SavedQueryManager = Annotated[Principal, Depends(Allow(CAN_MANAGE_SAVED_QUERIES))]
SystemAnalyticsReader = Annotated[Principal, Depends(Allow(CAN_READ_SYSTEM_ANALYTICS))]
ImportAnalyticsReader = Annotated[Principal, Depends(Allow(CAN_READ_IMPORT_ANALYTICS))]
RawEventQuerier = Annotated[Principal, Depends(Allow(CAN_QUERY_RAW_EVENTS))]
RawEventReader = Annotated[Principal, Depends(Allow(CAN_READ_RAW_EVENTS))]
KeyManager = Annotated[Principal, Depends(Allow(CAN_MANAGE_API_KEYS))]
AuditReader = Annotated[Principal, Depends(Allow(CAN_READ_AUDIT_LOG))]
RetentionReader = Annotated[Principal, Depends(Allow(CAN_READ_RETENTION))]
UserDataEraser = Annotated[Principal, Depends(Allow(CAN_ERASE_USER_DATA))]
UserDataExporter = Annotated[Principal, Depends(Allow(CAN_EXPORT_USER_DATA))]
ReportReader = Annotated[Principal, Depends(Allow(CAN_READ_REPORTS))]
ReportManager = Annotated[Principal, Depends(Allow(CAN_MANAGE_REPORTS))]
DataExporter = Annotated[Principal, Depends(Allow(CAN_EXPORT_DATA))]
DashboardReader = Annotated[Principal, Depends(Allow(CAN_READ_DASHBOARDS))]
DashboardManager = Annotated[Principal, Depends(Allow(CAN_MANAGE_DASHBOARDS))]
BatchJobRunner = Annotated[Principal, Depends(Allow(CAN_RUN_BATCH_JOBS))]
