"""Data exports: /api/v1/analytics/exports (semantic/exports.py holds the rules, docs/exports.md the guide).

Creating an export answers 202 with the export at once; the file is written by a task on the cluster
(pipelines/exports.py). An export of another principal answers 404, as an id that does not exist does.
A download is recorded in the audit log before any byte is sent, and refused (503) when it cannot be.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from core.errors import AnalyticsError
from semantic.exports import (
    DEFAULT_PAGE_SIZE,
    EXPORTS_PREFIX,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    ExportCreate,
    ExportService,
    export_to_dict,
)
from serve_app.audit_trail import record_before
from serve_app.deps import DataExporter, ServicesDep
from serve_app.file_downloads import blobs_of, file_response
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body
from serve_app.services import Services

# An analyticsQuery body fits many times over (its own limit is 256 KiB).
MAX_BODY_BYTES = 256 * 1024

router = APIRouter(prefix=EXPORTS_PREFIX, tags=["exports"])


def _service(services: Services) -> ExportService:
    if services.exports is None:
        raise AnalyticsError("exports are not available on this replica")
    return services.exports


@router.post(
    "",
    status_code=202,
    summary="Export raw events, an analytics query or a saved query as CSV, NDJSON or Parquet",
    description="Answers the export at once, status running; poll GET /exports/{id} until it is completed, "
    "then download its file (docs/exports.md).",
    responses=error_responses(403, 413),
    openapi_extra=json_body("ExportCreate", ExportCreate, "What to export, and as what (docs/exports.md)"),
)
async def create_export(request: Request, services: ServicesDep, principal: DataExporter) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    export = await _service(services).create(body, principal)
    return json_response(export_to_dict(export), status_code=202, headers={"Location": f"{EXPORTS_PREFIX}/{export.id}"})


@router.get("", summary="The caller's exports, newest first", responses=error_responses())
async def list_exports(
    services: ServicesDep,
    principal: DataExporter,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    exports, total = await _service(services).list_exports(principal, limit=limit, offset=offset)
    return json_response(
        {"items": [export_to_dict(e) for e in exports], "total": total, "limit": limit, "offset": offset}
    )


@router.get("/{export_id}", summary="One export and its status", responses=error_responses(404))
async def get_export(export_id: str, services: ServicesDep, principal: DataExporter) -> Response:
    return json_response(export_to_dict(await _service(services).get(export_id, principal)))


@router.get(
    "/{export_id}/download",
    summary="The file of a completed export, streamed",
    response_class=StreamingResponse,
    responses={200: {"description": "The export's file"}, **error_responses(403, 404, 409, 503)},
)
async def download_export(export_id: str, request: Request, services: ServicesDep, principal: DataExporter) -> Response:
    export = await _service(services).downloadable(export_id, principal)
    await record_before(request)
    assert export.blob_key is not None
    return await file_response(
        blobs_of(services),
        export.blob_key,
        file_name=export.file_name or "export",
        content_type=export.content_type,
        size=export.file_size,
        sha256=export.sha256,
        headers={"X-Export-Id": export.id},
    )
