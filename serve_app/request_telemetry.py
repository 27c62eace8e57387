"""The service's own requests as telemetry: an ASGI middleware that records each HTTP request it answers
(REST and GraphQL) with the recorder of semantic/self_telemetry.py.

A request is recorded under its route's path template (``/api/v1/analytics/content/{content_id}``,
``/graphql``), never its raw path, whose ids would make every request its own endpoint; a path no route
matched is ``(unmatched)``. The template is the one FastAPI routed by, with the prefix of the router it
was included under (the GraphQL router's own route path is empty: its prefix is all of it). The status
is the one sent (500 when the app raised before answering), the duration runs from the request's
arrival to the end of its answer, and ``cache_hit`` is what the answer's ``X-Cache`` header says,
when it has one. WebSocket connections (GraphQL subscriptions) are not requests
answered and are not recorded.

The recorder is the replica's (``Services.telemetry``); with none (self-telemetry off, or the app not
started yet) requests are not recorded as events. Either way each answer is counted by status class in
the replica's Prometheus metrics (``analytics_http_responses_total``, serve_app/metrics.py). A failure
to record never changes the answer.
"""

from __future__ import annotations

import logging
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from semantic.self_telemetry import UNMATCHED_ENDPOINT, SelfTelemetry, SelfTelemetryMetrics
from serve_app.metrics import REGISTRY, record_response

log = logging.getLogger("analytics.self_telemetry")

# One per process, like the other metrics of serve_app/metrics.py.
SELF_TELEMETRY = SelfTelemetryMetrics(REGISTRY)
_X_CACHE = b"x-cache"
_HIT = b"hit"


def self_telemetry(settings: Settings) -> SelfTelemetry | None:
    """The replica's recorder, or None when the service does not record its own telemetry."""
    if not settings.self_telemetry:
        return None
    return SelfTelemetry(flush_seconds=settings.self_telemetry_flush_ms / 1000, metrics=SELF_TELEMETRY)


def endpoint_of(scope: Scope) -> str:
    """The path template of the route that answered (after routing), or UNMATCHED_ENDPOINT."""
    routed = scope.get("fastapi")
    context = routed.get("effective_route_context") if isinstance(routed, dict) else None
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path_format", None)
    return template or UNMATCHED_ENDPOINT


def _recorder(scope: Scope) -> SelfTelemetry | None:
    app = scope.get("app")
    services = getattr(app.state, "services", None) if app is not None else None
    return getattr(services, "telemetry", None)


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        telemetry = _recorder(scope)
        started = perf_counter()
        begun = telemetry.begin_request() if telemetry is not None else None
        status = 500
        cache_hit: bool | None = None

        async def observed(message: Message) -> None:
            nonlocal status, cache_hit
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == _X_CACHE:
                        cache_hit = value == _HIT
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            try:
                record_response(scope["method"], status)
                if telemetry is not None and begun is not None:
                    telemetry.end_request(
                        *begun,
                        endpoint_of(scope),
                        scope["method"],
                        status,
                        perf_counter() - started,
                        cache_hit,
                    )
            except Exception:  # noqa: BLE001 - recording must never change the answer
                log.debug("a request could not be recorded", exc_info=True)
