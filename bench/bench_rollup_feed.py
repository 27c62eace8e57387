"""Rollup feed benchmark: the CPU of one feed step as the store grows, in one process.

    python -m bench.bench_rollup_feed --size small
    python -m bench.bench_rollup_feed --size full    # 2M stored events

After the service acknowledges events, its event store feeds them into the rollups in steps
(storage/rollup_feed.py): one INSERT ... SELECT through the rollup views, the watch-time change of
the sessions the step touched, and the claim rows. This measures whole steps on an embedded chDB
store like the event store actor's, without Ray or HTTP, for several step sizes and both ways of
computing the watch-time change (in Python from the touched rows, or in SQL) and with the stored
rows handed over in memory or read back from ``events``, alternated so the machine's drift falls on
every way. A step's CPU is the process's (chDB's threads included) during the step, less what
ClickHouse's merge threads used meanwhile, which is reported apart: merges of earlier parts run
whenever ClickHouse schedules them. The minimum is the least disturbed step.

At the end the store's watch-time rollup is compared with a from-scratch computation over every
stored event: the benchmark also checks that the steps it timed were exact.
"""

from __future__ import annotations

import os
import secrets
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.common import load_average, print_table, size_arguments, write_result
from bench.workload import Workload, bulk_rows
from storage.events import ClickHouseEvents
from storage.playback_rollup import TABLE, event_rows, pieces_sql

SIZES = {
    "tiny": {"stored": 2_000, "steps": [50, 400], "rounds": 2, "insert_rows": 200},
    "small": {"stored": 300_000, "steps": [500, 5_000, 20_000], "rounds": 10, "insert_rows": 10_000},
    "full": {"stored": 2_000_000, "steps": [500, 20_000, 100_000], "rounds": 4, "insert_rows": 10_000},
}
# The ways a step can go: (rows handed over in memory as the writer stored them, the largest step
# whose watch-time change is computed in Python). The service feeds from memory, in Python.
WAYS = {"memory_python": (True, 10**12), "read_back_python": (False, 10**12), "read_back_sql": (False, 0)}
# Between a step's inserts and its feed: the inserts' own merges start, as they would in the service.
SETTLE_SECONDS = 0.3

_WATCH_ROLLUP = f"""
SELECT content_id, opened_hour, closed_hour, sum(watch_ms) AS ms FROM {TABLE}
GROUP BY content_id, opened_hour, closed_hour HAVING ms != 0 ORDER BY content_id, opened_hour, closed_hour"""
_WATCH_FROM_SCRATCH = f"""
SELECT content_key, toStartOfHour(fromUnixTimestamp64Milli(opened_ms, 'UTC')) AS opened,
       toStartOfHour(fromUnixTimestamp64Milli(closed_ms, 'UTC')) AS closed, sum(watch_ms) AS ms
FROM ({pieces_sql(event_rows("1"))})
GROUP BY content_key, opened, closed HAVING ms != 0 ORDER BY content_key, opened, closed"""


def run(
    size: str,
    *,
    chdb_path: Path | None = None,
    database: str | None = None,
    results_dir: Path | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Run the benchmark; ``chdb_path`` is the process's chDB directory if it already has one."""
    params = SIZES[size]
    load_before = load_average()
    own_dir = chdb_path is None
    folder = Path(tempfile.mkdtemp(prefix="analytics-bench-feed-")) if chdb_path is None else chdb_path
    store = ClickHouseEvents.open(
        None, chdb_path=folder, database=database or f"bench_feed_{secrets.token_hex(4)}", retention_days=3650
    )
    try:
        end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        token = secrets.token_hex(3)
        history = Workload(
            events=params["stored"], days=30, seed=41, prefix=f"bf{token}h-", end=end - timedelta(days=1)
        )
        started = time.perf_counter()
        for table in history.tables():
            for part in bulk_rows(table, params["insert_rows"]):
                store.insert(part, f"{token}-h{store.stored_seq}")
        load_seconds = time.perf_counter() - started
        # Each step gets events of its own (new sessions, as a live stream brings), from one workload.
        needed = sum(params["steps"]) * params["rounds"] * len(WAYS)
        fresh = Workload(events=needed, days=1, seed=43, prefix=f"bf{token}n-", end=end)
        rows = _RowStream(fresh)
        steps = []
        for step in params["steps"]:
            samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in WAYS}
            for round_ in range(params["rounds"]):
                # Each round starts with another way: none always follows the same one.
                names = list(WAYS)
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    in_memory, python_rows = WAYS[name]
                    store.rollups.python_delta_max_rows = python_rows
                    seq = 0
                    for part in bulk_rows(rows.take(step), params["insert_rows"]):
                        seq = store.insert_raw(part, f"{token}-n{store.stored_seq}")
                        if in_memory:
                            store.rollups.memory.add(seq, part)
                    time.sleep(SETTLE_SECONDS)
                    from_memory = store.rollups.fed_from_memory
                    cpu, merges, wall = time.process_time(), merge_cpu_seconds(), time.perf_counter()
                    fed = store.rollups.feed_through(seq)
                    merges = merge_cpu_seconds() - merges
                    samples[name].append(
                        (
                            (time.process_time() - cpu - merges) * 1000,
                            merges * 1000,
                            (time.perf_counter() - wall) * 1000,
                        )
                    )
                    if fed != step:
                        raise RuntimeError(f"a step of {step} events fed {fed}")
                    if (store.rollups.fed_from_memory - from_memory == step) != in_memory:
                        raise RuntimeError(f"the {name} step did not go the way it was meant to")
            steps.append({"rows": step, **{name: _summary(values) for name, values in samples.items()}})
        watch = store.query(_WATCH_ROLLUP).rows
        from_scratch = store.query(_WATCH_FROM_SCRATCH).rows
        stored = int(store.query("SELECT count() FROM events").rows[0][0])
        fed_views = int(store.query("SELECT count() FROM events_by_user").rows[0][0])
        with_user = int(store.query("SELECT countIf(user_id != '') FROM events").rows[0][0])
    finally:
        store.close()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
    result = {
        "size": size,
        "params": params,
        "load_average": {"before": load_before, "after": load_average()},
        "stored_before_steps": params["stored"],
        "bulk_load_seconds": round(load_seconds, 1),
        "steps": steps,
        "consistency": {
            "events_stored": stored,
            "watch_rollup_rows": len(watch),
            "watch_rollup_equals_from_scratch": watch == from_scratch,
            "events_by_user_rows": fed_views,
            "events_with_a_user": with_user,
        },
        "summary": {f"step_{s['rows']}_{name}_cpu_ms_median": s[name]["cpu_ms_median"] for s in steps for name in WAYS},
    }
    path = write_result("rollup_feed", result, results_dir)
    print(f"\nrollup feed steps on a store of {params['stored']:,} events (+ the steps' own), CPU ms per step:")
    print_table(
        ["rows", *(f"{name} median / min" for name in WAYS), *(f"{name} wall" for name in WAYS)],
        [
            [
                s["rows"],
                *(f"{s[name]['cpu_ms_median']} / {s[name]['cpu_ms_min']}" for name in WAYS),
                *(s[name]["wall_ms_median"] for name in WAYS),
            ]
            for s in steps
        ],
    )
    exact = result["consistency"]["watch_rollup_equals_from_scratch"]
    print(f"watch-time rollup equals a from-scratch computation: {exact}")
    print(f"written to {path}")
    return result


class _RowStream:
    """Consecutive slices of a workload's stored rows, across its chunks."""

    def __init__(self, workload: Workload) -> None:
        self._tables = workload.tables()
        self._current: pa.Table | None = None
        self._offset = 0

    def take(self, n: int) -> pa.Table:
        parts = []
        while n:
            if self._current is None or self._offset == self._current.num_rows:
                self._current, self._offset = next(self._tables), 0
            part = self._current.slice(self._offset, n)
            self._offset += part.num_rows
            n -= part.num_rows
            parts.append(part)
        return pa.concat_tables(parts)


def merge_cpu_seconds() -> float:
    """CPU used so far by this process's ClickHouse merge threads (Linux: /proc/self/task).

    Merges of earlier parts run whenever ClickHouse schedules them, so they are reported apart
    from the step's own CPU instead of landing on whichever step they overlap."""
    ticks = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if not (task / "comm").read_text().startswith("MergeMutate"):
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _summary(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    cpu = [c for c, _, _ in samples]
    return {
        "n": len(samples),
        "cpu_ms_median": round(statistics.median(cpu), 1),
        "cpu_ms_min": round(min(cpu), 1),
        "cpu_ms": [round(c, 1) for c in cpu],
        "merge_cpu_ms_median": round(statistics.median(m for _, m, _ in samples), 1),
        "wall_ms_median": round(statistics.median(w for _, _, w in samples), 1),
    }


def main() -> None:
    args = size_arguments(__doc__, SIZES)
    run(args.size, results_dir=args.results_dir)


if __name__ == "__main__":
    main()
