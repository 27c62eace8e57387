"""The content metadata dimension: PUT /api/v1/analytics/content-metadata/{content_id} (service or admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import NotFound
from semantic.content_metadata import MetadataUpdate
from serve_app.deps import ContentMetadataReader, ContentMetadataWriter, ServicesDep
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body

router = APIRouter(prefix="/api/v1/analytics/content-metadata", tags=["content metadata"])


@router.put(
    "/{content_id}",
    summary="Create or update a content's metadata; fields left out keep their value",
    responses=error_responses(413, 422),
    openapi_extra=json_body("MetadataUpdate", MetadataUpdate, "The fields to set; those left out keep their value"),
)
async def put_content_metadata(
    content_id: str, request: Request, services: ServicesDep, _: ContentMetadataWriter
) -> Response:
    body = await read_json(request, max_bytes=services.settings.max_event_bytes)
    stored = await services.analytics.metadata.upsert(content_id, body)
    return json_response(stored.model_dump(mode="json"))


@router.get("/{content_id}", summary="A content's metadata as the analytics see it", responses=error_responses(404))
async def get_content_metadata(content_id: str, services: ServicesDep, _: ContentMetadataReader) -> Response:
    found = await services.analytics.metadata.get(content_id)
    if found is None:
        raise NotFound(
            f"no metadata for content {content_id!r}", details={"field": "content_id", "content_id": content_id}
        )
    return json_response(found.model_dump(mode="json"))
