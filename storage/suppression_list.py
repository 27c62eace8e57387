"""The suppression list: digests of erased users' ids, refused at ingest (docs/security.md#suppression).

The list lives in PostgreSQL (``suppressed_users``, migration 005); each replica holds it in memory
as a set and brings it up to date every ``suppression_refresh_seconds``, reading only the rows added
since its previous reload, so checking an event costs a set lookup and no round trip. An erasure job
adds its rows, then waits for two reload periods before it removes anything: by then every replica
refuses the user's events, and whatever one accepted before is stored and found by the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from core.user_ids import suppression_digest

log = logging.getLogger("analytics.suppression")


class SuppressionList:
    def __init__(self, pool: asyncpg.Pool | None, *, refresh_seconds: float = 2.0) -> None:
        """``pool`` None: an empty list that is never reloaded (a process without PostgreSQL)."""
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._digests: set[bytes] = set()
        # Rows are read from the seq the reload before the last one ended at: an insert whose seq was
        # drawn before a reload but committed after it is still read by the next one.
        self._read_through = 0
        self._previous_through = 0
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._digests)

    def holds(self, user_id: str) -> bool:
        """Whether ``user_id`` (as an event sends it) belongs to an erased user."""
        return bool(self._digests) and suppression_digest(user_id) in self._digests

    def holds_digest(self, digest: bytes) -> bool:
        return digest in self._digests

    async def add(self, digests: list[bytes], job_id: str) -> None:
        """Suppress ``digests`` (idempotent), and hold them here at once."""
        if self._pool is None:
            self._digests.update(digests)
            return
        await self._pool.executemany(
            "INSERT INTO suppressed_users (digest, job_id) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
            [(digest, job_id) for digest in digests],
        )
        self._digests.update(digests)

    async def reload(self) -> int:
        """Read the rows added since the reload before the last; returns how many digests are held."""
        if self._pool is None:
            return len(self._digests)
        since = self._previous_through
        rows = await self._pool.fetch("SELECT seq, digest FROM suppressed_users WHERE seq > $1 ORDER BY seq", since)
        self._digests.update(bytes(row["digest"]) for row in rows)
        self._previous_through = self._read_through
        if rows:
            self._read_through = max(self._read_through, int(rows[-1]["seq"]))
        return len(self._digests)

    def start(self) -> None:
        """Reload every ``refresh_seconds`` from now on (call in the running event loop)."""
        if self._pool is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._reload_forever())

    async def _reload_forever(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception:  # PostgreSQL away: keep the list as it was, try again next period
                log.warning("could not reload the suppression list", exc_info=True)
            await asyncio.sleep(self._refresh_seconds)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
