"""HTTP plumbing shared by the routes: JSON bodies with size limits, JSON responses, error mapping.

Every error leaves in one body, ``{"error", "message", "details"?}`` (serve_app/openapi.py's
ErrorBody): domain errors, parameter errors, the router's own 404/405, and unexpected failures.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from core.errors import AnalyticsError, InvalidRequest, PayloadTooLarge, RateLimited
from semantic.result_cache import FRESH_ANSWER_REQUESTED, CachedAnswer

log = logging.getLogger("analytics.http")

# The router's own errors (no route, wrong method), named like the domain's codes.
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def read_json(request: Request, *, max_bytes: int) -> Any:
    """The request body as JSON: 413 past ``max_bytes`` (checked before and while reading), 400 if malformed."""
    return parse_json(await read_body(request, max_bytes=max_bytes))


# Bodies nesting deeper than this are refused whole by the JSON parser (orjson's own limit); the
# event properties limit (ANALYTICS_MAX_PROPERTIES_DEPTH) is checked per event, well inside it.
JSON_MAX_DEPTH = 1024
_BODY = "(body)"


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or a 400 naming ``(body)`` with the line and column of the fault."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg
        if "depth limit" in reason:
            reason = f"it nests more than {JSON_MAX_DEPTH} levels of objects and arrays"
        raise InvalidRequest(
            f"request body is not valid JSON: {reason} (line {exc.lineno}, column {exc.colno})",
            details={"field": _BODY, "line": exc.lineno, "column": exc.colno},
        ) from exc


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The request body's bytes: 413 past ``max_bytes`` (checked before and while reading), 400 if empty."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"request body is {int(declared)} bytes; the limit is {max_bytes} bytes", details={"field": _BODY}
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes", details={"field": _BODY})
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON document", details={"field": _BODY})
    return raw


def note_cache_directives(headers: Mapping[str, str]) -> None:
    """``Cache-Control: no-cache`` asks for a fresh analytics answer: computed now, not read from the
    result cache (and stored for the next caller). Set for the rest of this request only."""
    value = headers.get("cache-control")
    if value is not None and "no-cache" in value.lower():
        FRESH_ANSWER_REQUESTED.set(True)


def cached_response(answer: CachedAnswer) -> Response:
    """An analytics answer from the result cache: its JSON as stored; X-Cache tells hit from miss."""
    return Response(
        content=answer.body,
        media_type="application/json",
        headers={"X-Cache": "hit" if answer.hit else "miss"},
    )


def error_response(exc: AnalyticsError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return json_response(exc.to_dict(), status_code=exc.status, headers=headers)


def request_validation_response(exc: RequestValidationError) -> Response:
    """FastAPI's parameter errors as 400s naming the parameter."""
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body")]
        details.append({"field": ".".join(loc) or "(request)", "message": err.get("msg", "invalid")})
    first = details[0] if details else {"field": "(request)", "message": "invalid request"}
    return json_response(
        {"error": "invalid_request", "message": f"{first['field']}: {first['message']}", "details": details},
        status_code=400,
    )


def http_error_response(exc: HTTPException) -> Response:
    """The router's own errors (an unknown path, a method the path does not take) in the error body."""
    code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    body = {"error": code, "message": str(exc.detail)}
    return json_response(body, status_code=exc.status_code, headers=dict(exc.headers) if exc.headers else None)


def unexpected_error_response(request: Request, exc: Exception) -> Response:
    """A failure no handler expected: logged with its traceback, answered 500 without its details,
    which may name internals (hosts, queries, file paths)."""
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    body = {"error": "internal_error", "message": "an unexpected error occurred; it has been logged"}
    return json_response(body, status_code=500)
