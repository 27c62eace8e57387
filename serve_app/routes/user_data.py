"""A user's data (admin, docs/security.md#privacy): erase it (a job, answered at once), follow the job and
read its receipt, and export everything held about the user as JSON lines."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from core.errors import StoreUnavailable
from semantic.erasure import job_view
from semantic.privacy import Privacy
from serve_app.audit_trail import record_before
from serve_app.deps import ServicesDep, UserDataEraser, UserDataExporter
from serve_app.http import json_response
from serve_app.openapi import error_responses
from serve_app.services import Services

router = APIRouter(prefix="/api/v1/analytics/users", tags=["privacy"])

NDJSON = "application/x-ndjson"


class ErasureAccepted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    status: str = Field(description="pending, running or completed")
    # False: the user's unfinished job already existed; this is it.
    created: bool
    status_url: str


class ErasureStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str
    status: str = Field(description="pending, running or completed")
    step: str | None = Field(description="the last step finished (docs/security.md#erasure)")
    requested_at: str
    started_at: str | None
    completed_at: str | None
    attempts: int
    last_error: str | None = Field(description="the kind of error that stopped the last attempt; it is retried")
    receipt: dict[str, Any] | None = Field(description="once completed: what was removed, with counts and times")
    receipt_sha256: str | None = Field(description="SHA-256 of the receipt's canonical JSON")


def _privacy(services: Services) -> Privacy:
    # Services made otherwise (tests' in-process fakes) may have none.
    privacy: Privacy | None = getattr(services, "privacy", None)
    if privacy is None:
        raise StoreUnavailable("the privacy services are not running in this process")
    return privacy


def _status_url(user_id: str, job_id: str) -> str:
    return f"/api/v1/analytics/users/{quote(user_id, safe='')}/data/erasure/{job_id}"


@router.delete(
    "/{user_id}/data",
    status_code=202,
    summary="Erase everything held about a user (right to be forgotten); answers with the job at once",
    responses={202: {"model": ErasureAccepted}, **error_responses(404)},
)
async def erase_user_data(request: Request, user_id: str, services: ServicesDep, principal: UserDataEraser) -> Response:
    await record_before(request)
    privacy = _privacy(services)
    job, created = await privacy.erasure.request(user_id, principal.key_id)
    body = ErasureAccepted(
        job_id=job.id, status=job.status, created=created, status_url=_status_url(user_id.strip(), job.id)
    )
    return json_response(body.model_dump(), status_code=202)


@router.get(
    "/{user_id}/data/erasure/{job_id}",
    summary="An erasure job's status, and its receipt once completed",
    responses={200: {"model": ErasureStatus}, **error_responses(404)},
)
async def erasure_status(user_id: str, job_id: str, services: ServicesDep, _: UserDataEraser) -> Response:
    job = await _privacy(services).erasure.status(user_id, job_id)
    return json_response(job_view(job))


@router.get(
    "/{user_id}/data",
    summary="Everything held about a user (access request), as JSON lines",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One JSON object per line, each naming its record; the last is the summary",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **error_responses(404),
    },
)
async def export_user_data(request: Request, user_id: str, services: ServicesDep, _: UserDataExporter) -> Response:
    await record_before(request)
    access = _privacy(services).access
    user_id = access.check(user_id)
    return StreamingResponse(
        access.lines(user_id),
        media_type=NDJSON,
        headers={"Content-Disposition": 'attachment; filename="user-data.jsonl"', "Cache-Control": "no-store"},
    )
