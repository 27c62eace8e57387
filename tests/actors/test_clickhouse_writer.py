"""actors/clickhouse_writer.py: an insert reaches the rollups and the live counters only once
ClickHouse accepted it, with the same deduplication token for the same rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from actors.clickhouse_writer import ClickHouseWriter
from actors.store_metrics import StoreMetrics


class FakeStore:
    """``insert_raw`` numbering the inserts from 41; raises while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.seq = 40
        self.tokens: list[str] = []

    def insert_raw(self, batch: pa.Table, dedup_token: str) -> int:
        if self.down:
            raise ConnectionError("ClickHouse is down")
        self.seq += 1
        self.tokens.append(dedup_token)
        return self.seq


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def stored(self, seq: int, table: pa.Table) -> None:
        self.calls.append((seq, table.column("id").to_pylist()))

    def inserted(self, table: pa.Table) -> None:
        self.calls.append((table.column("id").to_pylist(),))


def _writer() -> tuple[ClickHouseWriter, FakeStore, Recorder, Recorder, StoreMetrics]:
    store, rollups, feed, metrics = FakeStore(), Recorder(), Recorder(), StoreMetrics()
    return ClickHouseWriter(store, rollups=rollups, feed=feed, metrics=metrics), store, rollups, feed, metrics


def test_stored_rows_go_to_the_rollups_and_the_counters() -> None:
    writer, store, rollups, feed, metrics = _writer()
    try:
        writer.insert_and_wait(pa.table({"id": ["b", "a", "c"]}))
        writer.insert_and_wait(pa.table({"id": ["c", "b", "a"]}))  # the same rows again
        writer.insert_and_wait(pa.table({"id": ["d"]}))
    finally:
        writer.shutdown()
    assert rollups.calls == [(41, ["b", "a", "c"]), (42, ["c", "b", "a"]), (43, ["d"])]
    assert feed.calls == [(["b", "a", "c"],), (["c", "b", "a"],), (["d"],)]
    # Same rows, same token, whatever their order: ClickHouse drops a retried insert.
    assert store.tokens[0] == store.tokens[1] != store.tokens[2]
    sample = metrics.registry.get_sample_value
    assert sample("analytics_store_insert_rows_count") == 3
    assert sample("analytics_store_insert_rows_sum") == 7
    assert sample("analytics_store_insert_seconds_count") == 3
    assert sample("analytics_store_insert_errors_total") == 0


def test_a_failed_insert_is_counted_once_and_handed_to_no_one() -> None:
    writer, store, rollups, feed, metrics = _writer()
    store.down = True
    try:
        with pytest.raises(ConnectionError):
            writer.insert_and_wait(pa.table({"id": ["a"]}))
    finally:
        writer.shutdown()
    assert rollups.calls == [] and feed.calls == []
    sample = metrics.registry.get_sample_value
    assert sample("analytics_store_insert_errors_total") == 1
    assert sample("analytics_store_insert_rows_count") == 0


def test_ids_the_caller_holds_give_the_token_the_rows_would() -> None:
    writer, store, rollups, _, _ = _writer()
    try:
        writer.insert_and_wait(pa.table({"id": ["b", "a", "c"]}))
        writer.insert_and_wait(pa.table({"id": ["b", "a", "c"]}), ["c", "a", "b"])
        writer.insert(pa.table({"id": ["b", "a", "c"]}), iter(["a", "b", "c"]))
    finally:
        writer.shutdown()
    assert store.tokens[0] == store.tokens[1] == store.tokens[2]
    assert [seq for seq, _ in rollups.calls] == [41, 42, 43]
