"""Headers every HTTP answer carries for browsers and caches, and the cross-origin (CORS) answers.

On every answer: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
``X-Frame-Options: DENY``; ``Strict-Transport-Security`` when the request came over HTTPS; and
``Cache-Control: no-store`` on the answer to a request that carried credentials (an
``Authorization`` header), unless the route set a ``Cache-Control`` of its own. A header the route
set itself is left as it is.

CORS only when ``ANALYTICS_CORS_ORIGINS`` names origins (none by default: no CORS header at all).
An origin is allowed by exact match; credentials (cookies) are never allowed: callers authenticate
with a bearer key, which a foreign page does not hold. A preflight from an allowed origin for the
methods and headers the API uses is answered 204 here; any other preflight 403 with the error body
naming what was refused.

The middleware wraps the whole app, outside Starlette's own error middleware, so that 500 answers
carry the headers too. It is plain ASGI: one pass over the request's headers and one over the
answer's, with every header value it adds built once at start.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Forbidden
from core.settings import Settings
from serve_app.http import error_response

# What the API uses: its routes' methods, the request headers it reads, the answer headers a script may read.
CORS_METHODS = ("GET", "POST", "PUT", "DELETE")
CORS_REQUEST_HEADERS = ("authorization", "content-type", "cache-control")
CORS_EXPOSED_HEADERS = ("X-Cache", "Location", "Retry-After", "X-Request-ID")
# How long a browser may reuse a preflight's answer.
CORS_MAX_AGE_SECONDS = 600

# Browsers send these without asking in a preflight (CORS-safelisted request headers).
_SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language"})
_AUTHORIZATION = b"authorization"
_ORIGIN = b"origin"
_REQUEST_METHOD = b"access-control-request-method"
_REQUEST_HEADERS = b"access-control-request-headers"
_CACHE_CONTROL = b"cache-control"
_NO_STORE = (_CACHE_CONTROL, b"no-store")
_VARY = b"vary"


class ResponseHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._origins = frozenset(origin.encode("latin-1") for origin in settings.cors_origins)
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if self._origins:
            # Whether an answer carries Access-Control-Allow-Origin depends on the Origin asked from.
            common.append((_VARY, b"Origin"))
        hsts = (b"strict-transport-security", f"max-age={settings.hsts_max_age_seconds}".encode())
        self._over_http = tuple(common)
        self._over_https = (*common, hsts)
        self._exposed = (b"access-control-expose-headers", ", ".join(CORS_EXPOSED_HEADERS).encode())
        self._preflight = (
            (b"access-control-allow-methods", ", ".join(CORS_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(CORS_REQUEST_HEADERS).encode()),
            (b"access-control-max-age", str(CORS_MAX_AGE_SECONDS).encode()),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentials = False
        origin = requested_method = requested_headers = None
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                credentials = True
            elif name == _ORIGIN:
                origin = value
            elif name == _REQUEST_METHOD:
                requested_method = value
            elif name == _REQUEST_HEADERS:
                requested_headers = value
        added = self._over_https if scope.get("scheme") == "https" else self._over_http
        if origin is None or not self._origins:
            await self.app(scope, receive, _adding(send, added, credentials=credentials))
            return
        allowed = origin in self._origins
        if scope["method"] == "OPTIONS" and requested_method is not None:
            answer = self._preflight_answer(origin, allowed, requested_method, requested_headers)
            if answer.status_code == 204:
                added = (*added, (b"access-control-allow-origin", origin), *self._preflight)
            await answer(scope, receive, _adding(send, added, credentials=False))
            return
        if allowed:
            added = (*added, (b"access-control-allow-origin", origin), self._exposed)
        await self.app(scope, receive, _adding(send, added, credentials=credentials))

    def _preflight_answer(
        self, origin: bytes, allowed: bool, requested_method: bytes, requested_headers: bytes | None
    ) -> Response:
        """204 when the origin, the method and every header asked for are allowed; else a 403 naming
        the first refusal (and, having no Access-Control-Allow-Origin, refused by the browser too)."""
        if not allowed:
            return error_response(
                Forbidden(
                    f"origin {origin.decode('latin-1')} may not call this API from a browser; "
                    "the allowed origins are set in ANALYTICS_CORS_ORIGINS"
                )
            )
        method = requested_method.decode("latin-1").strip().upper()
        if method not in CORS_METHODS:
            return error_response(
                Forbidden(f"method {method} is not allowed across origins; allowed: {', '.join(CORS_METHODS)}")
            )
        asked = {h.strip().lower() for h in (requested_headers or b"").decode("latin-1").split(",") if h.strip()}
        refused = sorted(asked - _SAFELISTED_HEADERS - set(CORS_REQUEST_HEADERS))
        if refused:
            return error_response(
                Forbidden(
                    f"request header(s) {', '.join(refused)} not allowed across origins; "
                    f"allowed: {', '.join(CORS_REQUEST_HEADERS)}"
                )
            )
        return Response(status_code=204)


def _adding(send: Send, added: tuple[tuple[bytes, bytes], ...], *, credentials: bool) -> Send:
    """``send`` with ``added`` put into the answer's headers, except those the answer set itself."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            # Vary lists accumulate; every other header the answer set itself wins.
            headers.extend(header for header in added if header[0] not in present or header[0] == _VARY)
            if credentials and _CACHE_CONTROL not in present:
                headers.append(_NO_STORE)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


def add_response_headers(app: Starlette, settings: Settings) -> None:
    """Wrap ``app``'s whole middleware stack (built at its first request) in ResponseHeaders."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return ResponseHeaders(build(), settings)

    wrapped: Callable[[], ASGIApp] = build_with_headers
    app.build_middleware_stack = wrapped  # type: ignore[method-assign]
