"""Data exports in PostgreSQL (asyncpg): the ``exports`` table of migration 006_reports.sql.

An export belongs to the principal that asked for it (``owner_key_id``: an API key id or
jwt:<subject>); its role and content scope are kept with it, because the export's task computes the
file for them, off the request. Who may see an export is decided here, once for one row
(``StoredExport.visible_to``) and once as SQL for lists: the owner; an admin may read any by id.

An export is ``running`` until its task completes or fails it. A task whose worker died stops beating
(``heartbeat_at``); the reaper (pipelines/ray_jobs.py ``reap``) starts it again or fails it,
so no export stays running.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from core.access import ContentScope, Principal, Role
from core.errors import NotFound
from storage.reports import scope_from_json, scope_to_json

_COLUMNS = (
    "id, dataset, definition, export_format, status, owner_key_id, owner_role, owner_scope, attempts, created_at, "
    "started_at, heartbeat_at, finished_at, as_of, row_count, error, blob_key, content_type, file_name, file_size, "
    "sha256"
)
RUNNING, COMPLETED, FAILED = "running", "completed", "failed"


@dataclass(frozen=True, slots=True)
class StoredExport:
    id: str
    dataset: str
    definition: dict[str, Any]
    export_format: str
    status: str
    owner_key_id: str
    owner_role: Role
    owner_scope: ContentScope
    attempts: int
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    as_of: datetime | None
    row_count: int | None
    error: str | None
    blob_key: str | None
    content_type: str | None
    file_name: str | None
    file_size: int | None
    sha256: str | None

    def visible_to(self, principal: Principal) -> bool:
        """The owner sees its exports; an admin sees any (every read of one is in the audit trail)."""
        return principal.role is Role.ADMIN or principal.key_id == self.owner_key_id

    @property
    def owner(self) -> Principal:
        """Whom the file is computed for: the owner's role and content scope when it asked."""
        return Principal(key_id=self.owner_key_id, name=self.owner_key_id, role=self.owner_role, scope=self.owner_scope)


@dataclass(frozen=True, slots=True)
class NewExport:
    dataset: str
    definition: dict[str, Any]
    export_format: str


@dataclass(frozen=True, slots=True)
class ExportFile:
    """What a finished export wrote."""

    blob_key: str
    content_type: str
    file_name: str
    file_size: int
    sha256: str
    row_count: int
    as_of: datetime | None


def new_export_id() -> str:
    # Random, so an id says nothing about its neighbours and cannot be guessed.
    return "exp_" + secrets.token_hex(12)


def export_not_found(export_id: str) -> NotFound:
    # The one message for a missing id and for one the caller may not see: ids cannot be probed.
    return NotFound(f"export {export_id!r} does not exist", details={"field": "export_id"})


class ExportRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, owner: Principal, new: NewExport) -> StoredExport:
        """A running export of ``owner``; its heartbeat starts now, so one never launched is reaped."""
        row = await self._pool.fetchrow(
            "INSERT INTO exports (id, dataset, definition, export_format, owner_key_id, owner_role, owner_scope, "
            f"heartbeat_at) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7::jsonb, now()) RETURNING {_COLUMNS}",
            new_export_id(),
            new.dataset,
            json.dumps(new.definition),
            new.export_format,
            owner.key_id,
            owner.role.value,
            scope_to_json(owner.scope),
        )
        return _export(row)

    async def get(self, export_id: str) -> StoredExport | None:
        """The export whoever asks; callers check ``visible_to``."""
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM exports WHERE id = $1", export_id)
        return _export(row) if row else None

    async def list_owned(
        self, principal: Principal, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[StoredExport], int]:
        """The exports ``principal`` asked for, newest first, and how many there are in all."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM exports WHERE owner_key_id = $1 "
                "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                principal.key_id,
                limit,
                offset,
            )
            total = await conn.fetchval("SELECT count(*) FROM exports WHERE owner_key_id = $1", principal.key_id)
        return [_export(r) for r in rows], int(total)

    async def start(self, export_id: str) -> StoredExport | None:
        """Count an attempt of a running export; None when it is finished already (or gone), so a
        retried task never redoes a finished export."""
        row = await self._pool.fetchrow(
            "UPDATE exports SET attempts = attempts + 1, started_at = coalesce(started_at, now()), "
            f"heartbeat_at = now() WHERE id = $1 AND status = 'running' RETURNING {_COLUMNS}",
            export_id,
        )
        return _export(row) if row else None

    async def beat(self, export_id: str) -> None:
        await self._pool.execute(
            "UPDATE exports SET heartbeat_at = now() WHERE id = $1 AND status = 'running'", export_id
        )

    async def complete(self, export_id: str, done: ExportFile) -> StoredExport | None:
        """Mark the export completed with its file; None when it was not running any more."""
        row = await self._pool.fetchrow(
            "UPDATE exports SET status = 'completed', finished_at = now(), error = NULL, blob_key = $2, "
            "content_type = $3, file_name = $4, file_size = $5, sha256 = $6, row_count = $7, as_of = $8 "
            f"WHERE id = $1 AND status = 'running' RETURNING {_COLUMNS}",
            export_id,
            done.blob_key,
            done.content_type,
            done.file_name,
            done.file_size,
            done.sha256,
            done.row_count,
            done.as_of,
        )
        return _export(row) if row else None

    async def fail(self, export_id: str, error: str) -> StoredExport | None:
        row = await self._pool.fetchrow(
            "UPDATE exports SET status = 'failed', finished_at = now(), error = $2 "
            f"WHERE id = $1 AND status = 'running' RETURNING {_COLUMNS}",
            export_id,
            error[:4000],
        )
        return _export(row) if row else None

    async def stale(self, older_than: timedelta) -> list[StoredExport]:
        """Running exports whose task has not beaten for ``older_than``: their worker is gone."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM exports WHERE status = 'running' "
            "AND heartbeat_at < now() - $1::interval ORDER BY heartbeat_at",
            older_than,
        )
        return [_export(r) for r in rows]

    async def touch(self, export_id: str, older_than: timedelta) -> bool:
        """Claim a stale export for a retry (its heartbeat moves to now); False if it finished, beat again,
        or another reaper claimed it first."""
        status = await self._pool.execute(
            "UPDATE exports SET heartbeat_at = now() WHERE id = $1 AND status = 'running' "
            "AND heartbeat_at < now() - $2::interval",
            export_id,
            older_than,
        )
        return status.endswith(" 1")


def _export(row: asyncpg.Record) -> StoredExport:
    return StoredExport(
        id=row["id"],
        dataset=row["dataset"],
        definition=json.loads(row["definition"]),
        export_format=row["export_format"],
        status=row["status"],
        owner_key_id=row["owner_key_id"],
        owner_role=Role(row["owner_role"]),
        owner_scope=scope_from_json(row["owner_scope"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        as_of=row["as_of"],
        row_count=row["row_count"],
        error=row["error"],
        blob_key=row["blob_key"],
        content_type=row["content_type"],
        file_name=row["file_name"],
        file_size=row["file_size"],
        sha256=row["sha256"],
    )
