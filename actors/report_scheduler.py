"""The report scheduler: runs each slot of every report schedule once, across restarts and replicas.

``ReportScheduler`` is the loop: every ``report_schedule_poll_seconds`` it reads the scheduled reports
from PostgreSQL, plans each one's due slots by the catch-up policy (semantic/report_schedule.py),
records the ones not to run as missed, claims the ones to run and launches those it claimed. Nothing
lives only in memory: where a schedule stands is its newest slot row, so a scheduler that restarts, or
a second one beside it, carries on from the database. A slot's row is written once (storage/report_slots.py),
so however many schedulers run, a slot is launched by at most one of them.

A launch that raises is logged and its slot recorded as missed (run_id empty); it is not retried, since
a launch that failed late may already have started its run. A scheduler that stops between claiming a
slot and launching it leaves the slot as ``run`` without a run id, and does not launch it again.

``ReportSchedulerActor`` hosts the loop in a Ray actor. Its launch comes from ``launch_path``, an
importable ``"module:factory"``: ``factory(settings)`` returns the launch function (or an awaitable of
it), so the actor is built from plain arguments and nothing is pickled. The loop and its database pool
run on a thread of their own, started by the constructor: an actor that Ray restarts after a crash
resumes scheduling without anyone calling it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import inspect
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

import ray

from actors import names
from actors.service_actor import service_actor
from core.errors import InvalidRequest
from core.models import utc_now
from core.settings import Settings
from semantic.report_schedule import Schedule, plan, starting_point
from storage.metadata import MetadataStore
from storage.report_slots import ReportSlots, ScheduledReport

log = logging.getLogger("analytics.report_scheduler")

ACTOR_NAME = names.REPORT_SCHEDULER

# (report_id, slot_at) -> run_id: starts the report's run for that slot; provided by report runs.
Launch = Callable[[str, datetime], Awaitable[str]]
LaunchFactory = Callable[[Settings], Launch | Awaitable[Launch]]

_T = TypeVar("_T")


def scheduler_name() -> str:
    """This process's name in the slots it records: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ReportScheduler:
    def __init__(
        self,
        slots: ReportSlots,
        launch: Launch,
        *,
        name: str,
        policy: str,
        max_slots: int,
        poll_seconds: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._slots = slots
        self._launch = launch
        self.name = name
        self.policy = policy
        self.max_slots = max_slots
        self.poll_seconds = poll_seconds
        # A slot is on time within two polls: one may have just missed it.
        self.grace = timedelta(seconds=2 * poll_seconds)
        self._clock = clock
        self._stop = asyncio.Event()
        self._running: asyncio.Event | None = None
        # (report id, updated_at) of configurations already reported as unusable, so the log says it once.
        self._refused: set[tuple[str, datetime]] = set()

    async def tick(self) -> list[tuple[str, datetime]]:
        """One pass over the scheduled reports; the (report id, slot) pairs this scheduler launched.

        A report whose pass fails (its configuration unusable, the database briefly away) is logged and
        left for the next pass; the other reports go on.
        """
        now = self._clock()
        launched: list[tuple[str, datetime]] = []
        for report in await self._slots.scheduled():
            try:
                launched += await self._report_pass(report, now)
            except Exception:  # noqa: BLE001 - one report's failure must not hold up the others
                log.exception("report %s: schedule pass failed", report.id)
        return launched

    async def _report_pass(self, report: ScheduledReport, now: datetime) -> list[tuple[str, datetime]]:
        try:
            schedule = Schedule.parse(report.schedule_config)
        except InvalidRequest as exc:
            if (report.id, report.updated_at) not in self._refused:
                self._refused.add((report.id, report.updated_at))
                log.warning("report %s: schedule not run: %s", report.id, exc.message)
            return []
        last_seen = starting_point(last_slot=report.last_slot, updated_at=report.updated_at, grace=self.grace)
        run, missed = plan(
            schedule, last_seen=last_seen, now=now, policy=self.policy, max_slots=self.max_slots, grace=self.grace
        )
        if missed:
            await self._slots.record_missed(report.id, missed, scheduler=self.name)
        launched: list[tuple[str, datetime]] = []
        for slot in run:
            if not await self._slots.claim(report.id, slot, scheduler=self.name):
                continue
            try:
                run_id = await self._launch(report.id, slot)
            except Exception:  # noqa: BLE001 - recorded on the slot; the pass goes on
                log.exception("report %s: launching the run of slot %s failed", report.id, slot.isoformat())
                await self._slots.launch_failed(report.id, slot)
                continue
            launched.append((report.id, slot))
            await self._slots.set_run(report.id, slot, run_id)
        return launched

    async def run_forever(self) -> None:
        """Tick every ``poll_seconds`` until ``stop``; a failed tick is logged and the loop goes on."""
        self._stop.clear()
        self._running = running = asyncio.Event()
        try:
            while not self._stop.is_set():
                try:
                    await self.tick()
                except Exception:  # noqa: BLE001 - the next tick tries again
                    log.exception("report schedule pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.poll_seconds)
        finally:
            running.set()

    async def stop(self) -> None:
        """End ``run_forever`` after its current tick, and wait for it."""
        self._stop.set()
        if self._running is not None:
            await self._running.wait()


def launch_factory(launch_path: str) -> LaunchFactory:
    """The factory named by ``"module:attribute"`` (the attribute may be dotted)."""
    module_name, _, attribute = launch_path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"launch_path {launch_path!r} is not 'module:factory'")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"launch_path {launch_path!r} does not name a callable")
    factory: LaunchFactory = target
    return factory


class _LoopThread:
    """An event loop on a thread of its own, for work that must outlive any one call."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(work, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class ReportSchedulerActor:
    """The scheduler as a Ray actor: ``settings`` (a Settings dict with ``postgres_dsn``) and ``launch_path``
    (``"module:factory"``, see the module docstring). With ``autostart`` the loop starts at construction,
    also when Ray restarts the actor; ``start``/``stop`` start and stop it, ``tick`` runs one pass now."""

    def __init__(
        self, settings: dict[str, Any], launch_path: str, name: str | None = None, autostart: bool = True
    ) -> None:
        self._config = Settings(**settings)
        if not self._config.postgres_dsn:
            raise ValueError("the report scheduler needs postgres_dsn")
        self._launch_path = launch_path
        self._factory = launch_factory(launch_path)
        self._name = name or scheduler_name()
        self._store: MetadataStore | None = None
        self._scheduler: ReportScheduler | None = None
        self._build_lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None
        self._worker = _LoopThread(f"report-scheduler-{self._name}")
        if autostart:
            self._worker.submit(self._start())

    async def _call(self, work: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(self._worker.submit(work))

    # The underscore methods below run on the worker's loop.

    async def _ready(self) -> ReportScheduler:
        async with self._build_lock:
            if self._scheduler is None:
                store = await MetadataStore.connect(self._config.postgres_dsn or "", max_size=4)
                try:
                    made = self._factory(self._config)
                    launch: Launch = await made if inspect.isawaitable(made) else made
                except BaseException:
                    await store.close()
                    raise
                self._store = store
                self._scheduler = ReportScheduler(
                    ReportSlots(store.pool),
                    launch,
                    name=self._name,
                    policy=self._config.report_catch_up,
                    max_slots=self._config.report_catch_up_max_slots,
                    poll_seconds=self._config.report_schedule_poll_seconds,
                )
            return self._scheduler

    async def _start(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                scheduler = await self._ready()
                break
            except Exception:  # noqa: BLE001 - PostgreSQL may still be starting; try again
                log.exception("report scheduler %s could not start; retrying", self._name)
                await asyncio.sleep(self._config.report_schedule_poll_seconds)
        await scheduler.run_forever()

    async def _tick(self) -> list[tuple[str, datetime]]:
        return await (await self._ready()).tick()

    async def _stop(self) -> None:
        task, self._loop_task = self._loop_task, None
        if self._scheduler is not None:
            await self._scheduler.stop()
        if task is not None and not task.done():
            # Still waiting for PostgreSQL: nothing to finish.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._build_lock:
            store, self._store, self._scheduler = self._store, None, None
            if store is not None:
                await store.close()

    # The actor's methods.

    async def start(self) -> bool:
        await self._call(self._start())
        return True

    async def tick(self) -> list[tuple[str, datetime]]:
        """One pass now, beside the loop if it runs (claims keep the two from launching a slot twice)."""
        return await self._call(self._tick())

    async def stop(self) -> None:
        """Stop the loop after its current pass and close the database pool; ``start`` starts it again."""
        await self._call(self._stop())

    async def close(self) -> None:
        """Stop, and end the worker thread (the actor is not used again)."""
        await self.stop()
        self._worker.close()

    async def describe(self) -> dict[str, Any]:
        running = await self._call(self._is_running())
        return {
            "name": self._name,
            "running": running,
            "launch_path": self._launch_path,
            "catch_up": self._config.report_catch_up,
            "catch_up_max_slots": self._config.report_catch_up_max_slots,
            "poll_seconds": self._config.report_schedule_poll_seconds,
        }

    async def _is_running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()


def report_scheduler_actor(settings: Settings, launch_path: str, *, detached: bool = False) -> ray.actor.ActorHandle:
    """The service's scheduler actor (created on first call, looked up afterwards); it starts scheduling
    at once. ``settings.postgres_dsn`` must be set (the embedded PostgreSQL's DSN once it runs)."""
    return service_actor(
        ReportSchedulerActor,
        ACTOR_NAME,
        settings.model_dump(mode="json"),
        launch_path,
        detached=detached,
        max_concurrency=16,
    )
