"""actors/pending_writes.py: what is logged but not yet in ClickHouse, and the back-pressure bound."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from actors.pending_writes import PendingWrites


def _rows(prefix: str, n: int) -> pa.Table:
    return pa.table({"id": [f"{prefix}{i}" for i in range(n)]})


def _pending(**kwargs: int) -> tuple[PendingWrites, list[int]]:
    heard: list[int] = []
    options = {"stored_through": 0, "max_rows": 10, "max_rows_per_insert": 5, **kwargs}
    return PendingWrites(**options, on_rows=heard.append), heard


def test_batches_are_taken_oldest_first_and_released_after_the_insert() -> None:
    pending, heard = _pending(stored_through=7)
    pending.add(8, _rows("a", 3), ["a0", "a1", "a2"])
    pending.add(9, _rows("b", 2), ["b0", "b1"])
    pending.add(10, _rows("c", 4), ["c0", "c1", "c2", "c3"])
    assert pending.counts() == (3, 9)
    assert pending.pending_ids(["a1", "b1", "z0", "c3"]) == {"a1", "b1", "c3"}

    # At most 5 rows per insert: a and b (5 rows); c would make 9.
    batch = pending.take()
    assert [b.seq for b in batch] == [8, 9]
    # Taking removes nothing: the rows stay pending until ClickHouse holds them.
    assert pending.counts() == (3, 9)
    assert pending.stored_through == 7

    pending.release(batch)
    assert pending.counts() == (1, 4)
    assert pending.rows == 4
    assert pending.stored_through == 9
    assert pending.pending_ids(["a1", "b1", "c3"]) == {"c3"}
    assert heard == [3, 5, 9, 4]


def test_a_release_drops_the_ids_the_batch_was_added_with_without_reading_its_rows() -> None:
    pending, _ = _pending()
    ids = ["a0", "a1"]
    # No id column: the release must use the ids kept with the batch, not convert the table's.
    pending.add(1, pa.table({"n": [0, 1]}), ids)
    pending.add(2, _rows("b", 1), ["b0"])
    batch = pending.take()
    assert batch[0].ids is ids
    pending.release(batch[:1])
    assert pending.pending_ids(["a0", "a1", "b0"]) == {"b0"}
    assert pending.counts() == (1, 1)
    assert pending.stored_through == 1


def test_a_batch_bigger_than_one_insert_is_taken_alone() -> None:
    pending, _ = _pending()
    pending.add(1, _rows("a", 7), [f"a{i}" for i in range(7)])
    pending.add(2, _rows("b", 1), ["b0"])
    assert [b.seq for b in pending.take()] == [1]


def test_nothing_pending_takes_nothing() -> None:
    pending, heard = _pending(stored_through=3)
    assert pending.take() == []
    assert pending.counts() == (0, 0)
    assert pending.stored_through == 3
    assert heard == []


def test_releasing_anything_but_the_oldest_batches_is_refused() -> None:
    pending, _ = _pending()
    pending.add(1, _rows("a", 1), ["a0"])
    pending.add(2, _rows("b", 1), ["b0"])
    second = [pending.take()[0]._replace(seq=2)]
    with pytest.raises(RuntimeError, match=r"\[2\] released are not the oldest"):
        pending.release(second)
    assert pending.counts() == (2, 2)
    assert pending.stored_through == 0


def test_writers_are_held_back_only_past_the_bound() -> None:
    pending, _ = _pending(max_rows=10)
    pending.add(1, _rows("a", 10), [f"a{i}" for i in range(10)])
    assert not pending.full  # exactly at the bound
    pending.add(2, _rows("b", 1), ["b0"])
    assert pending.full
    pending.release(pending.take())  # 10 rows: one insert's worth is 5, but one batch always goes
    assert pending.rows == 1
    assert not pending.full


def test_concurrent_appends_lose_no_rows_or_ids() -> None:
    pending, heard = _pending(max_rows=1_000_000, max_rows_per_insert=1_000_000)
    threads, per_thread, rows = 4, 500, 3
    seqs = iter(range(1, threads * per_thread + 1))
    seq_lock = threading.Lock()
    start = threading.Barrier(threads)

    def append(name: str) -> None:
        start.wait()
        for i in range(per_thread):
            ids = [f"{name}-{i}-{r}" for r in range(rows)]
            with seq_lock:
                seq = next(seqs)
            pending.add(seq, pa.table({"id": ids}), ids)

    workers = [threading.Thread(target=append, args=(f"t{t}",)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert pending.counts() == (2000, 6000)
    assert len(pending.pending_ids(f"t{t}-{i}-{r}" for t in range(4) for i in range(500) for r in range(3))) == 6000
    # Every change was heard, each count 3 more than the one before: none reported out of order.
    assert heard == list(range(3, 6001, 3))


def test_appends_releases_and_readers_at_once_keep_the_accounting_exact() -> None:
    """One thread appends (the log's), one takes and releases (the writer's), others read the
    totals; every total read is consistent and everything ends released."""
    pending, heard = _pending(max_rows=50, max_rows_per_insert=40)
    batches, rows = 3000, 2
    appended = threading.Event()
    problems: list[str] = []
    stop_reading = threading.Event()

    def append() -> None:
        for seq in range(1, batches + 1):
            ids = [f"e{seq}-{r}" for r in range(rows)]
            pending.add(seq, pa.table({"id": ids}), ids)
        appended.set()

    def insert() -> None:
        released = 0
        while released < batches:
            batch = pending.take()
            if not batch:
                time.sleep(0.0001)
                continue
            if [b.seq for b in batch] != list(range(released + 1, released + len(batch) + 1)):
                problems.append(f"took {[b.seq for b in batch]} after {released}")
                return
            pending.release(batch)
            released += len(batch)

    def read() -> None:
        while not stop_reading.is_set():
            count, total = pending.counts()
            if total != count * rows:
                problems.append(f"{count} batches but {total} rows")
            if pending.stored_through > batches:
                problems.append(f"stored through {pending.stored_through}")

    workers = [threading.Thread(target=f) for f in (append, insert, read, read)]
    for w in workers:
        w.start()
    workers[0].join()
    workers[1].join()
    stop_reading.set()
    for w in workers[2:]:
        w.join()
    assert appended.is_set()
    assert problems == []
    assert pending.counts() == (0, 0)
    assert pending.stored_through == batches
    assert pending.pending_ids(f"e{seq}-0" for seq in range(1, batches + 1)) == set()
    assert heard[-1] == 0
    # Adds raise the count by 2 each, releases lower it by whole batches: the reported counts
    # go up by exactly 2 x 3000 in all and come back to 0.
    assert sum(b - a for a, b in zip([0, *heard], heard, strict=False) if b > a) == batches * rows
