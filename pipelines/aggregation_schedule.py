"""The daily job's schedule: each UTC day is computed once, after it has been closed for
``ANALYTICS_AGGREGATION_LATENESS_MINUTES``, by whichever scheduler claims it first (a unique row per
scheduled day in ``aggregation_runs``), across restarts and any number of schedulers.

It runs in the report scheduler actor's process (pipelines/scheduled_jobs.py starts it), beside the
reaper. A day missed while nothing ran (the service was down over midnight) is the only one caught up:
the latest closed day; older days are the backfill's (docs/batch.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

from core.models import utc_now
from storage.aggregates import AggregateStore, AggregationRun

log = logging.getLogger(__name__)

POLL_SECONDS = 60.0


def due_day(now: datetime, lateness: timedelta) -> date:
    """The latest UTC day closed for at least ``lateness`` at ``now``."""
    return (now - lateness).date() - timedelta(days=1)


class DailyAggregationSchedule:
    def __init__(
        self,
        store: AggregateStore,
        launch: Callable[[str], Awaitable[None]],
        *,
        lateness: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._launch = launch
        self._lateness = lateness
        self._clock = clock

    async def tick(self) -> AggregationRun | None:
        """Start the due day's run unless it was started already; the run this call started."""
        run = await self._store.claim_scheduled(due_day(self._clock(), self._lateness))
        if run is None:
            return None
        try:
            await self._launch(run.id)
        except Exception as exc:
            await self._store.fail_run(run.id, f"the run could not be started: {type(exc).__name__}: {exc}")
            raise
        return run

    async def run_forever(self, poll_seconds: float = POLL_SECONDS) -> None:
        while True:
            try:
                started = await self.tick()
                if started is not None:
                    log.info("daily aggregation of %s started (run %s)", started.day, started.id)
            except Exception:
                log.exception("the daily aggregation schedule failed; trying again in %s s", poll_seconds)
            await asyncio.sleep(poll_seconds)
