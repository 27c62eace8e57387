"""actors/flush_loop.py: logged rows reach ClickHouse once per interval, at once when someone
waits, and again after a failed insert; a row stays pending until ClickHouse holds it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from actors.flush_loop import FlushLoop
from actors.pending_writes import PendingWrites


@dataclass
class FakeClickHouse:
    """Records each insert's ids and the checkpoints; the first ``failures`` inserts raise."""

    pending: PendingWrites
    failures: int = 0
    attempts: int = 0
    inserts: list[list[str]] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)
    # (batches, rows) pending when each failing insert ran
    pending_at_failure: list[tuple[int, int]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def insert(self, table: pa.Table) -> None:
        self.threads.add(threading.current_thread().name)
        self.attempts += 1
        if self.attempts <= self.failures:
            self.pending_at_failure.append(self.pending.counts())
            raise ConnectionError("ClickHouse is down")
        self.inserts.append(table.column("id").to_pylist())

    def checkpoint(self, seq: int) -> None:
        self.checkpoints.append(seq)


def _add(pending: PendingWrites, seq: int, prefix: str, n: int) -> None:
    ids = [f"{prefix}{i}" for i in range(n)]
    pending.add(seq, pa.table({"id": ids}), ids)


@pytest.fixture
async def writer() -> AsyncIterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-clickhouse-write")
    yield executor
    executor.shutdown(wait=True)


def _loop(
    pending: PendingWrites,
    clickhouse: FakeClickHouse,
    writer: ThreadPoolExecutor,
    *,
    interval: float,
    retry: float = 1.0,
) -> FlushLoop:
    return FlushLoop(
        pending,
        insert=clickhouse.insert,
        checkpoint=clickhouse.checkpoint,
        writer=writer,
        interval_seconds=interval,
        retry_seconds=retry,
    )


async def test_a_failed_insert_is_retried_and_its_rows_stay_pending_until_stored(
    writer: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending, failures=2)
    flush = _loop(pending, clickhouse, writer, interval=0.01, retry=0.01)
    assert flush.start()
    try:
        _add(pending, 1, "a", 3)
        _add(pending, 2, "b", 2)
        flush.wake()
        with caplog.at_level(logging.ERROR, logger="analytics.event_store"):
            await asyncio.wait_for(flush.until_stored(2), timeout=5)
    finally:
        flush.stop()
    # Two failures, then one insert carrying both batches; the log is checkpointed once, after it.
    assert clickhouse.attempts == 3
    assert clickhouse.pending_at_failure == [(2, 5), (2, 5)]
    assert clickhouse.inserts == [["a0", "a1", "a2", "b0", "b1"]]
    assert clickhouse.checkpoints == [2]
    assert pending.counts() == (0, 0)
    assert pending.stored_through == 2
    assert clickhouse.threads == {"test-clickhouse-write_0"}
    assert [r.getMessage() for r in caplog.records] == ["inserting 2 logged batches failed; retrying"] * 2


async def test_rows_wait_out_the_interval_unless_a_reader_needs_them(writer: ThreadPoolExecutor) -> None:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending)
    flush = _loop(pending, clickhouse, writer, interval=30.0)
    flush.start()
    try:
        _add(pending, 1, "a", 2)
        flush.wake()
        await asyncio.sleep(0.1)
        assert clickhouse.inserts == []  # lingering: more rows may come
        _add(pending, 2, "b", 1)
        flush.wake()
        await asyncio.wait_for(flush.until_stored(2), timeout=5)
    finally:
        flush.stop()
    assert clickhouse.inserts == [["a0", "a1", "b0"]]
    assert clickhouse.checkpoints == [2]


async def test_a_backlog_of_a_full_insert_goes_at_once_and_the_rest_waits(writer: ThreadPoolExecutor) -> None:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=4)
    clickhouse = FakeClickHouse(pending)
    flush = _loop(pending, clickhouse, writer, interval=1.0)
    for seq, prefix in enumerate("abcde", 1):
        _add(pending, seq, prefix, 2)
    flush.start()
    try:
        flush.wake()
        await asyncio.wait_for(_until(lambda: len(clickhouse.inserts) == 2), timeout=5)
        # 10 rows, 4 per insert: the first insert left 6 (a backlog), the second 2, which wait.
        await asyncio.sleep(0.1)
        assert clickhouse.inserts == [["a0", "a1", "b0", "b1"], ["c0", "c1", "d0", "d1"]]
        assert pending.counts() == (1, 2)
        await asyncio.wait_for(_until(lambda: len(clickhouse.inserts) == 3), timeout=5)
    finally:
        flush.stop()
    assert clickhouse.inserts[2] == ["e0", "e1"]
    assert clickhouse.checkpoints == [2, 4, 5]
    assert pending.stored_through == 5


async def test_writers_wait_for_room_while_too_much_is_pending(writer: ThreadPoolExecutor) -> None:
    pending = PendingWrites(stored_through=0, max_rows=3, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending, failures=1)
    flush = _loop(pending, clickhouse, writer, interval=30.0, retry=0.5)
    flush.start()
    try:
        _add(pending, 1, "a", 4)
        flush.wake()
        waiting = asyncio.create_task(flush.make_room())
        # The writer asks for an insert at once; it fails, so the writer still waits.
        await asyncio.wait_for(_until(lambda: clickhouse.attempts == 1), timeout=5)
        await asyncio.sleep(0.05)
        assert not waiting.done()
        # The retry (after 0.5 s, not the 30 s interval: the writer keeps asking) makes room.
        await asyncio.wait_for(waiting, timeout=5)
    finally:
        flush.stop()
    assert clickhouse.attempts == 2
    assert clickhouse.inserts == [["a0", "a1", "a2", "a3"]]
    assert pending.rows == 0


async def test_a_stopped_loop_starts_again(writer: ThreadPoolExecutor) -> None:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending)
    flush = _loop(pending, clickhouse, writer, interval=30.0)
    assert flush.start()
    assert not flush.start()  # running already
    flush.stop()
    await asyncio.sleep(0.01)
    assert flush.start()
    try:
        _add(pending, 1, "a", 1)
        await asyncio.wait_for(flush.until_stored(1), timeout=5)
    finally:
        flush.stop()
    assert clickhouse.inserts == [["a0"]]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)
