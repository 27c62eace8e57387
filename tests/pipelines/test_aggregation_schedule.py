"""pipelines/aggregation_schedule.py against the real PostgreSQL: each closed day is started once, by
one of any number of schedulers, after its lateness; a launch that fails leaves the run failed."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from pipelines.aggregation_schedule import DailyAggregationSchedule, due_day
from storage.aggregates import AggregateStore
from storage.metadata import MetadataStore

LATENESS = timedelta(minutes=15)


@pytest.fixture
async def pool(migrated: MetadataStore) -> asyncpg.Pool:
    await migrated.pool.execute("TRUNCATE aggregation_runs")
    return migrated.pool


def test_a_day_is_due_once_it_has_been_closed_for_the_lateness() -> None:
    assert due_day(datetime(2026, 3, 2, 0, 14, tzinfo=UTC), LATENESS) == date(2026, 2, 28)
    assert due_day(datetime(2026, 3, 2, 0, 15, tzinfo=UTC), LATENESS) == date(2026, 3, 1)
    assert due_day(datetime(2026, 3, 2, 23, 59, tzinfo=UTC), LATENESS) == date(2026, 3, 1)


async def test_any_number_of_schedulers_start_each_day_once(pool: asyncpg.Pool) -> None:
    now = [datetime(2026, 3, 2, 1, 0, tzinfo=UTC)]
    launched: list[str] = []

    async def launch(run_id: str) -> None:
        launched.append(run_id)

    schedules = [
        DailyAggregationSchedule(AggregateStore(pool), launch, lateness=LATENESS, clock=lambda: now[0])
        for _ in range(4)
    ]
    started = await asyncio.gather(*(s.tick() for s in schedules), *(s.tick() for s in schedules))
    runs = [run for run in started if run is not None]
    assert len(runs) == 1 and runs[0].day == date(2026, 3, 1) and runs[0].trigger == "schedule"
    assert launched == [runs[0].id]
    assert await schedules[0].tick() is None
    now[0] += timedelta(days=1)
    nxt = await schedules[1].tick()
    assert nxt is not None and nxt.day == date(2026, 3, 2) and len(launched) == 2
    # A run the API started for the same day does not count as the scheduled one.
    store = AggregateStore(pool)
    await store.start_run(date(2026, 3, 3), engine="ray", trigger="api", requested_by="k")
    now[0] += timedelta(days=1)
    assert (await schedules[2].tick()) is not None


async def test_a_launch_that_fails_leaves_the_run_failed(pool: asyncpg.Pool) -> None:
    async def broken(run_id: str) -> None:
        raise RuntimeError("no cluster")

    schedule = DailyAggregationSchedule(
        AggregateStore(pool), broken, lateness=LATENESS, clock=lambda: datetime(2026, 3, 2, 1, tzinfo=UTC)
    )
    with pytest.raises(RuntimeError):
        await schedule.tick()
    runs, _ = await AggregateStore(pool).runs(limit=5, offset=0)
    assert runs[0].status == "failed" and "no cluster" in (runs[0].error or "")
    # The day is not started again by the schedule (the backfill or the API redo it).
    assert await schedule.tick() is None


async def test_ids_no_run_can_have_are_not_found(pool: asyncpg.Pool) -> None:
    store = AggregateStore(pool)
    for run_id in ("", "agg_\x00", "x" * 101, "agg_missing"):
        assert await store.run(run_id) is None
