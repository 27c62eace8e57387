"""The privacy services of one replica, built together (docs/security.md#privacy): the suppression list
ingest checks, the erasure jobs and their runner, and access requests."""

from __future__ import annotations

from functools import partial
from typing import Protocol

import asyncpg

from core.settings import Settings
from semantic.access_request import AccessRequest
from semantic.erasure import AuditLog, ErasureService, LiveReset, UserDataStore
from storage.erasure_jobs import user_rows
from storage.events import EventStore
from storage.redis_user_data import erase_from_redis
from storage.suppression_list import SuppressionList


class PrivacyStore(EventStore, UserDataStore, Protocol):
    """The event store as privacy uses it: reads, and its part of an erasure."""


class Privacy:
    def __init__(self, suppression: SuppressionList, erasure: ErasureService, access: AccessRequest) -> None:
        self.suppression = suppression
        self.erasure = erasure
        self.access = access

    @classmethod
    def build(
        cls,
        pool: asyncpg.Pool,
        store: PrivacyStore,
        audit: AuditLog,
        settings: Settings,
        *,
        live: LiveReset | None = None,
    ) -> Privacy:
        """``pool``: the metadata database (jobs, the suppression list, rows with a user id)."""
        suppression = SuppressionList(pool, refresh_seconds=settings.suppression_refresh_seconds)
        erasure = ErasureService.on_pool(
            pool,
            store=store,
            suppression=suppression,
            audit=audit,
            settings=settings,
            live=live,
            redis=partial(erase_from_redis, settings.redis_url) if settings.redis_url else None,
        )
        access = AccessRequest(store, erasure, suppressed=suppression.holds, postgres_rows=partial(user_rows, pool))
        return cls(suppression, erasure, access)

    async def start(self) -> None:
        """Load the suppression list (so the first request already refuses erased users), then keep it
        fresh and run the erasure jobs."""
        await self.suppression.reload()
        self.suppression.start()
        self.erasure.start()

    async def close(self) -> None:
        await self.erasure.close()
        await self.suppression.close()
