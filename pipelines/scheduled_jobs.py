"""What the report scheduler actor (actors/report_scheduler.py) runs: the launch of a schedule's slot, the
reaper of report runs and exports whose worker died, and the daily aggregation's schedule.

The actor sits below this layer, so it names the factory by its import path (``SCHEDULED_LAUNCH``) and
builds it in its own process and event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from core.settings import Settings
from pipelines.aggregation_schedule import DailyAggregationSchedule
from pipelines.daily_aggregation import aggregation_launcher
from pipelines.exports import export_jobs, export_launcher
from pipelines.ray_jobs import reap
from pipelines.report_runs import report_launcher, run_jobs
from storage.aggregates import AggregateStore
from storage.exports import ExportRepository
from storage.metadata import MetadataStore
from storage.reports import ReportRepository

log = logging.getLogger(__name__)

SCHEDULED_LAUNCH = "pipelines.scheduled_jobs:scheduled_launch"

_background: set[asyncio.Task[None]] = set()


async def scheduled_launch(settings: Settings, *, reap_jobs: bool = True) -> Callable[[str, datetime], Awaitable[str]]:
    """The scheduler's launch: a slot's run is computed for the report's owner (the role and scope it had
    when saving) and started on the cluster. With ``reap_jobs``, the same process also starts again or
    fails the report runs and exports whose worker died."""
    metadata = await MetadataStore.connect(settings.postgres_dsn or "")
    reports = ReportRepository(metadata.pool)
    launcher = report_launcher(settings)
    if reap_jobs:
        _in_background(_reap_forever(metadata, settings))
        if settings.daily_aggregation:
            schedule = DailyAggregationSchedule(
                AggregateStore(metadata.pool),
                aggregation_launcher(settings),
                lateness=timedelta(minutes=settings.aggregation_lateness_minutes),
            )
            _in_background(schedule.run_forever())

    async def launch(report_id: str, slot_at: datetime) -> str:
        report = await reports.get(report_id)
        if report is None:
            raise LookupError(f"report {report_id!r} was deleted before its slot ran")
        run = await reports.create_run(report, report.owner, trigger="schedule", slot_at=slot_at)
        await launcher(run.id)
        return run.id

    return launch


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _reap_forever(metadata: MetadataStore, settings: Settings) -> None:
    runs = run_jobs(ReportRepository(metadata.pool))
    exports = export_jobs(ExportRepository(metadata.pool))
    run_launcher, exports_launcher = report_launcher(settings), export_launcher(settings)
    pause = max(1.0, settings.report_run_stale_seconds / 4)
    while True:
        await asyncio.sleep(pause)
        try:
            await reap(runs, run_launcher, settings)
            await reap(exports, exports_launcher, settings)
        except Exception:
            log.exception("taking back report runs and exports whose worker died failed; trying again in %s s", pause)
