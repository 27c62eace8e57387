"""actors/counter_shard.py: a delta applied in slices, pure asyncio, no Ray."""

import asyncio
import random
import sys
import time

import pyarrow as pa
import pytest

from actors import counter_shard
from actors.counter_shard import CounterShardActor
from core.settings import Settings
from semantic.live_counters import DELTA_SCHEMA, LiveCounters

TYPES = ("content_view", "content_play", "content_share", "content_complete")


def delta(rng: random.Random, now: float, rows: int) -> pa.Table:
    minute = int(now // 60) * 60
    return pa.table(
        {
            "minute": [minute - 60 * rng.randint(0, 90) for _ in range(rows)],
            "content_id": [f"c{rng.randint(0, 40)}" for _ in range(rows)],
            "event_type": [rng.choice(TYPES) for _ in range(rows)],
            "events": [rng.randint(1, 4) for _ in range(rows)],
            "watch_seconds": [rng.random() * 10 for _ in range(rows)],
            "users": [[rng.getrandbits(64) for _ in range(rng.randint(0, 3))] for _ in range(rows)],
            "sessions": [[rng.getrandbits(64)] for _ in range(rows)],
            "last_event_ms": [minute * 1000 + 1 for _ in range(rows)],
        },
        schema=DELTA_SCHEMA,
    )


def assert_same(got, want, path=""):
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9), path
    else:
        assert got == want, path


def shard() -> CounterShardActor:
    switch = sys.getswitchinterval()
    actor = CounterShardActor(Settings().model_dump(mode="json"), 0)
    sys.setswitchinterval(switch)  # the actor sets its own process's; not this one's
    return actor


def test_a_sliced_delta_gives_the_figures_of_a_whole_one_and_lets_reads_in(monkeypatch):
    monkeypatch.setattr(counter_shard, "_APPLY_SLICE_SECONDS", 0.0)  # yield after every slice
    rng = random.Random(7)
    actor = shard()
    whole = LiveCounters()
    deltas = [delta(rng, actor._counters._minute * 60 + 30, rng.randint(1, 300)) for _ in range(4)]

    async def run() -> list[int]:
        seen: list[int] = []

        async def reader() -> None:
            for _ in range(40):
                seen.append(actor._counters._changes)
                await asyncio.sleep(0)

        # Two deltas applied side by side, and reads between their slices.
        await asyncio.gather(actor._apply_sliced(deltas[0], None), actor._apply_sliced(deltas[1], None), reader())
        for d in deltas[2:]:
            await actor._apply_sliced(d, None)
        return seen

    seen = asyncio.run(run())
    assert len(set(seen)) > 3  # reads saw the deltas going in, slice by slice
    for d in deltas:
        whole.apply(d)
    at = time.time()  # trending decays with the clock: read both at the same instant
    for content in whole.content_ids():
        # Interleaved deltas add floats (watch time, trending activity) in another order: equal
        # up to rounding; every count is exact.
        assert_same(actor._counters.content_view(content, at), whole.content_view(content, at))


def test_a_resync_during_a_sliced_delta_drops_the_rest_with_the_old_counters(monkeypatch):
    monkeypatch.setattr(counter_shard, "_APPLY_SLICE_SECONDS", 0.0)
    rng = random.Random(8)
    actor = shard()
    old = actor._counters
    fresh = LiveCounters()

    async def run() -> None:
        task = asyncio.ensure_future(actor._apply_sliced(delta(rng, old._minute * 60 + 30, 200), None))
        await asyncio.sleep(0)
        actor._counters = fresh  # what a re-read does between two slices
        await task

    asyncio.run(run())
    assert 0 < old._changes < 200 and fresh.content_ids() == []
