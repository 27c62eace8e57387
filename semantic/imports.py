"""Import and media processing job analytics: the one service the REST routes
(serve_app/routes/imports.py) and GraphQL fields (graphql_schema/imports.py) ask, through the result
cache (semantic/import_reads.py).

Every answer reads the ``import_jobs`` rollup (migration 018); what a job is, is said in
semantic/import_jobs.py. These figures describe the platform's data pipelines, not its audience:
admins and analysts read them (``CAN_READ_IMPORT_ANALYTICS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from core.models import utc_now
from semantic.import_failures import ImportFailures, failure_analysis
from semantic.import_figures import ImportFigures, ImportQuality, ImportSources, ImportTrends
from semantic.import_jobs import ImportJobPage, ImportJobReport, job_report, list_jobs
from semantic.import_optimization import ImportOptimization, ImportOptimizer
from semantic.periods import Period
from storage.events import EventStore


class ImportAnalyticsService:
    """``job_kind`` (import or processing) restricts an answer to one kind of job; None answers both."""

    def __init__(
        self, store: EventStore, *, stuck_after_minutes: int = 60, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._store = store
        self._figures = ImportFigures(store)
        self._optimizer = ImportOptimizer(store)
        self.stuck_after_minutes = stuck_after_minutes
        # The instant a job's silence is measured against (tests set it).
        self._clock = clock

    def _stuck_before(self) -> datetime:
        return self._clock() - timedelta(minutes=self.stuck_after_minutes)

    async def jobs(
        self,
        period: Period,
        *,
        source: str | None = None,
        status: str | None = None,
        job_kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ImportJobPage:
        return await list_jobs(
            self._store,
            period,
            stuck_before=self._stuck_before(),
            stuck_after_minutes=self.stuck_after_minutes,
            source=source,
            status=status,
            kind=job_kind,
            limit=limit,
            offset=offset,
        )

    async def job(self, job_id: str) -> ImportJobReport:
        return await job_report(
            self._store, job_id, stuck_before=self._stuck_before(), stuck_after_minutes=self.stuck_after_minutes
        )

    async def sources(self, period: Period, *, job_kind: str | None = None) -> ImportSources:
        return await self._figures.sources(period, kind=job_kind, stuck_before=self._stuck_before())

    async def quality(self, period: Period, *, source: str | None = None, job_kind: str | None = None) -> ImportQuality:
        return await self._figures.quality(period, source=source, kind=job_kind, stuck_before=self._stuck_before())

    async def trends(self, period: Period, *, source: str | None = None, job_kind: str | None = None) -> ImportTrends:
        return await self._figures.trends(period, source=source, kind=job_kind, stuck_before=self._stuck_before())

    async def failures(
        self, period: Period, *, source: str | None = None, job_kind: str | None = None, examples: int = 3
    ) -> ImportFailures:
        return await failure_analysis(
            self._store, period, stuck_before=self._stuck_before(), source=source, kind=job_kind, examples=examples
        )

    async def optimization(self, period: Period, *, job_kind: str | None = None) -> ImportOptimization:
        now = self._clock()
        return await self._optimizer.recommendations(
            period,
            kind=job_kind,
            stuck_before=now - timedelta(minutes=self.stuck_after_minutes),
            now=now,
            stuck_after_minutes=self.stuck_after_minutes,
        )
