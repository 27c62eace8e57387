"""actors/flush_loop.py: logged rows reach ClickHouse once per interval, at once when someone
waits, and again after a failed insert; a row stays pending until ClickHouse holds it, and rows
whose checkpoint failed are not inserted (nor handed on) a second time."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pytest

from actors.clickhouse_writer import ClickHouseWriter
from actors.flush_loop import FlushLoop
from actors.pending_writes import PendingWrites
from actors.store_metrics import StoreMetrics
from tests.actors.test_clickhouse_writer import FakeStore, Recorder


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

    def insert(self, table: pa.Table, ids: Iterable[str]) -> None:
        self.threads.add(threading.current_thread().name)
        self.attempts += 1
        # The ids handed along are the rows' own, in order.
        assert list(ids) == table.column("id").to_pylist()
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


class FlakyStore(FakeStore):
    """``insert_raw`` failing the first ``failures`` times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def insert_raw(self, batch: pa.Table, dedup_token: str) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ClickHouse is down")
        return super().insert_raw(batch, dedup_token)


@pytest.mark.parametrize("failing", ["insert", "checkpoint"])
async def test_a_failed_step_is_counted_once_and_the_rows_are_handed_on_once(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the real writer: whichever step fails once, the store's error counter says 1, and
    ClickHouse, the rollups and the live counters each get the rows exactly once."""
    store, rollups, feed, metrics = FlakyStore(1 if failing == "insert" else 0), Recorder(), Recorder(), StoreMetrics()
    writer = ClickHouseWriter(store, rollups=rollups, feed=feed, metrics=metrics)
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    checkpoints: list[int] = []

    def checkpoint(seq: int) -> None:
        checkpoints.append(seq)
        if failing == "checkpoint" and len(checkpoints) == 1:
            raise OSError("disk full")

    flush = FlushLoop(
        pending,
        insert=writer.insert,
        checkpoint=checkpoint,
        writer=writer.executor,
        interval_seconds=0.01,
        retry_seconds=0.01,
        on_error=metrics.flush_failed,
    )
    flush.start()
    try:
        _add(pending, 1, "a", 3)
        _add(pending, 2, "b", 2)
        flush.wake()
        with caplog.at_level(logging.ERROR, logger="analytics.event_store"):
            await asyncio.wait_for(flush.until_stored(2), timeout=5)
    finally:
        flush.stop()
        writer.shutdown()
    ids = ["a0", "a1", "a2", "b0", "b1"]
    assert len(store.tokens) == 1
    assert rollups.calls == [(41, ids)]
    assert feed.calls == [(ids,)]
    assert metrics.registry.get_sample_value("analytics_store_insert_errors_total") == 1
    assert checkpoints == ([2, 2] if failing == "checkpoint" else [2])
    assert pending.counts() == (0, 0)
    step = "inserting" if failing == "insert" else "checkpointing"
    assert [r.getMessage() for r in caplog.records] == [f"{step} 2 logged batches failed; retrying"]


async def test_after_a_failed_checkpoint_only_the_batches_logged_since_are_inserted(
    writer: ThreadPoolExecutor,
) -> None:
    """The retry takes the inserted batches again, with one logged meanwhile: that one alone is
    inserted, and one checkpoint covers all."""
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending)
    errors: list[None] = []

    def checkpoint(seq: int) -> None:
        clickhouse.checkpoint(seq)
        if len(clickhouse.checkpoints) == 1:
            _add(pending, 3, "c", 2)  # arrives while the flush fails
            raise OSError("disk full")

    flush = FlushLoop(
        pending,
        insert=clickhouse.insert,
        checkpoint=checkpoint,
        writer=writer,
        interval_seconds=0.01,
        retry_seconds=0.01,
        on_error=lambda: errors.append(None),
    )
    flush.start()
    try:
        _add(pending, 1, "a", 2)
        _add(pending, 2, "b", 1)
        flush.wake()
        await asyncio.wait_for(flush.until_stored(3), timeout=5)
    finally:
        flush.stop()
    assert clickhouse.inserts == [["a0", "a1", "b0"], ["c0", "c1"]]
    assert clickhouse.checkpoints == [2, 3]
    assert len(errors) == 1
    assert pending.counts() == (0, 0)
    assert pending.pending_ids(["a0", "b0", "c0"]) == set()


async def test_a_failed_insert_is_retried_with_exactly_its_batches_and_the_newer_ones_apart(
    writer: ThreadPoolExecutor,
) -> None:
    """An insert that raised may have been stored all the same: its retry must carry the very same
    rows (so the same dedup token), and a batch logged meanwhile goes in an insert of its own."""
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=50)
    clickhouse = FakeClickHouse(pending)
    attempted: list[list[str]] = []

    def insert(table: pa.Table, ids: Iterable[str]) -> None:
        attempted.append(sorted(ids))
        if len(attempted) == 1:
            _add(pending, 3, "c", 2)  # arrives while the insert fails
            raise ConnectionError("the answer was lost after the commit")
        clickhouse.insert(table, table.column("id").to_pylist())

    flush = FlushLoop(
        pending,
        insert=insert,
        checkpoint=clickhouse.checkpoint,
        writer=writer,
        interval_seconds=0.01,
        retry_seconds=0.01,
    )
    flush.start()
    try:
        _add(pending, 1, "a", 2)
        _add(pending, 2, "b", 1)
        flush.wake()
        await asyncio.wait_for(flush.until_stored(3), timeout=5)
    finally:
        flush.stop()
    assert attempted == [["a0", "a1", "b0"], ["a0", "a1", "b0"], ["c0", "c1"]]
    assert clickhouse.inserts == [["a0", "a1", "b0"], ["c0", "c1"]]
    assert clickhouse.checkpoints == [3]
    assert pending.counts() == (0, 0)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)
