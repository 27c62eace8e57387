"""actors/report_scheduler.py against the real PostgreSQL: schedulers with a clock the test moves, several
of them at once and restarted, each over its own connection pool; and the actor class (without Ray: no
Ray cluster is shared by the test session, and the class is plain until ``ray.remote`` wraps it)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
import pytest

from actors.report_scheduler import Launch, ReportScheduler, ReportSchedulerActor, launch_factory
from core.settings import Settings
from storage.metadata import MetadataStore
from storage.report_slots import ReportSlots, ScheduledReport

T0 = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
EVERY_MINUTE = {"cron": "* * * * *"}
T = TypeVar("T")


def minute(n: int, second: int = 0) -> datetime:
    return T0 + timedelta(minutes=n, seconds=second)


@pytest.fixture
async def pool(migrated: MetadataStore) -> asyncpg.Pool:
    await migrated.pool.execute("TRUNCATE reports CASCADE")
    return migrated.pool


async def insert_report(pool: asyncpg.Pool, report_id: str, config: object, *, updated_at: datetime = T0) -> None:
    """A scheduled reports row with every NOT NULL column of the migration given."""
    await pool.execute(
        "INSERT INTO reports (id, name, report_type, report_format, data_source, date_range, filters, "
        "visualization_config, is_scheduled, schedule_config, notifications, created_by, owner_key_id, owner_role, "
        "shared_with, shared_with_roles, is_public, status, created_at, updated_at, version) "
        "VALUES ($1, $1, 'content_performance', 'csv', 'events', '{\"preset\": \"last_7_days\"}'::jsonb, '{}'::jsonb, "
        "'{}'::jsonb, true, $2::jsonb, '[]'::jsonb, 'key_alice', 'key_alice', 'analyst', '{}', '{}', false, "
        "'draft', $3, $3, 1)",
        report_id,
        json.dumps(config),
        updated_at,
    )


async def slot_rows(pool: asyncpg.Pool, report_id: str) -> list[tuple[datetime, str, str | None]]:
    rows = await pool.fetch(
        "SELECT slot_at, outcome, run_id FROM report_schedule_slots WHERE report_id = $1 ORDER BY slot_at", report_id
    )
    return [(r["slot_at"], r["outcome"], r["run_id"]) for r in rows]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Launches:
    """The launch function: records each launch and names its run; fails for the slots in ``failing``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.attempts: list[tuple[str, datetime]] = []
        self.failing: set[tuple[str, datetime]] = set()

    async def __call__(self, report_id: str, slot_at: datetime) -> str:
        self.attempts.append((report_id, slot_at))
        # Lets a scheduler ticking beside this one go on in the middle of a launch.
        await asyncio.sleep(0)
        if (report_id, slot_at) in self.failing:
            raise RuntimeError("the run could not be created")
        self.calls.append((report_id, slot_at))
        return f"run_{report_id}_{slot_at:%H%M}"


@asynccontextmanager
async def schedulers(
    dsn: str, names: list[str], launch: Launches, clock: Clock, *, policy: str, max_slots: int = 24
) -> AsyncIterator[list[ReportScheduler]]:
    """Scheduler instances as separate processes would have them: each with a pool of its own."""
    pools = [await asyncpg.create_pool(dsn, min_size=1, max_size=2) for _ in names]
    try:
        yield [
            ReportScheduler(
                ReportSlots(p), launch, name=name, policy=policy, max_slots=max_slots, poll_seconds=15, clock=clock
            )
            for p, name in zip(pools, names, strict=True)
        ]
    finally:
        for p in pools:
            await p.close()


async def tick_all(instances: list[ReportScheduler], *, together: bool) -> list[tuple[str, datetime]]:
    if together:
        results = await asyncio.gather(*(s.tick() for s in instances))
    else:
        results = [await s.tick() for s in instances]
    return list(itertools.chain.from_iterable(results))


# --- two schedulers, then a restart -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "max_slots", "back_at", "run", "missed"),
    [
        # 3 minutes without a scheduler (10:11, 10:12, 10:13 pass), back at 10:13:01 or 10:13:45.
        ("latest", 24, minute(13, 1), [13], [11, 12]),
        ("latest", 24, minute(13, 45), [13], [11, 12]),
        ("all", 24, minute(13, 1), [11, 12, 13], []),
        ("all", 2, minute(13, 45), [12, 13], [11]),
        ("none", 24, minute(13, 45), [], [11, 12, 13]),
        # 10:13 is 1 s old: on time, so it runs under every policy.
        ("none", 24, minute(13, 1), [13], [11, 12]),
    ],
)
async def test_two_schedulers_run_each_slot_once_and_a_restart_catches_up_by_policy(
    dsn: str, pool: asyncpg.Pool, policy: str, max_slots: int, back_at: datetime, run: list[int], missed: list[int]
) -> None:
    await insert_report(pool, "rep", EVERY_MINUTE)
    launches, clock = Launches(), Clock(minute(0, 1))
    launched: list[tuple[str, datetime]] = []
    async with schedulers(dsn, ["a", "b"], launches, clock, policy=policy, max_slots=max_slots) as (a, b):
        # 10:00 is the moment the schedule was set: not a slot of it.
        assert await tick_all([a, b], together=True) == []
        for n in range(1, 11):
            clock.now = minute(n, 1)
            # Turn about, one after the other (each order) and at the same time.
            order = [a, b] if n % 3 == 0 else [b, a]
            launched += await tick_all(order, together=n % 3 == 2)
            # A second pass at the same moment finds nothing more to do.
            launched += await tick_all([a, b], together=True)
    first_ten = [("rep", minute(n)) for n in range(1, 11)]
    assert launches.calls == first_ten
    assert sorted(launched) == first_ten
    assert await slot_rows(pool, "rep") == [(minute(n), "run", f"run_rep_10{n:02}") for n in range(1, 11)]
    schedulers_used = await pool.fetch("SELECT DISTINCT scheduler FROM report_schedule_slots")
    assert {r["scheduler"] for r in schedulers_used} <= {"a", "b"}

    # Both stop; 10:11 to 10:13 pass; two new instances start over the same database.
    clock.now = back_at
    async with schedulers(dsn, ["c", "d"], launches, clock, policy=policy, max_slots=max_slots) as (c, d):
        after_restart = await tick_all([c, d], together=True)
        after_restart += await tick_all([d, c], together=False)
        assert sorted(after_restart) == [("rep", minute(n)) for n in run]
        clock.now = minute(14, 1)
        assert await tick_all([c, d], together=True) == [("rep", minute(14))]

    # Two schedulers catching up together launch the missed slots in either order.
    assert launches.calls[:10] == first_ten and launches.calls[-1] == ("rep", minute(14))
    assert sorted(launches.calls[10:-1]) == [("rep", minute(n)) for n in run]
    assert len(set(launches.calls)) == len(launches.calls)
    rows = await slot_rows(pool, "rep")
    assert [(slot, outcome) for slot, outcome, _ in rows[10:]] == sorted(
        [(minute(n), "run") for n in run] + [(minute(n), "missed") for n in missed] + [(minute(14), "run")]
    )
    assert all(run_id is None for _, outcome, run_id in rows if outcome == "missed")


async def test_a_failed_launch_is_recorded_missed_and_the_pass_goes_on(dsn: str, pool: asyncpg.Pool) -> None:
    await insert_report(pool, "rep_a", EVERY_MINUTE)
    await insert_report(pool, "rep_b", EVERY_MINUTE)
    launches, clock = Launches(), Clock(minute(1, 1))
    launches.failing.add(("rep_a", minute(1)))
    async with schedulers(dsn, ["a"], launches, clock, policy="latest") as (a,):
        # rep_a's launch fails; rep_b, after it, still runs.
        assert await a.tick() == [("rep_b", minute(1))]
        assert await slot_rows(pool, "rep_a") == [(minute(1), "missed", None)]
        assert await slot_rows(pool, "rep_b") == [(minute(1), "run", "run_rep_b_1001")]
        # Not retried: the next slot runs, the failed one stays missed.
        clock.now = minute(2, 1)
        assert sorted(await a.tick()) == [("rep_a", minute(2)), ("rep_b", minute(2))]
    assert launches.attempts.count(("rep_a", minute(1))) == 1
    assert await slot_rows(pool, "rep_a") == [(minute(1), "missed", None), (minute(2), "run", "run_rep_a_1002")]


async def test_an_unusable_configuration_is_skipped(dsn: str, pool: asyncpg.Pool) -> None:
    await insert_report(pool, "rep_bad", {"cron": "every minute"})
    await insert_report(pool, "rep_null", None)
    await insert_report(pool, "rep_ok", {"cron": "*/2 * * * *", "timezone": "Europe/Berlin"})
    launches, clock = Launches(), Clock(minute(2, 1))
    async with schedulers(dsn, ["a"], launches, clock, policy="latest") as (a,):
        assert await a.tick() == [("rep_ok", minute(2))]
        assert await a.tick() == []
    assert await slot_rows(pool, "rep_bad") == []
    assert await slot_rows(pool, "rep_null") == []


async def test_a_schedule_set_later_does_not_count_earlier_slots_as_missed(dsn: str, pool: asyncpg.Pool) -> None:
    # The report's schedule was set at 10:07:30; the scheduler first looks at 10:09:01.
    await insert_report(pool, "rep", EVERY_MINUTE, updated_at=minute(7, 30))
    launches, clock = Launches(), Clock(minute(9, 1))
    async with schedulers(dsn, ["a"], launches, clock, policy="all") as (a,):
        assert await a.tick() == [("rep", minute(8)), ("rep", minute(9))]
    assert [slot for slot, _, _ in await slot_rows(pool, "rep")] == [minute(8), minute(9)]


class FlakySlots(ReportSlots):
    """ReportSlots whose first listing fails, as when the database is briefly away."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.listings = 0

    async def scheduled(self) -> list[ScheduledReport]:
        self.listings += 1
        if self.listings == 1:
            raise ConnectionError("the database went away")
        return await super().scheduled()


async def test_run_forever_outlives_a_failed_pass_and_stops(pool: asyncpg.Pool) -> None:
    await insert_report(pool, "rep", EVERY_MINUTE)
    launches, clock = Launches(), Clock(minute(1, 1))
    slots = FlakySlots(pool)
    scheduler = ReportScheduler(
        slots, launches, name="a", policy="latest", max_slots=24, poll_seconds=0.01, clock=clock
    )
    loop = asyncio.create_task(scheduler.run_forever())
    try:
        await wait_for(lambda: slots.listings >= 5)
    finally:
        await scheduler.stop()
    assert loop.done() and loop.exception() is None
    assert launches.calls == [("rep", minute(1))]
    listings = slots.listings
    await asyncio.sleep(0.05)
    assert slots.listings == listings


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# --- the actor class ---------------------------------------------------------------------------------

ACTOR_LAUNCHES: list[tuple[str, datetime, str]] = []


async def recording_launch(settings: Settings) -> Launch:
    """A launch factory as ``launch_path`` names one (this module's ``recording_launch``)."""

    async def launch(report_id: str, slot_at: datetime) -> str:
        ACTOR_LAUNCHES.append((report_id, slot_at, settings.report_catch_up))
        return f"run_{report_id}_{slot_at:%H%M}"

    return launch


LAUNCH_PATH = f"{__name__}:recording_launch"


@pytest.fixture
def actor_launches() -> Iterator[list[tuple[str, datetime, str]]]:
    ACTOR_LAUNCHES.clear()
    yield ACTOR_LAUNCHES
    ACTOR_LAUNCHES.clear()


def test_launch_factory_resolves_module_and_attribute() -> None:
    assert launch_factory(LAUNCH_PATH) is recording_launch
    assert launch_factory("asyncio:sleep") is asyncio.sleep
    with pytest.raises(ValueError, match="is not 'module:factory'"):
        launch_factory("asyncio.sleep")
    with pytest.raises(AttributeError):
        launch_factory("asyncio:no_such_function")
    with pytest.raises(ValueError, match="does not name a callable"):
        launch_factory("asyncio:__name__")


async def test_the_actor_ticks_runs_restarts_and_stops(
    dsn: str, pool: asyncpg.Pool, actor_launches: list[tuple[str, datetime, str]]
) -> None:
    # Schedules that ended in the past: their slots are fixed whatever the real clock says.
    ended = datetime(2020, 1, 1, tzinfo=UTC)
    await insert_report(pool, "rep_a", {"cron": "* * * * *", "end_at": "2020-01-01T00:05:00Z"}, updated_at=ended)
    settings = Settings(
        environment="test", postgres_dsn=dsn, report_catch_up="latest", report_schedule_poll_seconds=0.02
    ).model_dump(mode="json")

    first = ReportSchedulerActor(settings, LAUNCH_PATH, name="actor-1", autostart=False)
    try:
        assert (await first.describe())["running"] is False
        assert await first.tick() == [("rep_a", ended + timedelta(minutes=5))]
        assert await first.tick() == []
    finally:
        await first.close()
    assert actor_launches == [("rep_a", ended + timedelta(minutes=5), "latest")]
    assert [(slot.minute, outcome) for slot, outcome, _ in await slot_rows(pool, "rep_a")] == [
        (1, "missed"),
        (2, "missed"),
        (3, "missed"),
        (4, "missed"),
        (5, "run"),
    ]

    # A new actor (as after a restart) starts scheduling by itself and carries on from the database.
    second = ReportSchedulerActor({**settings, "report_catch_up": "all"}, LAUNCH_PATH, name="actor-2")
    try:
        await wait_for_async(second.describe, lambda description: bool(description["running"]))
        await insert_report(pool, "rep_b", {"cron": "* * * * *", "end_at": "2020-01-01T00:03:00Z"}, updated_at=ended)
        await wait_for(lambda: len(actor_launches) == 4)
        await second.stop()
        assert (await second.describe())["running"] is False
        # Started again: nothing left to run.
        await second.start()
        assert (await second.describe())["running"] is True
        assert await second.tick() == []
    finally:
        await second.close()
    assert actor_launches[1:] == [("rep_b", ended + timedelta(minutes=n), "all") for n in (1, 2, 3)]
    assert [
        r["scheduler"]
        for r in await pool.fetch("SELECT scheduler FROM report_schedule_slots WHERE report_id = 'rep_b'")
    ] == ["actor-2"] * 3


async def wait_for_async(
    read: Callable[[], Awaitable[T]], condition: Callable[[T], bool], timeout: float = 10.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition(await read()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_the_actor_needs_a_database_and_an_importable_launch(dsn: str) -> None:
    with pytest.raises(ValueError, match="needs postgres_dsn"):
        ReportSchedulerActor(Settings(environment="test", postgres_dsn=None).model_dump(mode="json"), LAUNCH_PATH)
    with pytest.raises(ModuleNotFoundError):
        ReportSchedulerActor(
            Settings(environment="test", postgres_dsn=dsn).model_dump(mode="json"), "no_such_module:make_launch"
        )
