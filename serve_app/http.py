"""HTTP plumbing shared by the routes: JSON bodies with size limits, JSON responses, error mapping."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from core.errors import AnalyticsError, InvalidRequest, PayloadTooLarge


def json_response(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


async def read_json(request: Request, *, max_bytes: int) -> Any:
    """The request body as JSON: 413 past ``max_bytes`` (checked before and while reading), 400 if malformed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body is {int(declared)} bytes; the limit is {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON document")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc


def error_response(exc: AnalyticsError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
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
