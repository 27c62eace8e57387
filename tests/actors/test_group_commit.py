"""actors/group_commit.py: pure asyncio, no Ray."""

import asyncio
from collections import defaultdict

import pytest

from actors.group_commit import GroupCommit


class Flusher:
    """A flush that records its batches. When ``held``, flush number n waits until ``release(n)``."""

    def __init__(self, *, held: bool = False, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.finished: list[list[str]] = []
        self.held = held
        self.fail_on = fail_on
        self._gates: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self._entered: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    async def __call__(self, items: list[str]) -> list[str]:
        n = len(self.batches)
        self.batches.append(list(items))
        self._entered[n].set()
        if self.held:
            await self._gates[n].wait()
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"flush of {items} failed")
        self.finished.append(list(items))
        return [f"r:{item}" for item in items]

    async def entered(self, n: int) -> None:
        await asyncio.wait_for(self._entered[n].wait(), timeout=1)

    def release(self, n: int) -> None:
        self._gates[n].set()

    def release_all(self) -> None:
        self.held = False
        for gate in self._gates.values():
            gate.set()


async def _enqueue(commit: GroupCommit, *items: str) -> list[asyncio.Task]:
    tasks = [asyncio.create_task(commit.submit(item)) for item in items]
    # One loop turn: every task runs up to its wait, so all items are queued, in order.
    await asyncio.sleep(0)
    return tasks


async def test_lone_submit_is_flushed_at_once():
    flusher = Flusher()
    commit = GroupCommit(flusher)
    assert await asyncio.wait_for(commit.submit("x"), timeout=1) == "r:x"
    assert flusher.batches == [["x"]]


async def test_submits_during_a_flush_share_the_next_flush():
    flusher = Flusher(held=True)
    commit = GroupCommit(flusher)
    first = await _enqueue(commit, "a")
    await flusher.entered(0)
    waiting = await _enqueue(commit, "b", "c", "d")
    assert flusher.batches == [["a"]]
    flusher.release_all()
    results = await asyncio.wait_for(asyncio.gather(*first, *waiting), timeout=1)
    assert results == ["r:a", "r:b", "r:c", "r:d"]
    assert flusher.batches == [["a"], ["b", "c", "d"]]


async def test_results_go_back_to_their_callers():
    async def flush(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [item * 10 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(flush)
    values = list(range(20))
    tasks = [asyncio.create_task(commit.submit(v)) for v in reversed(values)]
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=1)
    assert results == [v * 10 for v in reversed(values)]


async def test_sequential_submits_each_flush_alone():
    flusher = Flusher()
    commit = GroupCommit(flusher)
    for item in ("a", "b", "c"):
        assert await commit.submit(item) == f"r:{item}"
    assert flusher.batches == [["a"], ["b"], ["c"]]


async def test_max_weight_splits_batches():
    flusher = Flusher(held=True)
    commit = GroupCommit(flusher, weight=len, max_weight=5)
    first = await _enqueue(commit, "a")
    await flusher.entered(0)
    rest = await _enqueue(commit, "bb", "ccc", "dd", "e", "ffffff", "g")
    flusher.release_all()
    results = await asyncio.wait_for(asyncio.gather(*first, *rest), timeout=1)
    assert results == ["r:a", "r:bb", "r:ccc", "r:dd", "r:e", "r:ffffff", "r:g"]
    # A batch stops before the item that would take it past 5; an item heavier than the limit goes alone.
    assert flusher.batches == [["a"], ["bb", "ccc"], ["dd", "e"], ["ffffff"], ["g"]]


async def test_failing_flush_raises_in_every_waiter_of_that_flush():
    flusher = Flusher(held=True, fail_on="boom")
    commit = GroupCommit(flusher)
    first = await _enqueue(commit, "a")
    await flusher.entered(0)
    failing = await _enqueue(commit, "boom", "b")
    # Let "a" finish, and hold the failing flush while another item arrives.
    flusher.release(0)
    assert await asyncio.wait_for(first[0], timeout=1) == "r:a"
    await flusher.entered(1)
    assert flusher.batches[1] == ["boom", "b"]
    later = await _enqueue(commit, "c")
    flusher.release_all()

    outcomes = await asyncio.wait_for(asyncio.gather(*failing, return_exceptions=True), timeout=1)
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    assert outcomes[0] is outcomes[1]
    assert str(outcomes[0]) == "flush of ['boom', 'b'] failed"
    # What queued during the failed flush is still flushed, and later submits work.
    assert await asyncio.wait_for(later[0], timeout=1) == "r:c"
    assert await asyncio.wait_for(commit.submit("d"), timeout=1) == "r:d"
    assert flusher.batches == [["a"], ["boom", "b"], ["c"], ["d"]]
    assert flusher.finished == [["a"], ["c"], ["d"]]


async def test_failure_of_a_lone_flush_then_recovery():
    flusher = Flusher(fail_on="boom")
    commit = GroupCommit(flusher)
    with pytest.raises(RuntimeError, match=r"flush of \['boom'\] failed"):
        await asyncio.wait_for(commit.submit("boom"), timeout=1)
    assert await asyncio.wait_for(commit.submit("ok"), timeout=1) == "r:ok"


async def test_cancelled_queued_waiter_does_not_cancel_the_write():
    flusher = Flusher(held=True)
    commit = GroupCommit(flusher)
    first = await _enqueue(commit, "a")
    await flusher.entered(0)
    (queued,) = await _enqueue(commit, "b")
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    flusher.release_all()
    assert await asyncio.wait_for(first[0], timeout=1) == "r:a"
    await asyncio.wait_for(commit._runner, timeout=1)
    assert flusher.finished == [["a"], ["b"]]


async def test_cancelled_waiter_of_the_running_flush_does_not_cancel_it():
    flusher = Flusher(held=True)
    commit = GroupCommit(flusher)
    (running,) = await _enqueue(commit, "a")
    await flusher.entered(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert flusher.finished == []
    flusher.release_all()
    await asyncio.wait_for(commit._runner, timeout=1)
    assert flusher.finished == [["a"]]
    # The runner is done and a new submit starts another.
    assert await asyncio.wait_for(commit.submit("b"), timeout=1) == "r:b"


async def test_wrong_number_of_results_is_reported_to_waiters():
    async def short_flush(items: list[str]) -> list[str]:
        return []

    commit = GroupCommit(short_flush)
    try:
        with pytest.raises(RuntimeError, match="0 results for 1 items"):
            await asyncio.wait_for(commit.submit("a"), timeout=0.5)
    finally:
        runner = commit._runner
        if runner is not None and runner.done() and not runner.cancelled():
            runner.exception()  # retrieved here, so the loop does not log it at exit
