"""The event store's read threads. chDB serves several clients on one directory inside one
process, so each thread reads through a client of its own and reads run beside the inserts.

Analytics statements (``query``) run under the query budget and wait for a thread in a bounded
queue: beyond ``max_queued`` waiting, a new one is refused at once with Overloaded (503, retry),
so a burst cannot queue work for minutes. The event API's reads (``call``) are never refused.

Embedded chDB shares this process's cores, and a statement's own threads contend with the other
read threads': an analytics statement gets the cores divided by the statements running with it
(``max_threads``), so a lone statement uses every core and concurrent ones do not oversubscribe them.
ClickHouse's parallel aggregation spends CPU merging its threads' states (most for exact distinct
counts), which a busy pool pays without gaining any time. A server has its own cores and keeps its
own setting.

``_lock`` guards the counts of waiting and running statements: the event loop adds to the waiting
one, the read threads (or the cancellation of a statement that never started) take from it, and the
read threads count themselves in and out of the running one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.client import Client

from core.errors import Overloaded
from storage.events import ClickHouseEvents
from storage.query_budget import QueryBudget


class ReadPool:
    def __init__(
        self,
        connect: Callable[[], Client],
        *,
        threads: int,
        budget: QueryBudget | None = None,
        batch_budget: QueryBudget | None = None,
        max_queued: int | None = None,
        cores: int | None = None,
    ) -> None:
        """``budget`` limits the analytics statements of every thread's client; ``max_queued`` (None:
        unbounded) is how many of them may wait for a thread; ``cores`` (None: this machine's) are
        shared by the running analytics statements."""
        self._connect = connect
        self._budget = budget
        # Report runs' and exports' statements: a longer time limit, and they wait for a thread however
        # many wait (a batch job is not a request to refuse quickly).
        self._batch_budget = batch_budget
        self._max_queued = max_queued
        self._cores = max(1, cores or os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickhouse-read")
        # Each thread's client, made on its first read: never shared between threads.
        self._local = threading.local()
        self._lock = threading.Lock()
        self._queued = 0
        self._running = 0

    def thread_store(self) -> ClickHouseEvents:
        """The calling thread's own client (the read threads', and the append thread's for its
        duplicate checks)."""
        store: ClickHouseEvents | None = getattr(self._local, "store", None)
        if store is None:
            store = ClickHouseEvents(self._connect(), budget=self._budget)
            self._local.store = store
        return store

    @property
    def queued(self) -> int:
        """Analytics statements submitted and not yet started."""
        with self._lock:
            return self._queued

    @property
    def running(self) -> int:
        """Analytics statements running now."""
        with self._lock:
            return self._running

    async def call(self, method: str, *args: Any) -> Any:
        """``ClickHouseEvents.<method>(*args)`` on a read thread."""

        def run() -> Any:
            return getattr(self.thread_store(), method)(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def call_analytics(self, method: str, *args: Any, batch: bool = False) -> Any:
        """An analytics statement (``ClickHouseEvents.query`` or ``query_arrow``) on a read thread,
        or Overloaded at once when ``max_queued`` wait already. A ``batch`` statement (report runs,
        exports) runs under the batch budget and waits for a thread instead."""
        with self._lock:
            if not batch and self._max_queued is not None and self._queued >= self._max_queued:
                waiting = self._queued
                raise Overloaded(
                    f"the event store has {waiting} analytics statements waiting; retry shortly",
                    details={"queued": waiting},
                )
            self._queued += 1

        def run() -> Any:
            threads = self._start_statement()
            try:
                extra = {"budget": self._batch_budget} if batch and self._batch_budget is not None else {}
                return getattr(self.thread_store(), method)(*args, max_threads=threads, **extra)
            finally:
                with self._lock:
                    self._running -= 1

        try:
            future = self._executor.submit(run)
        except RuntimeError:  # shut down
            self._leave_queue()
            raise
        # A statement cancelled before it started (its caller went away) never runs: it leaves the
        # queue here instead. A started one cannot be cancelled, so each leaves exactly once.
        future.add_done_callback(self._left_unstarted)
        return await asyncio.wrap_future(future)

    def _leave_queue(self) -> None:
        with self._lock:
            self._queued -= 1

    def _start_statement(self) -> int:
        """Leave the queue and count in as running; the threads the statement may use."""
        with self._lock:
            self._queued -= 1
            self._running += 1
            return max(1, self._cores // self._running)

    def _left_unstarted(self, future: Future[Any]) -> None:
        if future.cancelled():
            self._leave_queue()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
