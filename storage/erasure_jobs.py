"""Erasure jobs in PostgreSQL (``erasure_jobs``, migration 005): what each job is to erase, the steps it
finished, what they removed, and its receipt (semantic/erasure.py runs them).

One runner at a time works on a job: ``claim`` holds a PostgreSQL advisory lock on the job for as long
as the runner's connection lives, so a runner killed mid-job lets go of it at once and the next one
(another replica, or this one after a restart) takes it up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

COMPLETED = "completed"
_COLUMNS = (
    "id, user_digest, user_ids, status, step, requested_by, requested_at, started_at, suppressed_at, "
    "updated_at, completed_at, plan, removed, receipt, receipt_sha256, attempts, last_error"
)


@dataclass(frozen=True, slots=True)
class ErasureJob:
    id: str
    user_digest: str
    # The id as given and its stored forms; None once the job completed.
    user_ids: list[str] | None
    status: str
    step: str
    requested_by: str | None
    requested_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    suppressed_at: datetime | None = None
    completed_at: datetime | None = None
    plan: dict[str, Any] | None = None
    removed: dict[str, Any] = field(default_factory=dict)
    receipt: dict[str, Any] | None = None
    receipt_sha256: str | None = None
    attempts: int = 0
    last_error: str | None = None


def _job(row: asyncpg.Record) -> ErasureJob:
    data = dict(row)
    for name in ("plan", "removed", "receipt"):
        if data[name] is not None:
            data[name] = json.loads(data[name])
    data["user_ids"] = list(data["user_ids"]) if data["user_ids"] is not None else None
    return ErasureJob(**data)


def _lock_key(job_id: str) -> int:
    """The job's advisory lock: a signed 64-bit number from its id."""
    return int.from_bytes(hashlib.sha256(b"erasure-job\x00" + job_id.encode()).digest()[:8], "big", signed=True)


class ErasureJobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def open_or_create(
        self, user_digest: str, user_ids: list[str], requested_by: str | None
    ) -> tuple[ErasureJob, bool]:
        """The user's unfinished job, or a new one; and whether it is new."""
        job_id = "erasure_" + secrets.token_hex(8)
        row = await self._pool.fetchrow(
            f"INSERT INTO erasure_jobs (id, user_digest, user_ids, requested_by) VALUES ($1, $2, $3, $4) "
            f"ON CONFLICT (user_digest) WHERE status <> '{COMPLETED}' DO NOTHING RETURNING {_COLUMNS}",
            job_id,
            user_digest,
            user_ids,
            requested_by,
        )
        if row is not None:
            return _job(row), True
        existing = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM erasure_jobs WHERE user_digest = $1 AND status <> '{COMPLETED}'", user_digest
        )
        if existing is None:  # it completed in between: ask again
            return await self.open_or_create(user_digest, user_ids, requested_by)
        return _job(existing), False

    async def get(self, job_id: str) -> ErasureJob | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM erasure_jobs WHERE id = $1", job_id)
        return _job(row) if row is not None else None

    async def unfinished(self) -> list[str]:
        rows = await self._pool.fetch(
            f"SELECT id FROM erasure_jobs WHERE status <> '{COMPLETED}' ORDER BY requested_at, id"
        )
        return [row["id"] for row in rows]

    async def of_user(self, user_digest: str) -> list[ErasureJob]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM erasure_jobs WHERE user_digest = $1 ORDER BY requested_at", user_digest
        )
        return [_job(row) for row in rows]

    @contextlib.asynccontextmanager
    async def claim(self, job_id: str) -> AsyncIterator[bool]:
        """Hold the job's lock while the block runs; yields False when another runner holds it."""
        async with self._pool.acquire() as conn:
            key = _lock_key(job_id)
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                yield False
                return
            try:
                yield True
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", key)

    async def started(self, job_id: str) -> ErasureJob:
        row = await self._pool.fetchrow(
            "UPDATE erasure_jobs SET status = 'running', started_at = coalesce(started_at, now()), "
            f"attempts = attempts + 1, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            job_id,
        )
        return _job(row)

    async def finished_step(
        self,
        job_id: str,
        step: str,
        *,
        removed: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
        suppressed: bool = False,
    ) -> ErasureJob:
        """Record ``step`` as done, with what it removed (merged into ``removed`` under its keys), the plan
        it made, or the time the user was suppressed."""
        row = await self._pool.fetchrow(
            "UPDATE erasure_jobs SET step = $2, removed = removed || $3::jsonb, plan = coalesce($4::jsonb, plan), "
            "suppressed_at = CASE WHEN $5 THEN coalesce(suppressed_at, now()) ELSE suppressed_at END, "
            f"last_error = NULL, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            job_id,
            step,
            json.dumps(removed or {}),
            json.dumps(plan) if plan is not None else None,
            suppressed,
        )
        return _job(row)

    async def replan(self, job_id: str, step: str, removed: dict[str, Any]) -> None:
        """Go back to ``step`` and forget the plan (the user's data was not where it said), keeping what was
        removed so far."""
        await self._pool.execute(
            "UPDATE erasure_jobs SET step = $2, plan = NULL, removed = removed || $3::jsonb, updated_at = now() "
            "WHERE id = $1",
            job_id,
            step,
            json.dumps(removed),
        )

    async def failed(self, job_id: str, error: str) -> None:
        await self._pool.execute(
            "UPDATE erasure_jobs SET last_error = $2, updated_at = now() WHERE id = $1", job_id, error
        )

    async def receipt_written(self, job_id: str, step: str, receipt: dict[str, Any], digest: str) -> ErasureJob:
        row = await self._pool.fetchrow(
            "UPDATE erasure_jobs SET step = $2, receipt = $3::jsonb, receipt_sha256 = $4, "
            f"completed_at = $5, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            job_id,
            step,
            json.dumps(receipt),
            digest,
            datetime.fromisoformat(receipt["completed_at"]),
        )
        return _job(row)

    async def audited(self, action: str, job_id: str) -> bool:
        """Whether the audit log holds an ``action`` entry for the job (a resumed job writes it once)."""
        found = await self._pool.fetchval(
            "SELECT 1 FROM audit_log WHERE action = $1 AND target = $2 LIMIT 1", action, job_id
        )
        return bool(found)

    async def complete(self, job_id: str) -> ErasureJob:
        """Done: the ids, and the plan naming the user's sessions, are dropped; the digest and the receipt stay."""
        row = await self._pool.fetchrow(
            f"UPDATE erasure_jobs SET status = '{COMPLETED}', step = '{COMPLETED}', user_ids = NULL, plan = NULL, "
            f"updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            job_id,
        )
        return _job(row)


async def erase_user_rows(pool: asyncpg.Pool, user_ids: list[str]) -> dict[str, int]:
    """Delete the user's rows from every table of the metadata database with a ``user_id`` column;
    returns the rows deleted per table."""
    removed: dict[str, int] = {}
    async with pool.acquire() as conn, conn.transaction():
        for table in await _user_tables(conn):
            status = await conn.execute(f"DELETE FROM {_quoted(table)} WHERE user_id::text = ANY($1::text[])", user_ids)
            removed[table] = int(status.split()[-1])
    return removed


async def user_rows(pool: asyncpg.Pool, user_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The user's rows in every table of the metadata database with a ``user_id`` column."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as conn:
        for table in await _user_tables(conn):
            rows = await conn.fetch(f"SELECT * FROM {_quoted(table)} WHERE user_id::text = ANY($1::text[])", user_ids)
            found[table] = [dict(row) for row in rows]
    return found


async def _user_tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.table_name FROM information_schema.columns AS c JOIN information_schema.tables AS t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND c.column_name = 'user_id' AND t.table_type = 'BASE TABLE' "
        "ORDER BY c.table_name"
    )
    return [row["table_name"] for row in rows]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
