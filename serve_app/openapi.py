"""What the OpenAPI document says about errors: one error body schema, and the statuses a route may answer.

Every error answer has the body ``{"error": <code>, "message": <text>, "details": <optional>}``
(core/errors.py); routes list the statuses they can return with ``responses=error_responses(...)``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="a stable code: invalid_request, unauthenticated, forbidden, not_found, ...")
    message: str = Field(description="what is wrong, naming the field or limit")
    details: Any = Field(default=None, description="the field(s) at fault, or the limit that was reached")


_DESCRIPTIONS = {
    400: "Invalid request: a parameter or body field is wrong (details names it)",
    401: "Missing or invalid API key",
    403: "The key's role may not perform this operation",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    422: "Well-formed but refused: validation failed, or a query went over its budget",
    503: "A backing store is unavailable or the service is overloaded; retry after Retry-After seconds",
}

# Every authenticated route can answer these.
COMMON = (400, 401, 403, 503)


def error_responses(*statuses: int, common: bool = True) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given statuses (plus COMMON), each with the error body schema."""
    wanted = sorted({*statuses, *(COMMON if common else ())})
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in wanted}
