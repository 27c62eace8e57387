"""Report definitions and their runs in PostgreSQL (asyncpg): migration 006_reports.sql.

Who may see a report is storage/sharing.py's rule, for one row (``StoredReport.visible_to``) and as SQL
for lists: the owner, admins, the principals and roles it is shared with, and everyone who may read
reports when it is public. What a caller may do with what it sees is semantic/reports.py's.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from core.access import ALL_CONTENT, ContentScope, Principal, Role
from core.errors import Conflict, NotFound
from storage.sharing import VISIBLE_SQL, managed, visible, visible_args

_REPORT_COLUMNS = (
    "id, name, description, report_type, report_format, data_source, date_range, filters, chart_type, "
    "visualization_config, is_scheduled, schedule_config, notifications, created_by, owner_key_id, owner_role, "
    "owner_scope, shared_with, shared_with_roles, is_public, status, last_generated, output_url, file_size, "
    "created_at, updated_at, version"
)
_RUN_COLUMNS = (
    "id, report_id, status, trigger, slot_at, report_format, requested_by, requested_role, requested_scope, "
    "period_start, period_end, as_of, attempts, created_at, started_at, heartbeat_at, finished_at, error, "
    "blob_key, content_type, file_name, file_size, sha256"
)
MAX_ID_LENGTH = 100
# $1: the caller is an admin, $2: its principal id, $3: its role.
_VISIBLE = VISIBLE_SQL
# Shared with the caller (or public) but not its own; $1 is unused but typed, so both take the same arguments.
_SHARED = (
    "($1::bool IS NOT NULL AND owner_key_id <> $2 "
    "AND (is_public OR shared_with @> ARRAY[$2::text] OR shared_with_roles @> ARRAY[$3::text]))"
)


def scope_to_json(scope: ContentScope) -> str | None:
    return None if scope.unrestricted else json.dumps(scope.to_dict())


def scope_from_json(value: str | None) -> ContentScope:
    if not value:
        return ALL_CONTENT
    data = json.loads(value)
    return ContentScope.of(data.get("categories", ()), data.get("content_ids", ()))


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: str
    name: str
    description: str | None
    report_type: str
    report_format: str
    data_source: str
    date_range: dict[str, Any]
    filters: dict[str, Any]
    chart_type: str | None
    visualization_config: dict[str, Any]
    is_scheduled: bool
    schedule_config: dict[str, Any] | None
    notifications: list[dict[str, Any]]
    created_by: str
    owner_key_id: str
    owner_role: Role
    owner_scope: ContentScope
    shared_with: tuple[str, ...]
    shared_with_roles: tuple[Role, ...]
    is_public: bool
    status: str
    last_generated: datetime | None
    output_url: str | None
    file_size: int | None
    created_at: datetime
    updated_at: datetime
    version: int

    def visible_to(self, principal: Principal) -> bool:
        return visible(principal, self.owner_key_id, self.is_public, self.shared_with, self.shared_with_roles)

    def managed_by(self, principal: Principal) -> bool:
        """Only the owner or an admin changes, schedules, shares or deletes a report."""
        return managed(principal, self.owner_key_id)

    @property
    def owner(self) -> Principal:
        """Whom scheduled runs are computed for: the owner's role and content scope as stored."""
        return Principal(key_id=self.owner_key_id, name=self.created_by, role=self.owner_role, scope=self.owner_scope)


@dataclass(frozen=True, slots=True)
class NewReport:
    name: str
    description: str | None
    report_type: str
    report_format: str
    data_source: str
    date_range: dict[str, Any]
    filters: dict[str, Any] = field(default_factory=dict)
    chart_type: str | None = None
    visualization_config: dict[str, Any] = field(default_factory=dict)
    is_scheduled: bool = False
    schedule_config: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    shared_with: tuple[str, ...] = ()
    shared_with_roles: tuple[Role, ...] = ()
    is_public: bool = False


# The columns a change may set, and how each is cast; every other column is set by the store itself.
_CHANGEABLE = {
    "name": "text",
    "description": "text",
    "report_type": "text",
    "report_format": "text",
    "data_source": "text",
    "date_range": "jsonb",
    "filters": "jsonb",
    "chart_type": "text",
    "visualization_config": "jsonb",
    "is_scheduled": "bool",
    "schedule_config": "jsonb",
    "notifications": "jsonb",
    "shared_with": "text[]",
    "shared_with_roles": "text[]",
    "is_public": "bool",
    "status": "text",
}


@dataclass(frozen=True, slots=True)
class ReportRun:
    id: str
    report_id: str
    status: str
    trigger: str
    slot_at: datetime | None
    report_format: str
    requested_by: str
    requested_role: Role
    requested_scope: ContentScope
    period_start: date | None
    period_end: date | None
    as_of: datetime | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    error: str | None
    blob_key: str | None
    content_type: str | None
    file_name: str | None
    file_size: int | None
    sha256: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "report_id": self.report_id,
            "status": self.status,
            "trigger": self.trigger,
            "slot_at": _iso(self.slot_at),
            "report_format": self.report_format,
            "requested_by": self.requested_by,
            "period": None
            if self.period_start is None
            else {"start_date": self.period_start.isoformat(), "end_date": _iso(self.period_end)},
            "as_of": _iso(self.as_of),
            "attempts": self.attempts,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "error": self.error,
            "file_name": self.file_name,
            "content_type": self.content_type,
            "file_size": self.file_size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True, slots=True)
class CompletedFile:
    """What a finished run wrote."""

    blob_key: str
    content_type: str
    file_name: str
    file_size: int
    sha256: str
    as_of: datetime | None
    period_start: date
    period_end: date


def new_report_id() -> str:
    # Random, so an id says nothing about its neighbours and cannot be guessed.
    return "rep_" + secrets.token_hex(12)


def new_run_id() -> str:
    return "run_" + secrets.token_hex(12)


class ReportRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- definitions ------------------------------------------------------------------------------

    async def create(self, owner: Principal, new: NewReport) -> StoredReport:
        row = await self._pool.fetchrow(
            "INSERT INTO reports (id, name, description, report_type, report_format, data_source, date_range, "
            "filters, chart_type, visualization_config, is_scheduled, schedule_config, notifications, created_by, "
            "owner_key_id, owner_role, owner_scope, shared_with, shared_with_roles, is_public) VALUES "
            "($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10::jsonb, $11, $12::jsonb, $13::jsonb, $14, $15, "
            f"$16, $17::jsonb, $18, $19, $20) RETURNING {_REPORT_COLUMNS}",
            new_report_id(),
            new.name,
            new.description,
            new.report_type,
            new.report_format,
            new.data_source,
            json.dumps(new.date_range),
            json.dumps(new.filters),
            new.chart_type,
            json.dumps(new.visualization_config),
            new.is_scheduled,
            None if new.schedule_config is None else json.dumps(new.schedule_config),
            json.dumps(new.notifications),
            owner.name,
            owner.key_id,
            owner.role.value,
            scope_to_json(owner.scope),
            list(new.shared_with),
            [r.value for r in new.shared_with_roles],
            new.is_public,
        )
        return _report(row)

    async def get(self, report_id: str) -> StoredReport | None:
        """The report whoever asks; callers check ``visible_to``."""
        if not _storable(report_id):
            return None
        row = await self._pool.fetchrow(f"SELECT {_REPORT_COLUMNS} FROM reports WHERE id = $1", report_id)
        return _report(row) if row else None

    async def list_visible(
        self, principal: Principal, *, shared_only: bool = False, limit: int = 50, offset: int = 0
    ) -> tuple[list[StoredReport], int]:
        """The reports ``principal`` may see (or, with ``shared_only``, those shared with it), newest first,
        and how many there are in all."""
        where = _SHARED if shared_only else _VISIBLE
        args = visible_args(principal)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_REPORT_COLUMNS} FROM reports WHERE {where} "
                "ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5",
                *args,
                limit,
                offset,
            )
            total = await conn.fetchval(f"SELECT count(*) FROM reports WHERE {where}", *args)
        return [_report(r) for r in rows], int(total)

    async def update(
        self, report_id: str, changes: dict[str, Any], *, expected_version: int | None = None
    ) -> StoredReport:
        """Set ``changes`` (column -> value, columns of ``_CHANGEABLE``); the version goes up by one.
        With ``expected_version``, only if the report is still at that version (Conflict otherwise)."""
        assignments = ["version = version + 1", "updated_at = now()"]
        args: list[Any] = [report_id, expected_version]
        for column, value in changes.items():
            cast = _CHANGEABLE[column]
            if cast == "jsonb" and value is not None:
                value = json.dumps(value)
            elif cast == "text[]":
                value = [v.value if isinstance(v, Role) else v for v in value]
            args.append(value)
            assignments.append(f"{column} = ${len(args)}::{cast}")
        row = await self._pool.fetchrow(
            f"UPDATE reports SET {', '.join(assignments)} WHERE id = $1 AND ($2::int IS NULL OR version = $2) "
            f"RETURNING {_REPORT_COLUMNS}",
            *args,
        )
        if row is None:
            raise await self._missing_or_stale(report_id, expected_version)
        return _report(row)

    async def delete(self, report_id: str, *, expected_version: int | None = None) -> StoredReport:
        row = await self._pool.fetchrow(
            f"DELETE FROM reports WHERE id = $1 AND ($2::int IS NULL OR version = $2) RETURNING {_REPORT_COLUMNS}",
            report_id,
            expected_version,
        )
        if row is None:
            raise await self._missing_or_stale(report_id, expected_version)
        return _report(row)

    async def _missing_or_stale(self, report_id: str, expected_version: int | None) -> NotFound | Conflict:
        current = await self._pool.fetchval("SELECT version FROM reports WHERE id = $1", report_id)
        if current is None:
            return report_not_found(report_id)
        return Conflict(
            f"report {report_id!r} is at version {current}, not {expected_version}; "
            "read it again and apply the change to the current version",
            details={"field": "version", "current_version": current},
        )

    # --- runs -------------------------------------------------------------------------------------

    async def create_run(
        self,
        report: StoredReport,
        requester: Principal,
        *,
        trigger: str = "manual",
        slot_at: datetime | None = None,
    ) -> ReportRun:
        """A run in 'generating', and the report's status with it."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO report_runs (id, report_id, trigger, slot_at, report_format, requested_by, "
                "requested_role, requested_scope, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, now()) "
                f"RETURNING {_RUN_COLUMNS}",
                new_run_id(),
                report.id,
                trigger,
                slot_at,
                report.report_format,
                requester.key_id,
                requester.role.value,
                scope_to_json(requester.scope),
            )
            await conn.execute("UPDATE reports SET status = 'generating' WHERE id = $1", report.id)
        return _run(row)

    async def get_run(self, run_id: str) -> ReportRun | None:
        if not _storable(run_id):
            return None
        row = await self._pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM report_runs WHERE id = $1", run_id)
        return _run(row) if row else None

    async def runs_of(self, report_id: str, *, limit: int = 50, offset: int = 0) -> tuple[list[ReportRun], int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_RUN_COLUMNS} FROM report_runs WHERE report_id = $1 "
                "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                report_id,
                limit,
                offset,
            )
            total = await conn.fetchval("SELECT count(*) FROM report_runs WHERE report_id = $1", report_id)
        return [_run(r) for r in rows], int(total)

    async def completed_runs(self, report_id: str, *, limit: int = 200) -> list[ReportRun]:
        """The report's completed runs, newest first."""
        rows = await self._pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM report_runs WHERE report_id = $1 AND status = 'completed' "
            "ORDER BY finished_at DESC, id DESC LIMIT $2",
            report_id,
            limit,
        )
        return [_run(r) for r in rows]

    async def start_run(self, run_id: str) -> ReportRun | None:
        """Count an attempt of a generating run; None when the run is finished already (or gone), so a
        retried task never redoes a finished run."""
        row = await self._pool.fetchrow(
            "UPDATE report_runs SET attempts = attempts + 1, started_at = coalesce(started_at, now()), "
            f"heartbeat_at = now() WHERE id = $1 AND status = 'generating' RETURNING {_RUN_COLUMNS}",
            run_id,
        )
        return _run(row) if row else None

    async def beat(self, run_id: str) -> None:
        await self._pool.execute(
            "UPDATE report_runs SET heartbeat_at = now() WHERE id = $1 AND status = 'generating'", run_id
        )

    async def complete_run(self, run_id: str, done: CompletedFile, *, output_url: str) -> ReportRun | None:
        """Mark the run completed with its file, and the report's status, last_generated, output and size."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE report_runs SET status = 'completed', finished_at = now(), error = NULL, blob_key = $2, "
                "content_type = $3, file_name = $4, file_size = $5, sha256 = $6, as_of = $7, period_start = $8, "
                f"period_end = $9 WHERE id = $1 AND status = 'generating' RETURNING {_RUN_COLUMNS}",
                run_id,
                done.blob_key,
                done.content_type,
                done.file_name,
                done.file_size,
                done.sha256,
                done.as_of,
                done.period_start,
                done.period_end,
            )
            if row is None:
                return None
            await conn.execute(
                "UPDATE reports SET status = 'completed', last_generated = now(), output_url = $2, file_size = $3 "
                "WHERE id = $1",
                row["report_id"],
                output_url,
                done.file_size,
            )
        return _run(row)

    async def fail_run(self, run_id: str, error: str) -> ReportRun | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE report_runs SET status = 'failed', finished_at = now(), error = $2 "
                f"WHERE id = $1 AND status = 'generating' RETURNING {_RUN_COLUMNS}",
                run_id,
                error[:4000],
            )
            if row is None:
                return None
            # The report shows the outcome of its latest run.
            await conn.execute(
                "UPDATE reports SET status = 'failed' WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM report_runs "
                "WHERE report_id = $1 AND created_at > $2)",
                row["report_id"],
                row["created_at"],
            )
        return _run(row)

    async def stale_runs(self, older_than: timedelta) -> list[ReportRun]:
        """Generating runs whose task has not beaten for ``older_than``: their worker is gone."""
        rows = await self._pool.fetch(
            f"SELECT {_RUN_COLUMNS} FROM report_runs WHERE status = 'generating' "
            "AND heartbeat_at < now() - $1::interval ORDER BY heartbeat_at",
            older_than,
        )
        return [_run(r) for r in rows]

    async def touch_run(self, run_id: str, older_than: timedelta) -> bool:
        """Claim a stale run for a retry (its heartbeat moves to now); False if it finished, beat again, or
        another reaper claimed it first."""
        status = await self._pool.execute(
            "UPDATE report_runs SET heartbeat_at = now() WHERE id = $1 AND status = 'generating' "
            "AND heartbeat_at < now() - $2::interval",
            run_id,
            older_than,
        )
        return status.endswith(" 1")


def _storable(identifier: str) -> bool:
    # No stored id is longer or holds U+0000 (which PostgreSQL text cannot hold): such an id is unknown.
    return len(identifier) <= MAX_ID_LENGTH and "\x00" not in identifier


def report_not_found(report_id: str) -> NotFound:
    # The one message for a missing id and for one the caller may not see: ids cannot be probed.
    return NotFound(f"report {report_id!r} does not exist", details={"field": "report_id"})


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(value: Any, default: Any) -> Any:
    return default if value is None else json.loads(value)


def _report(row: asyncpg.Record) -> StoredReport:
    return StoredReport(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        report_type=row["report_type"],
        report_format=row["report_format"],
        data_source=row["data_source"],
        date_range=_json(row["date_range"], {}),
        filters=_json(row["filters"], {}),
        chart_type=row["chart_type"],
        visualization_config=_json(row["visualization_config"], {}),
        is_scheduled=row["is_scheduled"],
        schedule_config=_json(row["schedule_config"], None),
        notifications=_json(row["notifications"], []),
        created_by=row["created_by"],
        owner_key_id=row["owner_key_id"],
        owner_role=Role(row["owner_role"]),
        owner_scope=scope_from_json(row["owner_scope"]),
        shared_with=tuple(row["shared_with"]),
        shared_with_roles=tuple(Role(r) for r in row["shared_with_roles"]),
        is_public=row["is_public"],
        status=row["status"],
        last_generated=row["last_generated"],
        output_url=row["output_url"],
        file_size=row["file_size"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


def _run(row: asyncpg.Record) -> ReportRun:
    return ReportRun(
        id=row["id"],
        report_id=row["report_id"],
        status=row["status"],
        trigger=row["trigger"],
        slot_at=row["slot_at"],
        report_format=row["report_format"],
        requested_by=row["requested_by"],
        requested_role=Role(row["requested_role"]),
        requested_scope=scope_from_json(row["requested_scope"]),
        period_start=row["period_start"],
        period_end=row["period_end"],
        as_of=row["as_of"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        finished_at=row["finished_at"],
        error=row["error"],
        blob_key=row["blob_key"],
        content_type=row["content_type"],
        file_name=row["file_name"],
        file_size=row["file_size"],
        sha256=row["sha256"],
    )
