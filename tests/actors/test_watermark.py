"""The data watermark of the event store (EventStoreActor.watermark), in this process (no Ray):
every event acknowledged before as_of is in the events table and the rollups, under a stream of
writes, after a restart that replays the log, and while writes wait to be inserted."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from actors.event_store import EventStoreActor
from actors.pending_writes import PendingWrites
from core.arrow_ipc import pack
from core.settings import Settings
from storage import clickhouse
from storage.events import ClickHouseEvents, EventFilter
from tests.support import stored_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _events(prefix: str, n: int) -> pa.Table:
    return stored_events(prefix, n, NOW, step=timedelta(seconds=1), session_id=["s1"] * n)


def _read(settings: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    config = Settings(**settings)
    store = ClickHouseEvents(clickhouse.connect(None, chdb_path=config.chdb_path, database=config.clickhouse_database))
    try:
        return store.query(sql).rows
    finally:
        store.close()


def test_every_event_acknowledged_before_as_of_is_stored_and_fed(settings: dict[str, Any]) -> None:
    """Writes keep coming while inserts and rollup feeds run at short intervals; each watermark
    read meanwhile is checked against the insert that holds each acknowledged write."""
    seconds = 3.0

    async def run() -> tuple[list[tuple[str, int]], list[tuple[int, int, int, int]], tuple[int, int, int, int], int]:
        store = EventStoreActor({**settings, "store_flush_interval_ms": 40, "rollup_feed_interval_ms": 60})
        acks: list[tuple[str, int]] = []  # (id prefix, ms when the write had returned)
        samples: list[tuple[int, int, int, int]] = []  # (stored, fed, as_of, ms when it had returned)
        deadline = asyncio.get_running_loop().time() + seconds

        async def write() -> None:
            n = 0
            while asyncio.get_running_loop().time() < deadline:
                await store.write(pack(_events(f"w{n}-", 4)), [4])
                acks.append((f"w{n}-", _now_ms()))
                n += 1
                await asyncio.sleep(0.003)

        async def poll() -> None:
            while asyncio.get_running_loop().time() < deadline:
                stored, fed, as_of, _ = await store.watermark()
                samples.append((stored, fed, as_of, _now_ms()))
                await asyncio.sleep(0.002)

        await asyncio.gather(write(), poll())
        await store.settle_rollups()
        settled = _now_ms()
        final = await store.watermark()
        store.close()
        return acks, samples, final, settled

    acks, samples, final, settled = asyncio.run(run())
    seq_of = {
        prefix: int(seq)
        for prefix, seq in _read(
            settings, "SELECT splitByChar('-', id)[1] || '-' AS prefix, max(stored_seq) FROM events GROUP BY prefix"
        )
    }
    assert set(seq_of) == {prefix for prefix, _ in acks}
    checked = behind = 0
    for (stored, fed, as_of, returned), previous in zip(samples, [(0, 0, 0, 0), *samples], strict=False):
        assert fed <= stored and as_of <= returned
        # Never backwards.
        assert stored >= previous[0] and fed >= previous[1] and as_of >= previous[2]
        behind += as_of < returned - 20
        for prefix, acknowledged in acks:
            if acknowledged < as_of:
                assert seq_of[prefix] <= fed, (prefix, acknowledged, as_of, fed)
                checked += 1
    # Not vacuous: many writes were checked, and the watermark was often held back by pending rows.
    assert checked > 200 and behind > 10, (checked, behind)
    stored, fed, as_of, _ = final
    assert stored == fed == max(seq_of.values())
    assert as_of >= settled and as_of >= acks[-1][1]
    # Everything is in the rollups too.
    assert _read(settings, "SELECT count() FROM events") == _read(settings, "SELECT count() FROM events_by_user")


def test_as_of_waits_for_pending_writes_then_catches_up(settings: dict[str, Any]) -> None:
    async def run() -> None:
        store = EventStoreActor(settings)  # flushes only when a reader asks (10 s interval)
        try:
            stored, fed, empty, _ = await store.watermark()
            assert (stored, fed) == (0, 0) and empty <= _now_ms()
            before = _now_ms()
            await store.write(pack(_events("p", 5)), [5])
            returned = _now_ms()
            first = await store.watermark()
            assert first[:2] == (0, 0) and before <= first[2] <= returned
            await asyncio.sleep(0.1)
            # Still pending: as_of stays where the write was accepted.
            assert await store.watermark() == first
            # A read of the event API inserts the rows; they are stored, maybe not yet fed.
            assert await store.count(EventFilter(session_id="s1")) == 5
            stored, fed, as_of, _ = await store.watermark()
            assert stored == 1 and (fed == 1 or as_of == first[2])
            await store.settle_rollups()
            settled = _now_ms()
            assert (await store.watermark())[:2] == (1, 1)
            assert (await store.watermark())[2] >= settled
        finally:
            store.close()

    asyncio.run(run())


def test_a_restarted_store_serves_once_the_rows_it_replayed_are_fed(settings: dict[str, Any]) -> None:
    async def die_with_pending_rows() -> None:
        store = EventStoreActor(settings)
        await store.write(pack(_events("r", 8)), [8])
        store.close()  # nothing reached ClickHouse

    asyncio.run(die_with_pending_rows())

    async def restart() -> tuple[int, tuple[int, int, int, int]]:
        started = _now_ms()
        store = EventStoreActor(settings)
        try:
            assert store.replayed_rows == 8
            return started, await store.watermark()
        finally:
            store.close()

    started, (stored, fed, as_of, _) = asyncio.run(restart())
    assert stored == fed == 1 and as_of >= started
    assert _read(settings, "SELECT count() FROM events_by_user") == [(8,)]


def test_pending_writes_know_when_their_oldest_batch_was_accepted() -> None:
    pending = PendingWrites(stored_through=0, max_rows=100, max_rows_per_insert=100)
    assert pending.oldest_accepted_ms() is None
    before = _now_ms()
    pending.add(1, _events("a", 2), ["a0", "a1"])
    after_first = _now_ms()
    time.sleep(0.005)
    pending.add(2, _events("b", 2), ["b0", "b1"])
    oldest = pending.oldest_accepted_ms()
    assert oldest is not None and before <= oldest <= after_first
    first, second = pending.take()
    assert first.accepted_ms == oldest < second.accepted_ms
    pending.release([first])
    assert pending.oldest_accepted_ms() == second.accepted_ms
    pending.release([second])
    assert pending.oldest_accepted_ms() is None


def test_a_metadata_write_moves_the_watermark_and_a_restart_never_reuses_its_count(settings: dict[str, Any]) -> None:
    """Content metadata updates change answers without new events: the cache key must move with them."""
    from semantic.content_metadata import UPDATES_TABLE, ContentMetadataStore

    async def update_twice() -> tuple[tuple[int, int, int, int], ...]:
        store = EventStoreActor(settings)
        try:
            before = await store.watermark()
            await ContentMetadataStore(store).upsert("c1", {"category": "news"})
            after_one = await store.watermark()
            await ContentMetadataStore(store).upsert("c1", {"category": "sport"})
            return before, after_one, await store.watermark()
        finally:
            store.close()

    async def restarted() -> tuple[int, int, int, int]:
        store = EventStoreActor(settings)
        try:
            return await store.watermark()
        finally:
            store.close()

    before, one, two = asyncio.run(update_twice())
    # No event was written: only the count of the other tables moved, once per update.
    assert before[:2] == one[:2] == two[:2]
    assert one[3] == before[3] + 1 and two[3] == one[3] + 1
    assert _read(settings, f"SELECT count() FROM {UPDATES_TABLE}") == [(2,)]
    after_restart = asyncio.run(restarted())
    assert after_restart[3] > two[3]
