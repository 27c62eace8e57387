"""The batch aggregation jobs as the API and the CLI see them: start a day's run now, list the runs.

A run is recorded in PostgreSQL as ``running`` and computed by a task on the cluster
(pipelines/daily_aggregation.py); the answer comes at once, and ``GET /jobs/{id}`` tells how it ended.
Only days that have begun may be asked for: today's records are partial until the day is closed, and are
replaced by the next run of that day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.access import Principal
from core.errors import InvalidRequest, NotFound
from storage.aggregates import AggregateStore, AggregationRun

JOBS_PREFIX = "/api/v1/analytics/jobs"
ENGINES = ("ray",)
# What a client may say started a run (the command line says cli or backfill).
CLIENT_TRIGGERS = ("api", "cli", "backfill")
EARLIEST_DAY = date(1970, 1, 1)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000

Launch = Callable[[str], Awaitable[None]]


def check_day(value: object, field: str = "date") -> date:
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a date, YYYY-MM-DD", details={"field": field})
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be a date, YYYY-MM-DD", details={"field": field}) from None
    today = datetime.now(UTC).date()
    if not EARLIEST_DAY <= day <= today:
        raise InvalidRequest(
            f"{field} must be a day from {EARLIEST_DAY} to today ({today}, UTC)", details={"field": field}
        )
    return day


class AggregateBody(BaseModel):
    """The body of POST /jobs/aggregate (documentation: ``AggregationJobs.start`` checks it)."""

    date: str = Field(description="the UTC day, YYYY-MM-DD, from 1970-01-01 to today")
    engine: Literal["ray"] = "ray"
    trigger: Literal["api", "cli", "backfill"] = Field("api", description="what started the run")


class AggregationJobs:
    def __init__(self, store: AggregateStore, *, launch: Launch) -> None:
        self.store = store
        self._launch = launch

    async def start(self, body: object, principal: Principal, *, trigger: str = "api") -> AggregationRun:
        if not isinstance(body, dict):
            raise InvalidRequest('the body must be an object: {"date": "YYYY-MM-DD"}', details={"field": "(body)"})
        unknown = [name for name in body if name not in ("date", "engine", "trigger")]
        if unknown:
            raise InvalidRequest(
                f"unknown field {str(unknown[0])[:80]!r}; date, engine, trigger", details={"field": unknown[0]}
            )
        trigger = body.get("trigger", trigger)
        if trigger not in CLIENT_TRIGGERS:
            raise InvalidRequest(f"trigger must be one of {', '.join(CLIENT_TRIGGERS)}", details={"field": "trigger"})
        day = check_day(body.get("date"))
        engine = body.get("engine", "ray")
        if engine not in ENGINES:
            raise InvalidRequest(
                f"engine {str(engine)[:40]!r} cannot run from the API; one of: {', '.join(ENGINES)}",
                details={"field": "engine"},
            )
        run = await self.store.start_run(day, engine=engine, trigger=trigger, requested_by=principal.key_id)
        await self._launch(run.id)
        return run

    async def run(self, run_id: str) -> AggregationRun:
        run = await self.store.run(run_id)
        if run is None:
            raise NotFound(f"aggregation run {run_id[:100]!r} does not exist", details={"field": "run_id"})
        return run

    async def runs(self, *, limit: int, offset: int, day: date | None = None) -> tuple[list[AggregationRun], int]:
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
        if not 0 <= offset <= MAX_OFFSET:
            raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}", details={"field": "offset"})
        return await self.store.runs(limit=limit, offset=offset, day=day)
