"""The FastAPI app factory: one app for Ray Serve replicas, plain uvicorn and tests.

Each replica imports and calls ``create_app`` (it is never pickled: that breaks Strawberry's
router). Services are built in the lifespan from Settings, inside the replica.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from core.errors import AnalyticsError
from core.heap import tune_for_serving
from core.settings import Settings, get_settings
from graphql_schema.context import GraphQLContext
from graphql_schema.schema import build_schema
from semantic.rate_limits import RateLimiter
from serve_app import metrics
from serve_app.audit_trail import add_audit_trail, audit_graphql
from serve_app.graphql_rate_limits import admit_graphql_request
from serve_app.graphql_router import SUBSCRIPTION_PROTOCOLS, AnalyticsGraphQLRouter
from serve_app.http import (
    error_response,
    http_error_response,
    note_cache_directives,
    request_validation_response,
    unexpected_error_response,
)
from serve_app.openapi import openapi_document
from serve_app.request_telemetry import RequestTelemetry
from serve_app.response_headers import add_response_headers
from serve_app.routes import (
    analyses,
    analytics_query,
    audit,
    content,
    content_metadata,
    dashboards,
    database,
    events,
    exports,
    health,
    imports,
    jobs,
    keys,
    realtime,
    reports,
    retention,
    saved_queries,
    search,
    system,
    tracking,
    user_data,
    users,
    web_pages,
)
from serve_app.services import Services

ServicesFactory = Callable[[Settings], Awaitable[Services]]


def create_app(settings: Settings | None = None, services_factory: ServicesFactory | None = None) -> FastAPI:
    settings = settings or get_settings()
    build_services = services_factory or Services.start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = await build_services(settings)
        # The process serves this app from now on (a replica): see core/heap.py.
        tune_for_serving()
        try:
            yield
        finally:
            await app.state.services.close()
            await app.state.rate_limiter.close()

    app = FastAPI(
        title="Analytics & Reporting Service",
        version="0.1.0",
        lifespan=lifespan,
        # Interactive docs are a development aid; production serves no unauthenticated pages.
        docs_url="/docs" if settings.environment == "development" else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.environment == "development" else None,
    )
    # The document as the service answers: no FastAPI 422 where parameter errors are 400s.
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    # Per key and route class (semantic/rate_limits.py), for REST (serve_app/deps.py) and GraphQL.
    app.state.rate_limiter = RateLimiter.from_settings(settings, metrics.RATE_LIMITS)
    # Every HTTP request answered becomes one of the service's own api_request events (docs/system.md).
    app.add_middleware(RequestTelemetry)
    # Security headers and CORS on every answer, 500s included (serve_app/response_headers.py).
    add_response_headers(app, settings)
    # X-Request-ID on every answer, and the audit trail of mutations, sensitive reads and refusals
    # (serve_app/audit_trail.py), outermost so that 500s are seen as sent.
    add_audit_trail(app)

    @app.exception_handler(AnalyticsError)
    async def _domain_error(_: Request, exc: AnalyticsError) -> Any:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _parameter_error(_: Request, exc: RequestValidationError) -> Any:
        return request_validation_response(exc)

    @app.exception_handler(HTTPException)
    async def _routing_error(_: Request, exc: HTTPException) -> Any:
        return http_error_response(exc)

    # Starlette still re-raises the exception after this answer, for the server's own log.
    @app.exception_handler(Exception)
    async def _unexpected_error(request: Request, exc: Exception) -> Any:
        return unexpected_error_response(request, exc)

    # realtime before any content router: /content/trending must win over /content/{content_id}.
    for router in (
        health.router,
        events.router,
        tracking.router,
        keys.router,
        audit.router,
        realtime.router,
        content.router,
        content_metadata.router,
        user_data.router,
        users.router,
        search.router,
        imports.router,
        database.router,
        system.router,
        analytics_query.router,
        analyses.router,
        saved_queries.router,
        reports.router,
        exports.router,
        retention.router,
        dashboards.router,
        jobs.router,
        # The built-in web dashboard: / and /dashboards/{id} pages and /web/ files (no key needed).
        web_pages.router,
    ):
        app.include_router(router)

    ide_enabled = settings.environment == "development"

    async def graphql_context(request: HTTPConnection) -> GraphQLContext:
        services: Services = request.app.state.services
        if request.scope["type"] == "websocket":
            # Authenticated by AnalyticsGraphQLRouter.on_ws_connect (connection_init payload or header).
            return GraphQLContext.build(None, services)
        authorization = request.headers.get("authorization")
        ide_page = request.scope["method"] == "GET" and "text/html" in request.headers.get("accept", "")
        if ide_enabled and authorization is None and ide_page:
            # The GraphiQL page itself is public; its queries still need a key (set it in the IDE's headers).
            return GraphQLContext.build(None, services)
        principal = await services.auth.authenticate(authorization)
        await admit_graphql_request(request, principal, request.app.state.rate_limiter)
        note_cache_directives(request.headers)
        return GraphQLContext.build(principal, services)

    schema = build_schema(settings.environment)
    # GraphQL mutations and audited reads, one audit entry per root field (serve_app/audit_trail.py).
    audit_graphql(schema)
    app.include_router(
        AnalyticsGraphQLRouter(
            schema,
            context_getter=graphql_context,
            graphql_ide="graphiql" if ide_enabled else None,
            subscription_protocols=SUBSCRIPTION_PROTOCOLS,
        ),
        prefix="/graphql",
        # GraphQL is described by its own schema (schema.graphql), not by the REST document.
        include_in_schema=False,
    )
    return app
