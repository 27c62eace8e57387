"""The import analytics reads, answered through the result cache: the REST routes
(serve_app/routes/imports.py) and the GraphQL fields (graphql_schema/imports.py) ask each read by the
same method, so one question makes one cache entry whichever transport asks it (the rules of
semantic/analytics_reads.py: the key is the kind and every argument the answer is computed from).

A job's status depends on the time as well as on the data (a running job becomes stuck when it stays
silent), so a cached answer may call a job running until the entry expires
(ANALYTICS_RESULT_CACHE_SECONDS) or new data moves the watermark.
"""

from __future__ import annotations

from core.access import Principal
from semantic.analytics_reads import AnalyticsReads, AnsweringServices
from semantic.periods import Period
from semantic.result_cache import CachedAnswer


class ImportReads(AnalyticsReads):
    @classmethod
    def of(cls, services: AnsweringServices, principal: Principal | None) -> ImportReads:
        return cls(services.analytics, services.answers, principal)

    async def import_jobs(
        self,
        period: Period,
        *,
        source: str | None,
        status: str | None,
        kind: str | None,
        limit: int,
        offset: int,
    ) -> CachedAnswer:
        return await self._answer(
            "imports.jobs",
            self._analytics.imports.jobs,
            period=period,
            source=source,
            status=status,
            job_kind=kind,
            limit=limit,
            offset=offset,
        )

    async def import_job(self, job_id: str) -> CachedAnswer:
        return await self._answer("imports.job", self._analytics.imports.job, job_id=job_id)

    async def import_sources(self, period: Period, *, kind: str | None) -> CachedAnswer:
        return await self._answer("imports.sources", self._analytics.imports.sources, period=period, job_kind=kind)

    async def import_quality(self, period: Period, *, source: str | None, kind: str | None) -> CachedAnswer:
        return await self._answer(
            "imports.quality", self._analytics.imports.quality, period=period, source=source, job_kind=kind
        )

    async def import_trends(self, period: Period, *, source: str | None, kind: str | None) -> CachedAnswer:
        return await self._answer(
            "imports.trends", self._analytics.imports.trends, period=period, source=source, job_kind=kind
        )

    async def import_failures(
        self, period: Period, *, source: str | None, kind: str | None, examples: int
    ) -> CachedAnswer:
        return await self._answer(
            "imports.failures",
            self._analytics.imports.failures,
            period=period,
            source=source,
            job_kind=kind,
            examples=examples,
        )

    async def import_optimization(self, period: Period, *, kind: str | None) -> CachedAnswer:
        return await self._answer(
            "imports.optimization", self._analytics.imports.optimization, period=period, job_kind=kind
        )
