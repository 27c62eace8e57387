"""The audit log (admin): ``GET /api/v1/admin/audit``, newest first, with filters and a cursor.

Reading it is itself recorded (``read the audit log`` is an audited read). Nothing in the API changes
or removes an entry; the table refuses it too (storage/audit_log.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator

from core.access import Operation, Role
from core.errors import InvalidRequest
from serve_app.deps import AuditReader, ServicesDep
from serve_app.http import json_response
from serve_app.openapi import error_responses
from serve_app.periods import IsoDateTime
from storage.audit_log import MAX_PAGE_SIZE, MAX_TEXT, AuditFilter, Outcome

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

DEFAULT_PAGE_SIZE = 100


def text(description: str) -> Any:
    return Query(min_length=1, max_length=MAX_TEXT, description=description)


def operation_named(value: str) -> Operation:
    """An operation by its words ("manage API keys") or its name ("MANAGE_API_KEYS", any case)."""
    if value.upper() in Operation.__members__:
        return Operation[value.upper()]
    try:
        return Operation(value)
    except ValueError:
        raise ValueError("must be one of the permission matrix's operations: " + ", ".join(Operation)) from None


OperationName = Annotated[Operation, BeforeValidator(lambda v: operation_named(v) if isinstance(v, str) else v)]


@router.get(
    "/audit",
    summary="Audit log entries, newest first: filter by actor, role, action, operation, target, outcome, "
    "request id, client address and time; page with next_cursor",
    responses=error_responses(),
)
async def audit_log(
    request: Request,
    services: ServicesDep,
    _: AuditReader,
    actor_key_id: Annotated[str | None, text("the acting key's id")] = None,
    role: Annotated[Role | None, Query(description="the acting key's role")] = None,
    action: Annotated[str | None, text("e.g. 'POST /api/v1/admin/api-keys', 'api_key.revoke', 'ingest.minute'")] = None,
    operation: Annotated[
        OperationName | None,
        Query(description="an operation of the permission matrix: 'manage API keys' or MANAGE_API_KEYS"),
    ] = None,
    target: Annotated[str | None, text("what was acted on: a path parameter, an id")] = None,
    outcome: Annotated[Outcome | None, Query(description="ok, denied, failed, error or started")] = None,
    request_id: Annotated[str | None, text("the request's X-Request-ID")] = None,
    client_address: Annotated[str | None, text("the client's address")] = None,
    since: Annotated[IsoDateTime | None, Query(description="ISO date-time, included (UTC when no offset)")] = None,
    until: Annotated[IsoDateTime | None, Query(description="ISO date-time, excluded (UTC when no offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="entries per page")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, text("the next_cursor of the previous page")] = None,
) -> Response:
    _refuse_unknown_or_repeated(request)
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("until: must be after since", details={"field": "until"})
    filters = AuditFilter(
        actor_key_id=actor_key_id,
        actor_role=role.value if role else None,
        action=action,
        operation=operation.value if operation else None,
        target=target,
        outcome=outcome,
        request_id=request_id,
        client_address=client_address,
        since=since,
        until=until,
    )
    page = await services.metadata.audit_log.page(filters, cursor, limit)
    return json_response({"entries": [r.to_dict() for r in page.entries], "next_cursor": page.next_cursor})


_PARAMETERS = (
    "actor_key_id",
    "role",
    "action",
    "operation",
    "target",
    "outcome",
    "request_id",
    "client_address",
    "since",
    "until",
    "limit",
    "cursor",
)


def _refuse_unknown_or_repeated(request: Request) -> None:
    """A misspelt filter would otherwise be ignored and answer with every entry."""
    params = request.query_params
    for name in params:
        if name not in _PARAMETERS:
            message = f"{name}: is not a parameter of the audit log; they are: {', '.join(_PARAMETERS)}"
            raise InvalidRequest(message, details={"field": name})
        if len(params.getlist(name)) > 1:
            raise InvalidRequest(f"{name}: give it once", details={"field": name})
        if "\x00" in params[name]:
            raise InvalidRequest(f"{name}: must not contain the NUL character", details={"field": name})


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """The moment in UTC (read as UTC without an offset); 400 naming ``field`` when UTC cannot hold it
    (the first or last hours of years 1 and 9999 with an offset)."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"{field}: is out of range once in UTC", details={"field": field}) from None
