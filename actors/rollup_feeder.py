"""The thread in the event store actor that brings the rollups up to the stored inserts.

Ingest is acknowledged once the rows are in ``events``; this thread feeds the rollup views
(storage/rollup_feed.py) at most once per interval, so a busy writer feeds many inserts in
one step and a quiet one feeds each within about an interval. It has its own ClickHouse
client: feeding runs beside the next inserts, never in front of them.

For the data watermark it also keeps, for each stored insert not yet fed, a wall time no later than
the acknowledgement of any of its rows (``position``): the oldest pending write's when the insert
was stored (its own rows leave the pending writes only after this), or the time of the insert when
nothing older is pending (a bulk load, acknowledged once it is stored).

Threads: the ClickHouse write thread reports stored inserts, this thread advances what is fed,
the event loop waits for it (``settle``) and reads the lag and the position. ``_lock`` guards both
seqs and those times; the stored tables go through ``InsertMemory``, which has a lock of its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from storage.events import EVENT_COLUMNS
from storage.rollup_feed import InsertMemory, RollupFeed

log = logging.getLogger("analytics.rollup_feeder")

_RETRY_SECONDS = 1.0


class RollupFeeder:
    def __init__(
        self,
        connect: Callable[[], Client],
        *,
        fed_through: int,
        interval_seconds: float,
        registry: CollectorRegistry,
        oldest_pending_ms: Callable[[], int | None] | None = None,
    ) -> None:
        """``oldest_pending_ms``: when the oldest write not yet inserted was accepted (PendingWrites)."""
        self._connect = connect
        self._interval = interval_seconds
        self._oldest_pending_ms = oldest_pending_ms
        self._lock = threading.Lock()
        self._fed_through = fed_through
        self._stored = fed_through
        # (seq, accepted_ms) of each stored insert not yet fed, in seq order (see the module docstring).
        self._unfed: deque[tuple[int, int]] = deque()
        # What the writer stored since, so a step need not read it back (storage/rollup_feed.py).
        self._memory = InsertMemory()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._m_pending = Gauge(
            "analytics_rollup_pending_inserts", "Stored inserts not yet fed to the rollups", registry=registry
        )
        self._m_rows = Counter("analytics_rollup_fed_rows", "Event rows fed to the rollups", registry=registry)
        self._m_from_memory = Counter(
            "analytics_rollup_fed_from_memory_rows",
            "Event rows fed to the rollups as the writer stored them, without reading them back",
            registry=registry,
        )
        self._m_history = Counter(
            "analytics_rollup_watch_history_steps",
            "Feed steps computing watch time in Python, by where the touched sessions' earlier rows came "
            "from: held from earlier steps, or read back from events",
            ["history"],
            registry=registry,
        )
        self._m_seconds = Histogram(
            "analytics_rollup_feed_seconds",
            "Duration of one rollup feed step",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self._m_errors = Counter("analytics_rollup_feed_errors", "Failed rollup feed steps", registry=registry)
        self._thread = threading.Thread(target=self._run, name="rollup-feed", daemon=True)
        self._thread.start()

    @property
    def lag(self) -> int:
        """Stored inserts not yet fed."""
        with self._lock:
            return self._stored - self._fed_through

    @property
    def fed_through(self) -> int:
        with self._lock:
            return self._fed_through

    def stored(self, seq: int, table: pa.Table) -> None:
        """Called on the write thread after insert ``seq`` of ``table`` is durable (and, for rows from
        the pending writes, before they are released from them)."""
        accepted = time.time_ns() // 1_000_000
        oldest = self._oldest_pending_ms() if self._oldest_pending_ms is not None else None
        if oldest is not None:
            accepted = min(accepted, oldest)
        self._memory.add(seq, table)
        with self._lock:
            self._stored = max(self._stored, seq)
            self._unfed.append((seq, accepted))
            self._m_pending.set(self._stored - self._fed_through)

    def position(self) -> tuple[int, int, int | None]:
        """(stored seq, fed seq, the earliest time a row stored but not fed may have been acknowledged
        at, None when every stored insert is fed), read together."""
        with self._lock:
            unfed = min((accepted for seq, accepted in self._unfed if seq > self._fed_through), default=None)
            return self._stored, self._fed_through, unfed

    def wait_fed(self, seq: int, timeout_seconds: float) -> bool:
        """Block until insert ``seq`` is fed (True), or ``timeout_seconds`` pass (False)."""
        deadline = time.monotonic() + timeout_seconds
        self._wake.set()
        while self.fed_through < seq:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def settle(self, timeout_seconds: float = 60.0) -> int:
        """Wait until everything stored before this call is in the rollups; returns the fed seq."""
        with self._lock:
            target = self._stored
        deadline = time.monotonic() + timeout_seconds
        self._wake.set()
        while (fed := self.fed_through) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"rollups still {target - fed} inserts behind")
            await asyncio.sleep(0.01)
        return fed

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        feed: RollupFeed | None = None
        while not self._stopped.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._lock:
                target, fed_through = self._stored, self._fed_through
            if fed_through >= target:
                continue
            started = time.perf_counter()
            try:
                if feed is None:
                    feed = RollupFeed(self._connect(), EVENT_COLUMNS, fed_through=fed_through, memory=self._memory)
                from_memory = feed.fed_from_memory
                held, read_back = feed.history_held_steps, feed.history_read_back_steps
                rows = feed.feed_through(target)
            except Exception:  # the same claim is re-run on the next step
                self._m_errors.inc()
                log.exception("rollup feed through insert %s failed; retrying", target)
                time.sleep(_RETRY_SECONDS)
                self._wake.set()
                continue
            with self._lock:
                self._fed_through = feed.fed_through
                while self._unfed and self._unfed[0][0] <= self._fed_through:
                    self._unfed.popleft()
                self._m_pending.set(self._stored - self._fed_through)
            self._m_rows.inc(rows)
            self._m_history.labels(history="held").inc(feed.history_held_steps - held)
            self._m_history.labels(history="read_back").inc(feed.history_read_back_steps - read_back)
            if feed.fed_from_memory > from_memory:
                self._m_from_memory.inc(feed.fed_from_memory - from_memory)
                # The step's sorted copy and the tables it forgot are freed: hand the pages back, or
                # Arrow's allocator keeps them and the service holds on to more memory.
                pa.default_memory_pool().release_unused()
            self._m_seconds.observe(time.perf_counter() - started)
