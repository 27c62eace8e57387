"""actors/read_pool.py against embedded chDB: analytics statements wait in a bounded queue and are
refused at once beyond it, those under it run, and each thread's client reads under the budget."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.read_pool import ReadPool
from core.errors import Overloaded, QueryBudgetExceeded
from storage import clickhouse
from storage.query_budget import QueryBudget

# Holds the pool's one thread for about a second (chDB sleeps at most 3 s per block).
BLOCKER = "SELECT sleepEachRow(0.25) FROM numbers(4) SETTINGS max_block_size = 1"


@pytest.fixture
def pool(chdb_dir: Path) -> Iterator[ReadPool]:
    database = f"reads_{secrets.token_hex(4)}"
    clickhouse.connect(None, chdb_path=chdb_dir, database=database).close()
    reads = ReadPool(
        lambda: clickhouse.connect(None, chdb_path=chdb_dir, database=database),
        threads=1,
        budget=QueryBudget(max_execution_seconds=30, max_memory_bytes=1 << 30, max_rows_to_read=1_000_000),
        max_queued=2,
    )
    yield reads
    reads.shutdown()


async def _until_started(pool: ReadPool) -> None:
    """Until every statement submitted has been taken by a thread."""
    for _ in range(500):
        if pool.queued == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pool.queued} statements never started")


async def test_statements_beyond_the_queue_are_refused_at_once_and_those_under_it_run(pool: ReadPool) -> None:
    blocker = asyncio.ensure_future(pool.call_analytics("query", BLOCKER))
    await _until_started(pool)
    waiting = [asyncio.ensure_future(pool.call_analytics("query", f"SELECT {n} * 7 AS v")) for n in range(2)]
    await asyncio.sleep(0)
    assert pool.queued == 2
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Overloaded) as refused:
        await pool.call_analytics("query_arrow", "SELECT 1")
    assert loop.time() - started < 0.1
    assert (refused.value.status, refused.value.code) == (503, "overloaded")
    assert refused.value.message == "the event store has 2 analytics statements waiting; retry shortly"
    # The event API's reads wait their turn instead, whatever the queue holds.
    ping = asyncio.ensure_future(pool.call("ping"))
    assert [r.rows for r in await asyncio.gather(*waiting)] == [[(0,)], [(7,)]]
    assert await ping is True
    assert len((await blocker).rows) == 4
    assert pool.queued == 0
    # With the queue drained, statements are taken again.
    assert (await pool.call_analytics("query", "SELECT 3 AS v")).rows == [(3,)]


async def test_a_statement_whose_caller_goes_away_leaves_the_queue(pool: ReadPool) -> None:
    blocker = asyncio.ensure_future(pool.call_analytics("query", BLOCKER))
    await _until_started(pool)
    gone = asyncio.ensure_future(pool.call_analytics("query", "SELECT 1"))
    kept = asyncio.ensure_future(pool.call_analytics("query", "SELECT 2"))
    await asyncio.sleep(0)
    assert pool.queued == 2
    gone.cancel()
    await asyncio.sleep(0.05)
    assert pool.queued == 1
    # Room for one more again.
    again = asyncio.ensure_future(pool.call_analytics("query", "SELECT 3"))
    assert [r.rows for r in await asyncio.gather(kept, again)] == [[(2,)], [(3,)]]
    await blocker
    assert pool.queued == 0


async def test_each_threads_client_reads_under_the_budget(pool: ReadPool) -> None:
    with pytest.raises(QueryBudgetExceeded) as refused:
        await pool.call_analytics("query", "SELECT sum(number) FROM numbers(2000000)")
    assert refused.value.details["max"] == 1_000_000
    assert (await pool.call_analytics("query", "SELECT sum(number) FROM numbers(1000)")).rows == [(sum(range(1000)),)]
    assert pool.queued == 0


async def test_running_statements_share_the_cores(chdb_dir: Path) -> None:
    """A lone statement may use every core; one that runs beside another gets its share of them."""
    database = f"reads_{secrets.token_hex(4)}"
    clickhouse.connect(None, chdb_path=chdb_dir, database=database).close()
    reads = ReadPool(lambda: clickhouse.connect(None, chdb_path=chdb_dir, database=database), threads=2, cores=4)
    threads = "SELECT getSetting('max_threads') AS threads"
    try:
        assert (await reads.call_analytics("query", threads)).rows == [(4,)]
        # One stream, so it holds its thread for its whole second whatever threads it is given.
        blocker = asyncio.ensure_future(reads.call_analytics("query", f"{BLOCKER}, max_threads = 1"))
        for _ in range(500):
            if reads.running:
                break
            await asyncio.sleep(0.01)
        assert (await reads.call_analytics("query", threads)).rows == [(2,)]
        await blocker
        assert (await reads.call_analytics("query_arrow", threads)).column("threads").to_pylist() == [4]
    finally:
        reads.shutdown()


@pytest.fixture
def batch_pool(chdb_dir: Path) -> Iterator[ReadPool]:
    database = f"reads_{secrets.token_hex(4)}"
    clickhouse.connect(None, chdb_path=chdb_dir, database=database).close()
    reads = ReadPool(
        lambda: clickhouse.connect(None, chdb_path=chdb_dir, database=database),
        threads=1,
        budget=QueryBudget(max_execution_seconds=0.2, max_memory_bytes=1 << 30, max_rows_to_read=10**12),
        batch_budget=QueryBudget(
            max_execution_seconds=30,
            max_memory_bytes=1 << 30,
            max_rows_to_read=10**12,
            time_setting="ANALYTICS_BATCH_QUERY_MAX_EXECUTION_SECONDS",
        ),
        max_queued=1,
    )
    yield reads
    reads.shutdown()


async def test_batch_statements_wait_past_the_queue_and_run_under_the_batch_budget(batch_pool: ReadPool) -> None:
    slow = "SELECT count() FROM numbers(10000000000)"
    # A request's statement is held to the short time limit, naming its setting.
    with pytest.raises(QueryBudgetExceeded) as refused:
        await batch_pool.call_analytics("query", slow)
    assert refused.value.details["setting"] == "ANALYTICS_QUERY_MAX_EXECUTION_SECONDS"
    # A batch job's runs to the end under its own, and three of them queue past max_queued.
    blocker = asyncio.ensure_future(batch_pool.call_analytics("query", slow, batch=True))
    await asyncio.sleep(0.05)
    await _until_started(batch_pool)
    queued = [asyncio.ensure_future(batch_pool.call_analytics("query", slow, batch=True)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert batch_pool.queued == 3
    with pytest.raises(Overloaded):
        await batch_pool.call_analytics("query", "SELECT 1")
    assert [r.rows for r in await asyncio.gather(blocker, *queued)] == [[(10_000_000_000,)]] * 4
