"""A file of the file store (storage/blobs.py) as a download: streamed piece by piece, each piece
authenticated before it is sent, with its size, SHA-256 (as the ETag) and name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from core.errors import AnalyticsError
from serve_app.services import Services
from storage.blobs import BlobStore


def blobs_of(services: Services) -> BlobStore:
    if services.blobs is None:
        raise AnalyticsError("the file store is not available on this replica")
    return services.blobs


async def file_response(
    blobs: BlobStore,
    key: str,
    *,
    file_name: str,
    content_type: str | None,
    size: int | None,
    sha256: str | None,
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    reader = await blobs.open(key)

    async def body() -> AsyncIterator[bytes]:
        async with reader:
            async for piece in reader:
                yield piece

    return StreamingResponse(
        body(),
        media_type=content_type or "application/octet-stream",
        headers={
            # The plain name for old clients, the exact (UTF-8) one for the others (RFC 6266).
            "Content-Disposition": f"attachment; filename=\"{_ascii(file_name)}\"; filename*=UTF-8''{quote(file_name)}",
            "Content-Length": str(size),
            "Cache-Control": "private, no-store",
            "ETag": f'"{sha256}"',
            **(headers or {}),
        },
    )


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and c not in '"\\' and c.isprintable() else "_" for c in name)
