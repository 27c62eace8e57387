"""Right to be forgotten: the erasure job (docs/security.md#erasure).

``DELETE /api/v1/analytics/users/{user_id}/data`` makes a job (storage/erasure_jobs.py) and answers at
once; a runner in every replica works through the unfinished jobs, one runner per job (an advisory
lock), and picks up a job whose runner died. Its steps, each recorded when done and each safe to run
again, so a job cut short anywhere is finished by the next run:

1. ``suppressed``: the digests of the user's id forms join the suppression list; from the replicas'
   next reload on, events for the user are refused at ingest. The job waits two reload periods.
2. ``planned``: where the user's data is in ClickHouse, once every acknowledged event is stored and in
   the rollups: their rows, days and sessions (storage/user_data_tables.py). Kept with the job.
3. ``clickhouse``: the rollup slices of those days and sessions are refilled without the user, their
   rows deleted, and the tables checked: a row still naming the user (an event accepted before the
   suppression reached its replica) sends the job back to plan again.
4. ``live``: every counter shard re-reads its window from ClickHouse, and the live hub recomputes.
5. ``redis``: cached answers, and any key naming the user (storage/redis_user_data.py).
6. ``postgres``: rows of the metadata database's tables with a ``user_id`` column.
7. ``receipt``: what was removed, with counts and times, and the SHA-256 of it; written to the audit
   log (``user_data.erasure_completed``), then the job completes and forgets the id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from core.errors import InvalidRequest, NotFound
from core.settings import Settings
from core.user_ids import stored_forms, suppression_digest
from storage.erasure_jobs import COMPLETED, ErasureJob, ErasureJobs, erase_user_rows
from storage.suppression_list import SuppressionList

log = logging.getLogger("analytics.erasure")

STEPS = ("suppressed", "planned", "clickhouse", "live", "redis", "postgres", "receipt", COMPLETED)
AUDIT_ACTION = "user_data.erasure_completed"
MAX_USER_ID_LENGTH = 256
# Jobs one replica runs at once (each holds a database connection for its lock while it runs).
CONCURRENT_JOBS = 2


class UserDataStore(Protocol):
    """The event store's part of an erasure (actors/event_store.py; storage/user_data_tables.py)."""

    async def user_data_plan(self, user_ids: list[str]) -> dict[str, Any]: ...
    async def erase_user_data(self, user_ids: list[str], plan: dict[str, Any]) -> dict[str, Any]: ...
    async def user_data_remaining(self, user_ids: list[str]) -> dict[str, int]: ...


class AuditLog(Protocol):
    """storage.metadata.MetadataStore.audit."""

    async def audit(
        self, action: str, *, actor_key_id: str | None, target: str | None = None, details: dict[str, Any] | None = None
    ) -> None: ...


# The live counters re-read ClickHouse; returns how many counter shards did.
LiveReset = Callable[[], Awaitable[int]]
# Redis: deletes what holds the user; returns counts.
RedisErase = Callable[[list[str]], Awaitable[dict[str, int]]]
# PostgreSQL: deletes the user's rows; returns the rows per table.
PostgresErase = Callable[[list[str]], Awaitable[dict[str, int]]]


class LeftoverRows(RuntimeError):
    """Rows naming the user are still there after the ClickHouse step: plan again."""


def checked_user_id(user_id: str) -> str:
    """The user id of a request path, as ingest stores it (surrounding blanks dropped), or a 400."""
    value = user_id.strip()
    if not value or len(value) > MAX_USER_ID_LENGTH or "\x00" in value:
        raise InvalidRequest(
            f"user_id must hold 1 to {MAX_USER_ID_LENGTH} characters besides surrounding blanks, none of them U+0000",
            details={"field": "user_id"},
        )
    return value


def canonical_json(data: Any) -> bytes:
    """The bytes a receipt's SHA-256 is taken over: keys sorted, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def receipt_digest(receipt: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(receipt)).hexdigest()


def _done(job: ErasureJob, step: str) -> bool:
    return job.step in STEPS and STEPS.index(job.step) >= STEPS.index(step)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _added(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two ClickHouse results of one job (it planned twice): counts added table by table."""
    out = {table: dict(figures) for table, figures in earlier.items()}
    for table, figures in later.items():
        mine = out.setdefault(table, {})
        for name, value in figures.items():
            mine[name] = mine.get(name, 0) + value
    return out


class ErasureService:
    def __init__(
        self,
        *,
        jobs: ErasureJobs,
        store: UserDataStore,
        suppression: SuppressionList,
        audit: AuditLog,
        settings: Settings,
        live: LiveReset | None = None,
        redis: RedisErase | None = None,
        postgres: PostgresErase | None = None,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._suppression = suppression
        self._audit = audit
        self._settings = settings
        self._live = live
        self._redis = redis
        self._postgres = postgres
        # Every replica reloads the suppression list this often; two periods and all have the user.
        self._propagation_seconds = 2 * settings.suppression_refresh_seconds
        self._running: dict[str, asyncio.Task[bool]] = {}
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def on_pool(cls, pool: Any, **options: Any) -> ErasureService:
        """The service with its jobs and PostgreSQL rows in ``pool``'s database."""

        async def postgres(user_ids: list[str]) -> dict[str, int]:
            return await erase_user_rows(pool, user_ids)

        return cls(jobs=ErasureJobs(pool), postgres=postgres, **options)

    # ---- requests -------------------------------------------------------------------------
    def forms(self, user_id: str) -> list[str]:
        """Every form the user's id may be stored under (core/user_ids.py)."""
        settings = self._settings
        return stored_forms(user_id, settings.user_id_hash_salt, settings.user_id_hash_previous_salts)

    async def request(self, user_id: str, requested_by: str | None) -> tuple[ErasureJob, bool]:
        """The user's erasure job (a new one, or the one not finished yet) and whether it is new; its
        runner starts at once."""
        user_id = checked_user_id(user_id)
        job, new = await self._jobs.open_or_create(suppression_digest(user_id).hex(), self.forms(user_id), requested_by)
        self._wake.set()
        return job, new

    async def status(self, user_id: str, job_id: str) -> ErasureJob:
        """A job of this user; 404 for an unknown job or another user's."""
        job = await self._jobs.get(job_id)
        if job is None or job.user_digest != suppression_digest(checked_user_id(user_id)).hex():
            raise NotFound(f"erasure job {job_id!r} does not exist for this user")
        return job

    async def jobs_of(self, user_id: str) -> list[ErasureJob]:
        return await self._jobs.of_user(suppression_digest(checked_user_id(user_id)).hex())

    # ---- the runner -----------------------------------------------------------------------
    def start(self) -> None:
        """Run and resume jobs from now on: at once, when a request comes, and every
        ``erasure_poll_seconds`` (call in the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                for job_id in await self._jobs.unfinished():
                    if job_id not in self._running:
                        self._running[job_id] = asyncio.get_running_loop().create_task(self._run_in_slot(job_id))
            except Exception:  # PostgreSQL away: look again next period
                log.warning("could not list the unfinished erasure jobs", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._settings.erasure_poll_seconds)
            self._wake.clear()

    async def _run_in_slot(self, job_id: str) -> bool:
        try:
            async with self._slots:
                return await self.run(job_id)
        finally:
            self._running.pop(job_id, None)

    async def run_unfinished(self) -> list[str]:
        """Run every unfinished job this runner can claim, one after the other; returns those completed."""
        return [job_id for job_id in await self._jobs.unfinished() if await self.run(job_id)]

    async def run(self, job_id: str) -> bool:
        """Run the job to its end if no other runner holds it; whether it is complete. A step that fails
        leaves the job to the next attempt."""
        async with self._jobs.claim(job_id) as claimed:
            if not claimed:
                return False
            job = await self._jobs.get(job_id)
            if job is None:
                return False
            if job.status == COMPLETED:
                return True
            job = await self._jobs.started(job_id)
            try:
                await self._steps(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Only the error's kind is kept: a message could quote the user's id.
                await self._jobs.failed(job_id, type(exc).__name__)
                log.warning(
                    "erasure job %s stopped after step %r (%s); it is tried again", job_id, job.step, type(exc).__name__
                )
                return False
            return True

    async def _steps(self, job: ErasureJob) -> None:
        ids = job.user_ids
        if not ids:
            raise RuntimeError("an unfinished erasure job without its user ids")
        if not _done(job, "suppressed"):
            await self._suppression.add([suppression_digest(form) for form in ids], job.id)
            job = await self._jobs.finished_step(job.id, "suppressed", suppressed=True)
        if not _done(job, "planned"):
            assert job.suppressed_at is not None
            waited = (datetime.now(UTC) - job.suppressed_at).total_seconds()
            if waited < self._propagation_seconds:
                await asyncio.sleep(self._propagation_seconds - waited)
            plan = await self._store.user_data_plan(ids)
            job = await self._jobs.finished_step(job.id, "planned", plan=plan)
        if not _done(job, "clickhouse"):
            assert job.plan is not None
            erased = await self._store.erase_user_data(ids, job.plan)
            figures = _added(job.removed.get("clickhouse", {}), erased)
            left = await self._store.user_data_remaining(ids)
            if any(left.values()):
                await self._jobs.replan(job.id, "suppressed", {"clickhouse": figures})
                raise LeftoverRows("rows naming the user were stored after the plan; planning again")
            job = await self._jobs.finished_step(
                job.id, "clickhouse", removed={"clickhouse": figures, "clickhouse_remaining": left}
            )
        if not _done(job, "live"):
            shards = await self._live() if self._live is not None else 0
            job = await self._jobs.finished_step(job.id, "live", removed={"live": {"counter_shards_reread": shards}})
        if not _done(job, "redis"):
            cleared = await self._redis(ids) if self._redis is not None else {}
            job = await self._jobs.finished_step(job.id, "redis", removed={"redis": cleared})
        if not _done(job, "postgres"):
            rows = await self._postgres(ids) if self._postgres is not None else {}
            job = await self._jobs.finished_step(job.id, "postgres", removed={"postgres": rows})
        if not _done(job, "receipt"):
            receipt = self._receipt(job, datetime.now(UTC))
            job = await self._jobs.receipt_written(job.id, "receipt", receipt, receipt_digest(receipt))
        assert job.receipt is not None and job.receipt_sha256 is not None
        if not await self._jobs.audited(AUDIT_ACTION, job.id):
            await self._audit.audit(
                AUDIT_ACTION,
                actor_key_id=job.requested_by,
                target=job.id,
                details={"receipt": job.receipt, "receipt_sha256": job.receipt_sha256},
            )
        await self._jobs.complete(job.id)
        log.info("erasure job %s completed", job.id)

    @staticmethod
    def _receipt(job: ErasureJob, completed_at: datetime) -> dict[str, Any]:
        """What the job removed, with its times: never the user's id, only its digest."""
        removed = job.removed
        return {
            "job_id": job.id,
            "user_sha256": job.user_digest,
            "id_forms": len(job.user_ids or ()),
            "requested_at": _iso(job.requested_at),
            "suppressed_at": _iso(job.suppressed_at),
            "completed_at": _iso(completed_at),
            "removed": {
                "clickhouse": removed.get("clickhouse", {}),
                "live": removed.get("live", {}),
                "redis": removed.get("redis", {}),
                "postgres": removed.get("postgres", {}),
            },
            "remaining": {"clickhouse": removed.get("clickhouse_remaining", {})},
            "suppressed": True,
        }


def job_view(job: ErasureJob) -> dict[str, Any]:
    """A job as the status route answers it."""
    return {
        "job_id": job.id,
        "status": job.status,
        "step": job.step or None,
        "requested_at": _iso(job.requested_at),
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at) if job.status == COMPLETED else None,
        "attempts": job.attempts,
        "last_error": job.last_error,
        "receipt": job.receipt if job.status == COMPLETED else None,
        "receipt_sha256": job.receipt_sha256 if job.status == COMPLETED else None,
    }
