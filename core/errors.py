"""One error hierarchy for the whole service; mapped once to HTTP and GraphQL errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class AnalyticsError(Exception):
    """Base class. ``status`` is the HTTP status the error maps to, ``code`` a stable name."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidRequest(AnalyticsError):
    status = 400
    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one field of one event was refused. ``index`` is the event's position in its batch."""

    field: str
    message: str
    index: int | None = None
    # A short, stable reason: too_large, unknown_field, missing_field, invalid_value, not_an_object,
    # timestamp_out_of_range.
    code: str = "invalid_value"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.index is not None:
            out = {"index": self.index, **out}
        return out


class ValidationFailed(AnalyticsError):
    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        self.errors = errors
        first = errors[0] if errors else None
        text = message or (f"{first.field}: {first.message}" if first else "invalid input")
        super().__init__(text, details=[e.to_dict() for e in errors])


class PayloadTooLarge(AnalyticsError):
    status = 413
    code = "payload_too_large"


class Unauthenticated(AnalyticsError):
    status = 401
    code = "unauthenticated"


class Forbidden(AnalyticsError):
    status = 403
    code = "forbidden"


class NotFound(AnalyticsError):
    status = 404
    code = "not_found"


class Conflict(AnalyticsError):
    status = 409
    code = "conflict"


class RateLimited(AnalyticsError):
    """A caller went over its request rate for a kind of route; it may retry after ``retry_after_seconds``."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_seconds = retry_after_seconds


class StoreUnavailable(AnalyticsError):
    """A backing store could not be reached; the request may be retried unchanged."""

    status = 503
    code = "store_unavailable"


class QueryBudgetExceeded(AnalyticsError):
    """A statement went over a query budget (time, memory or rows read): narrow the query."""

    status = 422
    code = "query_budget_exceeded"


class Overloaded(AnalyticsError):
    """The service is at capacity for this kind of work; retry after a moment."""

    status = 503
    code = "overloaded"
