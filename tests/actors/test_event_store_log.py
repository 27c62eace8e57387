"""The event store's write path in this process (no Ray): writes are acknowledged from the
write-ahead log, reach ClickHouse on the next flush, and a store that died in between puts
them in ClickHouse when it starts again, once each."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from actors.event_store import EventStoreActor
from core.arrow_ipc import pack
from core.settings import Settings
from storage import clickhouse
from storage.events import ClickHouseEvents
from storage.write_ahead_log import WriteAheadLog
from tests.support import stored_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _events(prefix: str, n: int) -> pa.Table:
    return stored_events(prefix, n, NOW, step=timedelta(seconds=1), session_id=["s1"] * n)


def _stored(settings: dict[str, Any]) -> tuple[int, int]:
    """(rows in events, rows in the by-user rollup), read with a client of our own."""
    config = Settings(**settings)
    store = ClickHouseEvents(clickhouse.connect(None, chdb_path=config.chdb_path, database=config.clickhouse_database))
    try:
        return (
            store.query("SELECT count() FROM events").rows[0][0],
            store.query("SELECT count() FROM events_by_user").rows[0][0],
        )
    finally:
        store.close()


def test_acknowledged_writes_survive_a_store_that_dies_before_flushing(settings: dict[str, Any]) -> None:
    async def accept() -> list[Any]:
        store = EventStoreActor(settings)
        first = await store.write(pack(_events("a", 30)), [30])
        second = await store.write(pack(_events("b", 20)), [12, 8])
        # A retry before the flush is already a duplicate (the id is in the log, not yet stored).
        retry = await store.write(pack(_events("a", 5)), [5])
        assert (await store.describe())["pending_rows"] == 50
        store.close()  # dies: nothing reached ClickHouse
        return [*first, *second, *retry]

    receipts = asyncio.run(accept())
    assert [r.inserted for r in receipts] == [30, 12, 8, 0]
    assert len(receipts[3].duplicate_ids) == 5
    assert _stored(settings) == (0, 0)

    async def restart() -> tuple[dict[str, Any], Any]:
        store = EventStoreActor(settings)
        described = await store.describe()
        again = await store.write(pack(_events("b", 20)), [20])
        await store.settle_rollups()
        store.close()
        return described, again[0]

    described, again = asyncio.run(restart())
    assert described["replayed_rows"] == 50
    assert described["pending_rows"] == 0
    assert again.inserted == 0 and len(again.duplicate_ids) == 20
    assert _stored(settings) == (50, 50)

    # A third start finds everything checkpointed: nothing is inserted twice.
    async def third() -> dict[str, Any]:
        store = EventStoreActor(settings)
        described = await store.describe()
        store.close()
        return described

    assert asyncio.run(third())["replayed_rows"] == 0
    assert _stored(settings) == (50, 50)


def test_concurrent_writers_share_one_fsync_and_log_the_bytes_they_sent(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that arrive together (several replicas) are appended as one record each, as sent,
    with a single fsync; a duplicate among them makes the rows be encoded again, without it."""
    syncs: list[int] = []
    real_sync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real_sync(fd))[1])
    payloads = [pack(_events(prefix, n)) for prefix, n in (("x", 4), ("y", 3), ("z", 5))]

    async def accept() -> list[Any]:
        store = EventStoreActor(settings)
        together = await asyncio.gather(*(store.write(p, [n]) for p, n in zip(payloads, (4, 3, 5), strict=True)))
        # x0-x3 again beside new rows: the fresh rows alone are logged, in one record.
        overlapping = await asyncio.gather(
            store.write(pack(_events("x", 2)), [2]), store.write(pack(_events("w", 2)), [2])
        )
        store.close()  # dies before any flush
        return [r for receipts in (*together, *overlapping) for r in receipts]

    receipts = asyncio.run(accept())
    assert [r.inserted for r in receipts] == [4, 3, 5, 0, 2]
    assert len(syncs) == 2
    folder = Path(settings["data_dir"]) / "wal"
    logged = b"".join(path.read_bytes() for path in sorted(folder.glob("wal-*.log")))
    assert all(payload in logged for payload in payloads)
    log = WriteAheadLog(folder)
    try:
        records = [(seq, table.column("id").to_pylist()) for seq, table in log.unstored()]
    finally:
        log.close()
    assert records == [
        (1, ["x0", "x1", "x2", "x3"]),
        (2, ["y0", "y1", "y2"]),
        (3, ["z0", "z1", "z2", "z3", "z4"]),
        (4, ["w0", "w1"]),
    ]

    async def restart() -> dict[str, Any]:
        store = EventStoreActor(settings)
        described = await store.describe()
        await store.settle_rollups()
        store.close()
        return described

    assert asyncio.run(restart())["replayed_rows"] == 14
    assert _stored(settings) == (14, 14)


def test_event_api_reads_see_acknowledged_writes_at_once(settings: dict[str, Any]) -> None:
    async def run() -> tuple[int, Any]:
        store = EventStoreActor(settings)
        await store.write(pack(_events("r", 7)), [7])
        from storage.events import EventFilter

        count = await store.count(EventFilter(session_id="s1"))
        got = await store.get("r3")
        store.close()
        return count, got

    count, got = asyncio.run(run())
    assert count == 7
    assert got is not None and got["id"] == "r3"


def test_a_steady_stream_of_writes_is_inserted_once_per_interval(settings: dict[str, Any]) -> None:
    """Writes that arrive during an insert wait for the next interval: they do not start another
    insert at once (each costs about the same CPU whatever its size)."""
    interval_ms, seconds = 300, 1.8

    async def stream() -> tuple[int, float, tuple[int, int], int]:
        store = EventStoreActor({**settings, "store_flush_interval_ms": interval_ms})
        loop = asyncio.get_running_loop()
        started, written = loop.time(), 0
        while loop.time() - started < seconds:
            await store.write(pack(_events(f"w{written}-", 3)), [3])
            written += 3
            await asyncio.sleep(0.005)
        elapsed = loop.time() - started
        await store.settle_rollups()
        text = (await store.metrics_text()).decode()
        (inserts,) = [
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("analytics_store_insert_rows_count")
        ]
        (from_memory,) = [
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("analytics_rollup_fed_from_memory_rows_total")
        ]
        history = {
            line.split('"')[1]: float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("analytics_rollup_watch_history_steps_total{")
        }
        store.close()
        return int(inserts), elapsed, (written, written), int(from_memory), history

    inserts, elapsed, expected, from_memory, history = asyncio.run(stream())
    assert _stored(settings) == expected
    # The rollup feed took every stored insert from memory, none read back from events, and the
    # sessions' earlier rows from what it held.
    assert from_memory == expected[0]
    assert history["held"] >= 2 and history["read_back"] == 0, history
    # One insert per interval while writes keep coming, plus the one the final read asks for.
    assert 2 <= inserts <= elapsed / (interval_ms / 1000) + 2, inserts
