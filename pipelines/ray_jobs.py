"""What report runs and exports share as jobs on Ray: starting their task, beating while they work, and
taking back the jobs whose worker died.

A job is a row in PostgreSQL (a report run, an export) and a Ray task that works it. The task beats
(``heartbeat_at``) while it works; Ray runs the task again when its worker dies; a job that stopped
beating for ``report_run_stale_seconds`` (its task lost with the cluster) is started again by the
reaper, or failed once it has had ``report_run_max_attempts`` attempts. No job stays running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import ray

from core.settings import Settings

# How often a working task says it is alive; well inside report_run_stale_seconds.
BEAT_SECONDS = 5.0

Launch = Callable[[str], Awaitable[None]]


@contextlib.asynccontextmanager
async def beating(beat: Callable[[], Awaitable[None]], every: float = BEAT_SECONDS) -> AsyncIterator[None]:
    """Call ``beat`` every ``every`` seconds while the block runs; a failed beat is tried again next time."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):
                await beat()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class TaskLauncher:
    """Starts one job's task on the cluster, named ``<prefix>:<job id>`` (its worker's process title);
    keeps the references so a job's outcome can be awaited."""

    def __init__(self, settings: Settings, task: Any, prefix: str) -> None:
        self._settings = settings.model_dump(mode="json")
        self._task = task
        self._prefix = prefix
        self._running: dict[str, Any] = {}

    async def __call__(self, job_id: str) -> None:
        self._forget_finished()
        self._running[job_id] = self._task.options(name=f"{self._prefix}:{job_id}").remote(self._settings, job_id)

    def _forget_finished(self) -> None:
        if len(self._running) < 64:
            return
        ready, _ = ray.wait(list(self._running.values()), num_returns=len(self._running), timeout=0)
        done = set(ready)
        self._running = {k: v for k, v in self._running.items() if v not in done}

    async def wait(self, job_id: str, timeout: float = 120.0) -> Any:
        """The task's outcome (tests and benchmarks wait on it); None for a job this launcher did not start."""
        reference = self._running.get(job_id)
        if reference is None:
            return None
        return await asyncio.wait_for(reference, timeout)


class Job(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def attempts(self) -> int: ...


@dataclass(frozen=True, slots=True)
class JobTable:
    """How the reaper reads and changes one kind of job."""

    kind: str
    stale: Callable[[timedelta], Awaitable[Sequence[Job]]]
    # Claims a stale job for a retry; False when another reaper claimed it first (or it beat again).
    claim: Callable[[str, timedelta], Awaitable[bool]]
    fail: Callable[[str, str], Awaitable[Any]]


async def reap(jobs: JobTable, launch: Launch, settings: Settings) -> list[str]:
    """Jobs whose worker stopped beating: started again, or failed after the last attempt."""
    older_than = timedelta(seconds=settings.report_run_stale_seconds)
    touched = []
    for job in await jobs.stale(older_than):
        if job.attempts >= settings.report_run_max_attempts:
            await jobs.fail(
                job.id,
                f"the worker running it stopped responding {job.attempts} times; "
                f"the {jobs.kind} was abandoned after {settings.report_run_max_attempts} attempts",
            )
        elif await jobs.claim(job.id, older_than):
            await launch(job.id)
        touched.append(job.id)
    return touched
