"""Data retention (admin): GET /api/v1/admin/retention lists every ClickHouse table that stores rows
with its TTL, the retention its class is configured for, its row count and its oldest row
(semantic/data_retention.py; docs/operations.md#retention)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from semantic.data_retention import RetentionReport, retention_report
from serve_app.deps import RetentionReader, ServicesDep
from serve_app.http import json_response
from serve_app.openapi import error_responses
from storage.table_retention import RetentionPolicy

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

# Admins only: the listing names every table and how much it holds.


@router.get(
    "/retention",
    summary="Every stored table: its retention TTL, the configured retention, rows and oldest row",
    responses={200: {"model": RetentionReport}, **error_responses()},
)
async def retention(services: ServicesDep, _: RetentionReader) -> Response:
    report = await retention_report(services.events, RetentionPolicy.from_settings(services.settings))
    return json_response(report.model_dump(mode="json"))
