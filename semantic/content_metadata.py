"""The content metadata dimension: upserts from the API and lookups for the analytics.

Updates are appended to ``content_metadata_updates`` (lifecycle events reach the same table through
a materialized view); each field keeps the value of the latest update that set it, so an update
may carry only the fields that changed. Reads answer for the request's content scope
(semantic/content_scope.py): the metadata of content outside it is never returned.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.access import ALL_CONTENT, ContentScope
from core.errors import FieldError, ValidationFailed
from core.models import utc_now
from semantic.catalog import METADATA_FIELDS
from semantic.content_scope import current_scope
from storage.events import EventStore

UPDATES_TABLE = "content_metadata_updates"
_UPDATE_SCHEMA = pa.schema(
    [
        ("content_id", pa.string()),
        ("title", pa.string()),
        ("category", pa.string()),
        ("content_type", pa.string()),
        ("language", pa.string()),
        ("author", pa.string()),
        ("published_at", pa.timestamp("ms", tz="UTC")),
        ("updated_at", pa.timestamp("ms", tz="UTC")),
        ("source", pa.string()),
    ]
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = Field(default=None, min_length=1, max_length=256)


class ContentMetadata(BaseModel):
    content_id: str
    title: str | None = None
    category: str | None = None
    content_type: str | None = None
    language: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None


class MetadataUpdate(BaseModel):
    """The body of PUT /content-metadata/{id}: any of the fields; those left out keep their value."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=1024)
    category: str | None = _TEXT
    content_type: str | None = _TEXT
    language: str | None = Field(default=None, min_length=2, max_length=35)
    author: str | None = _TEXT
    published_at: datetime | None = None

    @field_validator("published_at")
    @classmethod
    def _as_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @classmethod
    def parse(cls, body: Any) -> MetadataUpdate:
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError(field="(body)", message="must be a JSON object", code="not_an_object")])
        try:
            update = cls.model_validate(body)
        except ValidationError as exc:
            errors = []
            for err in exc.errors(include_url=False, include_input=False):
                name = ".".join(str(p) for p in err["loc"]) or "(body)"
                code = "unknown_field" if err["type"] == "extra_forbidden" else "invalid_value"
                message = (
                    "unknown field; metadata fields are " + ", ".join(("title", *METADATA_FIELDS, "published_at"))
                    if code == "unknown_field"
                    else err["msg"]
                )
                errors.append(FieldError(field=name, message=message, code=code))
            raise ValidationFailed(errors) from exc
        if not update.model_fields_set - {name for name, value in update if value is None}:
            raise ValidationFailed(
                [
                    FieldError(
                        field="(body)",
                        message="give at least one of title, category, content_type, language, author, published_at",
                        code="missing_field",
                    )
                ]
            )
        return update


def check_content_id(content_id: str) -> str:
    if not content_id or len(content_id) > 256 or content_id != content_id.strip():
        raise ValidationFailed(
            [FieldError(field="content_id", message="must be 1-256 characters without surrounding spaces")]
        )
    return content_id


class ContentMetadataStore:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def upsert(self, content_id: str, body: Any, *, at: datetime | None = None) -> ContentMetadata:
        """Apply an update as sent (REST's JSON body, GraphQL's input as a dict): the id is checked
        before the fields, so both transports name the same error first."""
        check_content_id(content_id)
        update = MetadataUpdate.parse(body)
        row = {
            "content_id": content_id,
            "title": update.title or "",
            "category": update.category or "",
            "content_type": update.content_type or "",
            "language": update.language or "",
            "author": update.author or "",
            "published_at": update.published_at or _EPOCH,
            "updated_at": at or utc_now(),
            "source": "api",
        }
        await self._store.insert_table(UPDATES_TABLE, pa.Table.from_pylist([row], schema=_UPDATE_SCHEMA))
        # A scope narrows reads, not writes: the writer gets what it stored.
        found = (await self.get_many([content_id], scope=ALL_CONTENT)).get(content_id)
        assert found is not None  # just written
        return found

    async def get(self, content_id: str) -> ContentMetadata | None:
        return (await self.get_many([content_id])).get(content_id)

    async def get_many(
        self, content_ids: list[str], *, scope: ContentScope | None = None
    ) -> dict[str, ContentMetadata]:
        """The metadata of each id that has some, and is inside ``scope`` (by default the request's
        content scope): content outside it reads as content without metadata."""
        if not content_ids:
            return {}
        scope = current_scope() if scope is None else scope
        result = await self._store.query(
            "SELECT content_id, title, category, content_type, language, author, published_at, updated_at "
            "FROM content_metadata WHERE content_id IN {ids:Array(String)}",
            {"ids": list(content_ids)},
        )
        out = {}
        for row in result.dicts():
            for name in ("title", *METADATA_FIELDS):
                row[name] = row[name] or None
            for name in ("published_at", "updated_at"):
                value = row[name]
                if isinstance(value, datetime) and value.tzinfo is None:
                    row[name] = value.replace(tzinfo=UTC)
            if scope.admits(row["content_id"], row["category"]):
                out[row["content_id"]] = ContentMetadata(**row)
        return out
