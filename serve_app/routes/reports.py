"""Reports: /api/v1/analytics/reports (semantic/reports.py holds the rules, docs/reports.md the guide).

A report the caller may not see answers 404, as an id that does not exist does; one shared with the
caller but not owned by it answers 403 to a change. Generation answers 202 with the run at once; the
file is made by a task on the cluster (pipelines/report_runs.py).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from core.access import CAN_DOWNLOAD_REPORTS, Operation, Principal
from core.errors import AnalyticsError, InvalidRequest
from semantic.report_definitions import ReportCreate, ReportPermissions, ReportScheduleBody, ReportShare, ReportUpdate
from semantic.reports import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE, REPORTS_PREFIX, ReportService, report_to_dict
from serve_app.audit_trail import record_before
from serve_app.deps import Allow, ReportManager, ReportReader, ServicesDep
from serve_app.file_downloads import blobs_of, file_response
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body
from serve_app.services import Services
from storage.blobs import BlobStore
from storage.reports import ReportRun

MAX_BODY_BYTES = 64 * 1024
MAX_VERSION = 2**31 - 1

router = APIRouter(prefix=REPORTS_PREFIX, tags=["reports"])

_download_reports = Allow(CAN_DOWNLOAD_REPORTS)


async def _downloader_or_signed_link(request: Request) -> Principal | None:
    """A download with a signed link (``signature`` in the query) needs no credentials; any other needs a
    principal that may download report files. Either way the download is in the audit trail."""
    if "signature" in request.query_params:
        request.state.principal = None
        request.state.operation = Operation.DOWNLOAD_REPORTS
        return None
    return await _download_reports(request)


def _service(services: Services) -> ReportService:
    if services.reports is None:
        raise AnalyticsError("reports are not available on this replica")
    return services.reports


def _page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "",
    status_code=201,
    summary="Create a report definition; the caller owns it",
    responses=error_responses(403, 409, 413, 422),
    openapi_extra=json_body("ReportCreate", ReportCreate, "The report definition (docs/reports.md)"),
)
async def create_report(request: Request, services: ServicesDep, principal: ReportManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    report = await _service(services).create(body, principal)
    return json_response(report_to_dict(report), status_code=201, headers={"Location": f"{REPORTS_PREFIX}/{report.id}"})


@router.get("", summary="The reports the caller may see, newest first", responses=error_responses())
async def list_reports(
    services: ServicesDep,
    principal: ReportReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    reports, total = await _service(services).list_reports(principal, limit=limit, offset=offset)
    return json_response(_page([report_to_dict(r) for r in reports], total, limit, offset))


@router.get(
    "/shared",
    summary="The reports shared with the caller (by id, by role, or public) that it does not own",
    responses=error_responses(),
)
async def shared_reports(
    services: ServicesDep,
    principal: ReportReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    reports, total = await _service(services).list_reports(principal, shared_only=True, limit=limit, offset=offset)
    return json_response(_page([report_to_dict(r) for r in reports], total, limit, offset))


@router.get("/{report_id}", summary="One report definition", responses=error_responses(404))
async def get_report(report_id: str, services: ServicesDep, principal: ReportReader) -> Response:
    return json_response(report_to_dict(await _service(services).get(report_id, principal)))


@router.put(
    "/{report_id}",
    summary="Change a report's definition (owner or admin); with version, only if it is still that version",
    responses=error_responses(403, 404, 409, 413, 422),
    openapi_extra=json_body("ReportUpdate", ReportUpdate, "The fields to change (docs/reports.md)"),
)
async def update_report(report_id: str, request: Request, services: ServicesDep, principal: ReportManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    return json_response(report_to_dict(await _service(services).update(report_id, body, principal)))


@router.delete(
    "/{report_id}",
    status_code=204,
    summary="Delete a report, its runs and their files (owner or admin)",
    responses=error_responses(403, 404, 409),
)
async def delete_report(
    report_id: str,
    services: ServicesDep,
    principal: ReportManager,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    await _service(services).delete(report_id, principal, version=version)
    return Response(status_code=204)


@router.post(
    "/{report_id}/generate",
    status_code=202,
    summary="Generate the report for the caller (its role and content scope); answers the run at once",
    responses=error_responses(403, 404),
)
async def generate_report(report_id: str, services: ServicesDep, principal: ReportReader) -> Response:
    run = await _service(services).generate(report_id, principal)
    return json_response(
        run.to_dict(),
        status_code=202,
        headers={"Location": f"{REPORTS_PREFIX}/{report_id}/status?run_id={quote(run.id)}"},
    )


@router.get(
    "/{report_id}/status",
    summary="The report's status and its latest run (or the run named by run_id)",
    responses=error_responses(404),
)
async def report_status(
    report_id: str,
    services: ServicesDep,
    principal: ReportReader,
    run_id: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    service = _service(services)
    report, run = await service.status(report_id, principal, run_id)
    answer: dict[str, Any] = {
        "report_id": report.id,
        "status": report.status,
        "last_generated": report.last_generated.isoformat() if report.last_generated else None,
        "run": run.to_dict() if run is not None else None,
    }
    if run is not None:
        answer["run"]["deliveries"] = await service.deliveries(report_id, run.id, principal)
    return json_response(answer)


@router.get("/{report_id}/runs", summary="The report's runs, newest first", responses=error_responses(404))
async def report_runs(
    report_id: str,
    services: ServicesDep,
    principal: ReportReader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    runs, total = await _service(services).runs(report_id, principal, limit=limit, offset=offset)
    return json_response(_page([r.to_dict() for r in runs], total, limit, offset))


@router.get(
    "/{report_id}/download",
    summary="The file of the latest completed run the caller may read, or of run_id; or with a signed link",
    response_class=StreamingResponse,
    responses={200: {"description": "The report file"}, **error_responses(403, 404)},
)
async def download_report(
    report_id: str,
    request: Request,
    services: ServicesDep,
    principal: Annotated[Principal | None, Depends(_downloader_or_signed_link)],
    run_id: Annotated[str | None, Query(max_length=100)] = None,
    expires: Annotated[int | None, Query(ge=0)] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    service = _service(services)
    # The entry is stored before a byte is sent; without it, no file leaves (503).
    await record_before(request)
    if principal is None:
        if run_id is None or expires is None or signature is None:
            raise InvalidRequest(
                "a signed link carries run_id, expires and signature; send it unchanged",
                details={"field": "signature"},
            )
        run = await service.signed_download(report_id, run_id, expires, signature)
    else:
        run = await service.downloadable(report_id, principal, run_id)
    return await _file_response(blobs_of(services), run)


async def _file_response(blobs: BlobStore, run: ReportRun) -> Response:
    assert run.blob_key is not None
    return await file_response(
        blobs,
        run.blob_key,
        file_name=run.file_name or "report",
        content_type=run.content_type,
        size=run.file_size,
        sha256=run.sha256,
        headers={"X-Report-Run": run.id},
    )


@router.post(
    "/{report_id}/schedule",
    summary="Schedule the report (cron and time zone in schedule_config), or stop it with is_scheduled=false",
    responses=error_responses(403, 404, 413, 422),
    openapi_extra=json_body("ReportScheduleBody", ReportScheduleBody, "The schedule (docs/reports.md#schedules)"),
)
async def schedule_report(
    report_id: str, request: Request, services: ServicesDep, principal: ReportManager
) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    return json_response(report_to_dict(await _service(services).schedule(report_id, body, principal)))


@router.post(
    "/{report_id}/share",
    summary="Share the report with principals and roles; with link_expires_in_seconds, mint a signed download link",
    responses=error_responses(403, 404, 413, 422),
    openapi_extra=json_body("ReportShare", ReportShare, "Whom to add, and/or a signed link to mint"),
)
async def share_report(report_id: str, request: Request, services: ServicesDep, principal: ReportManager) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    report, link = await _service(services).share(report_id, body, principal)
    answer: dict[str, Any] = {"report": report_to_dict(report), "link": None}
    if link is not None:
        answer["link"] = {"url": link.url, "expires_at": link.expires_at}
    return json_response(answer)


@router.put(
    "/{report_id}/permissions",
    summary="Replace who may read the report: shared_with, shared_with_roles, is_public (owner or admin)",
    responses=error_responses(403, 404, 413, 422),
    openapi_extra=json_body("ReportPermissions", ReportPermissions, "The readers, replaced as a whole"),
)
async def report_permissions(
    report_id: str, request: Request, services: ServicesDep, principal: ReportManager
) -> Response:
    body = await read_json(request, max_bytes=MAX_BODY_BYTES)
    return json_response(report_to_dict(await _service(services).set_permissions(report_id, body, principal)))
